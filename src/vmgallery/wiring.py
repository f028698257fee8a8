"""The one place that builds the adapters and hands them to the use cases."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

from fastapi import FastAPI

from .adapters.blobs.objectstore import zone_backend
from .adapters.blobs.regions import RegionStores
from .adapters.db.store import Database
from .adapters.security import ensure_admin_token, ensure_secret
from .adapters.storage_accounts import StorageAccounts
from .app.access import DiskAccess, SasSigner
from .app.disks import IMPORT_HANDLERS
from .app.images import IMAGE_HANDLERS
from .app.operations import OPERATION_JOBS, JobKinds, OperationWaiter
from .app.replication import BACKGROUND_JOBS, RegionThrottle
from .app.resources import Resources
from .app.versions import VERSION_HANDLERS
from .config import Settings, masked_url
from .domain.ids import normalize_location
from .entrypoints.http.app import create_app
from .entrypoints.workers.runner import WorkerPool

JOB_KINDS = JobKinds(
    operation={**OPERATION_JOBS, **IMPORT_HANDLERS, **VERSION_HANDLERS, **IMAGE_HANDLERS},
    background=BACKGROUND_JOBS,
)

log = logging.getLogger("vmgallery")


@dataclass
class Services:
    """The adapters use cases and job handlers reach for."""

    stores: RegionStores
    accounts: StorageAccounts
    throttle: RegionThrottle
    replication_batch_bytes: int = 256 << 20


@dataclass
class Service:
    settings: Settings
    db: Database
    waiter: OperationWaiter
    resources: Resources
    access: DiskAccess
    workers: WorkerPool
    services: Services


def build_service(settings: Settings) -> Service:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    db.migrate()
    waiter = OperationWaiter(db)
    zones = {
        normalize_location(region): [
            zone_backend(spec, name=f"{normalize_location(region)}/zone{i + 1}") for i, spec in enumerate(specs)
        ]
        for region, specs in settings.zones.items()
    }
    premium = {
        normalize_location(region): zone_backend(spec, name=f"{normalize_location(region)}/premium")
        for region, spec in settings.premium_zones.items()
    }
    services = Services(
        RegionStores(
            settings.data_dir / "blobs",
            settings.regions,
            settings.chunk_size,
            settings.gc_grace_seconds,
            zones=zones,
            zones_per_region=settings.zones_per_region,
            premium=premium,
        ),
        StorageAccounts(settings.storage_accounts),
        RegionThrottle(settings.replication_bandwidth, settings.replication_concurrency),
        settings.replication_batch_bytes,
    )
    resources = Resources(db, settings, time.time, waiter, services)
    access = DiskAccess(resources, SasSigner(ensure_secret(settings.data_dir / "sas-key")))
    workers = WorkerPool(
        db,
        waiter,
        time.time,
        threads=settings.workers,
        lease_seconds=settings.lease_seconds,
        services=services,
        kinds=JOB_KINDS,
        gc_interval_seconds=settings.gc_interval_seconds,
        gc_grace_seconds=settings.gc_grace_seconds,
    )
    if settings.workers > 0:
        resources.inline = workers.run_operation
    return Service(settings, db, waiter, resources, access, workers, services)


def build_app(service: Service) -> FastAPI:
    token = ensure_admin_token(service.settings.token_path)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        if service.settings.workers > 0:
            service.workers.start()
        log.info("ready", extra={"regions": list(service.settings.regions), "database": masked_url(service.db.url)})
        yield
        service.workers.stop()
        service.db.dispose()
        log.info("stopped")

    return create_app(service.resources, token, lifespan=lifespan, access=service.access)

"""The one place that builds the adapters and hands them to the use cases."""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from .adapters.blobs.objectstore import zone_backend
from .adapters.blobs.regions import RegionStores
from .adapters.build_sources import SourceFetcher
from .adapters.db.activity import ActivityEvents
from .adapters.db.directory import DirectoryStore
from .adapters.db.store import Database
from .adapters.epoch import Epoch
from .adapters.identity.hashing import Argon2Hasher
from .adapters.identity.keys import SigningKeys
from .adapters.security import SasSigner, ensure_admin_token, ensure_secret
from .adapters.storage_accounts import StorageAccounts
from .app import gc
from .app.access import DiskAccess
from .app.activity import ActivityLog
from .app.authority import LEEWAY_SECONDS, TOKEN_LIFETIME_SECONDS, Authority
from .app.authorization import Authorization
from .app.build_engine import BuildEngine
from .app.build_triggers import JOB_KIND as TRIGGER_JOB
from .app.build_triggers import SourceImageTrigger
from .app.builds import JOB_KIND as BUILD_JOB
from .app.builds import Builds, ImageBuild
from .app.content import iter_range
from .app.directory import Directory
from .app.disks import DiskImport
from .app.images import ImageImport
from .app.operations import JobKinds, OperationWaiter, Provision
from .app.ports import Clock
from .app.replication import RegionThrottle, Replicate
from .app.resources import Resources
from .app.versions import VersionCapture, VersionImport
from .config import Settings, masked_url
from .domain.ids import normalize_location
from .entrypoints.http.app import create_app
from .entrypoints.http.blobs import DataPlane
from .entrypoints.http.identity import IdentityApi
from .entrypoints.workers.runner import WorkerPool

log = logging.getLogger("vmgallery")


def job_kinds(
    stores: RegionStores,
    accounts: StorageAccounts,
    throttle: RegionThrottle,
    batch_bytes: int,
    clock: Clock,
    gc_grace_seconds: float,
    gc_interval_seconds: float,
) -> JobKinds:
    """Every job kind and the handler that runs it, each given the adapters it uses."""
    return JobKinds(
        operation={
            "provision": Provision(clock),
            "disk_import": DiskImport(stores, accounts, clock),
            "image_import": ImageImport(stores, accounts, clock),
            "version_import": VersionImport(stores, accounts, clock),
            "version_capture": VersionCapture(stores, clock),
        },
        background={
            "replicate": Replicate(stores, throttle, batch_bytes),
            gc.JOB_KIND: gc.GarbageCollection(stores, gc_grace_seconds, gc_interval_seconds),
        },
    )


@dataclass
class Service:
    settings: Settings
    db: Database
    waiter: OperationWaiter
    resources: Resources
    access: DiskAccess
    workers: WorkerPool
    stores: RegionStores
    directory: Directory
    authority: Authority
    signing_keys: SigningKeys
    authorization: Authorization
    activity: ActivityLog
    builds: Builds | None = None


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
    stores = RegionStores(
        settings.data_dir / "blobs",
        settings.regions,
        settings.chunk_size,
        settings.gc_grace_seconds,
        zones=zones,
        zones_per_region=settings.zones_per_region,
        premium=premium,
    )
    accounts = StorageAccounts(settings.storage_accounts)
    throttle = RegionThrottle(settings.replication_bandwidth, settings.replication_concurrency)
    clock = time.time
    auth_epoch = Epoch(settings.data_dir / "auth-epoch")  # moved by directory and role writes, in any process
    db.lookup.epoch = auth_epoch
    directory_store, hasher = DirectoryStore(db, auth_epoch), Argon2Hasher()
    authorization = Authorization(db, accounts, clock)
    directory = Directory(directory_store, hasher, clock, roles=authorization.subscriptions_with_roles)
    authorization.tenants = directory
    resources = Resources(
        db, settings, clock, waiter, stores, accounts, subscription_tenants=directory, principals=directory
    )
    access = DiskAccess(resources, SasSigner(ensure_secret(settings.data_dir / "sas-key")))
    workers = WorkerPool(
        db,
        waiter,
        clock,
        threads=settings.workers,
        lease_seconds=settings.lease_seconds,
        kinds=job_kinds(
            stores,
            accounts,
            throttle,
            settings.replication_batch_bytes,
            clock,
            settings.gc_grace_seconds,
            settings.gc_interval_seconds,
        ),
        gc_interval_seconds=settings.gc_interval_seconds,
    )
    if settings.workers > 0:
        resources.inline = workers.run_operation
    signing_keys = SigningKeys(
        settings.data_dir / "signing-keys", clock, retain_seconds=TOKEN_LIFETIME_SECONDS + LEEWAY_SECONDS
    )
    authority = Authority(directory_store, signing_keys, hasher, clock, settings.authority_url)
    builds = Builds(resources)
    kinds = dict(workers.kinds.operation)
    kinds[BUILD_JOB] = ImageBuild(
        resources,
        stores,
        clock,
        functools.partial(build_engine, accel=settings.builder.accel),
        SourceFetcher(accounts, settings.builder.allowed_source_prefixes, own=lambda uri: read_signed(access, uri)),
        settings.builder.engine,
        settings.data_dir / "builds",
        check_identity=authorization.check_build_identity,
    )
    background = {**workers.kinds.background, TRIGGER_JOB: SourceImageTrigger(builds.run)}
    workers.kinds = JobKinds(operation=kinds, background=background)
    return Service(
        settings,
        db,
        waiter,
        resources,
        access,
        workers,
        stores,
        directory,
        authority,
        signing_keys,
        authorization,
        ActivityLog(ActivityEvents(db.engine), authorization, clock, settings.activity_log_retention_days),
        builds,
    )


def read_signed(access: DiskAccess, uri: str) -> bytes:
    """The bytes a signed blob URL of this server reads (a disk's or snapshot's VHD), without a request to itself."""
    parts = urlsplit(uri)
    grant_id = parts.path.removeprefix("/_blob/sas/").strip("/")
    target = access.resolve(grant_id, dict(parse_qsl(parts.query)), "r")
    manifest = access.manifest(target)
    if manifest.size > SourceFetcher.MAX_BYTES:
        raise ValueError(f"the blob is {manifest.size} bytes; a build fetches at most {SourceFetcher.MAX_BYTES}")
    return b"".join(iter_range(target.reader, manifest))


def build_engine(name: str, accel: str = "auto") -> BuildEngine:
    """The build engine by name: "guestfs" or "vm" (adapters/builders), or "module:factory" for one outside."""
    if ":" in name:
        module, _, attr = name.partition(":")
        engine: BuildEngine = getattr(importlib.import_module(module), attr)(name)
        return engine
    from .adapters.builders import engine_named  # libguestfs and QEMU's adapters load only when a build runs

    return engine_named(name, accel=accel)


def build_app(service: Service) -> DataPlane:
    token = ensure_admin_token(service.settings.token_path)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        if service.settings.workers > 0:
            service.workers.start()
        log.info("ready", extra={"regions": list(service.settings.regions), "database": masked_url(service.db.url)})
        yield
        service.workers.stop()
        service.activity.close()
        service.db.dispose()
        log.info("stopped")

    identity = IdentityApi(service.directory, service.authority, service.signing_keys.rotate)
    app = create_app(
        service.resources,
        token,
        lifespan=lifespan,
        access=service.access,
        identity=identity,
        authorization=service.authorization,
        actions=service.authorization,
        builds=service.builds,
        activity=service.activity,
    )
    return DataPlane(app, service.access)

"""The one place that builds the adapters and hands them to the use cases."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

from fastapi import FastAPI

from .adapters.db.store import Database
from .adapters.http.app import create_app
from .adapters.workers.runner import WorkerPool
from .app.operations import OperationWaiter
from .app.resources import Resources
from .config import Settings
from .security import ensure_admin_token

log = logging.getLogger("vmgallery")


@dataclass
class Service:
    settings: Settings
    db: Database
    waiter: OperationWaiter
    resources: Resources
    workers: WorkerPool


def build_service(settings: Settings) -> Service:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    db.migrate()
    waiter = OperationWaiter(db)
    resources = Resources(db, settings, time.time, waiter)
    workers = WorkerPool(db, waiter, time.time, threads=settings.workers, lease_seconds=settings.lease_seconds)
    return Service(settings, db, waiter, resources, workers)


def build_app(service: Service) -> FastAPI:
    token = ensure_admin_token(service.settings.token_path)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        if service.settings.workers > 0:
            service.workers.start()
        log.info("ready", extra={"regions": list(service.settings.regions), "database": _safe(service.db.url)})
        yield
        service.workers.stop()
        service.db.dispose()
        log.info("stopped")

    return create_app(service.resources, token, lifespan=lifespan)


def _safe(url: str) -> str:
    """The database URL without its password, for logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url

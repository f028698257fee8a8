"""`vmgallery admin`: operator commands that run next to the data (database and stores), like `vmgallery worker`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from ...app.gc import collect
from ...app.verify import verify as verify_replicas
from ...config import load_settings
from ...logs import setup_logging
from ...wiring import build_service

app = typer.Typer(no_args_is_help=True, help="Operator commands (run where the data dir / database is).")


def _service(data_dir: Path | None, database_url: str | None):
    setup_logging("warning")
    return build_service(load_settings(data_dir, database_url=database_url, workers=0))


@app.command()
def verify(
    data_dir: Path | None = typer.Option(None, "--data-dir"),
    database_url: str | None = typer.Option(None, "--database-url"),
    repair: bool = typer.Option(False, "--repair", help="Rewrite bad chunks from a good replica."),
) -> None:
    """Check every replica's chunks (present, and matching their digests); exit 1 if any is bad and unrepaired."""
    service = _service(data_dir, database_url)
    report = verify_replicas(service.db, service.stores, repair, time.time)
    typer.echo(json.dumps(report.__dict__ | {"sound": report.sound}, indent=2))
    raise typer.Exit(0 if report.sound else 1)


@app.command()
def gc(
    data_dir: Path | None = typer.Option(None, "--data-dir"),
    database_url: str | None = typer.Option(None, "--database-url"),
) -> None:
    """Free chunks and manifests nothing uses any more (workers also do this periodically)."""
    service = _service(data_dir, database_url)
    report = collect(service.db, [], time.time, service.settings.gc_grace_seconds, regions=service.stores)
    typer.echo(json.dumps(report.__dict__, indent=2))

"""`vmgallery admin`: operator commands that run next to the data (database and stores), like `vmgallery worker`."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import typer

from .options import sub_app

app = sub_app("Operator commands (run where the data dir / database is).")


def _service(data_dir: Path | None, database_url: str | None):
    # The server's modules load here, not at import: every other command would pay for them at start.
    from ...config import load_settings
    from ...logs import setup_logging
    from ...wiring import build_service

    setup_logging("warning")
    return build_service(load_settings(data_dir, database_url=database_url, workers=0))


@contextlib.contextmanager
def _status() -> Iterator[Callable[[str], None]]:
    """A status line on stderr, rewritten in place on a terminal (at most every 0.1 s) and erased at the end;
    nothing when stderr is not a terminal, where only the summary is printed."""
    if not sys.stderr.isatty():
        yield lambda text: None
        return
    shown = float("-inf")

    def show(text: str) -> None:
        nonlocal shown
        if time.monotonic() - shown >= 0.1:
            shown = time.monotonic()
            sys.stderr.write(f"\r{text}\x1b[K")
            sys.stderr.flush()

    try:
        yield show
    finally:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


@app.command()
def verify(
    data_dir: Path | None = typer.Option(None, "--data-dir"),
    database_url: str | None = typer.Option(None, "--database-url"),
    repair: bool = typer.Option(False, "--repair", help="Rewrite bad chunks from a good replica."),
) -> None:
    """Check every replica's chunks (present, and matching their digests); exit 1 if any is bad and unrepaired."""
    from ...app.verify import verify as verify_replicas

    service = _service(data_dir, database_url)
    with _status() as show:
        report = verify_replicas(
            service.db,
            service.stores,
            repair,
            time.time,
            progress=lambda r, total: show(
                f"Verifying replica {r.replicas} of {total}: {r.chunks_checked} chunks checked, "
                f"{r.missing + r.corrupt} bad, {r.repaired} repaired"
            ),
        )
    typer.echo(json.dumps(report.__dict__ | {"sound": report.sound}, indent=2))
    bad = report.missing + report.corrupt
    verdict = "all sound" if not bad else f"{bad} bad ({report.missing} missing, {report.corrupt} corrupt)"
    if bad and repair:
        verdict += f", {report.repaired} repaired, {len(report.unrepairable)} unrepairable"
    elif bad:
        verdict += "; rerun with --repair to rewrite them from good replicas"
    typer.echo(f"Verified {report.replicas} replicas, {report.chunks_checked} chunks: {verdict}.", err=True)
    raise typer.Exit(0 if report.sound else 1)


@app.command()
def gc(
    data_dir: Path | None = typer.Option(None, "--data-dir"),
    database_url: str | None = typer.Option(None, "--database-url"),
) -> None:
    """Free chunks and manifests nothing uses any more (workers also do this periodically)."""
    from ...app.gc import collect

    service = _service(data_dir, database_url)
    with _status() as show:
        report = collect(
            service.db,
            service.stores,
            time.time,
            service.settings.gc_grace_seconds,
            progress=lambda r: show(f"Collecting garbage: {r.chunks_kept} chunks kept, {r.chunks_deleted} freed"),
        )
    typer.echo(json.dumps(report.__dict__, indent=2))
    typer.echo(
        f"Freed {report.chunks_deleted} chunks and {report.manifests_deleted} manifests; kept {report.chunks_kept} "
        f"chunks (in use, or younger than gc_grace_seconds = {service.settings.gc_grace_seconds:g}).",
        err=True,
    )

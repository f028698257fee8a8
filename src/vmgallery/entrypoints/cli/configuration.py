"""`vmgallery config show`: the settings a server on this data dir would run with, and where each came from."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .options import sub_app

app = sub_app("The server's configuration (read where the data dir is).")


@app.command()
def show(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="The data dir whose config.toml to read."),
    database_url: str | None = typer.Option(None, "--database-url"),
    regions: str | None = typer.Option(None, "--regions", help="Comma-separated region names."),
    workers: int | None = typer.Option(None, "--workers"),
) -> None:
    """Print the effective configuration, one `key = value  # source` line each (flag, file or default); secrets
    (account keys, SAS tokens, secret access keys, connection strings, database passwords) are masked."""
    from ...config import ConfigError, describe, load_sources

    try:
        loaded = load_sources(data_dir, database_url=database_url, regions=regions, workers=workers)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    rows = [(f"{key} = {json.dumps(value)}", source) for key, value, source in describe(loaded)]
    width = min(max(len(line) for line, _ in rows), 60)
    for line, source in rows:
        typer.echo(f"{line.ljust(width)}  # {source}")

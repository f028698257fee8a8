"""The `vmgallery` command: the server processes, and az-shaped commands that talk to a server over HTTPS."""

from __future__ import annotations

import typer

from .serve import serve, worker

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="vmgallery: a self-hosted compute image gallery speaking Azure's ARM API.")
app.command()(serve)
app.command()(worker)

"""The `vmgallery` command: the server processes, and az-shaped commands that talk to a server over HTTPS."""

from __future__ import annotations

import typer

from ... import __version__
from . import (
    account,
    admin,
    builder,
    disks,
    galleries,
    groups,
    identity,
    images,
    monitor,
    platform_images,
    roles,
    sharing,
    snapshots,
    versions,
)
from .configuration import app as configuration
from .login import login
from .options import CONTEXT
from .serve import serve, worker

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    context_settings=CONTEXT,
    rich_markup_mode=None,
    help="vmgallery: a self-hosted compute image gallery speaking Azure's ARM API.",
)


def _version(shown: bool) -> None:
    if shown:
        typer.echo(f"vmgallery {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


app.command()(serve)
app.command()(worker)
app.command()(login)
app.command()(account.logout)
app.add_typer(account.app, name="account")
app.add_typer(groups.app, name="group")
app.add_typer(galleries.app, name="sig")
galleries.app.add_typer(versions.app, name="image-version")
app.add_typer(disks.app, name="disk")
app.add_typer(snapshots.app, name="snapshot")
app.add_typer(images.app, name="image")
app.add_typer(admin.app, name="admin")
app.add_typer(configuration, name="config")
app.add_typer(identity.app, name="identity")
app.add_typer(roles.app, name="role")
sharing.register(galleries.app, galleries.definitions_app, versions.app)
app.add_typer(platform_images.app, name="platform-image")
images.app.add_typer(builder.app, name="builder")
app.add_typer(monitor.app, name="monitor")

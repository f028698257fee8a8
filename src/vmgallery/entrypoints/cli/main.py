"""The `vmgallery` command: the server processes, and az-shaped commands that talk to a server over HTTPS."""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import import_module

import typer
from typer import _click  # typer's own copy of click: its commands and contexts are not click's
from typer.core import TyperGroup

from ... import __version__
from .options import CONTEXT


def _module(name: str):
    return import_module(f"{__package__}.{name}")


def _command(module: str, function: str) -> Callable[[], _click.Command]:
    def load() -> _click.Command:
        one = typer.Typer(add_completion=False, rich_markup_mode=None)
        one.command()(getattr(_module(module), function))
        return typer.main.get_command(one)

    return load


def _group(module: str) -> Callable[[], _click.Command]:
    return lambda: typer.main.get_group(_module(module).app)


@functools.cache  # the wiring adds commands to the modules' apps: once per process, however often the tree is built
def _sig() -> typer.Typer:
    from . import galleries, sharing, versions

    galleries.app.add_typer(versions.app, name="image-version")
    sharing.register(galleries.app, galleries.definitions_app, versions.app)
    return galleries.app


@functools.cache
def _image() -> typer.Typer:
    from . import builder, images

    images.app.add_typer(builder.app, name="builder")
    return images.app


# Each name's command is built from its module when the name is used: a client command loads and builds its own
# group only. Building the whole tree (every CLI module, 135 commands, a pydantic adapter per parameter) cost every
# command about 0.1 s before it started; `--help` still builds all of it.
COMMANDS: dict[str, Callable[[], _click.Command]] = {
    "serve": _command("serve", "serve"),
    "worker": _command("serve", "worker"),
    "login": _command("login", "login"),
    "logout": _command("account", "logout"),
    "account": _group("account"),
    "group": _group("groups"),
    "sig": lambda: typer.main.get_group(_sig()),
    "disk": _group("disks"),
    "snapshot": _group("snapshots"),
    "image": lambda: typer.main.get_group(_image()),
    "admin": _group("admin"),
    "config": _group("configuration"),
    "identity": _group("identity"),
    "role": _group("roles"),
    "platform-image": _group("platform_images"),
    "monitor": _group("monitor"),
}


class _LazyCommands(TyperGroup):
    def list_commands(self, ctx: _click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            command = COMMANDS[cmd_name]()
            command.name = cmd_name
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=_LazyCommands,
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

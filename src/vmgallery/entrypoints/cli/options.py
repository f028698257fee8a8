"""The options az's commands share, spelled as az spells them, and az's way of reading list-valued options."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperCommand

from .output import OutputFormat

CONTEXT = {"help_option_names": ["-h", "--help"]}
# The metavar of az's three-state flags (`--flag`, `--flag true`, `--flag false`): AzCommand reads a bare flag as
# `--flag true`, as az's argparse (nargs='?') does.
OPTIONAL_BOOL = "[true|false]"


class AzCommand(TyperCommand):
    """Reads az's space-separated lists: `--tags a=b c=d` arrives as `--tags a=b --tags c=d`; and az's three-state
    flags (metavar OPTIONAL_BOOL): a bare `--flag` arrives as `--flag true`.

    az (argparse, nargs='+') takes every word up to the next option; click takes one word per flag, so the words
    are spread over repeated flags before click parses them.
    """

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        multiple = {o for p in self.params if getattr(p, "multiple", False) for o in p.opts}
        optional_bool = {o for p in self.params if getattr(p, "metavar", None) == OPTIONAL_BOOL for o in p.opts}
        spread: list[str] = []
        collecting: str | None = None
        taken = False
        for i, arg in enumerate(args):
            if arg == "--":
                spread += args[i:]
                break
            if collecting and not _is_option(arg):
                if taken:
                    spread.append(collecting)
                spread.append(arg)
                taken = True
                continue
            collecting, taken = (arg if arg in multiple else None), False
            spread.append(arg)
            if arg in optional_bool and (i + 1 == len(args) or _is_option(args[i + 1])):
                spread.append("true")
        return super().parse_args(ctx, spread)


def _is_option(arg: str) -> bool:
    return arg.startswith("-") and len(arg) > 1


def sub_app(help_text: str) -> typer.Typer:
    return typer.Typer(
        help=help_text, no_args_is_help=True, context_settings=CONTEXT, add_completion=False, rich_markup_mode=None
    )


ResourceGroup = Annotated[str, typer.Option("--resource-group", "-g", help="Name of resource group.")]
GalleryName = Annotated[str, typer.Option("--gallery-name", "-r", help="Gallery name.")]
Location = Annotated[
    str | None, typer.Option("--location", "-l", help="Location; defaults to the resource group's location.")
]
Tags = Annotated[
    list[str] | None,
    typer.Option("--tags", help="Space-separated tags: key[=value] [key[=value] ...]. Use '' to clear existing tags."),
]
Description = Annotated[str | None, typer.Option("--description", help="Description.")]
Set = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Update an object by specifying a property path and value to set, e.g. description=text."
    ),
]
NoWait = Annotated[bool, typer.Option("--no-wait", help="Do not wait for the long-running operation to finish.")]
Output = Annotated[OutputFormat, typer.Option("--output", "-o", help="Output format.")]
Query = Annotated[str | None, typer.Option("--query", help="JMESPath query string.")]
Subscription = Annotated[
    str | None,
    typer.Option("--subscription", help="Subscription ID (default: VMGALLERY_SUBSCRIPTION, then the login profile's)."),
]
Endpoint = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        help="Server URL (default: VMGALLERY_ENDPOINT, then the login profile's, then https://127.0.0.1:8443).",
    ),
]

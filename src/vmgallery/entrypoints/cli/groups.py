"""`vmgallery group create|show|list|delete`, as `az group`: resource groups print unflattened, like az's."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from . import arm
from .client import CliError
from .options import AzCommand, Endpoint, NoWait, Output, Query, Subscription, Tags, sub_app
from .output import OutputFormat, emit
from .session import connect, write
from .values import parse_tags

app = sub_app("Manage resource groups.")

COLUMNS = (("Name", "name"), ("Location", "location"), ("Status", "properties.provisioningState"))

Name = Annotated[str, typer.Option("--name", "-n", "--resource-group", "-g", help="Name of the resource group.")]


@app.command(cls=AzCommand)
def create(
    name: Name,
    location: Annotated[str, typer.Option("--location", "-l", help="Location.")],
    tags: Tags = None,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Create a new resource group (or update the tags of an existing one)."""
    with connect(endpoint, subscription) as client:
        body: dict = {"location": location}
        if tags is not None:
            body["tags"] = parse_tags(tags)
        response = client.send("PUT", arm.group(client.subscription, name), arm.GROUP_API, body)
        emit(response.json(), output, query, COLUMNS)


@app.command(cls=AzCommand)
def show(
    name: Name,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Get a resource group."""
    with connect(endpoint, subscription) as client:
        emit(client.get(arm.group(client.subscription, name), arm.GROUP_API), output, query, COLUMNS)


@app.command("list", cls=AzCommand)
def list_(
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List resource groups."""
    with connect(endpoint, subscription) as client:
        emit(client.list(arm.groups(client.subscription), arm.GROUP_API), output, query, COLUMNS)


@app.command(cls=AzCommand)
def delete(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not prompt for confirmation.")] = False,
    no_wait: NoWait = False,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Delete a resource group and everything in it."""
    with connect(endpoint, subscription) as client:
        if not yes:
            if not sys.stdin.isatty():
                raise CliError("Unable to prompt for confirmation as no tty available. Use --yes.")
            typer.confirm("Are you sure you want to perform this operation?", abort=True)
        write(
            client,
            "DELETE",
            arm.group(client.subscription, name),
            arm.GROUP_API,
            no_wait=no_wait,
            what=f"resource group '{name}'",
        )

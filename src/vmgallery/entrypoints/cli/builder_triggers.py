"""`vmgallery image builder trigger create|show|list|delete`, as `az image builder trigger`: an image template's
SourceImage triggers (a run starts by itself when the template's source definition gets a new latest version)."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import AzCommand, Endpoint, NoWait, Output, Query, ResourceGroup, Subscription, sub_app
from .output import OutputFormat, emit, flatten
from .session import connect, write

app = sub_app("Manage image builder template triggers.")

API = "2025-10-01"
Template = Annotated[str, typer.Option("--image-template-name", help="The name of the image template.")]
Name = Annotated[str, typer.Option("--name", "--trigger-name", "-n", help="The name of the trigger.")]
COLUMNS = (
    ("Name", "name"),
    ("Kind", "kind"),
    ("ProvisioningState", "provisioningState"),
    ("Status", "status.code"),
    ("Message", "status.message"),
)


def _triggers(subscription: str, resource_group: str, template: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.VirtualMachineImages"
        f"/imageTemplates/{template}/triggers"
    )


@app.command(cls=AzCommand)
def create(
    resource_group: ResourceGroup,
    image_template_name: Template,
    name: Name,
    kind: Annotated[str, typer.Option("--kind", help="The kind of trigger: SourceImage.")] = "SourceImage",
    no_wait: NoWait = False,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Create a trigger for an image template whose source is a gallery image definition's latest version."""
    with connect(endpoint, subscription) as client:
        path = f"{_triggers(client.subscription, resource_group, image_template_name)}/{name}"
        body = {"properties": {"kind": kind}}
        result = write(client, "PUT", path, API, body, no_wait=no_wait, what=f"trigger '{name}'")
        if result is not None:
            emit(flatten(result), output, query, COLUMNS)


@app.command(cls=AzCommand)
def show(
    resource_group: ResourceGroup,
    image_template_name: Template,
    name: Name,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Show a trigger and its status (what its last new source version did)."""
    with connect(endpoint, subscription) as client:
        path = f"{_triggers(client.subscription, resource_group, image_template_name)}/{name}"
        emit(flatten(client.get(path, API)), output, query, COLUMNS)


@app.command("list", cls=AzCommand)
def list_(
    resource_group: ResourceGroup,
    image_template_name: Template,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List an image template's triggers."""
    with connect(endpoint, subscription) as client:
        items = client.list(_triggers(client.subscription, resource_group, image_template_name), API)
        emit([flatten(i) for i in items], output, query, COLUMNS)


@app.command(cls=AzCommand)
def delete(
    resource_group: ResourceGroup,
    image_template_name: Template,
    name: Name,
    no_wait: NoWait = False,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Delete a trigger."""
    with connect(endpoint, subscription) as client:
        path = f"{_triggers(client.subscription, resource_group, image_template_name)}/{name}"
        write(client, "DELETE", path, API, no_wait=no_wait, what=f"trigger '{name}'")

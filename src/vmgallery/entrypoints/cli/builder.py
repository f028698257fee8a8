"""`vmgallery image builder create|show|list|delete|run|cancel|wait|show-runs|output|logs|trigger`, as
`az image builder`: image templates from Azure's template JSON (--image-template FILE), their runs, run outputs, the
live step log and triggers (builder_triggers.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from . import builder_triggers
from .client import CliError
from .options import AzCommand, Endpoint, Location, NoWait, Output, Query, ResourceGroup, Subscription, Tags, sub_app
from .output import OutputFormat, emit, flatten
from .session import connect, group_location, write
from .values import parse_tags

app = sub_app("Manage and build image builder templates.")

API = "2025-10-01"
Name = Annotated[str, typer.Option("--name", "-n", help="The name of the image template.")]
COLUMNS = (
    ("Name", "name"),
    ("ResourceGroup", "resourceGroup"),
    ("Location", "location"),
    ("ProvisioningState", "provisioningState"),
    ("RunState", "lastRunStatus.runState"),
    ("RunSubState", "lastRunStatus.runSubState"),
)
OUTPUT_COLUMNS = (("Name", "name"), ("ArtifactId", "artifactId"), ("ProvisioningState", "provisioningState"))


def _templates(subscription: str, resource_group: str | None) -> str:
    scope = f"/subscriptions/{subscription}"
    if resource_group:
        scope += f"/resourceGroups/{resource_group}"
    return scope + "/providers/Microsoft.VirtualMachineImages/imageTemplates"


def _template(subscription: str, resource_group: str, name: str) -> str:
    return f"{_templates(subscription, resource_group)}/{name}"


@app.command(cls=AzCommand)
def create(
    resource_group: ResourceGroup,
    name: Name,
    image_template: Annotated[
        Path,
        typer.Option("--image-template", exists=True, dir_okay=False, help="An image template JSON file (Azure's)."),
    ],
    location: Location = None,
    tags: Tags = None,
    no_wait: NoWait = False,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Create an image template from Azure's template JSON (an ARM template's resource, or its body)."""
    try:
        body: Any = json.loads(image_template.read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"--image-template: {exc}") from None
    if isinstance(body, dict) and isinstance(body.get("resources"), list):
        body = next((r for r in body["resources"] if str(r.get("type", "")).lower().endswith("/imagetemplates")), body)
    if not isinstance(body, dict):
        raise typer.BadParameter("--image-template: the file must hold a JSON object")
    body = {k: v for k, v in body.items() if k not in ("type", "apiVersion", "name", "dependsOn")}
    with connect(endpoint, subscription) as client:
        body["location"] = location or body.get("location") or group_location(client, resource_group, None)
        if tags:
            body["tags"] = parse_tags(tags)
        path = _template(client.subscription, resource_group, name)
        result = write(client, "PUT", path, API, body, no_wait=no_wait, what=f"image template '{name}'")
        if result is not None:
            emit(flatten(result), output, query, COLUMNS)


@app.command(cls=AzCommand)
def show(
    resource_group: ResourceGroup,
    name: Name,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Show an image template."""
    with connect(endpoint, subscription) as client:
        emit(flatten(client.get(_template(client.subscription, resource_group, name), API)), output, query, COLUMNS)


@app.command("list", cls=AzCommand)
def list_(
    resource_group: Annotated[
        str | None, typer.Option("--resource-group", "-g", help="Name of resource group.")
    ] = None,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List image templates in a resource group or the subscription."""
    with connect(endpoint, subscription) as client:
        items = client.list(_templates(client.subscription, resource_group), API)
        emit([flatten(i) for i in items], output, query, COLUMNS)


@app.command(cls=AzCommand)
def delete(
    resource_group: ResourceGroup,
    name: Name,
    no_wait: NoWait = False,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Delete an image template (and its staging resource group)."""
    with connect(endpoint, subscription) as client:
        path = _template(client.subscription, resource_group, name)
        write(client, "DELETE", path, API, no_wait=no_wait, what=f"image template '{name}'")


@app.command(cls=AzCommand)
def run(
    resource_group: ResourceGroup,
    name: Name,
    no_wait: NoWait = False,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Build an image from the template (waits for the build to end unless --no-wait)."""
    with connect(endpoint, subscription) as client:
        path = _template(client.subscription, resource_group, name) + "/run"
        write(client, "POST", path, API, no_wait=no_wait, what=f"image template '{name}'")


@app.command(cls=AzCommand)
def cancel(
    resource_group: ResourceGroup,
    name: Name,
    no_wait: NoWait = False,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Cancel the template's running build."""
    with connect(endpoint, subscription) as client:
        path = _template(client.subscription, resource_group, name) + "/cancel"
        write(client, "POST", path, API, no_wait=no_wait, what=f"image template '{name}'")


@app.command("show-runs", cls=AzCommand)
def show_runs(
    resource_group: ResourceGroup,
    name: Name,
    output_name: Annotated[str | None, typer.Option("--output-name", help="Name of a run output.")] = None,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Show the template's run outputs (or one, by --output-name)."""
    with connect(endpoint, subscription) as client:
        path = _template(client.subscription, resource_group, name) + "/runOutputs"
        if output_name:
            emit(flatten(client.get(f"{path}/{output_name}", API)), output, query, OUTPUT_COLUMNS)
        else:
            emit([flatten(i) for i in client.list(path, API)], output, query, OUTPUT_COLUMNS)


output_app = sub_app("Show a template's run outputs.")
app.add_typer(output_app, name="output")
app.add_typer(builder_triggers.app, name="trigger")


@output_app.command("list", cls=AzCommand)
def output_list(
    resource_group: ResourceGroup,
    name: Name,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List the run outputs of the template's last run."""
    show_runs(resource_group, name, None, output, query, subscription, endpoint)


@app.command(cls=AzCommand)
def wait(
    resource_group: ResourceGroup,
    name: Name,
    created: Annotated[
        bool, typer.Option("--created", help="Wait until created with provisioningState Succeeded.")
    ] = False,
    deleted: Annotated[bool, typer.Option("--deleted", help="Wait until deleted.")] = False,
    custom: Annotated[
        str | None, typer.Option("--custom", help="Wait until this JMESPath query over the template is true.")
    ] = None,
    interval: Annotated[int, typer.Option("--interval", help="Polling interval in seconds.")] = 2,
    timeout: Annotated[int, typer.Option("--timeout", help="Maximum wait in seconds.")] = 3600,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Wait until a condition of the template holds (default: its last run has ended)."""
    import jmespath

    condition = custom or "lastRunStatus.runState && !contains(['Running', 'Canceling'], lastRunStatus.runState)"
    end = time.monotonic() + timeout
    with connect(endpoint, subscription) as client:
        path = _template(client.subscription, resource_group, name)
        while True:
            try:
                item: dict | None = flatten(client.get(path, API))
            except CliError as exc:
                if "NotFound" not in str(exc) and "ResourceNotFound" not in str(exc):
                    raise
                item = None
            if deleted and item is None:
                return
            if item is not None and not deleted:
                if created and item.get("provisioningState") == "Succeeded":
                    return
                if not created and jmespath.search(condition, item):
                    return
            if time.monotonic() >= end:
                raise CliError(f"Timed out after {timeout} s waiting for image template '{name}'.")
            time.sleep(interval)


@app.command(cls=AzCommand)
def logs(
    resource_group: ResourceGroup,
    name: Name,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming until the run ends.")] = False,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Print the last run's step log ([n step] lines, each step's exit code and duration); --follow streams it."""
    with connect(endpoint, subscription) as client:
        path = _template(client.subscription, resource_group, name) + "/customizationLog"
        after = 0
        while True:
            page = client.send("GET", f"{path}?api-version={API}&after={after}").json()
            for entry in page["lines"]:
                typer.echo(f"{entry['time']} {entry['line']}")
            after = page["next"]
            state = (page.get("lastRunStatus") or {}).get("runState")
            if page["lines"]:
                continue
            if not follow or state not in ("Running", "Canceling"):
                if state and state not in ("Running", "Canceling"):
                    message = (page.get("lastRunStatus") or {}).get("message")
                    typer.echo(f"run {state}" + (f": {message}" if message else ""), err=True)
                return
            time.sleep(0.5)

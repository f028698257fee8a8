"""`vmgallery sig create|update|show|list|delete`, as `az sig`; `sig image-definition` hangs off this app."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from . import arm
from .definitions import app as definitions_app
from .options import (
    AzCommand,
    Description,
    Endpoint,
    GalleryName,
    Location,
    NoWait,
    Output,
    Query,
    ResourceGroup,
    Set,
    Subscription,
    Tags,
    sub_app,
)
from .output import OutputFormat, emit, flatten
from .session import connect, group_location, write
from .values import apply_set, parse_tags

app = sub_app("Manage galleries (Azure Compute Gallery, az's `sig`).")
app.add_typer(definitions_app, name="image-definition")

COLUMNS = (
    ("Name", "name"),
    ("ResourceGroup", "resourceGroup"),
    ("Location", "location"),
    ("ProvisioningState", "provisioningState"),
    ("UniqueName", "identifier.uniqueName"),
    ("Description", "description"),
)


class Permissions(str, Enum):
    Private = "Private"
    Groups = "Groups"
    Community = "Community"


PermissionsOption = Annotated[
    Permissions | None, typer.Option("--permissions", case_sensitive=False, help="How the gallery is shared.")
]
PublisherUri = Annotated[str | None, typer.Option("--publisher-uri", help="Community gallery publisher uri.")]
PublisherContact = Annotated[
    str | None,
    typer.Option("--publisher-contact", "--publisher-email", help="Community gallery publisher contact email."),
]
Eula = Annotated[str | None, typer.Option("--eula", help="Community gallery publisher eula.")]
PublicNamePrefix = Annotated[
    str | None, typer.Option("--public-name-prefix", help="Community gallery public name prefix.")
]


def _sharing(
    properties: dict,
    permissions: Permissions | None,
    publisher_uri: str | None,
    publisher_contact: str | None,
    eula: str | None,
    public_name_prefix: str | None,
) -> None:
    """az's sharing options written into a gallery's properties (the community ones into communityGalleryInfo)."""
    if permissions is not None:
        properties["sharingProfile"] = {**(properties.get("sharingProfile") or {}), "permissions": permissions.value}
    info = {
        k: v
        for k, v in (
            ("publisherUri", publisher_uri),
            ("publisherContact", publisher_contact),
            ("eula", eula),
            ("publicNamePrefix", public_name_prefix),
        )
        if v is not None
    }
    if info:
        sharing = properties.setdefault("sharingProfile", {})
        current = {
            k: v
            for k, v in (sharing.get("communityGalleryInfo") or {}).items()
            if k not in ("communityGalleryEnabled", "publicNames")
        }
        sharing["communityGalleryInfo"] = {**current, **info}


@app.command(cls=AzCommand)
def create(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    location: Location = None,
    description: Description = None,
    tags: Tags = None,
    permissions: PermissionsOption = None,
    publisher_uri: PublisherUri = None,
    publisher_contact: PublisherContact = None,
    eula: Eula = None,
    public_name_prefix: PublicNamePrefix = None,
    no_wait: NoWait = False,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Create a gallery."""
    with connect(endpoint, subscription) as client:
        properties: dict = {}
        if description is not None:
            properties["description"] = description
        _sharing(properties, permissions, publisher_uri, publisher_contact, eula, public_name_prefix)
        body: dict = {"location": group_location(client, resource_group, location), "properties": properties}
        if tags is not None:
            body["tags"] = parse_tags(tags)
        path = arm.gallery(client.subscription, resource_group, gallery_name)
        result = write(
            client, "PUT", path, arm.GALLERY_API["create"], body, no_wait=no_wait, what=f"gallery '{gallery_name}'"
        )
        if result is not None:
            emit(flatten(result), output, query, COLUMNS)


@app.command(cls=AzCommand)
def update(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    description: Description = None,
    tags: Tags = None,
    permissions: PermissionsOption = None,
    publisher_uri: PublisherUri = None,
    publisher_contact: PublisherContact = None,
    eula: Eula = None,
    public_name_prefix: PublicNamePrefix = None,
    set_: Set = None,
    no_wait: NoWait = False,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Update a gallery: read it, change it here, write the whole of it back (az's generic update)."""
    with connect(endpoint, subscription) as client:
        path = arm.gallery(client.subscription, resource_group, gallery_name)
        gallery = client.get(path, arm.GALLERY_API["update"])
        if description is not None:
            gallery.setdefault("properties", {})["description"] = description
        if tags is not None:
            gallery["tags"] = parse_tags(tags)
        _sharing(
            gallery.setdefault("properties", {}),
            permissions,
            publisher_uri,
            publisher_contact,
            eula,
            public_name_prefix,
        )
        apply_set(gallery, set_ or [])
        result = write(
            client, "PUT", path, arm.GALLERY_API["update"], gallery, no_wait=no_wait, what=f"gallery '{gallery_name}'"
        )
        if result is not None:
            emit(flatten(result), output, query, COLUMNS)


@app.command(cls=AzCommand)
def show(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    select: Annotated[
        str | None, typer.Option("--select", help="The select expression to apply on the operation: Permissions.")
    ] = None,
    sharing_groups: Annotated[
        bool, typer.Option("--sharing-groups", help="Expand the sharing groups of the gallery.")
    ] = False,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Show a gallery."""
    with connect(endpoint, subscription) as client:
        path = arm.gallery(client.subscription, resource_group, gallery_name)
        # $select and $expand ride in the URL beside the api-version (the client's own parameters would replace them).
        url = f"{path}?api-version={arm.GALLERY_API['show']}"
        if select is not None:
            url += f"&$select={select}"
        if sharing_groups:
            url += "&$expand=SharingProfile/Groups"
        emit(flatten(client.get(url, "")), output, query, COLUMNS)


@app.command("list", cls=AzCommand)
def list_(
    resource_group: Annotated[
        str | None,
        typer.Option("--resource-group", "-g", help="Name of resource group; without it, the whole subscription."),
    ] = None,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List galleries in a resource group or a subscription."""
    with connect(endpoint, subscription) as client:
        items = client.list(arm.galleries(client.subscription, resource_group), arm.GALLERY_API["list"])
        emit([flatten(i) for i in items], output, query, COLUMNS)


@app.command(cls=AzCommand)
def delete(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    no_wait: NoWait = False,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Delete a gallery (it must hold no image definitions)."""
    with connect(endpoint, subscription) as client:
        write(
            client,
            "DELETE",
            arm.gallery(client.subscription, resource_group, gallery_name),
            arm.GALLERY_API["delete"],
            no_wait=no_wait,
            what=f"gallery '{gallery_name}'",
        )

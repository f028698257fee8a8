"""`vmgallery sig share add|remove|reset|enable-community`, and the consumer side: `sig list-shared|show-shared|
show-community`, `sig image-definition list-shared|show-shared|list-community|show-community`, `sig image-version
list-shared|show-shared|list-community|show-community` — as az spells them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

import typer

from . import arm
from .client import ArmClient
from .options import AzCommand, Endpoint, GalleryName, NoWait, Output, Query, ResourceGroup, Subscription, sub_app
from .output import OutputFormat, emit
from .session import connect, write

# The api-versions az 2.91 sends for these commands (CLI_NOTES.md).
SHARE_API = "2023-07-03"
LIST_SHARED_API = "2023-07-03"
SHOW_SHARED_API = "2022-01-03"
SHOW_COMMUNITY_API = "2025-03-03"
DEFINITION_API = "2023-07-03"
VERSION_API = "2026-03-03"

share_app = sub_app("Manage gallery sharing profile.")

ConsumerLocation = Annotated[str, typer.Option("--location", "-l", help="Location.")]
UniqueName = Annotated[str, typer.Option("--gallery-unique-name", help="The unique name of the Shared Gallery.")]
PublicName = Annotated[str, typer.Option("--public-gallery-name", help="The public name of the community gallery.")]
Definition = Annotated[
    str, typer.Option("--gallery-image-definition", "-i", help="The name of the gallery image definition.")
]
Version = Annotated[str, typer.Option("--gallery-image-version", "-e", help="The name of the gallery image version.")]
SharedTo = Annotated[
    str | None,
    typer.Option(
        "--shared-to",
        help="tenant: list what is shared with the subscription's tenant (default: with the subscription).",
    ),
]
SubscriptionIds = Annotated[
    list[str] | None, typer.Option("--subscription-ids", help="A list of subscription ids to share the gallery with.")
]
TenantIds = Annotated[
    list[str] | None, typer.Option("--tenant-ids", help="A list of tenant ids to share the gallery with.")
]

SHARED_COLUMNS = (("Name", "name"), ("Location", "location"), ("UniqueId", "uniqueId"))
IMAGE_COLUMNS = (
    ("Name", "name"),
    ("Location", "location"),
    ("OsType", "osType"),
    ("OsState", "osState"),
    ("Publisher", "identifier.publisher"),
    ("Offer", "identifier.offer"),
    ("Sku", "identifier.sku"),
)
VERSION_COLUMNS = (
    ("Name", "name"),
    ("Location", "location"),
    ("PublishedDate", "publishedDate"),
    ("EndOfLifeDate", "endOfLifeDate"),
    ("ExcludeFromLatest", "excludeFromLatest"),
)


def _seg(value: str) -> str:
    return quote(value, safe="")


def _flatten(item: dict) -> dict:
    """As az prints the consumer views: properties lifted, and the view's identifier as `uniqueId`."""
    flat = {k: v for k, v in item.items() if k not in ("properties", "identifier")}
    flat.update(item.get("properties") or {})
    flat["uniqueId"] = (item.get("identifier") or {}).get("uniqueId")
    return flat


# -- share ---------------------------------------------------------------------------------------------------------
def _share(client: ArmClient, resource_group: str, gallery_name: str, body: dict, no_wait: bool) -> dict | None:
    path = arm.gallery(client.subscription, resource_group, gallery_name) + "/share"
    return write(client, "POST", path, SHARE_API, body, no_wait=no_wait, what=f"gallery '{gallery_name}'")


def _groups(subscription_ids: list[str] | None, tenant_ids: list[str] | None) -> list[dict]:
    groups = []
    if subscription_ids:
        groups.append({"type": "Subscriptions", "ids": subscription_ids})
    if tenant_ids:
        groups.append({"type": "AADTenants", "ids": tenant_ids})
    if not groups:
        raise typer.BadParameter("give --subscription-ids and/or --tenant-ids")
    return groups


def _share_command(operation: str, with_ids: bool):
    def command(
        resource_group: ResourceGroup,
        gallery_name: GalleryName,
        subscription_ids: SubscriptionIds = None,
        tenant_ids: TenantIds = None,
        no_wait: NoWait = False,
        output: Output = OutputFormat.json,
        query: Query = None,
        subscription: Subscription = None,
        endpoint: Endpoint = None,
    ) -> None:
        body: dict = {"operationType": operation}
        if with_ids:
            body["groups"] = _groups(subscription_ids, tenant_ids)
        elif subscription_ids or tenant_ids:
            raise typer.BadParameter(f"{operation} takes no --subscription-ids or --tenant-ids")
        with connect(endpoint, subscription) as client:
            result = _share(client, resource_group, gallery_name, body, no_wait)
            if result is not None:
                emit(result, output, query, (("OperationType", "operationType"),))

    return command


for _name, _operation, _ids, _help in (
    ("add", "Add", True, "Share gallery with subscriptions and tenants."),
    ("remove", "Remove", True, "Remove shared subscriptions and tenants from the gallery."),
    ("reset", "Reset", False, "Disable gallery sharing: remove every share and make the gallery Private."),
    ("enable-community", "EnableCommunity", False, "Allow the gallery to be shared to the community."),
):
    share_app.command(_name, cls=AzCommand, help=_help)(_share_command(_operation, _ids))


# -- the consumer views --------------------------------------------------------------------------------------------
SHARED, COMMUNITY = "sharedGalleries", "communityGalleries"


@dataclass(frozen=True)
class _Views:
    """What a consumer view command prints, and where from: `list` and `show` take the path below the location
    (`galleries`, SHARED or COMMUNITY, then a gallery's name, `images`, a definition, `versions`, a version)."""

    endpoint: str | None
    subscription: str | None
    location: str
    api_version: str
    columns: tuple[tuple[str, str], ...]
    output: OutputFormat
    query: str | None

    def _path(self, client: ArmClient, galleries: str, names: tuple[str, ...]) -> str:
        base = f"/subscriptions/{_seg(client.subscription)}/providers/Microsoft.Compute/locations/{_seg(self.location)}"
        return "/".join([base, galleries, *map(_seg, names)])

    def list(self, galleries: str, *names: str, shared_to: str | None = None) -> None:
        """Every item, flattened; `sharedTo` rides in the URL beside the api-version (the client's own query
        parameters would replace it)."""
        if shared_to is not None and shared_to.lower() != "tenant":
            raise typer.BadParameter(f"--shared-to takes 'tenant', not {shared_to!r}")
        url_query = f"?api-version={self.api_version}" + ("&sharedTo=tenant" if shared_to else "")
        with connect(self.endpoint, self.subscription) as client:
            items = client.list(self._path(client, galleries, names) + url_query, "")
            emit([_flatten(i) for i in items], self.output, self.query, self.columns)

    def show(self, galleries: str, *names: str) -> None:
        with connect(self.endpoint, self.subscription) as client:
            item = client.get(self._path(client, galleries, names), self.api_version)
            emit(_flatten(item), self.output, self.query, self.columns)


def list_shared(
    location: ConsumerLocation,
    shared_to: SharedTo = None,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List galleries shared with the subscription (or, with --shared-to tenant, its tenant) in a location."""
    _Views(endpoint, subscription, location, LIST_SHARED_API, SHARED_COLUMNS, output, query).list(
        SHARED, shared_to=shared_to
    )


def show_shared(
    location: ConsumerLocation,
    gallery_unique_name: Annotated[
        str, typer.Option("--gallery-unique-name", "--name", "-n", help="The unique name of the Shared Gallery.")
    ],
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Show a gallery shared with the subscription or its tenant."""
    _Views(endpoint, subscription, location, SHOW_SHARED_API, SHARED_COLUMNS, output, query).show(
        SHARED, gallery_unique_name
    )


def show_community(
    location: ConsumerLocation,
    public_gallery_name: Annotated[
        str, typer.Option("--public-gallery-name", "--name", "-n", help="The public name of the community gallery.")
    ],
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Show a community gallery."""
    _Views(endpoint, subscription, location, SHOW_COMMUNITY_API, SHARED_COLUMNS, output, query).show(
        COMMUNITY, public_gallery_name
    )


def definition_list_shared(
    location: ConsumerLocation,
    gallery_unique_name: UniqueName,
    shared_to: SharedTo = None,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List the image definitions of a shared gallery."""
    _Views(endpoint, subscription, location, DEFINITION_API, IMAGE_COLUMNS, output, query).list(
        SHARED, gallery_unique_name, "images", shared_to=shared_to
    )


def definition_show_shared(
    location: ConsumerLocation,
    gallery_unique_name: UniqueName,
    gallery_image_definition: Definition,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Show an image definition of a shared gallery."""
    _Views(endpoint, subscription, location, DEFINITION_API, IMAGE_COLUMNS, output, query).show(
        SHARED, gallery_unique_name, "images", gallery_image_definition
    )


def definition_list_community(
    location: ConsumerLocation,
    public_gallery_name: PublicName,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List the image definitions of a community gallery."""
    _Views(endpoint, subscription, location, DEFINITION_API, IMAGE_COLUMNS, output, query).list(
        COMMUNITY, public_gallery_name, "images"
    )


def definition_show_community(
    location: ConsumerLocation,
    public_gallery_name: PublicName,
    gallery_image_definition: Definition,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Show an image definition of a community gallery."""
    _Views(endpoint, subscription, location, DEFINITION_API, IMAGE_COLUMNS, output, query).show(
        COMMUNITY, public_gallery_name, "images", gallery_image_definition
    )


def version_list_shared(
    location: ConsumerLocation,
    gallery_unique_name: UniqueName,
    gallery_image_definition: Definition,
    shared_to: SharedTo = None,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List the image versions of a shared gallery's image definition usable in the location."""
    _Views(endpoint, subscription, location, VERSION_API, VERSION_COLUMNS, output, query).list(
        SHARED, gallery_unique_name, "images", gallery_image_definition, "versions", shared_to=shared_to
    )


def version_show_shared(
    location: ConsumerLocation,
    gallery_unique_name: UniqueName,
    gallery_image_definition: Definition,
    gallery_image_version: Version,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Show an image version of a shared gallery."""
    _Views(endpoint, subscription, location, VERSION_API, VERSION_COLUMNS, output, query).show(
        SHARED, gallery_unique_name, "images", gallery_image_definition, "versions", gallery_image_version
    )


def version_list_community(
    location: ConsumerLocation,
    public_gallery_name: PublicName,
    gallery_image_definition: Definition,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List the image versions of a community gallery's image definition (not those excluded from latest or past
    their end of life)."""
    _Views(endpoint, subscription, location, VERSION_API, VERSION_COLUMNS, output, query).list(
        COMMUNITY, public_gallery_name, "images", gallery_image_definition, "versions"
    )


def version_show_community(
    location: ConsumerLocation,
    public_gallery_name: PublicName,
    gallery_image_definition: Definition,
    gallery_image_version: Version,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Show an image version of a community gallery."""
    _Views(endpoint, subscription, location, VERSION_API, VERSION_COLUMNS, output, query).show(
        COMMUNITY, public_gallery_name, "images", gallery_image_definition, "versions", gallery_image_version
    )


def register(galleries: typer.Typer, definitions: typer.Typer, versions: typer.Typer) -> None:
    """Hang the sharing commands on `sig`, `sig image-definition` and `sig image-version`."""
    galleries.add_typer(share_app, name="share")
    for app, commands in (
        (galleries, {"list-shared": list_shared, "show-shared": show_shared, "show-community": show_community}),
        (
            definitions,
            {
                "list-shared": definition_list_shared,
                "show-shared": definition_show_shared,
                "list-community": definition_list_community,
                "show-community": definition_show_community,
            },
        ),
        (
            versions,
            {
                "list-shared": version_list_shared,
                "show-shared": version_show_shared,
                "list-community": version_list_community,
                "show-community": version_show_community,
            },
        ),
    ):
        for name, fn in commands.items():
            app.command(name, cls=AzCommand)(fn)

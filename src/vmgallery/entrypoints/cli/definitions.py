"""`vmgallery sig image-definition create|update|show|list|delete`, as `az sig image-definition`.

create builds the body as az's `create_gallery_image` does, defaults included: Generalized, V2, and the feature
SecurityType=TrustedLaunchSupported on V2 unless --features names a SecurityType (`Standard` meaning none).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from . import arm
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
from .values import apply_set, az_bool, end_of_life, parse_features, parse_tags

app = sub_app("Manage gallery image definitions.")

COLUMNS = (
    ("Name", "name"),
    ("ResourceGroup", "resourceGroup"),
    ("Location", "location"),
    ("ProvisioningState", "provisioningState"),
    ("OsType", "osType"),
    ("OsState", "osState"),
    ("HyperVGeneration", "hyperVGeneration"),
    ("Publisher", "identifier.publisher"),
    ("Offer", "identifier.offer"),
    ("Sku", "identifier.sku"),
)


class OsType(str, Enum):
    Linux = "Linux"
    Windows = "Windows"


class OsState(str, Enum):
    Generalized = "Generalized"
    Specialized = "Specialized"


class HyperVGeneration(str, Enum):
    V1 = "V1"
    V2 = "V2"


class Architecture(str, Enum):
    Arm64 = "Arm64"
    x64 = "x64"


Definition = Annotated[
    str, typer.Option("--gallery-image-definition", "--gallery-image-name", "-i", help="Gallery image definition.")
]
EndOfLife = Annotated[
    str | None,
    typer.Option(
        "--end-of-life-date", help="The end of life date, e.g. '2030-12-31' (sent as 2030-12-31T12:59:59Z, as az does)."
    ),
]
ReleaseNoteUri = Annotated[str | None, typer.Option("--release-note-uri", help="The release note uri.")]
MinCpu = Annotated[int | None, typer.Option("--minimum-cpu-core", help="Minimum cpu cores.")]
MaxCpu = Annotated[int | None, typer.Option("--maximum-cpu-core", help="Maximum cpu cores.")]
MinMemory = Annotated[int | None, typer.Option("--minimum-memory", help="Minimum memory in MB.")]
MaxMemory = Annotated[int | None, typer.Option("--maximum-memory", help="Maximum memory in MB.")]


def _recommend(
    properties: dict, min_cpu: int | None, max_cpu: int | None, min_memory: int | None, max_memory: int | None
) -> None:
    """Set the given bounds in `recommended`, keeping the others."""
    for key, low, high in (("vCPUs", min_cpu, max_cpu), ("memory", min_memory, max_memory)):
        for bound, value in (("min", low), ("max", high)):
            if value is not None:
                properties.setdefault("recommended", {}).setdefault(key, {})[bound] = value


def _features(given: str | None, hyper_v: HyperVGeneration) -> list[dict] | None:
    features = parse_features(given or "")
    named_security = any(f["name"].lower() == "securitytype" for f in features)
    features = [f for f in features if not (f["name"].lower() == "securitytype" and f["value"].lower() == "standard")]
    if hyper_v is HyperVGeneration.V2 and not named_security:
        features.append({"name": "SecurityType", "value": "TrustedLaunchSupported"})
    return features or None


def _drop_none(mapping: dict) -> dict:
    return {k: v for k, v in mapping.items() if v is not None}


@app.command(cls=AzCommand)
def create(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    gallery_image_definition: Definition,
    publisher: Annotated[str, typer.Option("--publisher", "-p", help="Image publisher.")],
    offer: Annotated[str, typer.Option("--offer", "-f", help="Image offer.")],
    sku: Annotated[str, typer.Option("--sku", "-s", help="Image sku.")],
    os_type: Annotated[OsType, typer.Option("--os-type", case_sensitive=False, help="The type of the OS.")],
    os_state: Annotated[OsState, typer.Option("--os-state", case_sensitive=False)] = OsState.Generalized,
    hyper_v_generation: Annotated[
        HyperVGeneration, typer.Option("--hyper-v-generation", case_sensitive=False)
    ] = HyperVGeneration.V2,
    architecture: Annotated[Architecture | None, typer.Option("--architecture", case_sensitive=False)] = None,
    features: Annotated[
        str | None,
        typer.Option("--features", help='Image features, e.g. "SecurityType=TrustedLaunch IsHibernateSupported=true".'),
    ] = None,
    description: Description = None,
    eula: Annotated[str | None, typer.Option("--eula", help="The Eula agreement for the gallery image.")] = None,
    privacy_statement_uri: Annotated[str | None, typer.Option("--privacy-statement-uri")] = None,
    release_note_uri: ReleaseNoteUri = None,
    end_of_life_date: EndOfLife = None,
    disallowed_disk_types: Annotated[
        list[str] | None,
        typer.Option(
            "--disallowed-disk-types", help="Disk types which would not work with the image, e.g. Standard_LRS."
        ),
    ] = None,
    minimum_cpu_core: MinCpu = None,
    maximum_cpu_core: MaxCpu = None,
    minimum_memory: MinMemory = None,
    maximum_memory: MaxMemory = None,
    plan_name: Annotated[str | None, typer.Option("--plan-name", help="Plan name.")] = None,
    plan_product: Annotated[str | None, typer.Option("--plan-product", help="Plan product.")] = None,
    plan_publisher: Annotated[str | None, typer.Option("--plan-publisher", help="Plan publisher.")] = None,
    location: Location = None,
    tags: Tags = None,
    no_wait: NoWait = False,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Create a gallery image definition."""
    with connect(endpoint, subscription) as client:
        properties = _drop_none(
            {
                "identifier": {"publisher": publisher, "offer": offer, "sku": sku},
                "osType": os_type.value,
                "osState": os_state.value,
                "hyperVGeneration": hyper_v_generation.value,
                "architecture": architecture.value if architecture else None,
                "features": _features(features, hyper_v_generation),
                "description": description,
                "eula": eula,
                "privacyStatementUri": privacy_statement_uri,
                "releaseNoteUri": release_note_uri,
                "endOfLifeDate": end_of_life(end_of_life_date) if end_of_life_date else None,
                "disallowed": {"diskTypes": disallowed_disk_types} if disallowed_disk_types else None,
                "purchasePlan": _drop_none({"name": plan_name, "product": plan_product, "publisher": plan_publisher})
                or None,
            }
        )
        _recommend(properties, minimum_cpu_core, maximum_cpu_core, minimum_memory, maximum_memory)
        body = {
            "location": group_location(client, resource_group, location),
            "tags": parse_tags(tags or []),
            "properties": properties,
        }
        path = arm.definition(client.subscription, resource_group, gallery_name, gallery_image_definition)
        result = write(
            client,
            "PUT",
            path,
            arm.DEFINITION_API["create"],
            body,
            no_wait=no_wait,
            what=f"image definition '{gallery_image_definition}'",
        )
        if result is not None:
            emit(flatten(result), output, query, COLUMNS)


@app.command(cls=AzCommand)
def update(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    gallery_image_definition: Definition,
    description: Description = None,
    end_of_life_date: EndOfLife = None,
    release_note_uri: ReleaseNoteUri = None,
    minimum_cpu_core: MinCpu = None,
    maximum_cpu_core: MaxCpu = None,
    minimum_memory: MinMemory = None,
    maximum_memory: MaxMemory = None,
    allow_update_image: Annotated[
        str | None, typer.Option("--allow-update-image", help="true if the image features are being updated.")
    ] = None,
    tags: Tags = None,
    set_: Set = None,
    no_wait: NoWait = False,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Update an image definition: read it, change it here, write the whole of it back (az's generic update)."""
    with connect(endpoint, subscription) as client:
        path = arm.definition(client.subscription, resource_group, gallery_name, gallery_image_definition)
        definition = client.get(path, arm.DEFINITION_API["update"])
        properties = definition.setdefault("properties", {})
        properties.update(
            _drop_none(
                {
                    "description": description,
                    "releaseNoteUri": release_note_uri,
                    "allowUpdateImage": az_bool(allow_update_image),
                    "endOfLifeDate": end_of_life(end_of_life_date) if end_of_life_date else None,
                }
            )
        )
        _recommend(properties, minimum_cpu_core, maximum_cpu_core, minimum_memory, maximum_memory)
        if tags is not None:
            definition["tags"] = parse_tags(tags)
        apply_set(definition, set_ or [])
        result = write(
            client,
            "PUT",
            path,
            arm.DEFINITION_API["update"],
            definition,
            no_wait=no_wait,
            what=f"image definition '{gallery_image_definition}'",
        )
        if result is not None:
            emit(flatten(result), output, query, COLUMNS)


@app.command(cls=AzCommand)
def show(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    gallery_image_definition: Definition,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Get information about a gallery image definition."""
    with connect(endpoint, subscription) as client:
        path = arm.definition(client.subscription, resource_group, gallery_name, gallery_image_definition)
        emit(flatten(client.get(path, arm.DEFINITION_API["show"])), output, query, COLUMNS)


@app.command("list", cls=AzCommand)
def list_(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    output: Output = OutputFormat.json,
    query: Query = None,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """List gallery image definitions in a gallery."""
    with connect(endpoint, subscription) as client:
        items = client.list(
            arm.definitions(client.subscription, resource_group, gallery_name), arm.DEFINITION_API["list"]
        )
        emit([flatten(i) for i in items], output, query, COLUMNS)


@app.command(cls=AzCommand)
def delete(
    resource_group: ResourceGroup,
    gallery_name: GalleryName,
    gallery_image_definition: Definition,
    no_wait: NoWait = False,
    subscription: Subscription = None,
    endpoint: Endpoint = None,
) -> None:
    """Delete a gallery image definition."""
    with connect(endpoint, subscription) as client:
        write(
            client,
            "DELETE",
            arm.definition(client.subscription, resource_group, gallery_name, gallery_image_definition),
            arm.DEFINITION_API["delete"],
            no_wait=no_wait,
            what=f"image definition '{gallery_image_definition}'",
        )

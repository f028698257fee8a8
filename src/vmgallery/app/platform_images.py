"""The platform image catalog: the self-hosted stand-in for the Marketplace that Image Builder's PlatformImage sources
name by publisher, offer, sku and version.

The operator imports base images (`vmgallery platform-image import`); each is a row (type `vmgallery/platformimages`,
keyed by location/publisher/offer/sku/version, lower-cased) whose `os` content slot names the manifest of its bytes
(a fixed VHD, as every disk here). They belong to no subscription: every subscription sees the same catalog, at
ARM's `.../locations/{loc}/publishers/{p}/artifacttypes/vmimage/offers/{o}/skus/{s}/versions` paths.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..domain import errors
from ..domain.disks import FOOTER
from ..domain.ids import normalize_location
from ..domain.validate import Body
from ..domain.versions import version_key
from ..domain.vhd import vhd_footer
from .content import write_image
from .ports import Clock, Metadata, RegionStores, ResourceRow, Transaction

TYPE = "vmgallery/platformimages"
MiB = 1 << 20


def sku_key(location: str, publisher: str, offer: str, sku: str) -> str:
    return f"/platformimages/{normalize_location(location)}/{publisher}/{offer}/{sku}".lower()


def image_key(location: str, publisher: str, offer: str, sku: str, version: str) -> str:
    return f"{sku_key(location, publisher, offer, sku)}/{version}".lower()


def _arm_id(subscription: str, location: str, body: Body) -> str:
    p = body["properties"]
    return (
        f"/Subscriptions/{subscription}/Providers/Microsoft.Compute/Locations/{location}/Publishers/{p['publisher']}"
        f"/ArtifactTypes/VMImage/Offers/{p['offer']}/Skus/{p['sku']}/Versions/{body['name']}"
    )


def view(subscription: str, row: ResourceRow) -> Body:
    """A catalog image as compute's virtual_machine_images.get answers (VirtualMachineImage)."""
    body = row.body
    p = body["properties"]
    return {
        "id": _arm_id(subscription, row.region, body),
        "name": body["name"],
        "location": row.region,
        "properties": {
            "osDiskImage": {"operatingSystem": p["osType"], "sizeInBytes": p["sizeInBytes"]},
            "dataDiskImages": [],
            "hyperVGeneration": p["hyperVGeneration"],
            "architecture": p["architecture"],
        },
    }


def list_versions(tx: Transaction, location: str, publisher: str, offer: str, sku: str) -> list[ResourceRow]:
    rows = tx.page(type=TYPE, after=0, limit=10000, parent_key=sku_key(location, publisher, offer, sku))
    return sorted(rows, key=lambda r: version_key(r.body["name"]))


def resolve(tx: Transaction, location: str, publisher: str, offer: str, sku: str, version: str) -> ResourceRow:
    """The catalog image a PlatformImage source names in `location` (`latest`: its highest version)."""
    target = "properties.source"
    if version.lower() == "latest":
        rows = list_versions(tx, location, publisher, offer, sku)
        row = rows[-1] if rows else None
    else:
        row = tx.get(image_key(location, publisher, offer, sku, version))
    if row is None:
        raise errors.InvalidParameter(
            f"The platform image '{publisher}:{offer}:{sku}:{version}' is not in this server's catalog in "
            f"'{location}'; the operator adds it with `vmgallery platform-image import`.",
            target,
            code="BadPIRSource",
        )
    return row


def raw_pieces(raw: BinaryIO, raw_size: int, chunk: int) -> Iterator[bytes]:
    """The raw bytes then the VHD footer, in chunk-sized pieces. A piece wholly in a hole of a sparse file is not
    read (SEEK_DATA finds the next data): a mostly empty disk costs only its data."""
    fd = raw.fileno()
    full = raw_size // chunk
    next_data = 0
    for i in range(full):
        at = i * chunk
        if next_data < at:
            next_data = _next_data(fd, at, raw_size)
        yield bytes(chunk) if next_data >= at + chunk else _pread(fd, at, chunk)
    tail = _pread(fd, full * chunk, raw_size - full * chunk) + vhd_footer(raw_size)
    while tail:
        yield tail[:chunk]
        tail = tail[chunk:]


def _next_data(fd: int, at: int, end: int) -> int:
    try:
        return os.lseek(fd, at, os.SEEK_DATA)
    except OSError as exc:  # ENXIO: only a hole is left; otherwise the file system cannot tell: read everything
        return end if exc.errno == errno.ENXIO else at


def _pread(fd: int, at: int, length: int) -> bytes:
    data = b""
    while len(data) < length:
        piece = os.pread(fd, length - len(data), at + len(data))
        if not piece:
            raise ValueError(f"the raw file ended at {at + len(data)} bytes, before {at + length}")
        data += piece
    return data


def import_image(
    db: Metadata,
    stores: RegionStores,
    clock: Clock,
    *,
    location: str,
    publisher: str,
    offer: str,
    sku: str,
    version: str,
    os_type: str,
    hyper_v_generation: str,
    architecture: str,
    raw: Path,
) -> Body:
    """Store a raw disk image (a whole number of MiB) as a catalog image; replaces one of the same version."""
    location = normalize_location(location)
    if location not in stores.regions:
        raise errors.InvalidLocation(f"The location '{location}' is not a configured region.", "location")
    raw_size = raw.stat().st_size
    if raw_size == 0 or raw_size % MiB:
        raise errors.InvalidParameter(f"The image is {raw_size} bytes; a platform image is a whole number of MiB.")
    store = stores.store(location)
    with raw.open("rb") as f:
        manifest = write_image(store, raw_pieces(f, raw_size, store.chunk_size), raw_size + FOOTER)
    key = image_key(location, publisher, offer, sku, version)
    body: Body = {
        "name": version,
        "location": location,
        "properties": {
            "publisher": publisher,
            "offer": offer,
            "sku": sku,
            "osType": os_type,
            "hyperVGeneration": hyper_v_generation,
            "architecture": architecture,
            "sizeInBytes": raw_size,
        },
    }
    now = clock()
    with db.write() as tx:
        tx.put_manifest(manifest, now)
        if tx.get(key, for_update=True) is not None:
            tx.drop_contents(key)
            tx.update(key, state="Succeeded", body=body, now=now)
        else:
            tx.insert(
                key=key,
                type=TYPE,
                parent_key=sku_key(location, publisher, offer, sku),
                subscription="",
                group_key=None,
                location=location,
                natural_key=None,
                state="Succeeded",
                body=body,
                now=now,
            )
        tx.set_content(key, "os", manifest.id)
    return body

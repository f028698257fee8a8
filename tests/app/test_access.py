"""Disk grants on fakes of the ports: an upload through a signed URL's page writes, folded into the disk's manifest
at endGetAccess, then read back through a read grant; a revoked URL is refused."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from vmgallery.adapters.security import SasSigner
from vmgallery.app.access import DiskAccess
from vmgallery.app.content import read_range
from vmgallery.app.kinds import DISK, RESOURCE_GROUP
from vmgallery.app.ports import SasDenied

from .conftest import MIB, fixed_vhd


def _grant(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path.rsplit("/", 1)[-1], dict(parse_qsl(parts.query))


def test_an_upload_lands_in_the_manifest_and_reads_back(world):
    access = DiskAccess(world.resources, SasSigner(b"k" * 32))
    world.put(world.group, {"location": "eastus"}, RESOURCE_GROUP)
    disk = world.disk("up")
    image = fixed_vhd(b"\x05" * MIB)
    upload = {"creationData": {"createOption": "Upload", "uploadSizeBytes": len(image)}, "osType": "Linux"}
    world.put(disk, {"location": "eastus", "properties": upload}, DISK)
    world.run_jobs()

    began = access.begin(disk, {"access": "Write", "durationInSeconds": 600}, DISK, "https://vmg")
    grant_id, params = _grant(began.operation.result["accessSAS"])
    target = access.resolve(grant_id, params, "w")
    access.write(target, 0, image[:MIB])
    access.write(target, MIB, image[MIB:])
    access.end(disk, DISK)
    with pytest.raises(SasDenied):
        access.resolve(grant_id, params, "w")

    began = access.begin(disk, {"access": "Read", "durationInSeconds": 600}, DISK, "https://vmg")
    target = access.resolve(*_grant(began.operation.result["accessSAS"]), "r")
    manifest = access.manifest(target)
    assert manifest.size == len(image) and read_range(target.reader, manifest, 0, len(image)) == image
    world.clock.advance(601)
    with pytest.raises(SasDenied, match="expired"):
        access.resolve(*_grant(began.operation.result["accessSAS"]), "r")


def test_zero_pages_store_nothing_and_zeroing_a_chunk_makes_it_a_hole(world):
    access = DiskAccess(world.resources, SasSigner(b"k" * 32))
    world.put(world.group, {"location": "eastus"}, RESOURCE_GROUP)
    disk = world.disk("up")
    image = fixed_vhd(bytes(3 * MIB))
    upload = {"creationData": {"createOption": "Upload", "uploadSizeBytes": len(image)}, "osType": "Linux"}
    world.put(disk, {"location": "eastus", "properties": upload}, DISK)
    world.run_jobs()
    began = access.begin(disk, {"access": "Write", "durationInSeconds": 600}, DISK, "https://vmg")
    target = access.resolve(*_grant(began.operation.result["accessSAS"]), "w")
    store = world.resources.stores.store("eastus")
    counters = store.counters

    access.write(target, 0, bytes(2 * MIB))  # two whole chunks of zeros
    access.write(target, 2 * MIB, None, MIB)  # clear_page of a whole chunk
    access.write(target, MIB + 4096, bytes(8192))  # zeros into part of a hole
    access.write(target, 4096, None, 512)  # clear_page of part of a hole
    # Not even offered to the store: no hash, no chunk file, no upload row.
    assert (counters.chunks_written, counters.chunks_present, counters.holes, counters.chunks_read) == (0, 0, 0, 0)
    assert access.manifest(target).digests == (None, None, None, None)

    access.write(target, 0, b"\x07" * MIB)
    access.write(target, MIB, b"\x08" * 4096)
    access.write(target, 2 * MIB + 512, b"\x09" * 512)
    assert [d is not None for d in access.manifest(target).digests] == [True, True, True, False]
    access.write(target, 0, None, MIB)  # clear_page of a whole data chunk
    access.write(target, MIB, bytes(4096))  # zeros over the only data of a chunk: read, patched, found all zero
    access.write(target, 2 * MIB, None, 4096)  # clear_page over the only data of a chunk
    assert access.manifest(target).digests == (None, None, None, None)

    access.write(target, 3 * MIB, image[3 * MIB :])
    access.end(disk, DISK)
    began = access.begin(disk, {"access": "Read", "durationInSeconds": 600}, DISK, "https://vmg")
    target = access.resolve(*_grant(began.operation.result["accessSAS"]), "r")
    manifest = access.manifest(target)
    assert manifest.digests[:3] == (None, None, None)
    assert read_range(target.reader, manifest, 0, len(image)) == image

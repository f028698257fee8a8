"""Disk formats against the real qemu-img: tiny images of every format, converted both ways and compared byte for
byte; our fixed-VHD footer against the one qemu-img writes."""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import pytest

from vmgallery.adapters.disks import formats
from vmgallery.adapters.disks.formats import QemuImgError, UnsupportedImage, from_raw, probe, same_contents, to_raw
from vmgallery.domain.vhd import (
    MIB,
    DiskType,
    VhdFooterError,
    azure_upload_size,
    azure_virtual_size,
    chs_geometry,
    is_azure_vhd_size,
    parse_vhd_footer,
    vhd_footer,
)

HELLO = b"hello from inside the disk\n"
SIZE = 8 * MIB


def qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True).stdout


def read_file_in_ext4(image: Path, name: str) -> bytes:
    return subprocess.run(["debugfs", "-R", f"cat /{name}", str(image)], check=True, capture_output=True).stdout


def tail(path: Path, n: int = 512) -> bytes:
    with open(path, "rb") as f:
        f.seek(-n, os.SEEK_END)
        return f.read()


@pytest.fixture(scope="module")
def ext4_raw(tmp_path_factory) -> Path:
    """An 8 MiB raw disk holding an ext4 filesystem with a known file and a MiB of noise."""
    root = tmp_path_factory.mktemp("ext4")
    content = root / "content"
    content.mkdir()
    (content / "hello.txt").write_bytes(HELLO)
    (content / "noise.bin").write_bytes(os.urandom(MIB))
    raw = root / "disk.raw"
    with open(raw, "wb") as f:
        f.truncate(SIZE)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(content), str(raw)], check=True)
    return raw


# ---- conversions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_from_raw_then_back_is_the_same_disk(ext4_raw, tmp_path, fmt):
    image = tmp_path / f"disk.{fmt}"
    from_raw(ext4_raw, image, fmt)
    info = probe(image)
    assert info.format == fmt
    assert info.virtual_size == SIZE
    assert info.file_size == image.stat().st_size
    if fmt == "vhd":
        assert info.subformat == "fixed"
        assert image.stat().st_size == SIZE + 512
        assert info.vhd_footer.disk_type == DiskType.FIXED
    assert same_contents(image, ext4_raw)
    back = tmp_path / "back.raw"
    assert to_raw(image, back) == info
    assert back.read_bytes() == ext4_raw.read_bytes()
    assert read_file_in_ext4(back, "hello.txt") == HELLO
    qemu_img("compare", "-f", "raw", "-F", "raw", str(back), str(ext4_raw))


@pytest.mark.parametrize(
    ("qemu_format", "options", "fmt", "subformat"),
    [
        ("vpc", "subformat=dynamic,force_size=on", "vhd", "dynamic"),
        ("vmdk", "subformat=streamOptimized", "vmdk", "streamOptimized"),
        ("vmdk", "subformat=monolithicSparse", "vmdk", "monolithicSparse"),
        ("vhdx", "subformat=fixed", "vhdx", None),
        ("qcow2", "compat=0.10", "qcow2", None),
    ],
)
def test_images_made_by_qemu_are_probed_and_read(ext4_raw, tmp_path, qemu_format, options, fmt, subformat):
    image = tmp_path / "disk.img"
    qemu_img("convert", "-f", "raw", "-O", qemu_format, "-o", options, str(ext4_raw), str(image))
    info = probe(image)
    assert (info.format, info.virtual_size, info.subformat) == (fmt, SIZE, subformat)
    back = tmp_path / "back.raw"
    to_raw(image, back)
    assert back.read_bytes() == ext4_raw.read_bytes()


def test_a_dynamic_vhd_is_read_at_its_footer_size_not_its_geometry(tmp_path):
    """qemu itself would read this VHD at its geometry's size; Azure and we read the footer's current size."""
    raw = tmp_path / "disk.raw"
    raw.write_bytes(os.urandom(3 * MIB))
    image = tmp_path / "disk.vhd"
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "force_size=on", str(raw), str(image))
    with open(image, "r+b") as f:  # relabel it as made by Virtual PC, with a geometry short of the size
        footer = bytearray(f.read(512))
        footer[28:32] = b"vpc "
        footer[56:60] = struct.pack(">HBB", *chs_geometry(3 * MIB))
        footer[64:68] = b"\0\0\0\0"
        footer[64:68] = struct.pack(">I", ~sum(footer) & 0xFFFFFFFF)
        f.seek(0)
        f.write(footer)
    assert json.loads(qemu_img("info", "--output=json", str(image)))["virtual-size"] != 3 * MIB
    assert probe(image).virtual_size == 3 * MIB
    back = tmp_path / "back.raw"
    to_raw(image, back)
    assert back.read_bytes() == raw.read_bytes()


def test_progress_is_reported_as_rising_fractions_ending_at_one(tmp_path):
    raw = tmp_path / "noise.raw"
    raw.write_bytes(os.urandom(16 * MIB))  # incompressible, so qemu-img reports steps along the way
    seen: list[float] = []
    from_raw(raw, tmp_path / "noise.qcow2", "qcow2", progress=seen.append)
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[-1] == 1.0
    assert any(0 < f < 1 for f in seen)
    seen.clear()
    to_raw(tmp_path / "noise.qcow2", tmp_path / "back.raw", progress=seen.append)
    assert seen[-1] == 1.0


def test_a_progress_callback_that_raises_cancels_the_conversion(tmp_path):
    raw = tmp_path / "noise.raw"
    raw.write_bytes(os.urandom(16 * MIB))

    class Cancelled(Exception):
        pass

    def cancel(fraction: float) -> None:
        if fraction > 0:
            raise Cancelled

    with pytest.raises(Cancelled):
        from_raw(raw, tmp_path / "noise.vhdx", "vhdx", progress=cancel)


def test_qemu_img_failures_carry_its_message(ext4_raw, tmp_path):
    with pytest.raises(QemuImgError, match="No such file or directory") as caught:
        from_raw(ext4_raw, tmp_path / "missing-dir" / "disk.qcow2", "qcow2")
    assert caught.value.returncode != 0
    truncated = tmp_path / "truncated.qcow2"
    from_raw(ext4_raw, tmp_path / "disk.qcow2", "qcow2")
    truncated.write_bytes((tmp_path / "disk.qcow2").read_bytes()[:100])
    with pytest.raises(QemuImgError, match="header too short"):
        probe(truncated)
    with pytest.raises(ValueError, match="unknown disk format"):
        from_raw(ext4_raw, tmp_path / "disk.iso", "iso")


def test_images_that_refer_to_other_files_are_refused(ext4_raw, tmp_path):
    backed = tmp_path / "backed.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", str(ext4_raw), "-F", "raw", str(backed))
    with pytest.raises(UnsupportedImage, match="backing file"):
        probe(backed)
    external = tmp_path / "external.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-o", f"data_file={tmp_path / 'external.data'}", str(external), "1M")
    with pytest.raises(UnsupportedImage, match="another file"):
        to_raw(external, tmp_path / "out.raw")
    flat = tmp_path / "flat.vmdk"
    qemu_img("create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", str(flat), "1M")
    with pytest.raises(UnsupportedImage, match="monolithicFlat"):
        probe(flat)
    assert not (tmp_path / "out.raw").exists()


def test_other_formats_are_refused(tmp_path):
    vdi = tmp_path / "disk.vdi"
    qemu_img("create", "-q", "-f", "vdi", str(vdi), "1M")
    with pytest.raises(UnsupportedImage, match="vdi"):
        probe(vdi)


def test_a_raw_disk_ending_in_a_stale_footer_is_raw(tmp_path):
    """A footer whose size does not match the file is data, not a VHD."""
    disk = tmp_path / "disk.raw"
    disk.write_bytes(bytes(2 * MIB) + vhd_footer(MIB))
    assert probe(disk).format == "raw"


# ---- the fixed-VHD footer ---------------------------------------------------------------------------------------


def test_footer_agrees_with_the_one_qemu_writes(tmp_path):
    raw = tmp_path / "disk.raw"
    raw.write_bytes(os.urandom(3 * MIB))
    image = tmp_path / "disk.vhd"
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", str(raw), str(image))
    theirs = parse_vhd_footer(tail(image))
    ours = parse_vhd_footer(vhd_footer(3 * MIB))
    assert theirs.checksum_ok and ours.checksum_ok
    for field in (
        "features",
        "version",
        "data_offset",
        "creator_host_os",
        "original_size",
        "current_size",
        "disk_type",
        "saved_state",
    ):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert tail(image, 512)[:8] == vhd_footer(3 * MIB)[:8] == b"conectix"


@pytest.mark.parametrize("size", ["3M", "100M", "1G", "40G", "200G", "2000G"])
def test_geometry_agrees_with_qemu(tmp_path, size):
    """Without force_size qemu rounds the size to a whole geometry, computed by the specification's algorithm (with
    force_size it writes the maximum geometry as a marker instead). The files are sparse."""
    image = tmp_path / "disk.vhd"
    qemu_img("create", "-q", "-f", "vpc", "-o", "subformat=fixed", str(image), size)
    theirs = parse_vhd_footer(tail(image))
    assert chs_geometry(theirs.current_size) == (theirs.cylinders, theirs.heads, theirs.sectors_per_track)
    ours = parse_vhd_footer(vhd_footer(theirs.current_size))
    assert (ours.cylinders, ours.heads, ours.sectors_per_track) == (
        theirs.cylinders,
        theirs.heads,
        theirs.sectors_per_track,
    )


def test_qemu_reads_a_disk_with_our_footer_at_its_exact_size(tmp_path):
    size = 3 * MIB  # not a whole CHS geometry: a reader going by geometry would lose its last sectors
    assert chs_geometry(size) == (90, 4, 17) and 90 * 4 * 17 * 512 < size
    data = os.urandom(size)
    image = tmp_path / "disk.vhd"
    image.write_bytes(data + vhd_footer(size))
    assert json.loads(qemu_img("info", "--output=json", "-f", "vpc", str(image)))["virtual-size"] == size
    info = probe(image)
    assert (info.format, info.subformat, info.virtual_size) == ("vhd", "fixed", size)
    back = tmp_path / "back.raw"
    to_raw(image, back)
    assert back.read_bytes() == data


def test_footer_fields_are_the_specifications():
    uid = bytes(range(16))
    footer = vhd_footer(64 * MIB, unique_id=uid, timestamp=946684800 + 1000)
    assert len(footer) == 512
    assert footer == vhd_footer(64 * MIB, unique_id=uid, timestamp=946684800 + 1000)
    assert footer[0:8] == b"conectix"
    assert footer[8:12] == b"\0\0\0\2"
    assert footer[12:16] == b"\0\1\0\0"
    assert footer[16:24] == b"\xff" * 8
    assert struct.unpack(">I", footer[24:28]) == (1000,)
    assert footer[36:40] == b"Wi2k"
    assert struct.unpack(">QQ", footer[40:56]) == (64 * MIB, 64 * MIB)
    assert struct.unpack(">HBB", footer[56:60]) == chs_geometry(64 * MIB)
    assert struct.unpack(">I", footer[60:64]) == (2,)
    stored = struct.unpack(">I", footer[64:68])[0]
    assert stored == ~(sum(footer[:64]) + sum(footer[68:])) & 0xFFFFFFFF
    assert footer[68:84] == uid
    assert footer[84:] == bytes(428)
    assert vhd_footer(MIB) != vhd_footer(MIB)  # a fresh unique id each time


def test_parse_round_trips():
    uid = os.urandom(16)
    parsed = parse_vhd_footer(vhd_footer(30 * 1024 * MIB, unique_id=uid, timestamp=1_700_000_000))
    assert parsed.disk_type == DiskType.FIXED
    assert parsed.current_size == parsed.original_size == 30 * 1024 * MIB
    assert parsed.timestamp == 1_700_000_000 - 946684800
    assert parsed.unique_id == uid
    assert parsed.creator_app == b"win "
    assert parsed.checksum_ok


def test_parse_rejects_garbage():
    with pytest.raises(VhdFooterError, match="512 bytes"):
        parse_vhd_footer(b"conectix")
    with pytest.raises(VhdFooterError, match="cookie"):
        parse_vhd_footer(os.urandom(512))
    damaged = bytearray(vhd_footer(MIB))
    damaged[45] ^= 1
    with pytest.raises(VhdFooterError, match="checksum"):
        parse_vhd_footer(bytes(damaged))
    assert parse_vhd_footer(bytes(damaged), verify_checksum=False).checksum_ok is False


@pytest.mark.parametrize("size", [0, -512, 1000])
def test_footer_needs_a_whole_number_of_sectors(size):
    with pytest.raises(ValueError):
        vhd_footer(size)


def test_footer_needs_a_16_byte_unique_id():
    with pytest.raises(ValueError, match="16 bytes"):
        vhd_footer(MIB, unique_id=b"short")


# ---- Azure's size rule ------------------------------------------------------------------------------------------


def test_azure_sizes():
    assert azure_virtual_size(1) == MIB
    assert azure_virtual_size(MIB) == MIB
    assert azure_virtual_size(MIB + 1) == 2 * MIB
    assert azure_upload_size(MIB) == MIB + 512
    assert azure_upload_size(30 * 1024 * MIB - 5) == 30 * 1024 * MIB + 512
    assert is_azure_vhd_size(MIB + 512)
    assert is_azure_vhd_size(azure_upload_size(12345678))
    assert not is_azure_vhd_size(MIB)
    assert not is_azure_vhd_size(512)
    assert not is_azure_vhd_size(MIB + 1024)
    with pytest.raises(ValueError):
        azure_upload_size(0)

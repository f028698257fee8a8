"""The fixed-VHD footer and Azure's VHD size rule: a fixed VHD is the raw disk followed by a 512-byte footer.

Pure rules of the format (no files, no processes): `adapters.disks.formats` adds qemu-img for every other format.
"""

from __future__ import annotations

import enum
import os
import struct
import time
from dataclasses import dataclass

SECTOR = 512
MIB = 1 << 20
FOOTER_SIZE = 512

# The footer, big-endian (VHD specification, "Hard Disk Footer Format"):
# cookie, features, format version, data offset, timestamp, creator application, creator version, creator host OS,
# original size, current size, cylinders, heads, sectors per track, disk type, checksum, unique id, saved state;
# the remaining 427 bytes are zero.
_FOOTER = struct.Struct(">8sIIQI4sI4sQQHBBII16sB")
COOKIE = b"conectix"
FEATURES = 0x00000002  # "reserved", always set
FILE_FORMAT_VERSION = 0x00010000
FIXED_DATA_OFFSET = 0xFFFFFFFFFFFFFFFF
VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z in Unix seconds
CREATOR_APP = b"win "  # read at its current size by qemu, VirtualBox, Hyper-V and Azure alike (see module doc)
CREATOR_VERSION = 0x00010000
CREATOR_HOST_OS = b"Wi2k"  # what Azure writes
_CHECKSUM_OFFSET = 64
_MAX_CHS_SECTORS = 65535 * 16 * 255


class DiskType(enum.IntEnum):
    FIXED = 2
    DYNAMIC = 3
    DIFFERENCING = 4


class DiskFormatError(Exception):
    """Base of this module's errors."""


class VhdFooterError(DiskFormatError, ValueError):
    """The bytes are not a valid VHD footer."""


# ---- the VHD footer ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VhdFooter:
    features: int
    version: int
    data_offset: int
    timestamp: int  # seconds since 2000-01-01 UTC
    creator_app: bytes
    creator_version: int
    creator_host_os: bytes
    original_size: int
    current_size: int
    cylinders: int
    heads: int
    sectors_per_track: int
    disk_type: int  # a DiskType value; kept an int so an unknown type still parses and can be reported
    checksum: int
    unique_id: bytes
    saved_state: int
    checksum_ok: bool


def chs_geometry(size_bytes: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) for a disk of size_bytes, by the VHD specification's algorithm."""
    total = min(size_bytes // SECTOR, _MAX_CHS_SECTORS)
    if total >= 65535 * 16 * 63:
        sectors, heads = 255, 16
        cyl_times_heads = total // sectors
    else:
        sectors = 17
        cyl_times_heads = total // sectors
        heads = max((cyl_times_heads + 1023) // 1024, 4)
        if cyl_times_heads >= heads * 1024 or heads > 16:
            sectors, heads = 31, 16
            cyl_times_heads = total // sectors
        if cyl_times_heads >= heads * 1024:
            sectors, heads = 63, 16
            cyl_times_heads = total // sectors
    return cyl_times_heads // heads, heads, sectors


def _checksum(footer: bytes) -> int:
    """One's complement of the byte sum, the checksum field itself counted as zero."""
    total = sum(footer) - sum(footer[_CHECKSUM_OFFSET : _CHECKSUM_OFFSET + 4])
    return ~total & 0xFFFFFFFF


def vhd_footer(size_bytes: int, *, unique_id: bytes | None = None, timestamp: int | None = None) -> bytes:
    """The 512-byte footer that makes a raw disk of size_bytes a fixed VHD (append it to the raw bytes).

    timestamp is in Unix seconds (default: now); unique_id is 16 bytes (default: random). Given both, the result
    is deterministic.
    """
    if size_bytes <= 0 or size_bytes % SECTOR:
        raise ValueError(f"a VHD's size must be a positive multiple of {SECTOR} bytes, not {size_bytes}")
    if unique_id is None:
        unique_id = os.urandom(16)
    if len(unique_id) != 16:
        raise ValueError("a VHD's unique id is 16 bytes")
    unix = int(time.time()) if timestamp is None else timestamp
    stamp = (unix - VHD_EPOCH) & 0xFFFFFFFF
    cylinders, heads, sectors = chs_geometry(size_bytes)
    fields = (
        COOKIE,
        FEATURES,
        FILE_FORMAT_VERSION,
        FIXED_DATA_OFFSET,
        stamp,
        CREATOR_APP,
        CREATOR_VERSION,
        CREATOR_HOST_OS,
        size_bytes,
        size_bytes,
        cylinders,
        heads,
        sectors,
        DiskType.FIXED,
        0,
        unique_id,
        0,
    )
    unsummed = _FOOTER.pack(*fields).ljust(FOOTER_SIZE, b"\0")
    return _FOOTER.pack(*fields[:14], _checksum(unsummed), *fields[15:]).ljust(FOOTER_SIZE, b"\0")


def parse_vhd_footer(data: bytes, *, verify_checksum: bool = True) -> VhdFooter:
    """Parse a 512-byte VHD footer (the last 512 bytes of a fixed VHD, the first 512 of a dynamic one).

    Raises VhdFooterError if the bytes are not a VHD footer, or if the checksum is wrong (unless verify_checksum
    is false, in which case `checksum_ok` reports it).
    """
    if len(data) != FOOTER_SIZE:
        raise VhdFooterError(f"a VHD footer is {FOOTER_SIZE} bytes, got {len(data)}")
    values = _FOOTER.unpack_from(data)
    if values[0] != COOKIE:
        raise VhdFooterError(f"not a VHD footer: cookie {values[0]!r}, expected {COOKIE!r}")
    checksum_ok = values[14] == _checksum(data)
    if verify_checksum and not checksum_ok:
        raise VhdFooterError(
            f"VHD footer checksum mismatch: stored {values[14]:#010x}, computed {_checksum(data):#010x}"
        )
    fields: tuple[object, ...] = (*values[1:], checksum_ok)
    return VhdFooter(*fields)  # type: ignore[arg-type]


# ---- Azure's size rule ------------------------------------------------------------------------------------------


def azure_virtual_size(raw_size: int) -> int:
    """A raw disk's size rounded up to Azure's 1 MiB granularity (the size a disk made from it gets)."""
    if raw_size <= 0:
        raise ValueError(f"a disk's size must be positive, not {raw_size}")
    return -(-raw_size // MIB) * MIB


def azure_upload_size(raw_size: int) -> int:
    """The byte count of a fixed VHD Azure accepts for a raw disk: its size rounded up to 1 MiB, plus the footer."""
    return azure_virtual_size(raw_size) + FOOTER_SIZE


def is_azure_vhd_size(n: int) -> bool:
    """Whether n bytes can be a fixed VHD Azure accepts: a whole, non-zero number of MiB plus the 512-byte footer."""
    return n > FOOTER_SIZE and (n - FOOTER_SIZE) % MIB == 0

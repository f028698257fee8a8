"""Disk image formats in and out: the fixed-VHD footer and Azure's size rule (domain.vhd), qemu-img for the rest.

A fixed VHD is the raw disk followed by a 512-byte footer, so vmgallery serves one by streaming a manifest and
appending `vhd_footer(size)`; no conversion is involved. Other formats (dynamic VHD, VHDX, qcow2, VMDK) go through
qemu-img, which this module runs with explicit formats (never re-probing) and only on images that stand alone:
an image that names other host files (a qcow2 backing file, an external data file, VMDK extents) is refused, since
opening it would read files the caller never handed us.

Sizes are Azure's: a VHD's size is its footer's current size. qemu reads the size of a VHD from its CHS geometry
unless the creator is one it knows to use the current size, so every VHD opened here is opened with
`force_size_calc=current_size`, and our own footers name the creator "win " (Hyper-V), which every reader takes at
its current size.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from ...domain.vhd import (
    FOOTER_SIZE,
    DiskFormatError,
    DiskType,
    VhdFooter,
    VhdFooterError,
    parse_vhd_footer,
)

Progress = Callable[[float], None]


class UnsupportedImage(DiskFormatError):
    """An image in a format we do not take, or one that refers to other files."""


class QemuImgError(DiskFormatError):
    """qemu-img failed; the message carries its stderr."""

    def __init__(self, args: list[str], returncode: int, stderr: str):
        self.command = args
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(
            f"qemu-img {args[1] if len(args) > 1 else ''} failed (exit {returncode}): {stderr.strip() or 'no message'}"
        )


# ---- qemu-img ---------------------------------------------------------------------------------------------------

FORMATS = ("raw", "vhd", "vhdx", "qcow2", "vmdk")
_QEMU_NAMES = {"raw": "raw", "vpc": "vhd", "vhdx": "vhdx", "qcow2": "qcow2", "vmdk": "vmdk"}
_QEMU_DRIVERS = {ours: theirs for theirs, ours in _QEMU_NAMES.items()}
_OUTPUT_ARGS = {
    "raw": ["-O", "raw"],
    # force_size keeps the exact size instead of rounding it to a CHS geometry.
    "vhd": ["-O", "vpc", "-o", "subformat=fixed,force_size=on"],
    "vhdx": ["-O", "vhdx"],
    "qcow2": ["-O", "qcow2"],
    "vmdk": ["-O", "vmdk"],
}
# VMDK kinds whose data lives in the one file; the others (flat, split, VMFS) point at extent files.
_SELF_CONTAINED_VMDK = {"monolithicSparse", "streamOptimized"}
# qemu-img info reads headers only; a crafted image must not make it eat the host (limits as in OpenStack).
_PROBE_LIMITS = ["prlimit", f"--as={1 << 30}", "--cpu=30", "--"]
QEMU_IMG_MISSING = "qemu-img is not installed (Debian/Ubuntu: apt-get install qemu-utils)"
_PERCENT = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")


@dataclass(frozen=True)
class ImageInfo:
    format: str  # one of FORMATS
    virtual_size: int  # bytes the guest sees
    file_size: int  # bytes of the image file
    subformat: str | None = None  # vhd: fixed | dynamic; vmdk: its create type
    vhd_footer: VhdFooter | None = None


def _require_qemu_img(args: list[str]) -> None:
    # Checked before running: under prlimit a missing qemu-img would only say "prlimit: failed to execute".
    if shutil.which("qemu-img") is None:
        raise QemuImgError(args, 127, QEMU_IMG_MISSING)


def _run(args: list[str], *, limits: bool = False) -> str:
    _require_qemu_img(args)
    command = (_PROBE_LIMITS if limits else []) + args
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise QemuImgError(args, 127, f"{e.filename} not found") from e
    if done.returncode:
        raise QemuImgError(args, done.returncode, done.stderr)
    return done.stdout


def _read_footer(path: str, offset: int) -> VhdFooter | None:
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(FOOTER_SIZE)
    try:
        return parse_vhd_footer(data)
    except VhdFooterError:
        return None


def probe(path: str | os.PathLike) -> ImageInfo:
    """Identify a disk image: its format (one of FORMATS) and virtual size.

    Raises UnsupportedImage for other formats and for images that refer to other files, QemuImgError if qemu-img
    cannot read it.
    """
    path = os.fspath(path)
    file_size = os.stat(path).st_size
    info = json.loads(_run(["qemu-img", "info", "--output=json", path], limits=True))
    qemu_format = info.get("format")
    if qemu_format == "raw" and file_size >= 2 * FOOTER_SIZE:
        # qemu only recognises VHDs with a header copy at the start, so a fixed VHD looks raw to it.
        footer = _read_footer(path, file_size - FOOTER_SIZE)
        if footer and footer.disk_type == DiskType.FIXED and footer.current_size == file_size - FOOTER_SIZE:
            return ImageInfo("vhd", footer.current_size, file_size, "fixed", footer)
    if qemu_format not in _QEMU_NAMES:
        raise UnsupportedImage(f"{path}: {qemu_format} images are not supported (use one of {', '.join(FORMATS)})")
    if info.get("backing-filename"):
        raise UnsupportedImage(
            f"{path}: refers to a backing file ({info['backing-filename']}); flatten it first (qemu-img convert)"
        )
    specific = (info.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file"):
        raise UnsupportedImage(f"{path}: keeps its data in another file ({specific['data-file']})")
    fmt = _QEMU_NAMES[qemu_format]
    if fmt == "vmdk":
        create_type = specific.get("create-type")
        if create_type not in _SELF_CONTAINED_VMDK:
            raise UnsupportedImage(
                f"{path}: VMDK of type {create_type} keeps its data in other files; "
                f"convert it to {' or '.join(sorted(_SELF_CONTAINED_VMDK))}"
            )
        return ImageInfo(fmt, int(info["virtual-size"]), file_size, create_type)
    if fmt == "vhd":
        footer = _read_footer(path, 0)
        if footer is None:
            raise UnsupportedImage(f"{path}: VHD header is damaged")
        if footer.disk_type != DiskType.DYNAMIC:
            raise UnsupportedImage(f"{path}: VHD disk type {footer.disk_type} is not supported (fixed or dynamic)")
        return ImageInfo(fmt, footer.current_size, file_size, "dynamic", footer)
    return ImageInfo(fmt, int(info["virtual-size"]), file_size)


def _image_spec(path: str, info: ImageInfo) -> str:
    """The image in qemu's --image-opts syntax, its format stated so qemu never guesses."""
    if info.format == "vhd" and info.subformat == "fixed":
        driver = f"driver=raw,size={info.virtual_size}"
    elif info.format == "vhd":
        driver = "driver=vpc,force_size_calc=current_size"
    else:
        driver = f"driver={_QEMU_DRIVERS[info.format]}"
    # In this syntax a comma is doubled to be taken literally.
    return f"{driver},file.driver=file,file.filename={path.replace(',', ',,')}"


def _convert(args: list[str], progress: Progress | None) -> None:
    """Run `qemu-img convert -p`, reporting its percentages to progress as fractions in [0, 1].

    If progress raises, qemu-img is stopped and the exception propagates: a way to cancel a long conversion.
    """
    command = ["qemu-img", "convert", "-p"] + args
    _require_qemu_img(command)
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)
        try:
            pending = b""
            last = -1.0
            while chunk := os.read(proc.stdout.fileno(), 4096):
                pending += chunk
                # Percentages are separated by carriage returns; keep a trailing partial one for the next read.
                complete, _, pending = pending.rpartition(b"\r")
                for match in _PERCENT.finditer(complete):
                    fraction = min(float(match.group(1)) / 100, 1.0)
                    if progress and fraction > last:
                        last = fraction
                        progress(fraction)
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
        if returncode:
            stderr.seek(0)
            raise QemuImgError(command, returncode, stderr.read().decode(errors="replace"))
    if progress and last < 1.0:
        progress(1.0)


def to_raw(src: str | os.PathLike, dst: str | os.PathLike, *, progress: Progress | None = None) -> ImageInfo:
    """Convert any supported image to a raw disk at dst (sparse where the source has zeros); returns the source's
    probe. The raw file is exactly the source's virtual size."""
    src = os.fspath(src)
    info = probe(src)
    _convert(["--image-opts", _image_spec(src, info), "-O", "raw", os.fspath(dst)], progress)
    return info


def from_raw(src_raw: str | os.PathLike, dst: str | os.PathLike, fmt: str, *, progress: Progress | None = None) -> None:
    """Write the raw disk src_raw as an image of format fmt (one of FORMATS; "vhd" is a fixed VHD of the exact size,
    the others qemu-img's defaults: dynamic VHDX, qcow2 v3, monolithic sparse VMDK)."""
    if fmt not in _OUTPUT_ARGS:
        raise ValueError(f"unknown disk format {fmt!r} (use one of {', '.join(FORMATS)})")
    _convert(["-f", "raw", os.fspath(src_raw)] + _OUTPUT_ARGS[fmt] + [os.fspath(dst)], progress)


def same_contents(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two images hold the same guest-visible bytes: same virtual size and `qemu-img compare` agrees."""
    a, b = os.fspath(a), os.fspath(b)
    info_a, info_b = probe(a), probe(b)
    if info_a.virtual_size != info_b.virtual_size:
        return False
    args = ["qemu-img", "compare", "--image-opts", _image_spec(a, info_a), _image_spec(b, info_b)]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode in (0, 1):
        return done.returncode == 0
    raise QemuImgError(args, done.returncode, done.stderr)

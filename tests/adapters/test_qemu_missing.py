"""Without qemu-img, every path into it (probing, converting) says the same: what is missing and what to install."""

from __future__ import annotations

import pytest

from vmgallery.adapters.disks import formats


@pytest.mark.parametrize(
    "call",
    [
        lambda src, dst: formats.probe(src),
        lambda src, dst: formats.to_raw(src, dst),
        lambda src, dst: formats.from_raw(src, dst, "qcow2"),
    ],
    ids=["probe", "to_raw", "from_raw"],
)
def test_a_missing_qemu_img_is_named_with_its_package(call, tmp_path, monkeypatch):
    src = tmp_path / "disk.raw"
    src.write_bytes(b"\0" * 4096)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(formats.QemuImgError) as exc:
        call(src, tmp_path / "out")
    assert formats.QEMU_IMG_MISSING in str(exc.value) and exc.value.returncode == 127

"""The guestfs engine on a real distribution: a Debian minbase image made with mmdebstrap (cached between runs).

A Shell step reads the guest's own dpkg database and installs an init program, a File step copies a file; debugfs
reads both back, and QEMU boots the result (the host's kernel and the tiny image's initramfs, `init=` the installed
program, since minbase has no init system) to see it run.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.adapters.builders.common import LINUX, PAYLOAD, Recorder, processes_naming
from tests.debianimage import debian_minbase
from tests.tinyimage import boot, read_file, tiny_image  # noqa: F401  (the session fixture)
from vmgallery.adapters.builders import engine_named
from vmgallery.app.build_engine import BuildStep

INSTALL_INIT = """\
. /etc/os-release
echo "id=$ID version=$VERSION_ID"
dpkg-query -W -f '${Package} installed\\n' apt
echo "built by vmgallery" > /etc/built-by-vmgallery
mkdir -p /usr/local/sbin
cat > /usr/local/sbin/vmg-init <<'EOF'
#!/bin/sh
mount -t proc proc /proc
echo "vmg-debian-init: $(cat /etc/built-by-vmgallery) / $(cat /usr/share/vmg/payload.txt) / $(uname -s)"
echo o > /proc/sysrq-trigger
sleep 30
EOF
chmod 755 /usr/local/sbin/vmg-init
"""


@pytest.mark.slow
def test_a_debian_minbase_image_is_customized_read_back_and_booted(tiny_image, tmp_path):
    source = debian_minbase()
    disk = tmp_path / "debian.raw"
    subprocess.run(["cp", "--sparse=always", str(source), str(disk)], check=True)
    payload = tmp_path / "payload.txt"
    payload.write_bytes(PAYLOAD)
    steps = [
        BuildStep(1, "install-init", "customize", shell=INSTALL_INIT),
        BuildStep(2, "copy-payload", "customize", upload_from=payload, upload_to="/usr/share/vmg/payload.txt"),
    ]
    recorder = Recorder()
    results = engine_named("guestfs", accel="tcg", network=False).run(
        disk, steps, LINUX, on_line=recorder, should_stop=lambda: None, deadline=time.monotonic() + 900
    )
    assert [(r.number, r.exit_code) for r in results] == [(1, 0), (2, 0)], recorder.lines
    assert recorder.of(1)[0].startswith("id=debian version=")
    assert "apt installed" in recorder.of(1)
    assert read_file(disk, "/etc/built-by-vmgallery") == b"built by vmgallery\n"
    assert read_file(disk, "/usr/share/vmg/payload.txt") == PAYLOAD
    assert processes_naming(str(tmp_path)) == []

    log = boot(
        disk,
        kernel=tiny_image.kernel,
        initrd=tiny_image.initrd,
        append="root=/dev/vda1 rw console=ttyS0 panic=-1 quiet init=/usr/local/sbin/vmg-init",
    )
    assert f"vmg-debian-init: built by vmgallery / {PAYLOAD.decode().strip()} / Linux" in log

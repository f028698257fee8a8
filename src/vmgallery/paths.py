"""Where a server keeps its data unless told otherwise: shared by the settings and the CLI's discovery of a local
server, without the settings' pydantic models (which every CLI command would otherwise load at start)."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "vmgallery"

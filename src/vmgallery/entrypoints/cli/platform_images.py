"""`vmgallery platform-image import`: the operator adds a base image to the catalog Image Builder's PlatformImage
sources name (the self-hosted stand-in for the Marketplace). Runs next to the data, like `vmgallery admin`."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import typer

from .options import sub_app

app = sub_app("The platform image catalog (operator commands).")


@app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="raw, qcow2, VHD, VHDX or VMDK"),
    location: str = typer.Option(..., "--location", "-l"),
    publisher: str = typer.Option(..., "--publisher"),
    offer: str = typer.Option(..., "--offer"),
    sku: str = typer.Option(..., "--sku"),
    version: str = typer.Option(..., "--version"),
    hyper_v_generation: str = typer.Option("V1", "--hyper-v-generation", help="V1 or V2"),
    os_type: str = typer.Option("Linux", "--os-type", help="Linux or Windows"),
    architecture: str = typer.Option("x64", "--architecture", help="x64 or Arm64"),
    data_dir: Path | None = typer.Option(None, "--data-dir"),
    database_url: str | None = typer.Option(None, "--database-url"),
) -> None:
    """Convert FILE to a raw disk and store it as publisher:offer:sku:version in LOCATION."""
    from ...adapters.disks.formats import to_raw
    from ...app.platform_images import import_image
    from ...domain import versions
    from .admin import _service

    if hyper_v_generation not in ("V1", "V2") or os_type not in ("Linux", "Windows"):
        raise typer.BadParameter("--hyper-v-generation is V1 or V2, --os-type Linux or Windows")
    versions.parse_version_name(version)
    service = _service(data_dir, database_url)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "disk.raw"
        to_raw(file, raw)
        size = raw.stat().st_size
        if size % (1 << 20):
            with raw.open("r+b") as f:
                f.truncate(-(-size // (1 << 20)) * (1 << 20))  # whole MiB, as every Azure disk
        body = import_image(
            service.db,
            service.stores,
            time.time,
            location=location,
            publisher=publisher,
            offer=offer,
            sku=sku,
            version=version,
            os_type=os_type,
            hyper_v_generation=hyper_v_generation,
            architecture=architecture,
            raw=raw,
        )
    typer.echo(json.dumps(body, indent=2))

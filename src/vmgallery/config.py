"""Typed settings: embedded defaults, then `DIR/config.toml`, then command-line flags.

A config file looks like:

    regions = ["eastus", "westus", "westeurope"]
    database_url = "postgresql://vmgallery@db/vmgallery"
    page_size = 100
    sync_wait_seconds = 2.0
    [limits]
    galleries_per_region = 100
    image_definitions_per_region = 1000
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .domain.ids import normalize_location

DEFAULT_REGIONS = ("eastus", "westus", "westeurope")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "vmgallery"


@dataclass(frozen=True)
class Limits:
    galleries_per_region: int = 100
    image_definitions_per_region: int = 1000
    image_versions_per_region: int = 10000


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None
    regions: tuple[str, ...] = DEFAULT_REGIONS
    host: str = "127.0.0.1"
    port: int = 8443
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_http: bool = False
    page_size: int = 100
    # The largest JSON request body (ARM's own limit); larger ones are refused with 413. Page writes are not JSON.
    max_body_bytes: int = 4 << 20
    # How long a write request waits for its operation before answering "in progress" (the client then polls).
    sync_wait_seconds: float = 2.0
    workers: int = 1
    lease_seconds: float = 60.0
    # Chunk size of the content-addressed store (bench/chunk_size.py measured the choice).
    chunk_size: int = 1 << 20
    # Unreferenced chunks younger than the grace period are kept: it must exceed the time between a writer storing a
    # chunk and committing the reference to it (milliseconds), with a wide margin.
    gc_grace_seconds: float = 3600.0
    gc_interval_seconds: float = 900.0
    # Zones per region: folder backends under DATA_DIR/blobs/<region>/zone<N>, unless `zones` names each region's
    # zones, e.g. zones = {eastus = ["/mnt/a/vmg", "/mnt/b/vmg", "/mnt/c/vmg"]}. A zone is a folder path or an
    # object store: {kind = "azure", container, account_url, account_key | sas_token, account_name?, prefix?} or
    # {kind = "s3", bucket, endpoint?, access_key_id, secret_access_key, region?, prefix?}; see
    # adapters/blobs/objectstore.py.
    zones_per_region: int = 3
    zones: dict = field(default_factory=dict)
    # A faster zone per region for Premium_LRS/PremiumV2_LRS replicas (absent: they are placed like Standard_LRS),
    # e.g. premium_zones = {eastus = "/nvme/vmgallery/eastus"}; a folder path or an object store, as in `zones`.
    premium_zones: dict = field(default_factory=dict)
    # Replication bandwidth per region and worker process in bytes/s (0 or absent: unbounded), e.g. {westus = 50e6}.
    replication_bandwidth: dict = field(default_factory=dict)
    # Replica copies at once per region, across every worker process (absent: bounded only by the worker threads),
    # e.g. {westus = 2}.
    replication_concurrency: dict = field(default_factory=dict)
    # A replica's copied chunks are made durable together each time this many bytes are staged (one file-system
    # flush on folder zones), and before it is Completed: fewer flushes, against more to re-copy after a crash.
    replication_batch_bytes: int = 256 << 20
    # How many disks a Shallow version may have made from it (Azure: "not for a large number of VMs").
    shallow_max_disks: int = 5
    # Storage accounts VHD sources are read from: {resource id: {blob_endpoint, account_key | sas_token | ...}}.
    storage_accounts: dict = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'vmgallery.db'}"

    @property
    def cert_path(self) -> Path:
        return self.tls_cert or self.data_dir / "tls" / "cert.pem"

    @property
    def key_path(self) -> Path:
        return self.tls_key or self.data_dir / "tls" / "key.pem"

    @property
    def token_path(self) -> Path:
        return self.data_dir / "admin-token"


def load_settings(data_dir: Path | None = None, **overrides) -> Settings:
    """Defaults < DIR/config.toml < overrides (flags); None overrides are ignored."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    values: dict = {"data_dir": data_dir}
    config_file = data_dir / "config.toml"
    if config_file.exists():
        with open(config_file, "rb") as f:
            values.update(tomllib.load(f))
    values.update({k: v for k, v in overrides.items() if v is not None})
    limits = values.pop("limits", None)
    known = {f.name for f in fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown settings in {config_file}: {', '.join(sorted(unknown))}")
    settings = Settings(**values)
    if isinstance(limits, dict):
        settings = replace(settings, limits=Limits(**limits))
    elif isinstance(limits, Limits):
        settings = replace(settings, limits=limits)
    regions = settings.regions
    if isinstance(regions, str):
        regions = regions.split(",")
    regions = tuple(dict.fromkeys(normalize_location(r) for r in regions if r.strip()))
    if not regions:
        raise ValueError("at least one region must be configured")
    for p in ("tls_cert", "tls_key"):
        if getattr(settings, p) is not None:
            settings = replace(settings, **{p: Path(getattr(settings, p))})
    return replace(settings, regions=regions, data_dir=Path(settings.data_dir))

"""Typed settings: embedded defaults, then `DATA_DIR/config.toml`, then command-line flags.

A config file looks like:

    regions = ["eastus", "westus", "westeurope"]
    database_url = "postgresql://vmgallery@db/vmgallery"
    page_size = 100
    sync_wait_seconds = 2.0
    [limits]
    galleries_per_region = 100
    image_definitions_per_region = 1000

Each section is a pydantic model that refuses unknown keys, so a typo fails at start with the key and the file named,
instead of being ignored. `load_sources` also says where each value came from, for `vmgallery config show`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator

from .domain.ids import normalize_location
from .paths import default_data_dir

DEFAULT_REGIONS = ("eastus", "westus", "westeurope")

# Values `vmgallery config show` never prints; a database URL's password is masked inside the URL.
SECRET_KEYS = frozenset({"account_key", "sas_token", "secret_access_key", "connection_string"})
MASK = "***"


class ConfigError(ValueError):
    """A setting that cannot be used, with its key and where it was given (the file, or a flag)."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(Section):
    galleries_per_region: int = Field(100, ge=0)
    image_definitions_per_region: int = Field(1000, ge=0)
    image_versions_per_region: int = Field(10000, ge=0)


class AzureZone(Section):
    """A zone in Azure Blob Storage (adapters/blobs/objectstore.py): the field names are the backend's arguments."""

    kind: Literal["azure"]
    container: str
    account_url: str
    account_key: str | None = None
    sas_token: str | None = None
    account_name: str | None = None
    prefix: str = ""


class S3Zone(Section):
    """A zone in an S3-compatible store; `endpoint` only for stores other than AWS."""

    kind: Literal["s3"]
    bucket: str
    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None
    prefix: str = ""


def _zone_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "folder"
    return value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)


# A zone is a folder path or a table with `kind` azure or s3.
Zone = Annotated[
    Annotated[str, Tag("folder")] | Annotated[AzureZone, Tag("azure")] | Annotated[S3Zone, Tag("s3")],
    Discriminator(
        _zone_kind,
        custom_error_type="zone",
        custom_error_message='a zone is a folder path or a table with kind = "azure" or kind = "s3"',
    ),
]


class StorageAccount(Section):
    """A storage account VHD sources are read from (adapters/storage_accounts.py): at most one credential."""

    blob_endpoint: str | None = None
    account_key: str | None = None
    sas_token: str | None = None
    connection_string: str | None = None


class Builder(Section):
    # The engine image templates run on unless one names its own (properties.vmgalleryEngine): "guestfs" or "vm",
    # or "module:factory" for an engine outside vmgallery (a callable taking the engine's name).
    engine: str = "guestfs"
    # The accelerator the engines give QEMU: "auto" uses KVM only when a probe boot under it succeeds (a few seconds,
    # once per process), "tcg" never tries it (hosts whose /dev/kvm hangs guests), "kvm" always.
    accel: Literal["auto", "kvm", "tcg"] = "auto"
    # https URL prefixes builds may fetch scripts and files from, besides storage accounts and this server's own
    # signed blob URLs, e.g. ["https://raw.githubusercontent.com/myorg/"].
    allowed_source_prefixes: list[str] = Field(default_factory=list)
    # Where each run's customization.log is written when the run ends, as Azure keeps it (a `packerlogs` container,
    # one folder per run): a container URL in one of [storage_accounts], e.g.
    # "https://<name>.blob.core.windows.net/packerlogs". Empty: the log is only at .../customizationLog.
    customization_log_container: str = ""


class Settings(Section):
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    regions: tuple[str, ...] = DEFAULT_REGIONS
    host: str = "127.0.0.1"
    port: int = Field(8443, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_http: bool = False
    page_size: int = Field(100, gt=0)
    # The largest JSON request body (ARM's own limit); larger ones are refused with 413. Page writes are not JSON.
    max_body_bytes: int = Field(4 << 20, gt=0)
    # How long a write request waits for its operation before answering "in progress" (the client then polls).
    sync_wait_seconds: float = Field(2.0, ge=0)
    workers: int = Field(1, ge=0)
    lease_seconds: float = Field(60.0, gt=0)
    # Chunk size of the content-addressed store (bench/chunk_size.py measured the choice).
    chunk_size: int = Field(1 << 20, gt=0)
    # Unreferenced chunks younger than the grace period are kept: it must exceed the time between a writer storing a
    # chunk and committing the reference to it (milliseconds), with a wide margin.
    gc_grace_seconds: float = Field(3600.0, ge=0)
    gc_interval_seconds: float = Field(900.0, gt=0)
    # Zones per region: folder backends under DATA_DIR/blobs/<region>/zone<N>, unless `zones` names each region's
    # zones, e.g. zones = {eastus = ["/mnt/a/vmg", "/mnt/b/vmg", "/mnt/c/vmg"]}.
    zones_per_region: int = Field(3, gt=0)
    zones: dict[str, list[Zone]] = Field(default_factory=dict)
    # A faster zone per region for Premium_LRS/PremiumV2_LRS replicas (absent: they are placed like Standard_LRS),
    # e.g. premium_zones = {eastus = "/nvme/vmgallery/eastus"}.
    premium_zones: dict[str, Zone] = Field(default_factory=dict)
    # Replication bandwidth per region and worker process in bytes/s (0 or absent: unbounded), e.g. {westus = 50e6}.
    replication_bandwidth: dict[str, float] = Field(default_factory=dict)
    # Replica copies at once per region, across every worker process (absent: bounded only by the worker threads),
    # e.g. {westus = 2}.
    replication_concurrency: dict[str, int] = Field(default_factory=dict)
    # A replica's copied chunks are made durable together each time this many bytes are staged (one file-system
    # flush on folder zones), and before it is Completed: fewer flushes, against more to re-copy after a crash.
    replication_batch_bytes: int = Field(256 << 20, gt=0)
    # How many disks a Shallow version may have made from it (Azure: "not for a large number of VMs").
    shallow_max_disks: int = Field(5, ge=0)
    # Storage accounts VHD sources are read from, by resource id.
    storage_accounts: dict[str, StorageAccount] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    # The URL clients reach this server at (behind a load balancer: its URL): the token issuer, the login endpoint
    # and Graph resource id of /metadata/endpoints. Absent: https://HOST:PORT.
    public_url: str | None = None
    builder: Builder = Field(default_factory=Builder)
    # How long the activity log keeps an event (Azure keeps 90 days).
    activity_log_retention_days: float = Field(90.0, gt=0)

    @field_validator("regions", mode="before")
    @classmethod
    def _regions(cls, value: Any) -> Any:
        """`--regions "East US,westus"` or a list; spelled as ARM spells locations, each once."""
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list | tuple):
            return value
        # Anything but a string is left for the type check to refuse by its position.
        regions = tuple(
            dict.fromkeys(normalize_location(r) if isinstance(r, str) else r for r in value if str(r).strip())
        )
        if not regions:
            raise ValueError("at least one region must be configured")
        return regions

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

    @property
    def authority_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"{'http' if self.insecure_http else 'https'}://{host}:{self.port}"


@dataclass(frozen=True)
class Loaded:
    """Settings and where each value came from: a flag, the config file, or the defaults."""

    settings: Settings
    file: Path
    file_keys: frozenset[str]
    flag_keys: frozenset[str]

    def source(self, key: str) -> str:
        """Where `key` (top level, or `section.key`) came from."""
        if key in self.flag_keys:
            return "flag"
        return f"file {self.file}" if key in self.file_keys else "default"


def load_sources(data_dir: Path | None = None, **overrides: Any) -> Loaded:
    """Defaults < DATA_DIR/config.toml < overrides (flags); None overrides are ignored."""
    flags = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        flags["data_dir"] = Path(data_dir)
    config_file = Path(flags.get("data_dir") or default_data_dir()) / "config.toml"
    from_file: dict[str, Any] = {}
    if config_file.exists():
        try:
            with open(config_file, "rb") as f:
                from_file = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{config_file}: not valid TOML: {e}") from None
    values = {"data_dir": config_file.parent} | from_file | flags
    try:
        settings = Settings(**values)
    except ValidationError as e:
        raise ConfigError("\n".join(_explain(error, config_file, flags) for error in e.errors())) from None
    file_keys = set(from_file) | {f"limits.{key}" for key in from_file.get("limits", {})}
    return Loaded(settings=settings, file=config_file, file_keys=frozenset(file_keys), flag_keys=frozenset(flags))


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """Defaults < DATA_DIR/config.toml < overrides (flags); None overrides are ignored."""
    return load_sources(data_dir, **overrides).settings


def _explain(error: Any, config_file: Path, flags: dict[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    # A zone's error says which of the zone forms it was read as; the key alone is clearer.
    zone_at = {"zones": 3, "premium_zones": 2}.get(loc[0] if loc else "")
    if zone_at is not None and len(loc) > zone_at and loc[zone_at] in ("folder", "azure", "s3"):
        del loc[zone_at]
    key = ".".join(part if re.fullmatch(r"[\w-]+", part) else f'"{part}"' for part in loc) or "(top level)"
    message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"].removeprefix("Value error, ")
    where = f"flag --{loc[0].replace('_', '-')}" if loc and loc[0] in flags else str(config_file)
    return f"{key}: {message} (in {where})"


def masked_url(url: str) -> str:
    """A URL with its password, if any, replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{parts.netloc.rsplit('@', 1)[1]}"))


def masked(value: Any, key: str = "") -> Any:
    """`value` (plain data, e.g. a model_dump) with every secret it holds replaced by ***."""
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, key) for v in value]
    if value is not None and key in SECRET_KEYS:
        return MASK
    if isinstance(value, str) and key == "database_url":
        return masked_url(value)
    return value


# What `config show` prints for a setting left unset: the value the server derives from the data dir.
_DERIVED = {"database_url": "db_url", "tls_cert": "cert_path", "tls_key": "key_path", "public_url": "authority_url"}


def describe(loaded: Loaded) -> list[tuple[str, Any, str]]:
    """Every setting as (key, effective value with secrets masked, source); sections are flattened to `a.b`."""
    settings = loaded.settings
    values = masked(settings.model_dump(mode="json", exclude_none=True))
    rows = []
    for key in Settings.model_fields:
        if isinstance(getattr(settings, key), Section):
            rows += [(f"{key}.{k}", v, loaded.source(f"{key}.{k}")) for k, v in values[key].items()]
        else:
            value = values[key] if key in values else str(getattr(settings, _DERIVED[key]))
            rows.append((key, value, loaded.source(key)))
    return rows

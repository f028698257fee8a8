"""Settings: defaults < DATA_DIR/config.toml < flags, errors naming the key and where it was given, and
`vmgallery config show` printing each effective value with its source and no secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmgallery.adapters.blobs.folder import FolderBackend
from vmgallery.adapters.blobs.objectstore import AzureBlobBackend, S3Backend, zone_backend
from vmgallery.adapters.storage_accounts import StorageAccounts
from vmgallery.config import AzureZone, ConfigError, Limits, S3Zone, Settings, load_settings, load_sources

from .conftest import Cli

ACCOUNT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct"


def _data_dir(tmp_path: Path, config: str = "") -> Path:
    data_dir = tmp_path / "vmg"
    data_dir.mkdir(exist_ok=True)
    if config:
        (data_dir / "config.toml").write_text(config)
    return data_dir


def test_defaults_without_a_config_file(tmp_path):
    settings = load_settings(_data_dir(tmp_path))
    assert settings.regions == ("eastus", "westus", "westeurope")
    assert settings.limits == Limits() and settings.limits.galleries_per_region == 100
    assert settings.db_url == f"sqlite:///{tmp_path / 'vmg' / 'vmgallery.db'}"
    assert (settings.page_size, settings.workers, settings.chunk_size) == (100, 1, 1 << 20)
    assert settings.zones == {} and settings.storage_accounts == {}


def test_a_flag_wins_over_the_file_which_wins_over_the_default(tmp_path):
    data_dir = _data_dir(
        tmp_path, 'regions = ["West Europe"]\nworkers = 3\npage_size = 7\n[limits]\ngalleries_per_region = 2\n'
    )
    loaded = load_sources(data_dir, regions="North Europe, eastus2,northeurope", workers=None)
    settings = loaded.settings
    assert settings.regions == ("northeurope", "eastus2")  # normalized, each once
    assert (settings.workers, settings.page_size, settings.sync_wait_seconds) == (3, 7, 2.0)
    assert settings.limits == Limits(galleries_per_region=2)
    assert loaded.source("regions") == "flag"
    assert (
        loaded.source("workers") == loaded.source("limits.galleries_per_region") == f"file {data_dir / 'config.toml'}"
    )
    assert loaded.source("limits.image_versions_per_region") == loaded.source("host") == "default"


def test_zones_and_storage_accounts_are_typed(tmp_path):
    data_dir = _data_dir(
        tmp_path,
        '[zones]\nwestus = ["/mnt/a", {kind = "azure", container = "c", account_url = "https://a", sas_token = "?sv"},'
        ' {kind = "s3", bucket = "b", secret_access_key = "s"}]\n'
        '[premium_zones]\neastus = "/nvme"\n'
        f'[storage_accounts."{ACCOUNT}"]\nblob_endpoint = "http://127.0.0.1:10000/acct"\n',
    )
    settings = load_settings(data_dir)
    folder, azure, s3 = settings.zones["westus"]
    assert folder == "/mnt/a" and settings.premium_zones == {"eastus": "/nvme"}
    assert azure == AzureZone(kind="azure", container="c", account_url="https://a", sas_token="?sv")
    assert s3 == S3Zone(kind="s3", bucket="b", secret_access_key="s")
    # The backends take a zone's fields as their arguments.
    assert dict(s3) == {
        "kind": "s3",
        "bucket": "b",
        "endpoint": None,
        "access_key_id": None,
        "secret_access_key": "s",
        "region": None,
        "prefix": "",
    }
    assert settings.storage_accounts[ACCOUNT].blob_endpoint == "http://127.0.0.1:10000/acct"


@pytest.mark.parametrize(
    ("config", "overrides", "message"),
    [
        ("limit = 3\n", {}, "limit: unknown key (in {file})"),
        ("[limits]\ngalleries = 3\n", {}, "limits.galleries: unknown key (in {file})"),
        ('page_size = "many"\n', {}, "page_size: Input should be a valid integer"),
        ("workers = -1\n", {}, "workers: Input should be greater than or equal to 0 (in {file})"),
        ("regions = []\n", {}, "regions: at least one region must be configured (in {file})"),
        ('regions = ["eastus", 7]\n', {}, "regions.1: Input should be a valid string (in {file})"),
        ("", {"port": 70000}, "port: Input should be less than or equal to 65535 (in flag --port)"),
        (
            '[zones]\nwestus = [{kind = "gcs"}]\n',
            {},
            'zones.westus.0: a zone is a folder path or a table with kind = "azure"',
        ),
        ('[zones]\nwestus = [{kind = "azure", container = "c"}]\n', {}, "zones.westus.0.account_url: Field required"),
        (
            f'[storage_accounts."{ACCOUNT}"]\nkey = "k"\n',
            {},
            f'storage_accounts."{ACCOUNT}".key: unknown key (in {{file}})',
        ),
        ("regions = [\n", {}, "{file}: not valid TOML"),
    ],
)
def test_a_bad_setting_names_its_key_and_where_it_was_given(tmp_path, config, overrides, message):
    data_dir = _data_dir(tmp_path, config)
    with pytest.raises(ConfigError) as raised:
        load_settings(data_dir, **overrides)
    assert message.format(file=data_dir / "config.toml") in str(raised.value)


def test_settings_are_frozen(tmp_path):
    settings = Settings(data_dir=tmp_path, sync_wait_seconds=0)
    with pytest.raises(ValueError):
        settings.workers = 5  # type: ignore[misc]


def test_config_show_prints_each_value_with_its_source_and_masks_secrets(tmp_path):
    data_dir = _data_dir(
        tmp_path,
        'database_url = "postgresql://vmg:hunter2@db/vmgallery"\n'
        '[zones]\nwestus = [{kind = "azure", container = "c", account_url = "https://a", account_key = "AZKEY"},'
        ' {kind = "s3", bucket = "b", access_key_id = "AKID", secret_access_key = "S3SECRET"}]\n'
        f'[storage_accounts."{ACCOUNT}"]\nsas_token = "sv=SAS"\n'
        '[storage_accounts."/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/b"]\n'
        'connection_string = "DefaultEndpointsProtocol=https;AccountName=b;AccountKey=CSKEY"\n'
        "[limits]\nimage_versions_per_region = 5\n",
    )
    out = Cli().ok("config", "show", "--data-dir", str(data_dir), "--workers", "0").stdout
    lines = {line.split(" = ", 1)[0]: line for line in out.splitlines()}
    file = f"# file {data_dir / 'config.toml'}"
    assert lines["database_url"].endswith(file) and '"postgresql://vmg:***@db/vmgallery"' in lines["database_url"]
    assert lines["workers"].startswith("workers = 0 ") and lines["workers"].endswith("# flag")
    assert lines["data_dir"].endswith("# flag")
    assert lines["page_size"].startswith("page_size = 100 ") and lines["page_size"].endswith("# default")
    assert lines["limits.image_versions_per_region"].endswith(file)
    assert lines["limits.galleries_per_region"].endswith("# default")
    assert '"tls/cert.pem"' not in out and f'tls_cert = "{data_dir / "tls" / "cert.pem"}"' in out
    assert "AKID" in lines["zones"]  # an access key id names the key; it is not the secret
    for secret in ("hunter2", "AZKEY", "S3SECRET", "SAS", "CSKEY"):
        assert secret not in out
    assert out.count('"***"') == 4


def test_config_show_refuses_a_bad_file_naming_the_key(tmp_path):
    data_dir = _data_dir(tmp_path, "[limits]\ngalleries_per_region = -1\n")
    result = Cli().run("config", "show", "--data-dir", str(data_dir))
    assert result.exit_code == 1
    assert (
        f"limits.galleries_per_region: Input should be greater than or equal to 0 (in {data_dir / 'config.toml'})"
        in (result.stderr)
    )


def test_the_adapters_take_the_typed_sections_as_wiring_hands_them_over(tmp_path):
    data_dir = _data_dir(
        tmp_path,
        '[zones]\nwestus = ["/mnt/a", {kind = "azure", container = "c", account_url = "http://127.0.0.1:1/x",'
        ' account_key = "a2V5"}, {kind = "s3", bucket = "b", endpoint = "http://127.0.0.1:1", region = "us-east-1"}]\n'
        f'[storage_accounts."{ACCOUNT}"]\nblob_endpoint = "http://127.0.0.1:1/acct"\nsas_token = "sv=x"\n',
    )
    settings = load_settings(data_dir)
    made = [zone_backend(spec, name=f"westus/zone{i}") for i, spec in enumerate(settings.zones["westus"])]
    assert [type(b) for b in made] == [FolderBackend, AzureBlobBackend, S3Backend]
    assert ACCOUNT.upper() in StorageAccounts(settings.storage_accounts)

"""Reading VHD blobs from storage accounts the operator configured: ranged, consistent reads of one blob.

A gallery image version can be made "from a VHD in a storage account": the request names the account by its ARM id
and the blob by its URL (a managed image names only the URL: `account_for` finds the account whose endpoint holds
it). vmgallery holds no Azure identity, so the operator maps each account id it may read from to
an endpoint and a credential in DATA_DIR/config.toml:

    [storage_accounts."/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Storage/storageAccounts/<name>"]
    blob_endpoint = "https://<name>.blob.core.windows.net"  # the default; any endpoint (Azurite, a sovereign cloud)
    account_key = "<base64 key>"                               # or: sas_token = "sv=...", or neither (public)

    [storage_accounts."/subscriptions/.../storageAccounts/other"]
    connection_string = "DefaultEndpointsProtocol=https;AccountName=other;AccountKey=...;EndpointSuffix=..."

Account ids match case-insensitively, as ARM's do. A blob URL must lie under its account's endpoint: naming one
account and reading another is refused, so a caller cannot use the operator's credential on other accounts.
Every read after the first pins the blob's ETag: a blob that changes mid-copy fails the copy instead of mixing two
versions. Errors are this module's exceptions, all `app.ports.StorageAccountError`; no azure exception escapes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from ..app.ports import StorageAccountError
from ..domain.ids import parse_resource_id

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, ContainerClient

# azure.storage.blob is imported where it is used, not here: it is about 15 MiB of a server's resident memory, which
# a server with no storage account configured (the default) never needs.

CREDENTIAL_KEYS = ("account_key", "sas_token", "connection_string")
CONFIG_KEYS = ("blob_endpoint",) + CREDENTIAL_KEYS


class StorageAccountNotConfigured(StorageAccountError):
    """The account id is not in the server's configuration."""


class BlobNotInAccount(StorageAccountError):
    """The blob URL is not a blob of the named account (another host, another account, or no container/blob)."""


class BlobNotFound(StorageAccountError):
    """The container or the blob does not exist."""


class BlobAccessDenied(StorageAccountError):
    """The account refused the configured credential."""


class BlobChanged(StorageAccountError):
    """The blob was modified while it was being read."""


class StorageAccountUnreachable(StorageAccountError):
    """The account's endpoint did not answer."""


@dataclass(frozen=True)
class _Account:
    account_id: str
    endpoint: str  # without a trailing slash
    credential: Any
    connection_string: str | None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"https": 443, "http": 80}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _account_name(endpoint: str) -> str:
    """The account an endpoint serves: the first path segment for path-style endpoints (emulators, IP addresses),
    the first host label otherwise, as the Azure SDK reads it."""
    parts = urlsplit(endpoint)
    first_segment = parts.path.strip("/").split("/")[0]
    return first_segment or (parts.hostname or "").split(".")[0]


def _parse_account(account_id: str, settings: Mapping[str, Any]) -> _Account:
    rid = parse_resource_id(account_id)
    if (
        rid is None
        or (rid.namespace or "").lower() != "microsoft.storage"
        or len(rid.chain) != 1
        or rid.chain[0][0].lower() != "storageaccounts"
    ):
        raise ValueError(
            f"storage_accounts: {account_id!r} is not a storage account id "
            "(/subscriptions/…/resourceGroups/…/providers/Microsoft.Storage/storageAccounts/…)"
        )
    unknown = sorted(set(settings) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"storage_accounts.{account_id!r}: unknown keys {unknown} (expected {list(CONFIG_KEYS)})")
    given = [k for k in CREDENTIAL_KEYS if settings.get(k)]
    if len(given) > 1:
        raise ValueError(f"storage_accounts.{account_id!r}: give one of {list(CREDENTIAL_KEYS)}, not {given}")
    name = rid.chain[0][1]
    connection_string = settings.get("connection_string")
    if connection_string:
        if settings.get("blob_endpoint"):
            raise ValueError(
                f"storage_accounts.{account_id!r}: the connection string names the endpoint; drop blob_endpoint"
            )
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(connection_string)
        return _Account(rid.text, service.url.rstrip("/"), None, connection_string)
    endpoint = (settings.get("blob_endpoint") or f"https://{name}.blob.core.windows.net").rstrip("/")
    if urlsplit(endpoint).scheme.lower() not in ("http", "https"):
        raise ValueError(f"storage_accounts.{account_id!r}: blob_endpoint must be an http(s) URL, not {endpoint!r}")
    credential: Any = None
    if settings.get("account_key"):
        credential = AzureNamedKeyCredential(_account_name(endpoint), settings["account_key"])
    elif settings.get("sas_token"):
        credential = AzureSasCredential(settings["sas_token"].lstrip("?"))
    return _Account(rid.text, endpoint, credential, None)


class StorageAccounts:
    """The storage accounts this server may read from, built from the config's `[storage_accounts]` table.

    Raises ValueError at construction for a malformed table, so a bad config fails at startup, not on first use.
    """

    def __init__(self, config: Mapping[str, Mapping[str, Any]]):
        self._accounts: dict[str, _Account] = {}
        for account_id, settings in config.items():
            account = _parse_account(account_id, dict(settings))
            key = account_id.rstrip("/").lower()
            if key in self._accounts:
                raise ValueError(f"storage_accounts: {account_id!r} is configured twice (ids ignore case)")
            self._accounts[key] = account

    def __contains__(self, account_id: str) -> bool:
        return account_id.rstrip("/").lower() in self._accounts

    def account_for(self, uri: str) -> str | None:
        """The id of the configured account whose blob endpoint uri lies under, or None.

        For requests that name a blob by its URL alone (a managed image's `blobUri`). When several endpoints
        contain the URL (path-style accounts on one host), the most specific one wins.
        """
        parts = urlsplit(uri)
        matches = [
            a
            for a in self._accounts.values()
            if _origin(uri) == _origin(a.endpoint)
            and parts.path.startswith(urlsplit(a.endpoint).path.rstrip("/") + "/")
        ]
        if not matches:
            return None
        return max(matches, key=lambda a: len(urlsplit(a.endpoint).path)).account_id

    def open_blob(self, storage_account_id: str, uri: str) -> BlobSource:
        """The blob at uri, in the account storage_account_id; reads its properties once.

        Raises StorageAccountNotConfigured, BlobNotInAccount, BlobNotFound, BlobAccessDenied,
        StorageAccountUnreachable (all StorageAccountError).
        """
        account = self._accounts.get(storage_account_id.rstrip("/").lower())
        if account is None:
            raise StorageAccountNotConfigured(
                f"storage account {storage_account_id} is not configured on this server "
                "(the operator adds it under [storage_accounts] in config.toml)",
                account_id=storage_account_id,
                uri=uri,
            )
        client = _client(account, uri)
        with _translated(account.account_id, uri):
            properties = client.get_blob_properties()
        blob_type = getattr(properties.blob_type, "value", properties.blob_type)
        return BlobSource(
            client, account.account_id, uri, size=properties.size, blob_type=blob_type, etag=properties.etag
        )

    def write_page_blob(self, uri: str, size: int, pages: Iterator[tuple[int, bytes]]) -> None:
        """A build's VHD output: the page blob at uri (in the configured account whose endpoint holds it) made
        `size` bytes long, then each (offset, bytes) of `pages` written; its container is made if missing.

        Raises StorageAccountNotConfigured and the errors of `open_blob` (all StorageAccountError)."""
        with self._writing(uri) as client:
            client.create_page_blob(size)
            for offset, data in pages:
                client.upload_page(data, offset=offset, length=len(data))

    def write_block_blob(self, uri: str, data: bytes) -> None:
        """A run's customization.log: the block blob at uri replaced by `data` (as `write_page_blob`)."""
        from azure.storage.blob import BlobType

        with self._writing(uri) as client:
            client.upload_blob(data, blob_type=BlobType.BLOCKBLOB, overwrite=True)

    @contextmanager
    def _writing(self, uri: str) -> Iterator[BlobClient]:
        account_id = self.account_for(uri)
        if account_id is None:
            raise StorageAccountNotConfigured(
                f"{uri} is not a blob of a storage account configured on this server "
                "(the operator adds it under [storage_accounts] in config.toml)",
                uri=uri,
            )
        account = self._accounts[account_id.rstrip("/").lower()]
        container = _container(account, uri)
        with _translated(account.account_id, uri):
            with contextlib.suppress(ResourceExistsError):
                container.create_container()
            yield container.get_blob_client(_blob_path(account, uri)[1])


def _container(account: _Account, uri: str) -> ContainerClient:
    from azure.storage.blob import ContainerClient

    name = _blob_path(account, uri)[0]
    if account.connection_string:
        return ContainerClient.from_connection_string(account.connection_string, name)
    return ContainerClient(account.endpoint, name, credential=account.credential)


def _client(account: _Account, uri: str) -> BlobClient:
    return _container(account, uri).get_blob_client(_blob_path(account, uri)[1])


def _blob_path(account: _Account, uri: str) -> tuple[str, str]:
    """(container, blob name) of uri, if it lies under the account's endpoint. A query string (a SAS the caller
    appended) is ignored: the configured credential is the one used."""

    def refuse(why: str) -> BlobNotInAccount:
        return BlobNotInAccount(
            f"blob {uri} is not in storage account {account.account_id} (endpoint {account.endpoint}): {why}",
            account_id=account.account_id,
            uri=uri,
        )

    if _origin(uri) != _origin(account.endpoint):
        raise refuse("another host")
    base = urlsplit(account.endpoint).path.rstrip("/") + "/"
    path = urlsplit(uri).path
    if not path.startswith(base):
        raise refuse("another account")
    container, _, blob = path[len(base) :].partition("/")
    if not container or not blob:
        raise refuse("the URL must name a container and a blob")
    return unquote(container), unquote(blob)


class BlobSource:
    """One blob, read by byte ranges: `size`, `blob_type` ("PageBlob", "BlockBlob", "AppendBlob"), `read`,
    `iter_ranges`. Reads are safe from several threads."""

    def __init__(self, client: BlobClient, account_id: str, uri: str, *, size: int, blob_type: str, etag: str):
        self._client = client
        self.account_id = account_id
        self.uri = uri
        self.size = size
        self.blob_type = blob_type
        self.etag = etag  # the version being read; every read is conditional on it
        self._allocated: list[tuple[int, int]] | None = None

    def read(self, offset: int, length: int) -> bytes:
        """length bytes from offset; the range must lie within the blob. Raises BlobChanged if the blob was
        modified since it was opened, and the errors of `StorageAccounts.open_blob`."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError(f"range {offset}+{length} is outside blob {self.uri} of {self.size} bytes")
        if length == 0:
            return b""
        with _translated(self.account_id, self.uri):
            data = self._client.download_blob(
                offset, length, etag=self.etag, match_condition=MatchConditions.IfNotModified
            ).readall()
        if len(data) != length:
            raise BlobChanged(
                f"blob {self.uri} returned {len(data)} bytes for a {length}-byte range",
                account_id=self.account_id,
                uri=self.uri,
            )
        return data

    def iter_ranges(self, chunk_size: int) -> Iterator[tuple[int, bytes]]:
        """(offset, bytes) for consecutive chunk_size ranges covering the blob (the last one may be shorter).

        Ranges of a page blob that hold no written pages are yielded as zeros without being downloaded: a VHD of a
        mostly empty disk costs only its data.
        """
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        for offset in range(0, self.size, chunk_size):
            length = min(chunk_size, self.size - offset)
            if self._holds_data(offset, length):
                yield offset, self.read(offset, length)
            else:
                yield offset, bytes(length)

    def _holds_data(self, offset: int, length: int) -> bool:
        if self.blob_type != "PageBlob":
            return True
        if self._allocated is None:
            with _translated(self.account_id, self.uri):
                self._allocated = [
                    (r.start, r.end + 1)  # the service's ends are inclusive
                    for r in self._client.list_page_ranges(
                        etag=self.etag, match_condition=MatchConditions.IfNotModified
                    )
                    if not r.cleared
                ]
        end = offset + length
        return any(start < end and offset < stop for start, stop in self._allocated)


@contextmanager
def _translated(account_id: str, uri: str) -> Iterator[None]:
    """Turn the Azure SDK's exceptions into this module's, naming the blob and the account."""
    where = f"blob {uri} in storage account {account_id}"
    try:
        yield
    except ResourceNotFoundError as e:
        what = "container" if e.error_code == "ContainerNotFound" else "blob"
        raise BlobNotFound(f"{where}: the {what} does not exist", account_id=account_id, uri=uri) from e
    except ResourceModifiedError as e:
        raise BlobChanged(f"{where} changed while it was being read", account_id=account_id, uri=uri) from e
    except ClientAuthenticationError as e:
        reason = getattr(e, "error_code", None) or e  # a key that is not base64 fails before any request
        raise BlobAccessDenied(
            f"{where}: access denied with the configured credential ({reason})", account_id=account_id, uri=uri
        ) from e
    except (ServiceRequestError, ServiceResponseError) as e:
        raise StorageAccountUnreachable(
            f"{where}: the endpoint did not answer ({e})", account_id=account_id, uri=uri
        ) from e
    except HttpResponseError as e:
        if e.status_code in (401, 403):
            raise BlobAccessDenied(
                f"{where}: access denied with the configured credential ({e.error_code})",
                account_id=account_id,
                uri=uri,
            ) from e
        raise StorageAccountError(
            f"{where}: the storage service failed ({e.status_code} {e.error_code or e})", account_id=account_id, uri=uri
        ) from e
    except AzureError as e:
        raise StorageAccountError(f"{where}: {e}", account_id=account_id, uri=uri) from e

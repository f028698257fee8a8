"""Blob backends on object stores: Azure Blob Storage (`AzureBlobBackend`) and S3-compatible stores (`S3Backend`).

Same contract as every backend (backend.py), by object-store means:

- `put` is one PUT of the whole object: a reader sees the old object, the new one or none, never a part.
- `mtime` is the object's Last-Modified; `touch` refreshes it in place without moving the bytes (Azure: set the
  blob's metadata; S3: copy the object onto itself replacing its metadata) and returns False if the object is gone.
- `take` cannot be a rename, which object stores lack: it copies the object to `tmp/<uuid>.taken` (server side),
  then deletes the original; `restore` copies it back unless present, `drop` deletes the copy.

Why that is still safe for GC (docs/storage-format.md, Garbage collection). The names are digests of the bytes, so
any copy of a name holds the same bytes: putting back a copy, or finding a writer's fresh copy already back in
place, is always correct. What a rename gives and copy-then-delete does not is atomicity against a writer's
`touch`: a writer may refresh the object after GC read its time and before GC deleted it, and then commit a
reference to a chunk GC is about to drop. So the delete must learn of any refresh that came before it:

- Azure: touching changes the blob's ETag, and the delete is conditional on the ETag GC read (If-Match). A refreshed
  blob is not deleted; `take` reports it as fresh and GC keeps it.
- S3: touching by copy-onto-itself keeps the ETag (it is the MD5 of the bytes), so a touch first writes a marker
  object `touched/<path>` and only then refreshes the object, failing if it is gone. GC reads the marker after its
  delete: a touch that succeeded reached the object before the delete, so its marker is older than the read and
  the taken object counts as fresh (GC puts it back). A touch that came after the delete fails, and its writer
  stores the chunk again itself, as for a folder.

Keys may carry a `prefix`, so several zones can share one container or bucket.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from .backend import BlobMissing, Immediate
from .folder import FolderBackend

TMP = "tmp/"
TOUCHED = "touched/"
COPY_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Head:
    mtime: float
    etag: str


class _TakenObject:
    def __init__(self, backend: _ObjectBackend, path: str, holding: str | None, mtime: float):
        self.backend, self.path, self.holding, self.mtime = backend, path, holding, mtime

    def restore(self) -> None:
        if self.holding is None:
            return  # never deleted: a writer refreshed it first
        if not self.backend.exists(self.path):
            self.backend._copy(self.holding, self.backend.prefix + self.path)
        self.backend._delete(self.holding)

    def drop(self) -> None:
        if self.holding is not None:
            self.backend._delete(self.holding)
            self.backend._forget(self.path)


class _ObjectBackend:
    """What both object stores share; subclasses supply the raw operations on full keys (prefix included)."""

    name: str
    prefix: str

    def put(self, path: str, data: bytes) -> None:
        self._put(self.prefix + path, bytes(data))

    def get(self, path: str) -> bytes:
        return self._get(self.prefix + path)

    def exists(self, path: str) -> bool:
        return self._head(self.prefix + path) is not None

    def mtime(self, path: str) -> float | None:
        head = self._head(self.prefix + path)
        return head.mtime if head else None

    def delete(self, path: str) -> None:
        self._delete(self.prefix + path)
        self._forget(path)

    def list(self, prefix: str) -> Iterator[tuple[str, float]]:
        skip = len(self.prefix)
        for key, mtime in self._list(self.prefix + prefix):
            yield key[skip:], mtime

    def take(self, path: str) -> _TakenObject | None:
        key = self.prefix + path
        head = self._head(key)
        if head is None:
            return None
        holding = f"{self.prefix}{TMP}{uuid.uuid4().hex}.taken"
        try:
            self._copy(key, holding)
        except BlobMissing:
            return None
        mtime = self._delete_unless_refreshed(path, head)
        if mtime is None:
            self._delete(holding)
            return _TakenObject(self, path, None, time.time())
        return _TakenObject(self, path, holding, mtime)

    def batch(self) -> Immediate:
        return Immediate(self)

    def debris(self, older_than: float) -> int:
        return 0  # a put is one request: the store keeps the whole object or none

    def _forget(self, path: str) -> None:
        """Remove what `touch` left beside an object (nothing, unless the store needs a marker)."""


class AzureBlobBackend(_ObjectBackend):
    def __init__(
        self,
        container: str,
        account_url: str,
        *,
        account_key: str | None = None,
        account_name: str | None = None,
        sas_token: str | None = None,
        prefix: str = "",
        name: str | None = None,
    ):
        if account_key:
            credential: object = {
                "account_name": account_name or _account_name(account_url),
                "account_key": account_key,
            }
        else:
            credential = sas_token
        from azure.storage.blob import BlobServiceClient  # here: 15 MiB of resident memory a folder zone never needs

        self.client = BlobServiceClient(account_url, credential=credential).get_container_client(container)
        self.prefix = prefix
        self.name = name or f"{account_url.rstrip('/')}/{container}/{prefix}".rstrip("/")

    def _blob(self, key: str):
        return self.client.get_blob_client(key)

    def _put(self, key: str, data: bytes) -> None:
        try:
            self._blob(key).upload_blob(data, overwrite=True, length=len(data), max_concurrency=1)
        except ResourceNotFoundError:
            self._create_container()
            self._blob(key).upload_blob(data, overwrite=True, length=len(data), max_concurrency=1)

    def _create_container(self) -> None:
        try:
            self.client.create_container()
        except ResourceExistsError:
            pass

    def _get(self, key: str) -> bytes:
        try:
            return self._blob(key).download_blob().readall()
        except ResourceNotFoundError:
            raise BlobMissing(key) from None

    def _head(self, key: str) -> Head | None:
        try:
            props = self._blob(key).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return Head(props.last_modified.timestamp(), props.etag)

    def touch(self, path: str) -> bool:
        try:
            self._blob(self.prefix + path).set_blob_metadata({"touched": repr(time.time())})
            return True
        except ResourceNotFoundError:
            return False

    def _delete(self, key: str) -> None:
        try:
            self._blob(key).delete_blob()
        except ResourceNotFoundError:
            pass

    def _list(self, prefix: str) -> Iterator[tuple[str, float]]:
        try:
            for blob in self.client.list_blobs(name_starts_with=prefix):
                yield blob.name, blob.last_modified.timestamp()
        except ResourceNotFoundError:
            return  # no container yet: nothing stored

    def _copy(self, source: str, target: str) -> None:
        """A server-side copy within the account; Azure may finish it asynchronously, so wait for it."""
        blob = self._blob(target)
        try:
            copy = blob.start_copy_from_url(self._blob(source).url)
            status = copy["copy_status"]
            while status == "pending":
                time.sleep(COPY_POLL_SECONDS)
                status = blob.get_blob_properties().copy.status
        except ResourceNotFoundError:
            raise BlobMissing(source) from None
        if status != "success":
            raise OSError(f"copying {source} to {target} in {self.name} ended {status}")

    def _delete_unless_refreshed(self, path: str, head: Head) -> float | None:
        try:
            self._blob(self.prefix + path).delete_blob(etag=head.etag, match_condition=MatchConditions.IfNotModified)
        except ResourceModifiedError:
            return None
        except ResourceNotFoundError:
            pass  # someone else deleted it: the copy taken is the only one left
        return head.mtime


class S3Backend(_ObjectBackend):
    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str | None = None,
        prefix: str = "",
        name: str | None = None,
    ):
        import boto3  # here, not at the top: importing it costs every start a third of a second
        from botocore.config import Config
        from botocore.exceptions import ClientError

        self._error = ClientError
        session = boto3.session.Session(
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key, region_name=region or "us-east-1"
        )
        self.client = session.client(
            "s3",
            endpoint_url=endpoint,
            config=Config(max_pool_connections=32, s3={"addressing_style": "path"} if endpoint else {}),
        )
        self.bucket = bucket
        self.region = region or "us-east-1"
        self.prefix = prefix
        self.name = name or f"s3://{bucket}/{prefix}".rstrip("/")

    @staticmethod
    def _code(exc) -> str:
        return exc.response.get("Error", {}).get("Code", "")

    def _put(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except self._error as exc:
            if self._code(exc) != "NoSuchBucket":
                raise
            self._create_bucket()
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def _create_bucket(self) -> None:
        args = {} if self.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
        try:
            self.client.create_bucket(Bucket=self.bucket, **args)
        except self._error as exc:
            if self._code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self._error as exc:
            if self._code(exc) in ("NoSuchKey", "NoSuchBucket", "404"):
                raise BlobMissing(key) from None
            raise

    def _head(self, key: str) -> Head | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except self._error as exc:
            if self._code(exc) in ("404", "NoSuchKey", "NoSuchBucket"):
                return None
            raise
        return Head(head["LastModified"].timestamp(), head["ETag"])

    def touch(self, path: str) -> bool:
        key = self.prefix + path
        self._put(self.prefix + TOUCHED + path, b"")  # first the marker GC reads after its delete (see above)
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
                Metadata={"touched": repr(time.time())},
            )
            return True
        except self._error as exc:
            if self._code(exc) in ("NoSuchKey", "404", "NoSuchBucket"):
                return False
            raise

    def _forget(self, path: str) -> None:
        self._delete(self.prefix + TOUCHED + path)

    def _delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except self._error as exc:
            if self._code(exc) not in ("NoSuchKey", "NoSuchBucket"):
                raise

    def _list(self, prefix: str) -> Iterator[tuple[str, float]]:
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", ()):
                    yield obj["Key"], obj["LastModified"].timestamp()
        except self._error as exc:
            if self._code(exc) != "NoSuchBucket":
                raise

    def _copy(self, source: str, target: str) -> None:
        try:
            self.client.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source})
        except self._error as exc:
            if self._code(exc) in ("NoSuchKey", "404", "NoSuchBucket"):
                raise BlobMissing(source) from None
            raise

    def _delete_unless_refreshed(self, path: str, head: Head) -> float | None:
        self._delete(self.prefix + path)
        marker = self._head(self.prefix + TOUCHED + path)
        return max(head.mtime, marker.mtime) if marker else head.mtime


def _account_name(account_url: str) -> str:
    """devstoreaccount1 from http://127.0.0.1:10000/devstoreaccount1 (emulator style), else the host's first label."""
    url = urlsplit(account_url)
    host = url.hostname or ""
    if host in ("localhost",) or host.replace(".", "").isdigit() or ":" in host:
        return url.path.strip("/").split("/")[0]
    return host.split(".")[0]


def zone_backend(spec: str | dict, name: str):
    """One zone from the `zones` setting: a folder path, or a table with `kind` azure or s3 (config.py)."""
    if isinstance(spec, str):
        return FolderBackend(Path(spec), name=name)
    options = dict(spec)
    kind = options.pop("kind", None)
    if kind == "azure":
        return AzureBlobBackend(name=name, **options)
    if kind == "s3":
        return S3Backend(name=name, **options)
    raise ValueError(f"zone {name}: a zone is a folder path or a table with kind azure or s3, not {kind!r}")

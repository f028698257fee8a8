"""SAS access to a disk's or snapshot's bytes: beginGetAccess, endGetAccess, and what a signed URL may do.

A grant is a row (`grants`) and a signed URL naming it: the signature (the `Signer` port, keyed with the server's
SAS key) stops tampering, the expiry stops late use, and endGetAccess deletes the row, which revokes every URL at
once.
"""

from __future__ import annotations

import copy
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..domain import disks as rules
from ..domain import errors
from ..domain.ids import ResourceId
from ..domain.manifests import Manifest
from ..domain.validate import Body
from .kinds import Kind
from .ports import ChunkReader, ResourceRow, SasDenied, Signer
from .replication import reader_for
from .resources import Outcome, Resources, check_subscription, stored_id
from .uploads import StreamedWrite, fold_upload, upload_manifest, write_pages


@dataclass
class Target:
    """What a signed URL points at."""

    row: ResourceRow
    access: str
    size: int
    manifest: Manifest | None  # None while uploading: the bytes are the upload's chunk rows
    region: str
    reader: ChunkReader  # where the bytes are read from (while uploading: the region's primary store)


# Threads that stage a page write's chunks in parallel: a 4 MiB write is four 1 MiB chunks.
STAGING_THREADS = 4


class DiskAccess:
    def __init__(self, resources: Resources, signer: Signer):
        self.resources = resources
        self.signer = signer
        self._staging = ThreadPoolExecutor(STAGING_THREADS, thread_name_prefix="chunk-staging")

    def begin(self, rid: ResourceId, body: Body, kind: Kind, base_url: str) -> Outcome:
        check_subscription(rid.subscription)
        res = self.resources
        with res.db.write() as tx:
            row = tx.get(rid.key, for_update=True)
            if row is None:
                raise res.not_found(rid, kind)
            props = row.body["properties"]
            state = props.get("diskState", "Unattached")
            access, seconds = rules.check_grant(copy.deepcopy(body), state, row.body["name"])
            if row.state != "Succeeded":
                raise errors.OperationNotAllowed(f"The {kind.noun} '{row.body['name']}' is {row.state}.", "access")
            grant_id = secrets.token_hex(16)
            expiry = int(res.clock()) + seconds
            tx.add_grant(grant_id, row.key, access, expiry)
            new = copy.deepcopy(row.body)
            new["properties"]["diskState"] = rules.state_after_grant(access)
            tx.update(row.key, state=row.state, body=new, now=res.clock())
            # An upload URL may also read, so a client resuming a killed upload can list what already landed.
            permissions = "rw" if access == "Write" else "r"
            url = f"{base_url}/_blob/sas/{grant_id}?{self.signer.query(grant_id, permissions, expiry)}"
            op = res.record_operation(
                tx,
                stored_id(row, rid),
                kind,
                row.region,
                "beginGetAccess",
                None,
                job=None,
                result={"accessSAS": url},
            )
        return Outcome(202, None, op)

    def end(self, rid: ResourceId, kind: Kind) -> Outcome:
        check_subscription(rid.subscription)
        res = self.resources
        with res.db.write() as tx:
            row = tx.get(rid.key, for_update=True)
            if row is None:
                raise res.not_found(rid, kind)
            tx.revoke_grants(row.key)
            state = row.body["properties"].get("diskState", "Unattached")
            if state == "ActiveUpload":
                store = res.stores.store(row.region)
                size = int(row.body["properties"]["creationData"]["uploadSizeBytes"])
                manifest = fold_upload(tx, row.key, size, store.chunk_size)
                tx.put_manifest(manifest, res.clock())
                tx.set_content(row.key, "disk", manifest.id)
            new = copy.deepcopy(row.body)
            new["properties"]["diskState"] = rules.state_after_end(state)
            tx.update(row.key, state=row.state, body=new, now=res.clock())
            op = res.record_operation(tx, stored_id(row, rid), kind, row.region, "endGetAccess", None, job=None)
        return Outcome(202, None, op)

    def resolve(self, grant_id: str, params: dict[str, str], need: str) -> Target:
        """The disk a signed URL may `need` ('r' or 'w'); SasDenied otherwise."""
        permissions = self.signer.check(grant_id, params, self.resources.clock())
        if need not in permissions:
            raise SasDenied(f"This SAS grants '{permissions}', not '{need}'.")
        res = self.resources
        with res.db.read() as tx:
            grant = tx.get_grant(grant_id)
            if grant is None:
                raise SasDenied("This SAS was revoked (endGetAccess) or never issued.")
            row = tx.get(grant.resource_key)
            if row is None:
                raise SasDenied("The disk of this SAS no longer exists.")
            region = row.region
            if grant.access == "Write":
                size = int(row.body["properties"]["creationData"]["uploadSizeBytes"])
                return Target(row, "Write", size, None, region, res.stores.store(region))
            manifest = tx.get_manifest(tx.contents(row.key)["disk"])
            reader = reader_for(tx, res.stores, row.key, region)
            return Target(row, "Read", manifest.size, manifest, region, reader)

    def write(self, target: Target, offset: int, data: bytes | None, length: int | None = None) -> None:
        """Page writes into a disk being uploaded (data None: clear `length` bytes)."""
        store = self.resources.stores.store(target.region)
        write_pages(
            self.resources.db, store, target.row.key, target.size, offset, data, length, mapper=self._staging.map
        )

    def begin_write(self, target: Target, offset: int, body: bytearray) -> StreamedWrite:
        """A page write whose `body` the caller fills as it arrives (StreamedWrite), then commits."""
        store = self.resources.stores.store(target.region)
        return StreamedWrite(self.resources.db, store, target.row.key, target.size, offset, body, self._staging.submit)

    def commit_write(self, write: StreamedWrite) -> None:
        write.commit(self._staging.map)

    def manifest(self, target: Target) -> Manifest:
        """The bytes a signed URL reads: the disk's manifest, or the upload so far."""
        if target.manifest is not None:
            return target.manifest
        chunk_size = self.resources.stores.store(target.region).chunk_size
        return upload_manifest(self.resources.db, target.row.key, target.size, chunk_size)

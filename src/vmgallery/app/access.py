"""SAS access to a disk's or snapshot's bytes: beginGetAccess, endGetAccess, and what a signed URL may do.

A grant is a row (`grants`) and a signed URL naming it: the signature (HMAC-SHA256 with the server's SAS key)
stops tampering, the expiry stops late use, and endGetAccess deletes the row, which revokes every URL at once.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote

from ..adapters.blobs.chunks import Manifest
from ..adapters.db.store import ResourceRow
from ..domain import disks as rules
from ..domain import errors
from ..domain.ids import ResourceId
from .kinds import Kind
from .replication import ReplicaReader, reader_for
from .resources import Outcome, Resources, _stored_id, check_subscription
from .uploads import fold_upload

SAS_VERSION = "2021-08-06"


class SasDenied(Exception):
    """A signed URL that is invalid, tampered with, expired or revoked (the data plane answers 403)."""


class SasSigner:
    def __init__(self, key: bytes):
        self.key = key

    def signature(self, grant_id: str, permissions: str, expiry: int) -> str:
        mac = hmac.new(self.key, f"{grant_id}\n{permissions}\n{expiry}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def query(self, grant_id: str, permissions: str, expiry: int) -> str:
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry))
        return (
            f"sv={SAS_VERSION}&sr=b&sp={permissions}&se={quote(expires)}&st={expiry}"
            f"&sig={self.signature(grant_id, permissions, expiry)}"
        )

    def check(self, grant_id: str, params: dict[str, str], now: float) -> str:
        """The permissions a URL's query carries; SasDenied unless it is authentic and unexpired."""
        try:
            permissions, expiry, sig = params["sp"], int(params["st"]), params["sig"]
        except (KeyError, ValueError):
            raise SasDenied("The URL is not a vmgallery SAS (sp, st and sig are required).") from None
        if not hmac.compare_digest(sig, self.signature(grant_id, permissions, expiry)):
            raise SasDenied("Signature did not match: the URL was altered or was not issued by this server.")
        if now > expiry:
            raise SasDenied(f"The SAS expired at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(expiry))}.")
        return permissions


@dataclass
class Target:
    """What a signed URL points at."""

    row: ResourceRow
    access: str
    size: int
    manifest: Manifest | None  # None while uploading: the bytes are the upload's chunk rows
    region: str
    reader: ReplicaReader | None = None


class DiskAccess:
    def __init__(self, resources: Resources, signer: SasSigner):
        self.resources = resources
        self.signer = signer

    def begin(self, rid: ResourceId, body, kind: Kind, base_url: str) -> Outcome:
        check_subscription(rid.subscription)
        res = self.resources
        with res.db.write() as tx:
            row = tx.get(rid.key, for_update=True)
            if row is None:
                raise res._not_found(rid, kind)
            props = row.body["properties"]
            state = props.get("diskState", "Unattached")
            access, seconds = rules.check_grant(copy.deepcopy(body), state, row.body["name"])
            if row.state != "Succeeded":
                raise errors.Conflict(
                    f"The {kind.noun} '{row.body['name']}' is {row.state}.", "access", code="OperationNotAllowed"
                )
            grant_id = secrets.token_hex(16)
            expiry = int(res.clock()) + seconds
            tx.add_grant(grant_id, row.key, access, expiry)
            new = copy.deepcopy(row.body)
            new["properties"]["diskState"] = rules.state_after_grant(access)
            tx.update(row.key, state=row.state, body=new, now=res.clock())
            # An upload URL may also read, so a client resuming a killed upload can list what already landed.
            permissions = "rw" if access == "Write" else "r"
            url = f"{base_url}/_blob/sas/{grant_id}?{self.signer.query(grant_id, permissions, expiry)}"
            op = res._operation(
                tx,
                _stored_id(row, rid),
                kind,
                row.location,
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
                raise res._not_found(rid, kind)
            tx.revoke_grants(row.key)
            state = row.body["properties"].get("diskState", "Unattached")
            if state == "ActiveUpload":
                store = res.services.stores.store(row.location)
                size = int(row.body["properties"]["creationData"]["uploadSizeBytes"])
                manifest = fold_upload(tx, row.key, size, store.chunk_size)
                tx.put_manifest(manifest, res.clock())
                tx.set_content(row.key, "disk", manifest.id)
            new = copy.deepcopy(row.body)
            new["properties"]["diskState"] = rules.state_after_end(state)
            tx.update(row.key, state=row.state, body=new, now=res.clock())
            op = res._operation(tx, _stored_id(row, rid), kind, row.location, "endGetAccess", None, job=None)
        return Outcome(202, None, op)

    def resolve(self, grant_id: str, params: dict[str, str], need: str) -> Target:
        """The disk a signed URL may `need` ('r' or 'w'); SasDenied otherwise."""
        permissions = self.signer.check(grant_id, params, time.time())
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
            if grant.access == "Write":
                size = int(row.body["properties"]["creationData"]["uploadSizeBytes"])
                return Target(row, "Write", size, None, row.location)
            manifest = tx.get_manifest(tx.contents(row.key)["disk"])
            reader = reader_for(tx, res.services.stores, row.key, row.location)
            return Target(row, "Read", manifest.size, manifest, row.location, reader)

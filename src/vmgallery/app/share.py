"""POST .../galleries/{g}/share: Add, Remove, Reset and EnableCommunity, as an ARM long-running operation.

The change is made in one transaction with the operation that reports it (already Succeeded): there is no
propagation to wait for, so a consumer's next request sees the new sharing, a Remove or Reset included. The caller
must hold Microsoft.Compute/galleries/share/action on the gallery (`ActionCheck`, checked before anything is read).
"""

from __future__ import annotations

import copy
import uuid

from ..domain import errors
from ..domain import sharing as rules
from ..domain.ids import ResourceId
from .kinds import GALLERY
from .resources import Outcome, Resources, check_subscription, stored_id
from .sharing import ActionCheck, caller


class ShareGallery:
    def __init__(self, resources: Resources, actions: ActionCheck):
        self.resources = resources
        self.actions = actions

    def share(self, rid: ResourceId, raw: object) -> Outcome:
        check_subscription(rid.subscription)
        update = rules.parse_sharing_update(raw)
        self.actions.check(caller(), rules.SHARE_ACTION, rid.text)
        r = self.resources
        with r.db.write() as tx:
            if tx.get(rid.group_key) is None:
                raise errors.ResourceGroupNotFound(
                    f"Resource group '{rid.resource_group}' could not be found.", "resourceGroupName"
                )
            row = tx.get(rid.key, for_update=True)
            if row is None:
                raise r.not_found(rid, GALLERY)
            active = tx.active_operation(rid.key)
            if active is not None or row.state != "Succeeded":
                raise errors.OperationNotAllowed(
                    f"Gallery '{row.body['name']}' is {row.state}"
                    + (f" (operation {active.action}, id {active.id})" if active else "")
                    + "; share it when that has finished.",
                    rid.name,
                )
            body = copy.deepcopy(row.body)
            props = body.setdefault("properties", {})
            props["sharingProfile"] = rules.apply_sharing_update(row.body, update, str(uuid.uuid4()))
            props["sharingStatus"] = rules.sharing_status(row.region)
            tx.update(row.key, state="Succeeded", body=body, now=r.clock())
            op = r.record_operation(
                tx, stored_id(row, rid), GALLERY, row.region, "share", row.body, job=None, result=update.body()
            )
        return Outcome(200, update.body(), op)

"""Image templates' triggers: a SourceImage trigger starts a run of its template when a new version of the template's
source definition becomes that definition's latest.

The hook is `replication.settle_version`, the one place a version's create ends: in that transaction,
`queue_fired` asks the rule (`domain.image_builder.trigger_fires`) of every SourceImage trigger and queues one
`source_image_trigger` background job per trigger that fires, so a crash between the version's success and the run's
start loses nothing. The job starts the run through the same use case as `POST .../run` (`Builds.run`, passed in
as `start_run`) and records what happened in the trigger's `properties.status`: a run started, or none because one
was already running (never a second run), or why the run could not start.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

from ..domain import errors
from ..domain import image_builder as rules
from ..domain.ids import ResourceId, parse_resource_id
from ..domain.timestamps import arm_time
from ..domain.validate import Body
from .operations import JobContext
from .ports import Dependencies, JobRow, ResourceRow, Transaction

log = logging.getLogger("vmgallery.triggers")

JOB_KIND = "source_image_trigger"
TRIGGER_TYPE = rules.TRIGGER_TYPE.lower()
RUNNING = ("Running", "Canceling")
PAGE = 500


def prepare_trigger(deps: Dependencies, tx: Transaction, rid: ResourceId, spec: Body) -> Body:
    """A new trigger: its template's source must be one a SourceImage trigger can follow; it starts Healthy."""
    parent = rid.parent
    template = tx.get(parent.key) if parent is not None else None
    if template is None:
        raise errors.InternalError("A trigger's image template disappeared during its create.")
    rules.check_trigger_source(template.body["properties"]["source"])
    spec["properties"]["status"] = rules.trigger_status("Healthy", "", arm_time(deps.clock()))
    return spec


def _triggers(tx: Transaction) -> list[ResourceRow]:
    rows: list[ResourceRow] = []
    after = 0
    while True:
        page = tx.page(type=TRIGGER_TYPE, after=after, limit=PAGE)
        rows += page
        if len(page) < PAGE:
            return rows
        after = page[-1].seq


def _made_by(template: Body, version: Body) -> bool:
    """A version the template's own build made (its source disk sits in the template's staging group): it must not
    start the template again, or a template that distributes to its own source would run for ever."""
    staging = parse_resource_id(template["properties"].get("exactStagingResourceGroup") or "")
    source = version["properties"].get("storageProfile", {}).get("osDiskImage", {}).get("source", {}).get("id", "")
    made_from = parse_resource_id(source or "")
    return staging is not None and made_from is not None and made_from.group_key == staging.key


def queue_fired(tx: Transaction, version_key: str, now: float) -> int:
    """In the transaction where the version `version_key` became Succeeded: queue a run for every trigger it fires.
    Returns how many were queued."""
    version = tx.get(version_key)
    if version is None:
        return 0
    latest = tx.latest_version(version.parent_key, None)
    became_latest = latest is not None and latest.key == version.key
    queued = 0
    for trigger in _triggers(tx):
        if trigger.state != "Succeeded" or trigger.body["properties"].get("kind") != "SourceImage":
            continue
        template = tx.get(trigger.parent_key)
        if template is None or not rules.trigger_fires(
            template.body["properties"]["source"], version.parent_key, became_latest
        ):
            continue
        if _made_by(template.body, version.body):
            continue
        queued += tx.queue_background_job(
            kind=JOB_KIND, subject_key=trigger.key, payload={"version": version.body["id"]}, now=now
        )
    return queued


class SourceImageTrigger:
    """The `source_image_trigger` background job: start the template's run, record the outcome on the trigger."""

    def __init__(self, start_run: Callable[[ResourceId], object]):
        self.start_run = start_run

    def work(self, ctx: JobContext) -> tuple[str, str]:
        version = (ctx.job.payload or {}).get("version", "")
        with ctx.db.read() as tx:
            trigger = tx.get(ctx.job.subject_key)
        rid = parse_resource_id(trigger.body["id"]) if trigger is not None else None
        template = rid.parent if rid is not None else None
        if trigger is None or template is None:
            return "", ""  # deleted meanwhile: nothing to start, nothing to record
        try:
            self.start_run(template)
        except errors.ArmError as exc:
            with ctx.db.read() as tx:
                row = tx.get(template.key)
            state = ((row.body["properties"].get("lastRunStatus") or {}) if row else {}).get("runState")
            if exc.status == 409 and state in RUNNING:
                return "Healthy", (
                    f"The new source image version '{version}' arrived while a run of the image template was in "
                    "progress; no second run was started."
                )
            return "Unhealthy", f"The new source image version '{version}' could not start a run: {exc.message}"
        log.info("trigger started a run", extra={"trigger": trigger.key, "version": version})
        return "Healthy", f"A run of the image template was started for the new source image version '{version}'."

    def commit(self, tx: Transaction, job: JobRow, result: tuple[str, str], now: float) -> None:
        code, message = result
        if code:
            _record(tx, job.subject_key, code, message, now)
        return None

    def failed(self, tx: Transaction, job: JobRow, error: Exception, now: float) -> None:
        _record(tx, job.subject_key, "Unhealthy", f"The trigger could not start a run: {error}", now)
        return None


def _record(tx: Transaction, trigger_key: str, code: str, message: str, now: float) -> None:
    row = tx.get(trigger_key, for_update=True)
    if row is None:
        return
    body = copy.deepcopy(row.body)
    body["properties"]["status"] = rules.trigger_status(code, message, arm_time(now))
    tx.update(row.key, state=row.state, body=body, now=now)

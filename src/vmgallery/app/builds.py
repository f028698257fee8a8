"""Image builds: run, cancel, run outputs, the live log, and the `image_build` job that does the work.

A run is an operation on the template's `runs/current` subject (so a running build never makes the template itself
busy: PATCH, cancel and delete still answer at once) whose job:
1. materializes the source's bytes as a local raw file (grown to vmProfile.osDiskSizeGB), fetches every script and
   file the steps name and checks each checksum before anything runs;
2. runs the customizers, then the validations, then (for generalized outputs) the deprovision step in one run of the
   build engine (one machine however many steps and outputs), every output line tagged `[n name]` into the
   template's log as it comes;
3. stores the result as a disk in the staging resource group and distributes it through the ordinary use cases
   (a gallery image version or a managed image made from that disk: no byte copied), one run output each;
4. removes the build's resources (kept after a failure when errorHandling says abort).
`lastRunStatus` follows each phase. Cancel and delete are seen by the job within a second (`should_stop`); a job
whose worker died is taken over by another and starts again from its source; one that ran out of attempts leaves a
run that the next read of the template reports as Failed (`build_templates.stale_run`).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..domain import errors
from ..domain import image_builder as rules
from ..domain.disks import FOOTER, GIB
from ..domain.ids import ResourceId, parse_resource_id
from ..domain.timestamps import arm_time
from ..domain.validate import Body
from . import build_templates
from .build_engine import BuildEngine, BuildEngineError, BuildInterrupted, BuildStep, Machine, StepResult
from .build_outputs import customization_log_uri, publish_log, write_vhd
from .content import write_image
from .kinds import DISK, IMAGE, IMAGE_TEMPLATE, IMAGE_VERSION
from .operations import MAX_ATTEMPTS, JobContext, LeaseLost
from .platform_images import raw_pieces
from .ports import Clock, OperationRow, RegionStores, ResourceRow, StorageAccountError, Transaction
from .replication import ReplicaReader
from .resources import Outcome, Resources, check_subscription, stored_id

log = logging.getLogger("vmgallery.builds")

JOB_KIND = "image_build"
Fetch = Callable[[str], bytes]  # the bytes at a URI the template's rules allowed (storage account or https)
Engines = Callable[[str], BuildEngine]  # an engine by name


def run_subject(rid: ResourceId) -> ResourceId:
    return rid.child("runs", "current")


class Builds:
    """The use cases of a template's runs."""

    def __init__(self, resources: Resources):
        self.resources = resources

    def _template(self, tx: Transaction, rid: ResourceId) -> ResourceRow:
        row = tx.get(rid.key, for_update=True)
        if row is None or row.type != IMAGE_TEMPLATE.type_key:
            raise self.resources.not_found(rid, IMAGE_TEMPLATE)
        return row

    def run(self, rid: ResourceId) -> Outcome:
        check_subscription(rid.subscription)
        res = self.resources
        with res.db.write() as tx:
            row = self._template(tx, rid)
            if row.state != "Succeeded":
                raise errors.Conflict(f"The image template '{rid.name}' is {row.state}.", rid.name)
            body = row.body
            if build_templates.stale_run(tx, row):
                body = build_templates.close_stale_run(tx, row, res.clock())
            state = (body["properties"].get("lastRunStatus") or {}).get("runState")
            if state in ("Running", "Canceling"):
                raise errors.Conflict(
                    f"The image template '{rid.name}' is already building; cancel that run or wait for it.",
                    rid.name,
                    code="Conflict",
                )
            now = res.clock()
            body = copy.deepcopy(body)
            body["properties"]["lastRunStatus"] = rules.run_status("Running", "Queued", arm_time(now))
            tx.update(row.key, state=row.state, body=body, now=now)
            tx.clear_build_log(row.key)
            op = res.record_operation(
                tx, run_subject(stored_id(row, rid)), IMAGE_TEMPLATE, row.region, "run", None, job=JOB_KIND
            )
        res.waiter.kick()
        return Outcome(202, None, op)

    def cancel(self, rid: ResourceId) -> Outcome:
        check_subscription(rid.subscription)
        res = self.resources
        with res.db.write() as tx:
            row = self._template(tx, rid)
            body = copy.deepcopy(row.body)
            status = body["properties"].get("lastRunStatus") or {}
            if status.get("runState") not in ("Running", "Canceling") or build_templates.stale_run(tx, row):
                raise errors.Conflict(f"The image template '{rid.name}' has no build in progress.", rid.name)
            status["runState"] = "Canceling"
            body["properties"]["lastRunStatus"] = status
            tx.update(row.key, state=row.state, body=body, now=res.clock())
            op = res.record_operation(
                tx, run_subject(stored_id(row, rid)), IMAGE_TEMPLATE, row.region, "cancel", None, job=None
            )
        return Outcome(202, None, op)

    def run_outputs(self, rid: ResourceId) -> list[Body]:
        check_subscription(rid.subscription)
        with self.resources.db.read() as tx:
            row = tx.get(rid.key)
            if row is None:
                raise self.resources.not_found(rid, IMAGE_TEMPLATE)
            return [r.body for r in tx.children(row.key, 1000) if r.type == build_templates.RUN_OUTPUT_TYPE]

    def run_output(self, rid: ResourceId, name: str) -> Body:
        for body in self.run_outputs(rid):
            if body["name"].lower() == name.lower():
                return body
        raise errors.NotFound(f"The run output '{name}' of image template '{rid.name}' was not found.", name)

    def log(self, rid: ResourceId, after: int, limit: int = 1000) -> Body:
        """The run's log lines after line `after`, and the run's status (a vmgallery extension)."""
        check_subscription(rid.subscription)
        with self.resources.db.read() as tx:
            row = tx.get(rid.key)
            if row is None:
                raise self.resources.not_found(rid, IMAGE_TEMPLATE)
            lines = tx.build_log(row.key, after, max(1, min(limit, 5000)))
            status = row.body["properties"].get("lastRunStatus") or {}
            if build_templates.stale_run(tx, row):
                status = {**status, "runState": "Failed"}
        return {
            "lines": [{"seq": s, "time": arm_time(at), "line": line} for s, at, line in lines],
            "next": lines[-1][0] if lines else after,
            "lastRunStatus": status,
        }


class StepFailed(Exception):
    def __init__(self, message: str, phase: str):
        super().__init__(message)
        self.message, self.phase = message, phase


@dataclass
class _Run:
    """One attempt at a run: where it works and what it has said so far."""

    template_key: str
    rid: ResourceId
    region: str
    spec: Body
    start: str
    workdir: Path
    disk: tuple[Path, int, rules.ImageFacts] | None = None  # the build's disk once materialized


class ImageBuild:
    """The `image_build` operation job (see the module's docstring)."""

    def __init__(
        self,
        resources: Resources,
        stores: RegionStores,
        clock: Clock,
        engines: Engines,
        fetch: Fetch,
        default_engine: str,
        workdir: Path,
        check_identity: Callable[[Body], None] | None = None,
    ):
        self.resources, self.stores, self.clock = resources, stores, clock
        self.engines, self.fetch, self.default_engine = engines, fetch, default_engine
        self.workdir = workdir
        # The template's identities still hold what its source and targets need (app.authorization).
        self.check_identity = check_identity

    # -- status and log --------------------------------------------------------------------------------------
    def _status(self, ctx: JobContext, run: _Run, state: str, sub: str | None, message: str = "") -> None:
        end = arm_time(self.clock()) if state in rules.FINISHED_RUN_STATES else None
        with ctx.holding_lease() as tx:
            row = tx.get(run.template_key, for_update=True)
            if row is None:
                return
            body = copy.deepcopy(row.body)
            current = (body["properties"].get("lastRunStatus") or {}).get("runState")
            if current == "Canceling" and state == "Running":
                return  # a cancel asked meanwhile: keep showing it
            body["properties"]["lastRunStatus"] = rules.run_status(state, sub, run.start, end, message)
            tx.update(row.key, state=row.state, body=body, now=self.clock())

    def _check_cancel(self, ctx: JobContext, run: _Run) -> None:
        """Between phases: a cancel (or the template's delete) stops the run here too, not only inside the engine."""
        with ctx.db.read() as tx:
            row = tx.get(run.template_key)
        if row is None or (row.body["properties"].get("lastRunStatus") or {}).get("runState") == "Canceling":
            raise BuildInterrupted("cancelled")

    def _say(self, ctx: JobContext, run: _Run, lines: list[str]) -> None:
        now = self.clock()
        with ctx.holding_lease() as tx:
            tx.append_build_log(run.template_key, [(now, line) for line in lines])

    # -- the job ---------------------------------------------------------------------------------------------
    def work(self, ctx: JobContext, op: OperationRow) -> Body:
        template_key = op.resource_key.removesuffix(build_templates.RUN_SUFFIX)
        with ctx.db.read() as tx:
            row = tx.get(template_key)
        if row is None:
            raise errors.ArmError("The image template was deleted; the run was canceled.", code="Canceled")
        rid = parse_resource_id(row.body["id"])
        if rid is None:
            raise errors.InternalError(f"The image template's id '{row.body['id']}' does not parse.")
        start = (row.body["properties"].get("lastRunStatus") or {}).get("startTime") or arm_time(self.clock())
        run = _Run(template_key, rid, row.region, row.body, start, self.workdir / op.id)
        shutil.rmtree(run.workdir, ignore_errors=True)  # an earlier attempt's leftovers: start again from the source
        run.workdir.mkdir(parents=True)
        if ctx.job.attempts >= MAX_ATTEMPTS:
            message = f"The build was interrupted {ctx.job.attempts - 1} times (workers stopped); it was given up."
            self._status(ctx, run, "Failed", None, message)
            raise errors.ArmError(message, code="BuildInterrupted")
        if ctx.job.attempts > 1:
            self._say(ctx, run, [f"[0 vmgallery] attempt {ctx.job.attempts}: the previous worker stopped; restarting"])
        container = self.resources.settings.builder.customization_log_container
        log_uri = customization_log_uri(container, op.id) if container else None
        if log_uri:
            self._say(ctx, run, [f"[0 vmgallery] customization.log: {log_uri} (written when the run ends)"])
        try:
            outcome = self._build(ctx, run)
        except StepFailed as failed:
            handling = run.spec["properties"].get("errorHandling") or {}
            key = "onValidationError" if failed.phase == "validate" else "onCustomizerError"
            message = failed.message
            if handling.get(key) == "abort" and run.disk is not None:
                disk_id = self._stage(ctx, run, run.disk[0], run.disk[1], run.disk[2], "build-failed")
                message += f"\nThe build's disk is kept for inspection (errorHandling abort): {disk_id.text}"
            self._status(ctx, run, "Failed", None, message)
            raise errors.ArmError(message, code="BuildFailed") from None
        except BuildInterrupted as stop:
            if stop.reason == "timeout":
                message = (
                    f"The build timed out after {rules.timeout_minutes(run.spec)} minutes (buildTimeoutInMinutes)."
                )
                self._status(ctx, run, "Failed", None, message)
                raise errors.ArmError(message, code="BuildTimeout") from None
            self._status(ctx, run, "Canceled", None, "The build was canceled.")
            raise errors.ArmError("The build was canceled.", code="Canceled") from None
        except BuildEngineError as exc:
            self._status(ctx, run, "Failed", None, f"The build engine failed: {exc}")
            raise errors.ArmError(f"The build engine failed: {exc}", code="BuildEngineError") from None
        except errors.ArmError as exc:
            self._status(ctx, run, "Failed", None, exc.message)
            raise
        except LeaseLost:
            raise  # another worker has the run now
        except Exception as exc:  # anything else still ends the run as Failed, never leaves it Running
            log.exception("build crashed", extra={"template": run.template_key})
            self._status(ctx, run, "Failed", None, f"The build failed: {exc}")
            raise
        finally:
            shutil.rmtree(run.workdir, ignore_errors=True)
            if log_uri:
                self._publish_log(ctx, run, log_uri)
        return outcome

    def _publish_log(self, ctx: JobContext, run: _Run, uri: str) -> None:
        try:
            publish_log(ctx.db, self.resources.accounts, run.template_key, uri)
        except StorageAccountError as exc:  # the run's outcome stands; the live log says why the copy is missing
            log.warning("customization.log not written", extra={"template": run.template_key, "error": str(exc)})
            self._say(ctx, run, [f"[0 vmgallery] customization.log could not be written: {exc}"])

    def finish(self, tx: Transaction, op: OperationRow, result: Body) -> None:
        return None

    def _build(self, ctx: JobContext, run: _Run) -> Body:
        spec = run.spec
        props = spec["properties"]
        if self.check_identity is not None:
            self.check_identity(spec)  # the build acts as the identity: a role removed since creation stops it here
        self._status(ctx, run, "Running", "Building")
        with ctx.db.read() as tx:
            source = build_templates.resolve_source(tx, spec, run.region)
            manifest = tx.get_manifest(tx.contents(source.row.key)["os"])
            reader = self._reader(tx, source.row)
            targets = self._target_states(tx, spec)
        raw = run.workdir / "disk.raw"
        raw_size = manifest.size - FOOTER
        with raw.open("wb") as f:
            # Holes stay holes: a sparse file, so a mostly empty disk costs only its data.
            for i, digest in enumerate(manifest.digests):
                offset, length = manifest.span(i)
                if offset >= raw_size:
                    break
                if digest is not None:
                    f.seek(offset)
                    f.write(reader.get(digest)[: raw_size - offset])
                if i % 64 == 0:
                    ctx.heartbeat()
                    self._check_cancel(ctx, run)
            f.truncate(raw_size)
        wanted = ((props.get("vmProfile") or {}).get("osDiskSizeGB") or 0) * GIB
        if wanted > raw_size:
            with raw.open("r+b") as f:
                f.truncate(wanted)
            raw_size = wanted
        run.disk = (raw, raw_size, source.facts)
        steps = self._steps(run, targets)
        _, vcpus, memory = rules.machine_shape(spec, source.facts.hyper_v_generation)
        machine = Machine(vcpus, memory, source.facts.os_type, source.facts.hyper_v_generation)
        engine = self.engines(props.get(rules.ENGINE_PROPERTY) or self.default_engine)
        validation_failed: str | None = None
        continue_on_failure = (props.get("validate") or {}).get("continueDistributeOnFailure", False)
        only_source = (props.get("validate") or {}).get("sourceValidationOnly", False)
        # Every step in one machine (an appliance launch or a boot costs far more than a step).
        todo = [s for s in steps if s.phase == "validate"] if only_source else steps
        while todo:
            results = self._run_engine(ctx, run, engine, raw, todo, machine)
            failed = next((r for r in results if r.exit_code != 0), None)
            if failed is None:
                break
            phase = next(s.phase for s in todo if s.number == failed.number)
            message = rules.failure_message(failed.name, failed.number, failed.exit_code, failed.tail)
            if phase != "validate" or not continue_on_failure:
                raise StepFailed(message, phase)
            validation_failed = message
            # The engine stopped at the failed validation; the image still goes out, deprovisioned: a second
            # machine for that alone, only on this path.
            todo = [s for s in todo if s.phase == "deprovision"]
        if only_source:
            self._status(ctx, run, "Succeeded", None, "The source image was validated; nothing was distributed.")
            return {}
        self._check_cancel(ctx, run)
        self._status(ctx, run, "Running", "Distributing")
        outputs = self._distribute(ctx, run, raw, raw_size, source)
        if validation_failed is not None:
            message = f"Validation failed; distributed anyway (continueDistributeOnFailure). {validation_failed}"
            self._status(ctx, run, "Failed", None, message)
            raise errors.ArmError(message, code="ValidationFailed")
        self._status(ctx, run, "Succeeded", None, "")
        return outputs

    def _reader(self, tx: Transaction, row: ResourceRow) -> ReplicaReader:
        """The stores a source's bytes are read from: a version's completed replicas in the region, then its
        other ones; anything else, the region's primary store."""
        stores = [self.stores.store(row.region)]
        replicas = [r for r in tx.replicas_of(row.key) if r.state == "Completed"]
        replicas.sort(key=lambda r: (r.region != row.region, r.idx))
        ordered = [self.stores.replica(self.stores.placement(r.region, r.idx, r.storage_type)) for r in replicas]
        unique: list[Any] = []
        for store in ordered + stores:
            if all(store is not u for u in unique):
                unique.append(store)
        return ReplicaReader(unique)

    def _target_states(self, tx: Transaction, spec: Body) -> list[str]:
        states = []
        for i, item in enumerate(spec["properties"]["distribute"]):
            if item["type"] == "SharedImage":
                definition, _ = build_templates.target_definition(tx, item, f"properties.distribute[{i}]")
                states.append(definition.body["properties"].get("osState", "Generalized"))
            else:
                states.append("Generalized")
        return states

    def _fetched(self, run: _Run, uri: str, checksum: str | None, number: int, name: str, phase: str) -> Path:
        try:
            data = self.fetch(uri)
        except Exception as exc:  # the fetch adapter's failures name what could not be read
            raise StepFailed(f"Step {number} '{name}': '{uri}' could not be downloaded: {exc}", phase) from None
        if checksum and hashlib.sha256(data).hexdigest() != checksum.lower():
            raise StepFailed(
                f"Step {number} '{name}': the sha256 checksum of '{uri}' is {hashlib.sha256(data).hexdigest()}, not "
                f"{checksum}; nothing was run.",
                phase,
            )
        path = run.workdir / f"step{number}"
        path.write_bytes(data)
        return path

    def _steps(self, run: _Run, target_states: list[str]) -> list[BuildStep]:
        """Every step, its files fetched and checked before any runs (a checksum mismatch fails the build here)."""
        props = run.spec["properties"]
        items = [("customize", c) for c in props.get("customize", [])] + [
            ("validate", v) for v in (props.get("validate") or {}).get("inVMValidations", [])
        ]
        steps: list[BuildStep] = []
        for number, (phase, item) in enumerate(items, start=1):
            name = item.get("name") or f"{item['type'].lower()}-{number}"
            kind = item["type"]
            if kind == "File":
                path = self._fetched(run, item["sourceUri"], item.get("sha256Checksum"), number, name, phase)
                steps.append(BuildStep(number, name, phase, upload_from=path, upload_to=item["destination"]))
            elif kind in ("Shell", "PowerShell"):
                if item.get("scriptUri"):
                    path = self._fetched(run, item["scriptUri"], item.get("sha256Checksum"), number, name, phase)
                    script = path.read_text(errors="replace")
                else:
                    script = "\n".join(item["inline"])
                steps.append(BuildStep(number, name, phase, shell=script))
            elif kind == "WindowsRestart":
                steps.append(BuildStep(number, name, phase, shell=item.get("restartCommand"), reboot=True))
            else:
                steps.append(BuildStep(number, name, phase))
        if rules.generalized(target_states):
            steps.append(BuildStep(len(steps) + 1, "deprovision", "deprovision", shell=rules.DEPROVISION_SCRIPT))
        return steps

    def _run_engine(
        self, ctx: JobContext, run: _Run, engine: BuildEngine, raw: Path, steps: list[BuildStep], machine: Machine
    ) -> list[StepResult]:
        pending: list[str] = []
        lock = threading.Lock()
        last_flush = [time.monotonic()]
        last_check = [0.0]
        stop: list[str | None] = [None]
        lost: list[LeaseLost] = []

        def flush() -> None:
            with lock:
                lines, pending[:] = list(pending), []
            if lines:
                self._say(ctx, run, lines)
            last_flush[0] = time.monotonic()

        def say(step: BuildStep, line: str) -> None:
            with lock:
                pending.append(f"[{step.number} {step.name}] {line}")

        def on_line(step: BuildStep, line: str) -> None:
            if step.phase != phase[0]:  # the machine has moved on to the next phase's steps
                phase[0] = step.phase
                flush()
                self._status(ctx, run, "Running", _SUB_STATES[step.phase])
            say(step, line)
            if time.monotonic() - last_flush[0] > 0.3 or len(pending) > 100:
                flush()

        def should_stop() -> str | None:
            if stop[0] is None and time.monotonic() - last_check[0] >= 0.2:
                last_check[0] = time.monotonic()
                flush()
                try:
                    ctx.heartbeat()
                except LeaseLost as exc:
                    lost.append(exc)
                    stop[0] = "cancelled"
                with ctx.db.read() as tx:
                    row = tx.get(run.template_key)
                if row is None or (row.body["properties"].get("lastRunStatus") or {}).get("runState") == "Canceling":
                    stop[0] = "cancelled"
            return stop[0]

        deadline = time.monotonic() + rules.timeout_minutes(run.spec) * 60 - _elapsed(run.start, self.clock())
        phase = [steps[0].phase]
        self._status(ctx, run, "Running", _SUB_STATES[phase[0]])
        for step in steps:
            say(step, f"starting ({step.phase})")
        try:
            results = engine.run(raw, steps, machine, on_line=on_line, should_stop=should_stop, deadline=deadline)
        finally:
            flush()
        if lost:
            raise lost[0]
        for r in results:
            say(next(s for s in steps if s.number == r.number), f"exit code {r.exit_code} after {r.seconds:.1f} s")
        flush()
        return results

    # -- distribution ----------------------------------------------------------------------------------------
    def _distribute(self, ctx: JobContext, run: _Run, raw: Path, raw_size: int, source: Any) -> Body:
        """The built disk into the staging group, then each target made from it through the ordinary use cases."""
        disk_id = self._stage(ctx, run, raw, raw_size, source.facts, "build")
        props = run.spec["properties"]
        outputs: Body = {}
        for i, item in enumerate(props["distribute"]):
            artifact, uri, state = self._one_target(ctx, run, item, i, disk_id, source)
            self._record_output(ctx, run, item["runOutputName"], artifact, uri, state)
            outputs[item["runOutputName"]] = artifact
        keeps_disk = any(item["type"] == "VHD" and not item.get("uri") for item in props["distribute"])
        if not keeps_disk:
            with ctx.holding_lease() as tx:
                tx.drop_contents(disk_id.key)
                tx.delete(disk_id.key)
        return outputs

    def _stage(
        self, ctx: JobContext, run: _Run, raw: Path, raw_size: int, facts: rules.ImageFacts, name: str
    ) -> ResourceId:
        """The disk at `raw` as the managed disk `name` of the template's staging resource group."""
        store = self.stores.store(run.region)
        with raw.open("rb") as f:
            manifest = write_image(store, raw_pieces(f, raw_size, store.chunk_size), raw_size + FOOTER)
        props = run.spec["properties"]
        staging = parse_resource_id(props["exactStagingResourceGroup"])
        if staging is None:
            raise errors.InternalError("The template has no staging resource group.")
        disk_id = ResourceId(staging.subscription, staging.resource_group, "Microsoft.Compute", (("disks", name),))
        now = self.clock()
        with ctx.holding_lease() as tx:
            tx.put_manifest(manifest, now)
            if tx.get(disk_id.key, for_update=True) is not None:
                tx.drop_contents(disk_id.key)
                tx.delete(disk_id.key)
            tx.insert(
                key=disk_id.key,
                type=DISK.type_key,
                parent_key=staging.key,
                subscription=staging.subscription.lower(),
                group_key=staging.key,
                location=run.region,
                natural_key=None,
                state="Succeeded",
                body={
                    "id": disk_id.text,
                    "name": name,
                    "type": DISK.type,
                    "location": run.region,
                    "sku": {"name": "Standard_LRS"},
                    "properties": {
                        "osType": facts.os_type,
                        "hyperVGeneration": facts.hyper_v_generation,
                        "supportedCapabilities": {"architecture": facts.architecture},
                        "creationData": {"createOption": "Empty"},
                        "diskSizeGB": -(-raw_size // GIB),
                        "diskSizeBytes": raw_size,
                        "diskState": "Unattached",
                        "provisioningState": "Succeeded",
                    },
                },
                now=now,
            )
            tx.set_content(disk_id.key, "disk", manifest.id)
        return disk_id

    def _one_target(
        self, ctx: JobContext, run: _Run, item: Body, index: int, disk_id: ResourceId, source: Any
    ) -> tuple[str | None, str | None, str]:
        res = self.resources
        tags = item.get("artifactTags") or {}
        if item["type"] == "SharedImage":
            with ctx.db.read() as tx:
                definition, explicit = build_templates.target_definition(
                    tx, item, f"properties.distribute[{index}].galleryImageId"
                )
                existing = [r.body["name"] for r in tx.children(definition.key, 100000)]
            versioning = item.get("versioning") or {"scheme": "Latest", "major": -1}
            if explicit:
                name = explicit
            elif versioning.get("scheme") == "Source" and source.version:
                name = rules.source_version(source.version)
            else:
                name = rules.next_version(existing, versioning.get("major", -1))
            def_id = parse_resource_id(definition.body["id"])
            if def_id is None:
                raise errors.InternalError("a definition id does not parse")
            vid = def_id.child("versions", name)
            profile: Body = {
                "targetRegions": rules.target_regions(item, run.region),
                "excludeFromLatest": bool(item.get("excludeFromLatest", False)),
            }
            if item.get("storageAccountType"):
                profile["storageAccountType"] = item["storageAccountType"]
            body = {
                "location": run.region,
                "tags": tags,
                "properties": {
                    "publishingProfile": profile,
                    "storageProfile": {"osDiskImage": {"source": {"id": disk_id.text}}},
                },
            }
            outcome = res.put(vid, body, IMAGE_VERSION)
            state = (outcome.body or {}).get("properties", {}).get("provisioningState", "Succeeded")
            return vid.text, None, state
        if item["type"] == "ManagedImage":
            iid = parse_resource_id(item["imageId"])
            if iid is None:
                raise errors.InternalError("a managed image id does not parse")
            body = {
                "location": run.region,
                "tags": tags,
                "properties": {
                    "hyperVGeneration": source.facts.hyper_v_generation,
                    "storageProfile": {
                        "osDisk": {
                            "osType": source.facts.os_type,
                            "osState": "Generalized",
                            "managedDisk": {"id": disk_id.text},
                        }
                    },
                },
            }
            outcome = res.put(iid, body, IMAGE)
            state = (outcome.body or {}).get("properties", {}).get("provisioningState", "Succeeded")
            return iid.text, None, state
        if item.get("uri") and run.disk is not None:
            write_vhd(res.accounts, item["uri"], run.disk[0], run.disk[1], ctx.heartbeat)
            return None, item["uri"], "Succeeded"
        # VHD: the staging disk is kept; its bytes are served as a fixed VHD at its access URL.
        return None, disk_id.text, "Succeeded"

    def _record_output(
        self, ctx: JobContext, run: _Run, name: str, artifact: str | None, uri: str | None, state: str
    ) -> None:
        out_id = run.rid.child("runOutputs", name)
        body: Body = {
            "id": out_id.text,
            "name": name,
            "type": rules.RUN_OUTPUT_TYPE,
            "properties": {"provisioningState": "Succeeded" if state in ("Succeeded", "Creating") else state},
        }
        if artifact:
            body["properties"]["artifactId"] = artifact
        if uri:
            body["properties"]["artifactUri"] = uri
        now = self.clock()
        with ctx.holding_lease() as tx:
            if tx.get(out_id.key, for_update=True) is not None:
                tx.update(out_id.key, state="Succeeded", body=body, now=now)
            else:
                tx.insert(
                    key=out_id.key,
                    type=build_templates.RUN_OUTPUT_TYPE,
                    parent_key=run.template_key,
                    subscription=run.rid.subscription.lower(),
                    group_key=run.rid.group_key,
                    location=run.region,
                    natural_key=None,
                    state="Succeeded",
                    body=body,
                    now=now,
                )


_SUB_STATES = {"customize": "Customizing", "validate": "Validating", "deprovision": "Customizing"}


def _elapsed(start: str, now: float) -> float:
    """Seconds since the run started (a retried attempt has less time left)."""
    from datetime import datetime

    try:
        return max(0.0, now - datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0.0

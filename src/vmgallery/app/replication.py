"""The replication engine: make each version's replicas exist, copying only the chunks a store lacks.

A replica's job (background kind `replicate`, its subject the replica) reads the version's manifests, and for every
chunk the destination store lacks copies the stored frame from a replica that has it, verifying the digest before it
is written. Work is idempotent (a chunk already present is only refreshed), so a job resumed after its worker died
re-copies at most the batch that was not yet durable (`replication_batch_bytes`). A failure marks the replica Failed
with what went wrong and retries it later with backoff, leaving every other replica alone.

Every replica state write goes through `move`: it must be a move the domain's transition table allows, and it names
the state it expects to leave, so a writer that lost a race learns it and acts on what the row says now. A replica
has one live job at a time, and that job writes only while it holds its lease.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from ..domain import replication as rules
from ..domain.manifests import CorruptChunk, Manifest, MissingChunk
from ..domain.validate import Body
from . import build_triggers
from .operations import JobContext, with_state
from .ports import Batch, ChunkStore, JobRow, RegionStores, Transaction

log = logging.getLogger("vmgallery.replication")
T = TypeVar("T")

RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 300.0
# Chunks a replica job copies at once: BLAKE3 and zstd release the GIL, and reads overlap writes
# (bench/replication.py measured it).
COPY_THREADS = 4


@dataclass
class Counters:
    """What the engine moved, per process: tests and benchmarks assert on these."""

    chunks_copied: int = 0
    bytes_copied: int = 0
    chunks_present: int = 0
    healed: int = 0


COUNTERS = Counters()
_lock = threading.Lock()


def subject(version_key: str, region: str, idx: int) -> str:
    """What a replica's job works on, as the jobs table names it: the replica under its version's key."""
    return f"{version_key}/replicas/{region}/{idx}"


def queue_copy(tx: Transaction, version_key: str, region: str, idx: int, now: float) -> bool:
    """Queue the replica's copy job unless it has a live one already (which will see the replica as it is now)."""
    return tx.queue_background_job(
        kind="replicate",
        subject_key=subject(version_key, region, idx),
        payload={"version": version_key, "region": region, "index": idx},
        now=now,
    )


def move(
    tx: Transaction,
    version_key: str,
    region: str,
    idx: int,
    *,
    expected: str,
    to: str,
    now: float,
    error: str | None = None,
    bytes_total: int | None = None,
    bytes_done: int | None = None,
    bytes_copied: int | None = None,
    chunks_copied: int | None = None,
) -> bool:
    """The one way a replica's state changes: a move the transition table allows (else RefusedTransition), applied
    only if the row is still in `expected`. False: another writer moved it first, or it is gone."""
    rules.check_move(expected, to)
    return tx.move_replica(
        version_key,
        region,
        idx,
        expected=expected,
        to=to,
        now=now,
        error=error,
        bytes_total=bytes_total,
        bytes_done=bytes_done,
        bytes_copied=bytes_copied,
        chunks_copied=chunks_copied,
    )


def sync_replicas(
    tx: Transaction,
    stores: RegionStores,
    version_key: str,
    spec: Body,
    now: float,
    source_region: str,
    captured: bool,
) -> rules.Plan:
    """Make the replica rows match the spec; queue a job for each new replica (the source's first replica is the
    capture itself, unless it is premium: then a job copies the capture to the premium zone)."""
    plan = rules.plan(((r.region, r.idx) for r in tx.replicas_of(version_key)), spec)
    for region, idx in plan.removed:
        tx.drop_replica(version_key, region, idx)
    for w in plan.added:
        primary = (
            w.region == source_region
            and w.index == 0
            and stores.is_primary(stores.placement(w.region, w.index, w.storage_type))
        )
        tx.add_replica(
            version_key,
            w.region,
            w.index,
            w.storage_type,
            now,
            state=rules.COMPLETED if primary and captured else rules.PENDING,
        )
        if not primary:
            queue_copy(tx, version_key, w.region, w.index, now)
    return plan


def states(tx: Transaction, version_key: str) -> list[rules.ReplicaState]:
    return [
        rules.ReplicaState(r.region, r.idx, r.state, r.bytes_total, r.bytes_done, r.error)
        for r in tx.replicas_of(version_key)
    ]


def usable_regions(tx: Transaction, version_key: str) -> set[str]:
    by_region: dict[str, list[str]] = {}
    for r in tx.replicas_of(version_key):
        by_region.setdefault(r.region, []).append(r.state)
    return {region for region, s in by_region.items() if all(x == rules.COMPLETED for x in s)}


def capture_is_first_replica(ctx: JobContext, stores: RegionStores, version_key: str, source_region: str) -> bool:
    """Whether the source region's primary store, where a capture lands, is the version's first replica there (it
    is not when that replica is premium)."""
    with ctx.db.read() as tx:
        first = tx.get_replica(version_key, source_region, 0)
    return first is not None and stores.is_primary(stores.placement(source_region, 0, first.storage_type))


def finish_capture(tx: Transaction, version_key: str, source_region: str, now: float, first_replica: bool) -> None:
    """The capture landed in the source region's primary store: if that is the first replica there, it is complete
    (else its job copies it). Then the version may be ready."""
    if first_replica:
        move(tx, version_key, source_region, 0, expected=rules.PENDING, to=rules.COMPLETED, now=now)
    settle_version(tx, version_key, now)


def settle_version(tx: Transaction, version_key: str, now: float) -> None:
    """The one place a version's create ends: once its capture has landed and every replica in its source region
    is Completed (`rules.source_complete`), the version is Succeeded and its create operation with it. Called by
    whichever comes last, the capture or a source-region replica's copy, in the transaction that made it so."""
    version = tx.get(version_key, for_update=True)
    if version is None or version.state != "Creating" or not tx.contents(version_key):
        return
    if not rules.source_complete(states(tx, version_key), version.region):
        return
    tx.update(version.key, state="Succeeded", body=with_state(version.body, "Succeeded"), now=now)
    active = tx.active_operation(version_key)
    if active is not None and active.action == "create":
        tx.finish_operation(active.id, "Succeeded", now)
    build_triggers.queue_fired(tx, version_key, now)  # image templates that follow this definition's latest


def manifests_of(tx: Transaction, version_key: str) -> list[Manifest]:
    return [tx.get_manifest(m) for m in sorted(set(tx.contents(version_key).values()))]


def chunks_of(manifests: list[Manifest]) -> list[tuple[bytes, int]]:
    """Each distinct chunk of the manifests, with its length."""
    seen: dict[bytes, int] = {}
    for m in manifests:
        for i, d in enumerate(m.digests):
            if d is not None and d not in seen:
                seen[d] = m.span(i)[1]
    return list(seen.items())


class RegionThrottle:
    """Bounded bandwidth per region (bytes per second, 0 = unbounded; shared by this process's workers) and the
    number of replicas a region copies at once (across every worker process: see `Replicate.work`)."""

    def __init__(self, limits: dict[str, float], concurrency: dict[str, int] | None = None):
        self.limits = limits
        self.concurrency = {region: n for region, n in (concurrency or {}).items() if n > 0}
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, region: str, nbytes: int) -> None:
        rate = self.limits.get(region, 0)
        if not rate:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(region, now))
            self._next[region] = start + nbytes / rate
        if start > now:
            time.sleep(start - now)


class Replicate:
    """One replica of one version: copy what its store lacks, verify, then mark it Completed."""

    def __init__(self, stores: RegionStores, throttle: RegionThrottle, batch_bytes: int):
        self.stores, self.throttle, self.batch_bytes = stores, throttle, batch_bytes

    def work(self, ctx: JobContext) -> dict[str, int] | None:
        p = _payload(ctx.job)
        stores = self.stores
        with ctx.db.read() as tx:
            row = tx.get_replica(p["version"], p["region"], p["index"])
            version = tx.get(p["version"])
            if row is None or version is None or row.state == rules.COMPLETED:
                return None  # the replica was removed, or is already there
            sources = [r for r in tx.replicas_of(p["version"]) if r.state == rules.COMPLETED]
            manifests = manifests_of(tx, p["version"])
        if not manifests:  # a capture names its manifests when its chunks are all in the source region
            raise NotReady("the version's capture has not landed yet")
        source_region = version.region
        # Prefer copies in the destination's own region, then the source region's; the source region's primary
        # store, where the capture landed, is always a source of last resort.
        sources.sort(key=lambda r: (r.region != p["region"], r.region != source_region, r.idx))
        source_stores = _unique(
            [stores.replica(stores.placement(r.region, r.idx, r.storage_type)) for r in sources]
            + [stores.store(source_region)]
        )
        dests = stores.stores_for(stores.placement(p["region"], p["index"], row.storage_type))
        chunks = chunks_of(manifests)
        total = sum(size for _, size in chunks)
        with ctx.holding_lease() as tx:
            self._claim_slot(ctx, tx, p)
            started = move(
                tx,
                p["version"],
                p["region"],
                p["index"],
                expected=row.state,
                to=rules.REPLICATING,
                now=ctx.clock(),
                bytes_total=total,
                bytes_done=0,
            )
            if not started:
                raise NotReady("the replica changed state while its copy was being planned")
        region, throttle = p["region"], self.throttle

        batches = [(dest, dest.batch()) for dest in dests]

        def copy(digest: bytes, size: int) -> int:
            """Copies made (one per store of the replica that lacks the chunk)."""
            made = 0
            for dest, batch in batches:
                if dest.refresh(digest):
                    continue
                copy_chunk([s for s in source_stores if s is not dest], dest, digest, batch)
                throttle.take(region, size)
                made += 1
            return made

        done = copied = copied_chunks = staged = 0
        last_report = time.monotonic()
        with contextlib.ExitStack() as cleanup:
            for _, batch in batches:
                cleanup.callback(batch.abort)  # on failure: nothing of the batch becomes visible
            pool = cleanup.enter_context(ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="replicate"))
            for (_digest, size), made in zip(chunks, _in_order(pool, copy, chunks, 2 * COPY_THREADS)):
                copied += made * size
                copied_chunks += made
                staged += made * size
                # Durable together (one file-system flush on folder zones, not two per chunk) every so many bytes
                # and before the replica is Completed; a worker killed in between re-copies at most that much.
                if staged >= self.batch_bytes:
                    for _, batch in batches:
                        batch.commit()
                    staged = 0
                with _lock:
                    COUNTERS.chunks_copied += made
                    COUNTERS.bytes_copied += made * size
                    COUNTERS.chunks_present += len(batches) - made
                done += size
                if time.monotonic() - last_report > 0.5:
                    last_report = time.monotonic()
                    ctx.heartbeat()
                    with ctx.holding_lease() as tx:
                        recorded = tx.replica_progress(
                            p["version"],
                            p["region"],
                            p["index"],
                            bytes_done=done,
                            bytes_copied=copied,
                            chunks_copied=copied_chunks,
                            now=ctx.clock(),
                        )
                    if not recorded:  # removed, or removed and added again: look again
                        raise NotReady("the replica left Replicating during its copy")
            pool.shutdown()
            for _, batch in batches:
                batch.commit()
        return {"bytes_total": total, "bytes_copied": copied, "chunks_copied": copied_chunks}

    def _claim_slot(self, ctx: JobContext, tx: Transaction, p: Body) -> None:
        """With `replication_concurrency` for the region: a replica copying is one whose row is Replicating and was
        updated within a lease (a dead worker's row stops counting when its lease would have run out); the check
        and the claim are one transaction under the region's lock, so every worker process sees the same count. A
        job finding the region full is retried shortly (NotReady) rather than holding its lease while it waits."""
        limit = self.throttle.concurrency.get(p["region"])
        if not limit:
            return
        tx.lock(f"replication-slots:{p['region']}")
        busy = [
            r
            for r in tx.replicas_in(p["region"], state=rules.REPLICATING, updated_after=ctx.clock() - ctx.lease_seconds)
            if (r.version_key, r.idx) != (p["version"], p["index"])
        ]
        if len(busy) >= limit:
            raise NotReady(f"region {p['region']} is already copying as many replicas as it may at once ({limit})")

    def commit(self, tx: Transaction, job: JobRow, result: dict[str, int] | None, now: float) -> None:
        p = _payload(job)
        if result is None:
            return
        copied = move(
            tx,
            p["version"],
            p["region"],
            p["index"],
            expected=rules.REPLICATING,
            to=rules.COMPLETED,
            now=now,
            bytes_done=result["bytes_total"],
            bytes_copied=result["bytes_copied"],
            chunks_copied=result["chunks_copied"],
        )
        if not copied:
            if tx.get_replica(p["version"], p["region"], p["index"]) is None:
                return
            raise NotReady("the replica left Replicating during its copy")
        settle_version(tx, p["version"], now)
        log.info(
            "replica complete",
            extra={
                "version": p["version"],
                "region": p["region"],
                "replica": p["index"],
                "bytes_copied": result["bytes_copied"],
            },
        )

    def failed(self, tx: Transaction, job: JobRow, error: Exception, now: float) -> float | None:
        """Record what failed and when to try again (None: never; the replica is gone, or complete after all)."""
        p = _payload(job)
        row = tx.get_replica(p["version"], p["region"], p["index"])
        if row is None or row.state == rules.COMPLETED:
            return None
        if isinstance(error, NotReady):
            return now + RETRY_BASE_SECONDS
        move(
            tx,
            p["version"],
            p["region"],
            p["index"],
            expected=row.state,
            to=rules.FAILED,
            now=now,
            error=f"{type(error).__name__}: {error}",
        )
        log.warning(
            "replica failed; will retry",
            extra={"version": p["version"], "region": p["region"], "replica": p["index"], "error": str(error)},
        )
        return now + min(RETRY_BASE_SECONDS * 2.0 ** (job.attempts - 1), RETRY_MAX_SECONDS)


class NotReady(Exception):
    """Not yet, and not a failure: the capture has not landed, or the region is copying as much as it may."""


def _in_order(pool: Executor, fn: Callable[..., T], items: Iterable[tuple[object, ...]], window: int) -> Iterator[T]:
    """`fn(*item)` for each item on the pool, the results in order, at most `window` in flight (each holds a
    frame in memory). The first exception is raised and what was not started yet is cancelled."""
    pending: deque[Future[T]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, *item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def copy_chunk(sources: list[ChunkStore], dest: ChunkStore, digest: bytes, batch: Batch | None = None) -> None:
    """Copy a chunk's stored frame from the first source whose copy is sound. The frame is read unverified:
    `put_frame` decodes it and checks its digest before writing, so it is verified once, not on both ends."""
    errors = []
    for store in sources:
        try:
            frame = store.read_frame(digest)
        except MissingChunk as exc:
            errors.append(str(exc))
            continue
        try:
            dest.put_frame(digest, frame, batch)
            return
        except CorruptChunk:
            errors.append(f"chunk {digest.hex()} in {store.name} is corrupt")
    raise MissingChunk(f"no replica holds a sound copy of chunk {digest.hex()}: {'; '.join(errors)}")


class ReplicaReader:
    """Reads chunks from a list of stores in order of preference. A chunk missing or corrupt in one store is read
    from the next, and the bad store is repaired from the good copy (self-healing), with a log line and a count."""

    def __init__(self, stores: list[ChunkStore]):
        self.stores = stores
        self.chunk_size = stores[0].chunk_size

    def zeros(self, n: int) -> bytes:
        return self.stores[0].zeros(n)

    def get(self, digest: bytes) -> bytes:
        failed: list[tuple[ChunkStore, Exception]] = []
        for store in self.stores:
            try:
                data = store.get(digest)
            except (MissingChunk, CorruptChunk) as exc:
                failed.append((store, exc))
                continue
            for bad, problem in failed:
                try:
                    copy_chunk([store], bad, digest)
                except Exception:
                    log.exception("could not repair a chunk", extra={"store": bad.name})
                    continue
                with _lock:
                    COUNTERS.healed += 1
                log.warning(
                    "healed a chunk from another replica",
                    extra={"chunk": digest.hex(), "store": bad.name, "from": store.name, "problem": str(problem)},
                )
            return data
        raise failed[-1][1] if failed else MissingChunk(digest.hex())


def reader_for(tx: Transaction, stores: RegionStores, resource_key: str, region: str) -> ReplicaReader:
    """The stores a resource's bytes are read from: for a disk made from a version, the version's replica it was
    given first, then the region's other replicas, then other regions' (to heal from); else the region's primary."""
    source_key, preferred = tx.content_source(resource_key)
    ordered = [stores.store(region)]
    if source_key:
        rows = [r for r in tx.replicas_of(source_key) if r.state == rules.COMPLETED]
        rows.sort(key=lambda r: (r.region != region, r.idx != preferred, r.idx))
        ordered = [stores.replica(stores.placement(r.region, r.idx, r.storage_type)) for r in rows] + ordered
    return ReplicaReader(_unique(ordered))


def _unique(stores: list[ChunkStore]) -> list[ChunkStore]:
    unique: list[ChunkStore] = []
    for s in stores:
        if all(s is not u for u in unique):
            unique.append(s)
    return unique


def _payload(job: JobRow) -> Body:
    if job.payload is None:
        raise ValueError(f"replica job {job.id} has no payload")
    return job.payload

"""Replica state writes on the real metadata database: compare-and-set on the state a writer expects to leave, two
workers racing for one row (exactly one wins), one live copy job per replica, and a version's create ending in one
place whichever comes last, its capture or its source region's copies."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmgallery.app import replication
from vmgallery.app.operations import JobContext, LeaseLost
from vmgallery.app.ports import OperationRow
from vmgallery.domain import replication as rules
from vmgallery.domain.manifests import Manifest
from vmgallery.domain.replication import COMPLETED, FAILED, PENDING, REPLICATING

PARENT = "/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/galleries/g/images/i"


def _version(db, *replicas: tuple[str, int, str], contents: bool = True) -> tuple[str, str]:
    """A version being created in eastus with these (region, index, state) replicas; its key and create operation."""
    key, now = f"{PARENT}/versions/{uuid.uuid4().hex[:8]}", time.time()
    op_id = str(uuid.uuid4())
    with db.write() as tx:
        tx.insert(
            key=key,
            type="microsoft.compute/galleries/images/versions",
            parent_key=PARENT,
            subscription="s",
            group_key=None,
            location="eastus",
            natural_key=None,
            state="Creating",
            body={"properties": {"provisioningState": "Creating"}},
            now=now,
        )
        tx.insert_operation(
            OperationRow(
                op_id, key, key, "microsoft.compute", "s", "eastus", "create", "InProgress", 0, None, None, now, None
            )
        )
        if contents:
            tx.set_content(key, "os", tx.put_manifest(Manifest(4096, 4096, (b"\1" * 32,)), now))
        for region, idx, state in replicas:
            tx.add_replica(key, region, idx, "Standard_LRS", now, state=state)
    return key, op_id


def _state(db, key, region="eastus", idx=0) -> str:
    with db.read() as tx:
        return tx.get_replica(key, region, idx).state


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(current=st.sampled_from(rules.STATES), expected=st.sampled_from(rules.STATES), to=st.sampled_from(rules.STATES))
def test_a_write_moves_the_row_only_from_the_state_it_expects_and_only_along_the_table(db, current, expected, to):
    key, _ = _version(db, ("eastus", 0, current))
    with db.write() as tx:
        if (expected, to) not in rules.TRANSITIONS:
            with pytest.raises(rules.RefusedTransition):
                replication.move(tx, key, "eastus", 0, expected=expected, to=to, now=time.time())
            moved = False
        else:
            moved = replication.move(tx, key, "eastus", 0, expected=expected, to=to, now=time.time(), error="e")
    assert moved is (current == expected and (expected, to) in rules.TRANSITIONS)
    assert _state(db, key) == (to if moved else current)


def test_a_progress_write_lands_only_while_replicating(db):
    key, _ = _version(db, ("eastus", 0, PENDING), ("eastus", 1, REPLICATING))
    with db.write() as tx:
        assert not tx.replica_progress(key, "eastus", 0, bytes_done=5, bytes_copied=5, chunks_copied=1, now=1.0)
        assert tx.replica_progress(key, "eastus", 1, bytes_done=5, bytes_copied=5, chunks_copied=1, now=1.0)
        assert not tx.replica_progress(key, "westus", 0, bytes_done=5, bytes_copied=5, chunks_copied=1, now=1.0)
    with db.read() as tx:
        assert [(r.idx, r.state, r.bytes_done) for r in tx.replicas_of(key)] == [(0, PENDING, 0), (1, REPLICATING, 5)]


@pytest.mark.parametrize(
    "moves",
    [
        [(PENDING, REPLICATING), (PENDING, REPLICATING)],  # two copiers starting one replica
        [(PENDING, COMPLETED), (PENDING, REPLICATING)],  # the capture landing as a copy starts
        [(REPLICATING, COMPLETED), (REPLICATING, FAILED)],  # a copy finishing as it is declared failed
    ],
    ids=["same-move", "capture-vs-copy", "complete-vs-fail"],
)
def test_two_workers_racing_for_one_row_exactly_one_wins(db, moves):
    """Both read the row in the state they expect, then both write at once, each in its own transaction on its own
    connection, as two worker processes would. Without the compare-and-set both writes would land."""
    for _round in range(5):
        key, _ = _version(db, ("eastus", 0, moves[0][0]))
        both_read = threading.Barrier(len(moves))
        won: dict[int, bool] = {}

        def worker(i: int, expected: str, to: str) -> None:
            with db.read() as tx:
                assert tx.get_replica(key, "eastus", 0).state == expected
            both_read.wait(10)
            with db.write() as tx:
                won[i] = replication.move(tx, key, "eastus", 0, expected=expected, to=to, now=time.time())

        threads = [threading.Thread(target=worker, args=(i, *m)) for i, m in enumerate(moves)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(won.values()) == [False, True]
        winner = next(i for i, w in won.items() if w)
        assert _state(db, key) == moves[winner][1]


def test_a_replica_has_one_live_copy_job(db):
    key, _ = _version(db, ("westus", 0, PENDING))
    now = time.time()
    with db.write() as tx:
        assert replication.queue_copy(tx, key, "westus", 0, now)
        assert not replication.queue_copy(tx, key, "westus", 0, now)  # queued already
        assert replication.queue_copy(tx, key, "westus", 1, now)  # another replica: its own job
    with db.write() as tx:
        job = tx.claim_job("w", now, 60)
        assert not replication.queue_copy(tx, key, "westus", 0, now)  # running
        assert (job.operation_id, job.subject_key) == (None, f"{key}/replicas/westus/0")
        assert job.payload == {"version": key, "region": "westus", "index": 0}
        tx.finish_job(job.id, "done")
    with db.write() as tx:
        assert replication.queue_copy(tx, key, "westus", 0, now)  # its job ended: a new one may start


def _ended(db, key, op_id) -> tuple[str, str]:
    with db.read() as tx:
        return tx.get(key).state, tx.get_operation(op_id).status


def test_a_version_is_created_when_its_capture_lands_after_its_source_copies(db):
    key, op_id = _version(db, ("eastus", 0, PENDING), ("eastus", 1, REPLICATING), ("westus", 0, PENDING))
    with db.write() as tx:
        assert replication.move(tx, key, "eastus", 1, expected=REPLICATING, to=COMPLETED, now=time.time())
        replication.settle_version(tx, key, time.time())
    assert _ended(db, key, op_id) == ("Creating", "InProgress")  # replica 0 is the capture, not landed yet
    with db.write() as tx:
        replication.finish_capture(tx, key, "eastus", time.time(), first_replica=True)
    assert _ended(db, key, op_id) == ("Succeeded", "Succeeded")  # westus need not be done
    with db.read() as tx:
        assert tx.get(key).body["properties"]["provisioningState"] == "Succeeded"


def test_a_version_is_created_when_its_last_source_copy_lands_after_its_capture(db):
    key, op_id = _version(db, ("eastus", 0, PENDING), ("eastus", 1, REPLICATING))
    with db.write() as tx:
        replication.finish_capture(tx, key, "eastus", time.time(), first_replica=True)
    assert _ended(db, key, op_id) == ("Creating", "InProgress")
    with db.write() as tx:
        assert replication.move(tx, key, "eastus", 1, expected=REPLICATING, to=FAILED, now=time.time(), error="x")
        replication.settle_version(tx, key, time.time())
    assert _ended(db, key, op_id) == ("Creating", "InProgress")  # a failed copy is retried, not ready
    with db.write() as tx:
        assert replication.move(tx, key, "eastus", 1, expected=FAILED, to=REPLICATING, now=time.time())
        assert replication.move(tx, key, "eastus", 1, expected=REPLICATING, to=COMPLETED, now=time.time())
        replication.settle_version(tx, key, time.time())
    assert _ended(db, key, op_id) == ("Succeeded", "Succeeded")


def test_a_version_whose_capture_has_not_named_its_disks_is_not_created(db):
    key, op_id = _version(db, ("eastus", 0, COMPLETED), contents=False)
    with db.write() as tx:
        replication.settle_version(tx, key, time.time())
    assert _ended(db, key, op_id) == ("Creating", "InProgress")


def test_a_worker_whose_job_was_taken_over_writes_nothing_more(db):
    key, _ = _version(db, ("westus", 0, PENDING))
    now = time.time()
    with db.write() as tx:
        replication.queue_copy(tx, key, "westus", 0, now)
        first = tx.claim_job("host:1:a", now, 5)
    with db.write() as tx:
        second = tx.claim_job("host:2:b", now + 6, 60)  # the first worker went silent past its lease
    assert second.id == first.id
    with pytest.raises(LeaseLost):
        with JobContext(db, time.time, "host:1:a", first).holding_lease() as tx:
            replication.move(tx, key, "westus", 0, expected=PENDING, to=REPLICATING, now=time.time())
    assert _state(db, key, "westus") == PENDING
    with JobContext(db, time.time, "host:2:b", second).holding_lease() as tx:
        assert replication.move(tx, key, "westus", 0, expected=PENDING, to=REPLICATING, now=time.time())
    assert _state(db, key, "westus") == REPLICATING

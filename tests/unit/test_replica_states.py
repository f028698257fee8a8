"""The replica state machine: every move the table allows is allowed, every other one is refused; and when a
version being created is ready."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmgallery.domain import replication as rules
from vmgallery.domain.replication import COMPLETED, FAILED, PENDING, REPLICATING, ReplicaState

# Written out here, independently of the module: a change to the table must change this test too.
ALLOWED = {
    (PENDING, COMPLETED),
    (PENDING, REPLICATING),
    (PENDING, FAILED),
    (FAILED, REPLICATING),
    (FAILED, FAILED),
    (REPLICATING, REPLICATING),
    (REPLICATING, COMPLETED),
    (REPLICATING, FAILED),
    (COMPLETED, FAILED),
}
PAIRS = [(a, b) for a in rules.STATES for b in rules.STATES]
states = st.sampled_from(rules.STATES)


def test_the_table_is_exactly_the_allowed_moves():
    assert set(rules.TRANSITIONS) == ALLOWED
    assert all(rules.TRANSITIONS[move] for move in ALLOWED)  # each says what makes it


@pytest.mark.parametrize(("current", "to"), sorted(ALLOWED))
def test_allowed(current, to):
    rules.check_move(current, to)


@pytest.mark.parametrize(("current", "to"), sorted(set(PAIRS) - ALLOWED))
def test_refused(current, to):
    with pytest.raises(rules.RefusedTransition) as exc:
        rules.check_move(current, to)
    assert current in str(exc.value) and to in str(exc.value)


@given(states, states)
def test_every_pair_is_decided_by_the_table(current, to):
    if (current, to) in ALLOWED:
        rules.check_move(current, to)
    else:
        with pytest.raises(rules.RefusedTransition):
            rules.check_move(current, to)


def _s(region, index, state):
    return ReplicaState(region, index, state, 10, 10 if state == COMPLETED else 0)


@given(st.lists(st.tuples(st.sampled_from(["eastus", "westus"]), states), max_size=8))
def test_a_version_is_ready_when_every_replica_of_its_source_region_is_completed(replicas):
    listed = [_s(region, i, state) for i, (region, state) in enumerate(replicas)]
    expected = all(state == COMPLETED for region, state in replicas if region == "eastus")
    assert rules.source_complete(listed, "eastus") is expected

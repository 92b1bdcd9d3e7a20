"""The state machine: allowed moves pass, everything else is refused.

The life cycle is written out here by hand, move by move, from the design (not read back
from farm.state.states), so a table entry added or dropped by mistake fails a test."""

import pytest

from farm.errors import StateError
from farm.state.states import (
    CHUNK_TRANSITIONS,
    JOB_TERMINAL,
    JOB_TRANSITIONS,
    ChunkState,
    JobState,
    check_chunk,
    check_job,
)


def test_every_state_has_a_transition_entry():
    assert set(JOB_TRANSITIONS) == set(JobState)
    assert set(CHUNK_TRANSITIONS) == set(ChunkState)


JOB_MOVES = {
    ("queued", "running"), ("queued", "finalizing"), ("queued", "failed"), ("queued", "cancelled"),
    ("running", "finalizing"), ("running", "failed"), ("running", "cancelled"),
    ("finalizing", "running"), ("finalizing", "done"), ("finalizing", "failed"), ("finalizing", "cancelled"),
    ("failed", "queued"), ("cancelled", "queued"),
}
CHUNK_MOVES = {
    ("pending", "running"), ("pending", "failed"), ("pending", "cancelled"),
    ("running", "running"), ("running", "pending"), ("running", "done"), ("running", "failed"),
    ("running", "cancelled"),
    ("done", "pending"), ("failed", "pending"), ("cancelled", "pending"),
}


@pytest.mark.parametrize("cur,new", [(a, b) for a in JobState for b in JobState])
def test_job_transitions_follow_the_table(cur, new):
    if (cur.value, new.value) in JOB_MOVES:
        assert check_job(cur, new) is new
    else:
        with pytest.raises(StateError, match=f"from {cur.value} to {new.value}"):
            check_job(cur, new)


def test_done_is_final_and_failed_can_retry():
    assert JOB_TRANSITIONS[JobState.DONE] == frozenset()
    assert check_job("failed", "queued") is JobState.QUEUED
    assert JOB_TERMINAL == {JobState.DONE, JobState.FAILED, JobState.CANCELLED}


@pytest.mark.parametrize("cur,new", [(a, b) for a in ChunkState for b in ChunkState])
def test_chunk_transitions_follow_the_table(cur, new):
    if (cur.value, new.value) in CHUNK_MOVES:
        assert check_chunk(cur, new) is new
    else:
        with pytest.raises(StateError):
            check_chunk(cur, new)


def test_live_jobs_are_the_unfinished_ones_and_workers_have_four_states():
    from farm.state.states import JOB_LIVE, WorkerState

    assert {s.value for s in JOB_LIVE} == {"queued", "running", "finalizing"}
    assert {s.value for s in WorkerState} == {"idle", "busy", "quarantined", "stopped"}

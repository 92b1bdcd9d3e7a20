"""The state machine: allowed moves pass, everything else is refused."""

import pytest

from farm.errors import StateError
from farm.states import CHUNK_TRANSITIONS, JOB_TERMINAL, JOB_TRANSITIONS, ChunkState, JobState, check_chunk, check_job


def test_every_state_has_a_transition_entry():
    assert set(JOB_TRANSITIONS) == set(JobState)
    assert set(CHUNK_TRANSITIONS) == set(ChunkState)


@pytest.mark.parametrize("cur,new", [(a, b) for a in JobState for b in JobState])
def test_job_transitions_follow_the_table(cur, new):
    if new in JOB_TRANSITIONS[cur]:
        assert check_job(cur, new) is new
    else:
        with pytest.raises(StateError, match=f"from {cur.value} to {new.value}"):
            check_job(cur, new)


def test_done_is_final_and_failed_can_retry():
    assert JOB_TRANSITIONS[JobState.DONE] == frozenset()
    assert check_job("failed", "queued") is JobState.QUEUED
    assert JobState.DONE in JOB_TERMINAL and JobState.RUNNING not in JOB_TERMINAL


@pytest.mark.parametrize("cur,new", [(a, b) for a in ChunkState for b in ChunkState])
def test_chunk_transitions_follow_the_table(cur, new):
    if new in CHUNK_TRANSITIONS[cur]:
        assert check_chunk(cur, new) is new
    else:
        with pytest.raises(StateError):
            check_chunk(cur, new)

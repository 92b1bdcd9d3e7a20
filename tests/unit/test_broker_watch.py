"""BrokerWatch (what `farm submit --wait` uses): a broker that stops answering is reported
(UnavailableError, exit 4) once it has been silent FARM_BROKER_DOWN_S seconds in a row, not
before, and a broker that answers again resets the count. An injected clock; the broker is
a real loopback port that nothing listens on, or the real Redis of the machine."""

from __future__ import annotations

import dataclasses
import socket

import pytest
import redis

from farm.broker.embedded import BrokerWatch
from farm.config import load_settings
from farm.errors import EXIT_UNAVAILABLE, UnavailableError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"redis://:pw@127.0.0.1:{s.getsockname()[1]}/0"


def test_a_silent_broker_is_reported_after_the_bound_and_not_before(tmp_path):
    settings = load_settings({"FARM_HOME": str(tmp_path), "FARM_BROKER_URL": dead_url(), "FARM_BROKER_DOWN_S": "10"})
    clock = Clock()
    watch = BrokerWatch(settings, "job1", clock=clock)
    for _ in range(10):            # 0..9 s of silence: still waiting
        watch.check()
        clock.now += 1.0
    with pytest.raises(UnavailableError) as caught:
        watch.check()              # 10 s
    error = caught.value
    assert error.exit_code == EXIT_UNAVAILABLE
    assert "has not answered for 10 s" in error.message and "job job1" in error.message
    assert ":***@127.0.0.1" in error.message and "pw@" not in error.message
    assert "FARM_BROKER_URL" in (error.hint or "")


def test_a_broker_that_answers_again_resets_the_count(tmp_path):
    live = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(live, socket_timeout=2).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {live}")
    dead = load_settings({"FARM_HOME": str(tmp_path), "FARM_BROKER_URL": dead_url(), "FARM_BROKER_DOWN_S": "5"})
    clock = Clock()
    watch = BrokerWatch(dead, "job1", clock=clock)
    watch.check()
    clock.now += 4.0
    watch.check()                                        # 4 s down
    watch.settings = dataclasses.replace(dead, broker_url=live)         # the broker is back
    clock.now += 1.0
    watch.check()
    watch.settings = dead
    clock.now += 1.0
    watch.check()                                        # down again: the count starts here
    clock.now += 4.0
    watch.check()                                        # 4 s of the fresh 5 s
    clock.now += 1.0
    with pytest.raises(UnavailableError):
        watch.check()

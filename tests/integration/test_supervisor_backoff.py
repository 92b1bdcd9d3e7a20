"""`farm worker` restarts a dying child later each time it dies again (restart backoff)."""

from __future__ import annotations

import sys
import threading
import time

from farm.workers import supervisor
from farm.workers.supervisor import BACKOFF_S, Child, restart_delay


def test_the_restart_delay_grows_with_each_failure_then_stays_at_its_cap() -> None:
    delays = [restart_delay(n) for n in range(len(BACKOFF_S) + 3)]
    assert delays[0] == BACKOFF_S[0] and delays[0] > 0
    assert all(b > a for a, b in zip(delays, delays[1:len(BACKOFF_S)])), delays   # strictly growing
    assert delays[len(BACKOFF_S) - 1:] == [BACKOFF_S[-1]] * 4                       # capped
    assert delays[-1] >= 30 * delays[0]
    assert restart_delay(-1) == BACKOFF_S[0]


class CrashingChild(Child):
    """A child whose process exits with code 3 at once (a worker that keeps crashing)."""

    def start(self) -> None:
        import subprocess

        self.proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
        self.started_at = time.monotonic()
        self.starts = getattr(self, "starts", 0) + 1


def test_a_child_that_keeps_dying_is_restarted_later_each_time(monkeypatch, caplog) -> None:
    # Given a short backoff table (the real one waits 1, 2, 5 ... s) and a spy on the delay
    monkeypatch.setattr(supervisor, "BACKOFF_S", (0.05, 0.2, 0.6))
    monkeypatch.setattr(supervisor, "release_chunks", lambda hostnames: None)
    asked: list[tuple[int, float]] = []
    real = supervisor.restart_delay

    def spy(failures: int) -> float:
        asked.append((failures, real(failures)))
        return real(failures)

    monkeypatch.setattr(supervisor, "restart_delay", spy)
    child = CrashingChild("cpu0@test", "gpu", {})
    stop = [False]
    # When the supervisor runs it for a while
    with caplog.at_level("WARNING", logger="farm.supervisor"):
        thread = threading.Thread(target=supervisor.supervise, args=([child], stop))
        thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(asked) < 5:
            time.sleep(0.05)
        stop[0] = True
        thread.join(30)
    # Then each death counts as one more failure and waits at least as long as the last
    assert [f for f, _ in asked[:5]] == [0, 1, 2, 3, 4]
    assert [d for _, d in asked[:5]] == [0.05, 0.2, 0.6, 0.6, 0.6]
    assert child.starts >= 5
    assert "cpu0@test exited with code 3; restarting in" in caplog.text

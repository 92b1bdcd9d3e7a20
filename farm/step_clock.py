"""Wall-clock seconds of a task's consecutive steps, written to the job's log as one line
('probe 0.041 s; ingest 0.302 s'); bench/bench_overhead.py reads them back."""

from __future__ import annotations

import re
import time

_STEP = re.compile(r"([a-z+ ]+?) (\d+\.\d+) s")


class StepClock:
    """Seconds of consecutive steps, in the order they ran. `times` may also be filled by a
    callee that times its own parts (then `lap(None)` only moves the mark on)."""

    def __init__(self) -> None:
        self.mark = time.perf_counter()
        self.times: dict[str, float] = {}

    def lap(self, name: str | None) -> None:
        """Close step `name`: the seconds since the previous lap (or the start)."""
        now = time.perf_counter()
        if name is not None:
            self.times[name] = self.times.get(name, 0.0) + now - self.mark
        self.mark = now

    def describe(self) -> str:
        """'probe 0.041 s; ingest 0.302 s' (seconds, in the order they ran)."""
        return "; ".join(f"{name} {seconds:.3f} s" for name, seconds in self.times.items())


def read_steps(line: str) -> dict[str, float]:
    """{step: seconds} of a line StepClock.describe wrote."""
    return {name.strip(): float(seconds) for name, seconds in _STEP.findall(line)}

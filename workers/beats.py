"""A heartbeat thread for work that runs in one long call (the finalize step's join,
verify and publish), so that its owner stays live by the same rule as a running chunk
(store.is_silent) and loses its claim only when it really stops beating."""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger("farm.workers.beats")


class Heartbeat:
    """Call `beat()` every `interval_s` seconds in a daemon thread until `stop()`.

    `beat` returns False when the claim is no longer ours (then the beating stops: the
    work goes on, and its result is refused where it is committed). An exception in
    `beat` (the database briefly away) is logged and the next beat is tried.
    """

    def __init__(self, beat: Callable[[], bool], interval_s: float, name: str = "farm-heartbeat") -> None:
        self._beat = beat
        self._interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            try:
                if not self._beat():
                    return
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried; silence is what counts
                log.warning("heartbeat failed: %s", exc)

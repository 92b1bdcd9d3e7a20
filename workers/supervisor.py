"""`farm worker`: start one Celery worker process per GPU (or N CPU workers), restart
any that dies (with backoff), and stop them all on SIGTERM/SIGINT.

Layout on a node: `gpu<i>@<host>` per GPU (CUDA_VISIBLE_DEVICES=<i>, queue gpu),
`cpu<i>@<host>` per --cpu worker (queue gpu, CPU providers), and one `fin@<host>`
serving the cpu queue (finalize: ffmpeg stream copies, light on CPU), so finalize
work never waits behind chunks and never takes a GPU slot.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from farm.workers.gpus import count_gpus, parse_gpus, pinned_env
from farm.workers.process_exit import exit_now

EXIT_GPU_MISSING = 4   # farm.workers.celery_worker: the GPU provider asked for is missing

log = logging.getLogger("farm.supervisor")

BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)   # delay before restarting a child, by failure count
HEALTHY_AFTER_S = 60.0                            # a child that lived this long resets its backoff
STOP_GRACE_S = 10.0                               # warm shutdown, then cold, then kill


@dataclass
class Child:
    hostname: str
    queues: str
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float = 0.0

    def start(self) -> None:
        argv = [sys.executable, "-m", "farm.workers.celery_worker", "--hostname", self.hostname,
                "--queues", self.queues]
        self.proc = subprocess.Popen(argv, env=self.env)
        self.started_at = time.monotonic()
        log.info("started %s (pid %d, CUDA_VISIBLE_DEVICES=%r, queues %s)", self.hostname, self.proc.pid,
                 self.env.get("CUDA_VISIBLE_DEVICES"), self.queues)


def restart_delay(failures: int) -> float:
    """Seconds to wait before restarting a child that has died `failures` times in a row
    (0 for the first death): BACKOFF_S grows with each failure and stays at its last value."""
    return BACKOFF_S[min(max(0, failures), len(BACKOFF_S) - 1)]


def plan_children(gpus: list[int], cpu: int, providers: str, host: str) -> list[Child]:
    children = [Child(f"gpu{i}@{host}", "gpu", pinned_env(i, providers)) for i in gpus]
    children += [Child(f"cpu{i}@{host}", "gpu", pinned_env(None, "cpu")) for i in range(cpu)]
    if children:
        children.append(Child(f"fin@{host}", "cpu", pinned_env(None, "cpu")))
    return children


def supervise(children: list[Child], stop: list[bool]) -> int:
    """Run until stopped (exit 0), or until every chunk worker refused to start (exit 4)."""
    for child in children:
        child.start()
    while not stop[0] and not all_refused([c for c in children if c.queues == "gpu"]):
        now = time.monotonic()
        for child in children:
            if child.proc is None:
                if now >= child.restart_at:
                    child.start()
                continue
            code = child.proc.poll()
            if code is None:
                if now - child.started_at > HEALTHY_AFTER_S:
                    child.failures = 0
                continue
            if code == EXIT_GPU_MISSING:
                log.error("%s cannot use its GPU (see above); not restarting it", child.hostname)
                child.proc, child.restart_at = None, float("inf")
                continue
            delay = restart_delay(child.failures)
            child.failures += 1
            child.proc, child.restart_at = None, now + delay
            log.warning("%s exited with code %s; restarting in %.0f s", child.hostname, code, delay)
        time.sleep(0.2)
    shutdown(children)
    release_chunks([c.hostname for c in children])
    report_stopped([c.hostname for c in children])
    if not stop[0]:
        log.error("no chunk worker could start: the GPU providers asked for are missing")
        return EXIT_GPU_MISSING
    return 0


def shutdown(children: list[Child]) -> None:
    live = [c.proc for c in children if c.proc and c.proc.poll() is None]
    for sig in (signal.SIGTERM, signal.SIGQUIT, signal.SIGKILL):
        for proc in live:
            if proc.poll() is None:
                proc.send_signal(sig)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and any(p.poll() is None for p in live):
            time.sleep(0.1)
        if all(p.poll() is not None for p in live):
            break
    log.info("all workers stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="farm worker")
    parser.add_argument("--gpus", default=None, help="all | 0,2,... (default: all when GPUs are found)")
    parser.add_argument("--cpu", type=int, default=0, help="CPU-only chunk workers")
    parser.add_argument("--providers", default=None, help="tensorrt,cuda,cpu (default: from settings)")
    parser.add_argument("--pid-file", default=None)
    parser.add_argument("--node", default=None, help="node name in worker hostnames (default: this host's name)")
    parser.add_argument("--watch-broker", action="store_true",
                        help="restart the embedded farm's private Redis when it dies (farm.broker.embedded starts us so)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    available = count_gpus()
    gpus = parse_gpus(args.gpus if args.gpus is not None else ("all" if available and not args.cpu else ""),
                      available)
    providers = args.providers or os.environ.get("FARM_PROVIDERS") or ("tensorrt,cuda" if gpus else "cpu")
    if not gpus and args.cpu <= 0:   # a GPU was wanted and none can be had: the farm is unavailable here
        asked = f"--gpus {args.gpus}" if args.gpus is not None else "GPUs (the default)"
        print(f"farm: error: farm worker: no GPU found on this machine for {asked}, and --cpu not given\n"
              "  what to do: run CPU workers with `farm worker --cpu N`, or check the GPU driver (`nvidia-smi`)",
              file=sys.stderr)
        return EXIT_GPU_MISSING
    children = plan_children(gpus, args.cpu, providers, args.node or socket.gethostname())
    if args.pid_file:
        Path(args.pid_file).write_text(str(os.getpid()))
    stop = [False]

    def on_signal(_signum: int, _frame: object) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    start_reaper(stop)
    if args.watch_broker:
        start_broker_watch(stop)
    start_heartbeat(children, stop)
    return supervise(children, stop)


def start_reaper(stop: list[bool]) -> None:
    """Look for work the broker lost (dead workers, a restarted Redis) every reap_interval_s."""
    import threading

    from farm.broker.reaper import running_loop
    from farm.config import load_settings

    settings = load_settings()
    threading.Thread(target=running_loop, args=(settings, settings.reap_interval_s, stop),
                     daemon=True, name="reaper").start()


def start_heartbeat(children: list[Child], stop: list[bool], interval_s: float | None = None) -> threading.Thread:
    """Every `interval_s` (registry.WORKER_HEARTBEAT_S) mark the children whose process runs as
    seen now, so `farm status` tells an idle worker from one whose node went away."""
    from farm.state import registry
    thread = threading.Thread(target=heartbeat_loop, daemon=True, name="heartbeat",
                              args=(children, stop, interval_s or registry.WORKER_HEARTBEAT_S))
    thread.start()
    return thread


def heartbeat_loop(children: list[Child], stop: list[bool], interval_s: float) -> None:
    from farm.config import load_settings
    from farm.state import registry
    from farm.state.db import Database

    db = Database(load_settings().database)
    while not stop[0]:
        # returncode is set by the main loop's poll(); this thread never waits on a child
        running = [c for c in children if c.proc is not None and c.proc.returncode is None]
        try:
            registry.touch_workers(db, [c.hostname for c in running], {c.hostname: c.proc.pid for c in running})
        except Exception as exc:  # noqa: BLE001 - a database hiccup must not stop the node
            log.warning("worker heartbeat failed: %s", exc)
        deadline = time.monotonic() + interval_s
        while not stop[0] and time.monotonic() < deadline:
            time.sleep(min(0.2, interval_s))
    db.dispose()


def report_stopped(hostnames: list[str]) -> None:
    """Our workers are stopped: `farm status` shows them offline from now on."""
    from farm.config import load_settings
    from farm.state import registry
    from farm.state.db import Database

    try:
        registry.report_stopped(Database(load_settings().database), hostnames)
    except Exception as exc:  # noqa: BLE001 - shutting down must not fail on the database
        log.warning("could not mark the workers stopped: %s", exc)


def start_broker_watch(stop: list[bool]) -> None:
    """The local farm's own Redis is started again when it dies (farm.broker.embedded.watch_broker)."""
    import threading

    from farm.broker.embedded import watch_broker
    from farm.config import load_settings

    threading.Thread(target=watch_broker, args=(load_settings(), stop), daemon=True, name="broker-watch").start()


def release_chunks(hostnames: list[str]) -> None:
    """Chunks our workers were running when stopped go back to pending (the reaper re-queues them)."""
    from farm.config import load_settings
    from farm.state import chunks
    from farm.state.db import Database

    try:
        released = chunks.release_chunks(Database(load_settings().database), hostnames)
    except Exception as exc:  # noqa: BLE001 - shutting down must not fail on the database
        log.warning("could not release running chunks: %s", exc)
        return
    if released:
        log.info("released %d running chunk(s) for other workers", released)


def all_refused(children: list[Child]) -> bool:
    return bool(children) and all(c.restart_at == float("inf") for c in children)


if __name__ == "__main__":
    exit_now(main())

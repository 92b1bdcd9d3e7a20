"""`farm worker`: pinned children, restart with backoff, refusal without the GPU asked for,
and no CUDA in the parent. Real processes; the broker is a private redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from farm.broker.embedded import start_redis
from farm.workers.supervisor import BACKOFF_S, plan_children


def test_children_get_their_own_gpu_hostname_and_queue():
    children = plan_children([0, 2], cpu=1, providers="tensorrt,cuda", host="node7")
    by_host = {c.hostname: c for c in children}
    assert set(by_host) == {"gpu0@node7", "gpu2@node7", "cpu0@node7", "fin@node7"}
    assert by_host["gpu2@node7"].env["CUDA_VISIBLE_DEVICES"] == "2"
    assert by_host["gpu0@node7"].env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert by_host["cpu0@node7"].env["CUDA_VISIBLE_DEVICES"] == "" and by_host["cpu0@node7"].env["FARM_PROVIDERS"] == "cpu"
    assert by_host["fin@node7"].queues == "cpu" and by_host["gpu0@node7"].queues == "gpu"


def test_the_supervisor_never_loads_onnxruntime_or_cuda():
    code = ("import sys, farm.workers.supervisor, farm.workers.gpus; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('onnxruntime', 'torch', 'cupy')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_cpu_workers_celery_parent_checks_its_providers_without_onnxruntime():
    """The prefork parent never runs a model: onnxruntime + numpy (~30 MiB) stay in its child."""
    code = ("import sys\nfrom farm.workers.celery_worker import check_providers\n"
            "check_providers('cpu', 'cpu0@x')\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('onnxruntime', 'numpy', 'cv2', 'av')]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def _children(pid: int) -> dict[str, psutil.Process]:
    out = {}
    for child in psutil.Process(pid).children():
        try:
            cmd = child.cmdline()
        except psutil.Error:   # a zombie not reaped yet
            continue
        if "farm.workers.celery_worker" in cmd:
            out[cmd[cmd.index("--hostname") + 1].split("@")[0]] = child
    return out


def test_a_killed_child_is_restarted_and_the_log_says_so(settings, farm_home):
    start_redis(settings)
    log = farm_home / "sup.log"
    env = dict(os.environ, FARM_HOME=str(farm_home))
    sup = subprocess.Popen([sys.executable, "-m", "farm.workers.supervisor", "--cpu", "1", "--providers", "cpu"],
                           env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "cpu0" not in _children(sup.pid):
            time.sleep(0.2)
        victim = _children(sup.pid)["cpu0"]
        victim.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 30 + BACKOFF_S[0]
        while time.monotonic() < deadline:
            now = _children(sup.pid).get("cpu0")
            if now is not None and now.pid != victim.pid:
                break
            time.sleep(0.2)
        assert _children(sup.pid)["cpu0"].pid != victim.pid
        assert "exited with code -9; restarting in" in log.read_text()
    finally:
        sup.send_signal(signal.SIGTERM)
        sup.wait(60)
        subprocess.run([sys.executable, "-m", "farm", "down"], env=env, capture_output=True)
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(farm_home) in " ".join(p.info["cmdline"] or [])
                and "celery_worker" in " ".join(p.info["cmdline"] or [])]


def test_a_worker_asked_for_a_gpu_it_cannot_get_refuses_to_start(settings, farm_home):
    """No GPU here: asking for CUDA must fail loudly, naming what is missing, never fall back to CPU."""
    start_redis(settings)
    env = dict(os.environ, FARM_HOME=str(farm_home))
    proc = subprocess.run([sys.executable, "-m", "farm", "worker", "--gpus", "0", "--providers", "cuda"],
                          env=env, capture_output=True, text=True, timeout=120)
    subprocess.run([sys.executable, "-m", "farm", "down"], env=env, capture_output=True)
    assert proc.returncode == 4, proc.stderr
    assert "refusing to start" in proc.stderr and "GPU" in proc.stderr


def test_a_worker_with_no_gpu_and_no_cpu_workers_asked_for_says_what_to_do_and_exits_4(settings, farm_home):
    """No GPU on this machine: `farm worker --gpus all` (and plain `farm worker`) cannot run
    anything; that is the farm unavailable here (exit 4), said as every error is said."""
    env = dict(os.environ, FARM_HOME=str(farm_home))
    for args in (["--gpus", "all"], []):
        proc = subprocess.run([sys.executable, "-m", "farm", "worker", *args], env=env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 4, proc.stderr
        assert proc.stderr.startswith("farm: error: farm worker: no GPU found on this machine")
        assert "what to do: run CPU workers with `farm worker --cpu N`" in proc.stderr


def _wait_for_pings(settings, hostnames: set[str], timeout_s: float = 90) -> None:
    """Until every worker in `hostnames` answers a Celery ping (it consumes from now on)."""
    from farm.broker.celery_app import create_app

    app = create_app(settings)
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not hostnames <= seen:
            seen |= {h for reply in app.control.ping(timeout=1.0) or [] for h in reply}
    finally:
        app.close()
    assert hostnames <= seen, f"workers {sorted(hostnames - seen)} never answered"


def test_embedded_farm_pins_each_gpu_child_and_spreads_a_job_over_both(settings, farm_home, tmp_path):
    """`farm worker --gpus 0,1 --providers cpu` on the embedded farm (private Redis on a unix
    socket, SQLite): the same pinning as test_cluster_mode, with nothing else to run."""
    import json

    from farm.broker.embedded import supervisor_pid_file
    from farm.state import registry, store
    from farm.state.db import Database
    from tests import clips, media_checks
    from tests.e2e.farmcli import FarmCLI

    start_redis(settings)
    cli = FarmCLI(farm_home)
    log = farm_home / "sup.log"
    # --pid-file where `farm submit` looks for local workers, so it starts none of its own
    sup = subprocess.Popen([sys.executable, "-m", "farm", "worker", "--gpus", "0,1", "--providers", "cpu",
                            "--node", "pin", "--pid-file", str(supervisor_pid_file(settings))],
                           env=cli.env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and set(_children(sup.pid)) != {"gpu0", "gpu1", "fin"}:
            time.sleep(0.2)
        kids = _children(sup.pid)
        assert set(kids) == {"gpu0", "gpu1", "fin"}, log.read_text()
        for name in ("gpu0", "gpu1"):
            env = kids[name].environ()
            assert env["CUDA_VISIBLE_DEVICES"] == name[3] and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
            assert env["FARM_PROVIDERS"] == "cpu"
        assert kids["fin"].environ()["CUDA_VISIBLE_DEVICES"] == ""
        _wait_for_pings(settings, {"gpu0@pin", "gpu1@pin"})

        src = clips.make_clip(tmp_path / "clip.mp4", width=160, height=90, seconds=2.0, gop=8)
        proc = cli.run("submit", str(src), "--passthrough", "--wait", "--json", "--chunk-seconds", "0.25",
                       timeout_s=180)
        assert proc.returncode == 0, proc.stderr + log.read_text()[-4000:]
        result = json.loads(proc.stdout)
        assert result["state"] == "done" and result["chunks"] == 8
        assert media_checks.frame_count(Path(result["output"])) == 60
        db = Database(settings.database)
        try:
            used = {c.worker for c in store.get_job(db, result["id"]).chunks}
            workers = {w.hostname: w for w in registry.list_workers(db)}
        finally:
            db.dispose()
        assert used == {"gpu0@pin", "gpu1@pin"}, f"chunks were not spread over both workers: {used}"
        # each worker process reported the GPU it saw itself (its own CUDA_VISIBLE_DEVICES)
        assert workers["gpu0@pin"].gpu == "0" and workers["gpu1@pin"].gpu == "1"
        assert workers["gpu0@pin"].pid != workers["gpu1@pin"].pid
    finally:
        sup.send_signal(signal.SIGTERM)
        sup.wait(60)
        subprocess.run([sys.executable, "-m", "farm", "down"], env=cli.env, capture_output=True)


def test_a_process_that_has_exited_but_is_not_reaped_counts_as_stopped(tmp_path):
    """`farm down` waits for the supervisor's pid to go; a supervisor started by an earlier
    `farm up` is init's child, and an init that reaps late left it a zombie for seconds."""
    from farm.broker.embedded import is_zombie

    running = subprocess.Popen(["sleep", "30"])
    exited = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not is_zombie(exited.pid):   # exited, not yet waited for
            time.sleep(0.02)
        assert is_zombie(exited.pid)
        assert not is_zombie(running.pid) and not is_zombie(os.getpid())
    finally:
        running.kill()
        running.wait()
        exited.wait()
    assert not is_zombie(exited.pid)   # reaped: no such process any more

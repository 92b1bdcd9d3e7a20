"""Secrets stay secret: a broker password, database password, Flower password and API tokens
never show in settings reprs, error messages or logs, and no code builds a shell string.

The cluster case runs for real: a private redis-server with `requirepass` on loopback, a
real `farm worker --cpu 1` and a real job over it; every log and every CLI output is then
searched for the password."""

from __future__ import annotations

import ast
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from farm.broker.embedded import redis_server_exe
from farm.config import load_settings, redact_url
from tests import clips
from tests.e2e.farmcli import FarmCLI

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Zq8-not-in-any-log-3f1"
SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def python_files() -> list[Path]:
    return [p for d in ("farm", "workers", "bench", "deploy", "tests", "migrations") for p in (ROOT / d).rglob("*.py")]


def shell_uses(path: Path) -> list[str]:
    """Places in one file that hand a string to a shell."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
        owner = getattr(fn.value, "id", "") if isinstance(fn, ast.Attribute) else ""
        if owner == "os" and name in {"system", "popen"} or name in {"getoutput", "getstatusoutput"}:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} os.{name}")
        if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
               for k in node.keywords):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} shell=")
        if owner in {"subprocess", "asyncio"} and name in SUBPROCESS_CALLS | {"create_subprocess_shell"} and node.args \
                and isinstance(node.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {owner}.{name}(<string>)")
    return found


def test_no_code_hands_a_string_to_a_shell():
    found = [hit for path in python_files() for hit in shell_uses(path)]
    assert found == []


def test_the_shell_check_itself_catches_shell_strings(tmp_path):
    bad = ROOT / "tests" / f"_shell_probe_{tmp_path.name}.py"
    bad.write_text("import os, subprocess\nos.system('ls')\nsubprocess.run('ls', shell=True)\n"
                   "subprocess.check_output(f'ls {1}')\nsubprocess.run(['ls'])\n")
    try:
        assert len(shell_uses(bad)) == 4   # system, shell=, run(<string>) (twice on line 3), check_output(<string>)
    finally:
        bad.unlink()


def test_settings_and_urls_never_show_passwords():
    settings = load_settings({
        "FARM_HOME": "/tmp/x", "FARM_BROKER_URL": f"redis://:{PASSWORD}@redis-host:6379/0",
        "FARM_DATABASE_URL": f"postgresql://farm:{PASSWORD}@db-host:5432/farm",
        "FARM_FLOWER_USER": "admin", "FARM_FLOWER_PASSWORD": PASSWORD,
    })
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert redact_url(settings.broker) == "redis://:***@redis-host:6379/0"
    assert redact_url(settings.database) == "postgresql://farm:***@db-host:5432/farm"
    assert redact_url("redis+socket:///tmp/r.sock") == "redis+socket:///tmp/r.sock"


@pytest.fixture
def password_redis(tmp_path: Path):
    port = free_port()
    proc = subprocess.Popen([redis_server_exe(), "--port", str(port), "--bind", "127.0.0.1", "--requirepass", PASSWORD,
                             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, password=PASSWORD)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


def test_a_cluster_on_a_password_redis_never_prints_or_logs_the_password(password_redis, farm_home, tmp_path):
    broker = f"redis://:{PASSWORD}@127.0.0.1:{password_redis}/0"
    cluster_env = {"FARM_BROKER_URL": broker, "FARM_DATABASE_URL": f"sqlite:///{tmp_path / 'farm.db'}",
                   "FARM_STORAGE": str(tmp_path / "nfs"), "FARM_STALE_HEARTBEAT_S": "10"}
    cli = FarmCLI(farm_home, cluster_env)
    outputs = [cli.run("db", "upgrade", check=True)]
    worker_log = tmp_path / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "farm", "worker", "--cpu", "1"], env=cli.env,
                              stdout=open(worker_log, "wb"), stderr=subprocess.STDOUT)
    try:
        src = clips.make_clip(tmp_path / "clip.mp4", width=160, height=90, seconds=1.0, audio_tracks=1)
        done = cli.run("submit", str(src), "--passthrough", "--wait", "--json", "--chunk-seconds", "0.5", timeout_s=240)
        outputs.append(done)
        assert done.returncode == 0, done.stderr + worker_log.read_text()[-4000:]
        assert json.loads(done.stdout)["state"] == "done"
        outputs += [cli.run("status", check=True), cli.run("jobs", check=True)]
        # a wrong password: refused, and neither password is echoed back
        wrong = FarmCLI(farm_home, dict(cluster_env, FARM_BROKER_URL=f"redis://:wrong-{PASSWORD}@127.0.0.1:{password_redis}/0"))
        jobs_before = cli.run("jobs", "--json", check=True).stdout
        refused = wrong.run("submit", str(src), "--passthrough", "--overwrite")
        assert refused.returncode == 4 and "redis://:***@127.0.0.1" in refused.stderr, refused.stderr
        assert "refused the credentials" in refused.stderr
        assert cli.run("jobs", "--json", check=True).stdout == jobs_before      # nothing was stored
        outputs.append(refused)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    texts = [p.stdout + p.stderr for p in outputs] + [worker_log.read_text()]
    texts += [log.read_text(errors="replace") for log in farm_home.rglob("*.log")]
    assert "transport:" in worker_log.read_text() or "Connected to" in worker_log.read_text()
    for text in texts:
        assert PASSWORD not in text

"""`farm ... --json`: every outcome is exactly one JSON object on stdout, with `id`, `state`,
`error` (null only when done) and `exit_code`, and the process exits with that code: refused
by click's parsing or by validation (2), failed (1), cancelled (3), unavailable (4),
interrupted (130), done (0). Real CLI subprocesses on a private FARM_HOME (issue 12.6)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests import clips
from tests.e2e.farmcli import FARM, FarmCLI, sigint_as_from_a_terminal
from tests.e2e.test_submit_cli import job_rows


def outcome(proc: subprocess.CompletedProcess | tuple, exit_code: int, state: str) -> dict:
    """The one JSON object on stdout, checked against the exit code and the state."""
    stdout, stderr, rc = (proc.stdout, proc.stderr, proc.returncode) if not isinstance(proc, tuple) else proc
    lines = stdout.splitlines()
    assert len(lines) == 1, f"stdout must be one JSON line:\n{stdout}\nstderr:\n{stderr}"
    result = json.loads(lines[0])
    assert isinstance(result, dict), result
    assert rc == exit_code, (rc, result, stderr)
    assert result["state"] == state and result["exit_code"] == exit_code, result
    assert "id" in result and "error" in result, result
    if state == "done":
        assert result["error"] is None, result
    else:
        assert isinstance(result["error"], str) and result["error"], result
    return result


@pytest.mark.parametrize("args,command", [
    (["submit", "x.mp4", "--json", "--bogus"], "farm submit"),
    (["submit", "x.mp4", "--json", "--priority", "x"], "farm submit"),
    (["submit", "--json"], "farm submit"),
    (["submit", "x.mp4", "--json", "--source"], "farm submit"),     # click raises it without a context
    (["submit", "x.mp4", "--wait", "--json", "--crf", "1.5"], "farm submit"),
    (["jobs", "--json", "--limit", "x"], "farm jobs"),
    (["models", "list", "--json", "--models"], "farm models list"),
])
def test_usage_errors_are_one_refused_object(cli, args, command):
    proc = cli.run(*args, timeout_s=60)
    result = outcome(proc, 2, "refused")
    assert result["id"] is None
    assert f"`{command} --help`" in result["hint"], result
    assert "Error:" in proc.stderr                      # the usage message still goes to stderr
    assert job_rows(cli.home) == 0 and "started the local farm" not in proc.stderr


def test_validation_refusals_are_one_refused_object_with_and_without_wait(cli, tmp_path):
    video = clips.make_clip(tmp_path / "a.mp4", seconds=0.5)
    not_image = tmp_path / "face.jpg"
    not_image.write_text("not a photo")
    spec = tmp_path / "render.toml"
    spec.write_text("colour = 'red'\n")
    cases = [
        ([str(tmp_path / "missing.mp4"), "--passthrough"], "missing.mp4"),
        ([str(video), "--source", str(tmp_path / "gone.png")], "gone.png"),
        ([str(video), "--source", str(not_image)], "face.jpg"),
        ([str(video)], "no source image"),
        ([str(video), "--spec", str(spec)], "colour"),
    ]
    for args, words in cases:
        for wait in ([], ["--wait"]):
            proc = cli.run("submit", *args, *wait, "--json", timeout_s=60)
            result = outcome(proc, 2, "refused")
            assert words in result["error"] and result["id"] is None, (args, result)
            assert result["hint"], result
    assert job_rows(cli.home) == 0


def test_an_unavailable_database_or_broker_is_one_unavailable_object(tmp_path, farm_home):
    video = clips.make_clip(tmp_path / "a.mp4", seconds=0.5)
    no_db = FarmCLI(farm_home, {"FARM_DATABASE_URL": "postgresql://127.0.0.1:1/x"})
    for args in (["submit", str(video), "--passthrough", "--json"],
                 ["submit", str(video), "--passthrough", "--wait", "--json"], ["jobs", "--json"]):
        result = outcome(no_db.run(*args, timeout_s=60), 4, "unavailable")
        assert "job database" in result["error"] and result["id"] is None, result
    no_broker = FarmCLI(farm_home, {"FARM_BROKER_URL": "redis://127.0.0.1:1/0"})
    result = outcome(no_broker.run("submit", str(video), "--passthrough", "--wait", "--json", timeout_s=60),
                     4, "unavailable")
    assert "broker" in result["error"] and result["hint"], result


def test_done_is_one_object_with_a_null_error(cli, tmp_path):
    video = clips.make_clip(tmp_path / "a.mp4", seconds=1.0)
    result = outcome(cli.run("submit", str(video), "--passthrough", "--wait", "--json", "--chunk-seconds", "0.5"),
                     0, "done")
    assert result["id"] == cli.job(result["id"])["id"] and Path(result["output"]).is_file()
    queued = json.loads(cli.run("submit", str(video), "--passthrough", "--json", "--overwrite", check=True).stdout)
    assert queued["id"] and queued["state"] in ("queued", "running", "finalizing", "done"), queued
    assert cli.wait_state(queued["id"], {"done", "failed"})["state"] == "done"


def _waiting_submit(cli: FarmCLI, video: Path) -> tuple[subprocess.Popen, str]:
    """`farm submit --wait --json` started in the background, once its job is running."""
    proc = subprocess.Popen([*FARM, "submit", str(video), "--passthrough", "--wait", "--json", "--chunk-seconds", "0.5"],
                            env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_from_a_terminal)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        newest = cli.newest_job()
        if newest and newest["state"] == "running":
            return proc, newest["id"]
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"no job started running: {proc.communicate()}")


def test_a_failed_job_is_one_failed_object_naming_the_job(cli, tmp_path):
    video = clips.make_clip(tmp_path / "long.mp4", width=960, height=540, seconds=6.0, gop=15)
    proc, job_id = _waiting_submit(cli, video)
    (tmp_path / "long.farm.mp4").write_bytes(b"someone else's file")   # never clobbered: the job fails
    stdout, stderr = proc.communicate(timeout=180)
    result = outcome((stdout, stderr, proc.returncode), 1, "failed")
    assert result["id"] == job_id and "appeared while the job ran" in result["error"], result
    assert f"farm retry {job_id}" in result["hint"]


def test_a_cancelled_job_is_one_cancelled_object_with_an_error(cli, tmp_path):
    # long enough that the job cannot end before `farm cancel` (a process start) reaches it
    video = clips.make_clip(tmp_path / "long.mp4", width=960, height=540, seconds=20.0, gop=15)
    proc, job_id = _waiting_submit(cli, video)
    assert cli.run("cancel", job_id).returncode == 0
    stdout, stderr = proc.communicate(timeout=120)
    result = outcome((stdout, stderr, proc.returncode), 3, "cancelled")
    assert result["id"] == job_id and "cancelled" in result["error"], result


def test_ctrl_c_while_waiting_is_one_interrupted_object_and_the_job_goes_on(cli, tmp_path):
    video = clips.make_clip(tmp_path / "long.mp4", width=960, height=540, seconds=4.0, gop=15)
    proc, job_id = _waiting_submit(cli, video)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    result = outcome((stdout, stderr, proc.returncode), 130, "interrupted")
    assert result["id"] == job_id and f"farm cancel {job_id}" in result["hint"], result
    assert cli.wait_state(job_id, {"done", "failed", "cancelled"})["state"] == "done"

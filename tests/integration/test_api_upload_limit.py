"""Over-limit uploads are answered in a way ordinary clients read (issue 11 point 6): `farm
api` as a real uvicorn process on loopback with a small upload limit; urllib (which sends
the whole body before reading an answer) and the shipped CI client deploy/ci/farm_render.py
as clients. Every request here is refused before any work, so the API runs over the shared
Redis (no workers are started) and its own SQLite database."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm.api.drain import DISCARD_LIMIT_BYTES
from tests.api_server import farm_api, free_port
from tests.integration.test_api import Api
from tests.redis_dbs import shared_redis_db

MAX_UPLOAD_BYTES = 1_000_000
MAX_IMAGE_BYTES = 100_000
CI_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "ci" / "farm_render.py"


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    env = {"FARM_BROKER_URL": f"redis://127.0.0.1:6379/{shared_redis_db(13)}", "FARM_MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES)}
    with farm_api("limit", env, local_farm=False, max_upload_bytes=MAX_UPLOAD_BYTES) as server:
        yield Api(server.home, server.url, server.token, server.log)


def post(api: Api, body: bytes, token: str) -> tuple[int, dict]:
    """POST /jobs with urllib: (status, JSON error body); a reset connection raises."""
    req = urllib.request.Request(f"{api.url}/jobs", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "multipart/form-data; boundary=b"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def run_ci(api: Api, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "FARM_API_URL": api.url, "FARM_API_TOKEN": api.token}
    return subprocess.run([sys.executable, str(CI_SCRIPT), *args], env=env, capture_output=True, text=True, check=False,
                          timeout=timeout_s)


def test_urllib_reads_the_413_and_the_401_of_a_body_it_sends_whole(api):
    # 20 times the limit: more than loopback socket buffers hold, so a server that closed
    # without reading the body would reset the connection under the sending client
    body = b"--b\r\n" + b"\0" * (20 * MAX_UPLOAD_BYTES)
    status, answer = post(api, body, api.token)
    assert status == 413 and f"over the limit of {MAX_UPLOAD_BYTES} bytes" in answer["detail"], answer
    status, answer = post(api, body, "not-a-token")       # refused before the route reads anything
    assert status == 401 and "bearer token" in answer["detail"], answer


def test_the_ci_client_refuses_a_video_over_the_limit_without_sending_it(api, tmp_path):
    # bigger than the server reads and drops for an answer: a client that sent it would see
    # the connection reset (and the CI client used to send it five times, then exit 4)
    big = tmp_path / "huge.mp4"
    with open(big, "wb") as fh:
        fh.truncate(DISCARD_LIMIT_BYTES + 10 * MAX_UPLOAD_BYTES)        # sparse: costs no disk
    posts = api.log.read_text().count("POST /jobs")
    started = time.monotonic()
    proc = run_ci(api, str(big), "--set", "passthrough=true")
    assert proc.returncode == 2, proc.stderr
    assert "trying again" not in proc.stderr and not proc.stdout
    assert str(big) in proc.stderr and f"limit of {MAX_UPLOAD_BYTES} bytes" in proc.stderr, proc.stderr
    assert "was not sent" in proc.stderr and "--max-upload-bytes" in proc.stderr, proc.stderr
    assert time.monotonic() - started < 30
    assert api.log.read_text().count("POST /jobs") == posts              # not a byte of it was sent


def test_the_ci_client_refuses_an_image_over_the_image_limit_without_sending_it(api, tmp_path):
    clip = tmp_path / "small.mp4"
    clip.write_bytes(b"\0" * 1000)
    (tmp_path / "face.jpg").write_bytes(b"\0" * (2 * MAX_IMAGE_BYTES))
    spec = tmp_path / "render.toml"
    spec.write_text('[submit]\nsource = ["face.jpg"]\n')
    posts = api.log.read_text().count("POST /jobs")
    proc = run_ci(api, str(clip), "--spec", str(spec))
    assert proc.returncode == 2 and "trying again" not in proc.stderr, proc.stderr
    assert f"source image {tmp_path / 'face.jpg'}" in proc.stderr and "FARM_MAX_IMAGE_BYTES" in proc.stderr
    assert api.log.read_text().count("POST /jobs") == posts


def test_the_ci_client_stops_at_the_servers_401_and_422(api, tmp_path):
    clip = tmp_path / "small.mp4"
    clip.write_bytes(b"\0" * 1000)
    posts = api.log.read_text().count("POST /jobs")
    env = {"PATH": "/usr/bin:/bin", "FARM_API_URL": api.url, "FARM_API_TOKEN": "revoked-or-wrong"}
    proc = subprocess.run([sys.executable, str(CI_SCRIPT), str(clip), "--set", "passthrough=true"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "HTTP 401" in proc.stderr and "trying again" not in proc.stderr, proc.stderr
    assert api.log.read_text().count("POST /jobs") == posts               # the token was refused first
    proc = run_ci(api, str(clip), "--set", "passthrough=true", "--set", "crf=lots")
    assert proc.returncode == 2 and "HTTP 422" in proc.stderr and "trying again" not in proc.stderr, proc.stderr
    assert str(clip) in proc.stderr and "crf" in proc.stderr
    assert api.log.read_text().count("POST /jobs") == posts + 1


def test_the_ci_client_gives_up_on_a_farm_that_does_not_answer_with_exit_4(tmp_path):
    clip = tmp_path / "small.mp4"
    clip.write_bytes(b"\0" * 1000)
    env = {"PATH": "/usr/bin:/bin", "FARM_API_URL": f"http://127.0.0.1:{free_port()}", "FARM_API_TOKEN": "t"}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(CI_SCRIPT), str(clip), "--set", "passthrough=true", "--retry-s", "0.25"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.count("trying again") == 4 and "unavailable" in proc.stderr, proc.stderr
    assert time.monotonic() - started >= 0.25 + 0.5 + 1 + 2   # it waited, twice as long each time

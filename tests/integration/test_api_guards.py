"""The HTTP API refuses what would hurt others or the server, and says so in a way every
client reads: `farm api` as a real uvicorn server on loopback over a real local farm
(`farm up`: private Redis + Celery workers), SQLite, real ffmpeg; plain urllib and
http.client as clients (they send the whole body before reading an answer), and the
shipped CI client deploy/ci/farm_render.py."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests import clips
from tests.e2e.farmcli import FarmCLI
from tests.api_server import farm_api
from tests.integration.test_api import Api, upload

MAX_UPLOAD_BYTES = 2_000_000
MAX_IMAGE_BYTES = 100_000
MAX_IMAGE_SIDE = 300
CI_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "ci" / "farm_render.py"


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    env = {"FARM_MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES), "FARM_MAX_IMAGE_SIDE": str(MAX_IMAGE_SIDE)}
    with farm_api("guard", env, max_upload_bytes=MAX_UPLOAD_BYTES) as server:
        yield Api(server.home, server.url, server.token, server.log)


@pytest.fixture(scope="module")
def other(api: Api) -> Api:
    """A second client: its own token, the same server."""
    token = FarmCLI(api.home).run("tokens", "create", "other", check=True).stdout.strip()
    return Api(api.home, api.url, token, api.log)


def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, filename, data in files:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f'Content-Type: application/octet-stream\r\n\r\n').encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def urllib_post(api: Api, body, content_type: str, length: int | None = None) -> tuple[int, dict]:
    """POST /jobs with urllib, as deploy/ci/farm_render.py does: (status, JSON body)."""
    headers = {"Authorization": f"Bearer {api.token}", "Content-Type": content_type}
    if length is not None:
        headers["Content-Length"] = str(length)
    req = urllib.request.Request(f"{api.url}/jobs", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ---- point 6: an over-limit upload is answered, not reset --------------------------------

def test_an_over_limit_upload_reaches_urllib_as_a_413(api, tmp_path):
    before = api.job_count()
    # well past the limit: more than the loopback socket buffers hold, so a server that
    # closed without reading the body would reset the connection under the client
    body, ctype = multipart({"passthrough": "true"}, [("video", "big.mp4", b"\0" * (10 * MAX_UPLOAD_BYTES))])
    status, answer = urllib_post(api, body, ctype)                      # with a Content-Length
    assert status == 413 and "over the limit" in answer["detail"], answer

    def chunks():                                                       # chunked: no Content-Length
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    status, answer = urllib_post(api, chunks(), ctype)
    assert status == 413 and "over the limit" in answer["detail"], answer
    assert api.job_count() == before and api.leftovers() == []


def test_a_client_that_expects_100_continue_gets_the_413_before_sending_the_body(api):
    conn = http.client.HTTPConnection("127.0.0.1", int(api.url.rsplit(":", 1)[1]), timeout=20)
    conn.putrequest("POST", "/jobs")
    for name, value in {"Authorization": f"Bearer {api.token}", "Content-Type": "multipart/form-data; boundary=x",
                        "Content-Length": str(50 * MAX_UPLOAD_BYTES), "Expect": "100-continue"}.items():
        conn.putheader(name, value)
    conn.endheaders()                       # no body sent: the server must answer without it
    resp = conn.getresponse()
    assert resp.status == 413 and "over the limit" in json.loads(resp.read())["detail"]
    conn.close()


def test_an_uploaded_image_over_the_image_limit_is_a_413_naming_it(api, tmp_path):
    clip = clips.make_clip(tmp_path / "a.mp4", seconds=0.5).read_bytes()
    body, ctype = multipart({"models": "demo"}, [("video", "a.mp4", clip),
                                                 ("source", "face.png", b"\x89PNG" + b"\0" * MAX_IMAGE_BYTES)])
    assert len(body) < MAX_UPLOAD_BYTES                                 # the body is within the upload limit
    status, answer = urllib_post(api, body, ctype)
    assert status == 413, answer
    assert "source image 'face.png'" in answer["detail"] and "FARM_MAX_IMAGE_BYTES" in answer["detail"]
    assert api.leftovers() == []


def test_the_ci_client_stops_at_a_4xx_and_exits_2_with_the_servers_detail(api, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (10 * MAX_UPLOAD_BYTES))
    env = {"PATH": "/usr/bin:/bin", "FARM_API_URL": api.url, "FARM_API_TOKEN": api.token}
    proc = subprocess.run([sys.executable, str(CI_SCRIPT), str(big), "--set", "passthrough=true"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "HTTP 413" in proc.stderr and "over the limit" in proc.stderr and "trying again" not in proc.stderr
    assert not proc.stdout
    fifo = tmp_path / "render.toml"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, str(CI_SCRIPT), str(big), "--spec", str(fifo)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not a regular file" in proc.stderr, proc.stderr


# ---- point 5: image dimensions, from the header, before decoding -------------------------

def test_an_uploaded_image_over_the_side_limit_is_refused_422(api, tmp_path):
    clip = clips.make_clip(tmp_path / "a.mp4", seconds=0.5)
    face = clips.make_face_image(tmp_path / "face.jpg", size=MAX_IMAGE_SIDE + 50)
    assert face.stat().st_size < MAX_IMAGE_BYTES
    with open(clip, "rb") as v, open(face, "rb") as f:
        resp = api.client.post("/jobs", files=[("video", ("a.mp4", v)), ("source", ("face.jpg", f))],
                               data={"models": "demo"})
    assert resp.status_code == 422, resp.text
    assert f"{MAX_IMAGE_SIDE + 50}x{MAX_IMAGE_SIDE + 50} pixels" in resp.json()["detail"]
    assert "FARM_MAX_IMAGE_SIDE" in resp.json()["detail"] and api.leftovers() == []


# ---- point 10: storage paths that are not regular files ----------------------------------

def test_storage_paths_that_are_fifos_are_refused_not_waited_on(api, tmp_path):
    incoming = api.storage / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    clips.make_clip(incoming / "fifo-test.mp4", seconds=0.5)
    clips.make_face_image(incoming / "fifo-face.jpg")
    fifo = incoming / f"face-{uuid.uuid4().hex[:6]}.jpg"
    os.mkfifo(fifo)
    before = api.job_count()
    for body in ({"path": "incoming/fifo-test.mp4", "source": [str(fifo.relative_to(api.storage))], "models": "demo"},
                 {"path": "incoming/fifo-test.mp4", "faces": "reference", "source": ["incoming/fifo-face.jpg"],
                  "reference": str(fifo), "models": "demo"},
                 {"path": str(fifo.relative_to(api.storage)), "passthrough": True}):
        resp = api.client.post("/jobs", json=body, timeout=30)
        assert resp.status_code == 422, (body, resp.text)
        assert str(fifo) in resp.json()["detail"] and "not a regular file" in resp.json()["detail"], resp.text
    resp = api.client.post("/jobs", json={"path": "incoming/fifo-test.mp4", "source": [str(fifo)]}, timeout=30)
    assert "not a regular file" in resp.json()["detail"] and "source image" in resp.json()["detail"]
    assert api.job_count() == before


# ---- point 4: nobody writes over another client's files ----------------------------------

def test_no_client_writes_over_another_clients_output_or_the_farms_files(api, other, tmp_path):
    src = clips.make_clip(tmp_path / "talk.mp4", seconds=0.5)
    resp = upload(api, src, passthrough="true")
    assert resp.status_code == 201, resp.text
    first = api.wait(resp.json()["id"])
    assert first["state"] == "done", first
    published = Path(first["output"])
    folder = published.parent.relative_to(api.storage)                  # api/<request>
    original = published.read_bytes()
    source = api.storage / "jobs" / first["id"] / "source.mp4"
    clips.make_clip(api.storage / "incoming" / "mine.mp4", seconds=0.5)
    before = api.job_count()
    attacks = [
        ({"output": f"{folder}/{published.name}", "overwrite": True}, "another request's folder"),
        ({"output": f"{folder}/new.farm.mp4"}, "another request's folder"),
        ({"output": f"jobs/{first['id']}/source.mp4", "overwrite": True}, "job folders"),
        ({"output": "trt-cache/x.mp4"}, "engine cache"),
        ({"output": "incoming/elsewhere.mp4"}, "goes under"),
    ]
    for body, words in attacks:
        resp = other.client.post("/jobs", json={"path": "incoming/mine.mp4", "passthrough": True, **body})
        assert resp.status_code == 422 and words in resp.json()["detail"], (body, resp.text)
    # a video inside a job's folder: another client cannot read it (farm.api.reading), and the
    # job's own client cannot have its default output written there either
    resp = other.client.post("/jobs", json={"path": f"jobs/{first['id']}/source.mp4", "passthrough": True})
    assert resp.status_code == 422 and resp.json()["detail"].endswith("source.mp4: no such file"), resp.text
    resp = api.client.post("/jobs", json={"path": f"jobs/{first['id']}/source.mp4", "passthrough": True})
    assert resp.status_code == 422 and "job folders" in resp.json()["detail"], resp.text
    assert api.job_count() == before
    assert published.read_bytes() == original and source.exists()

    # outputs/ is where clients name outputs; a path one client wrote is its own
    named = {"path": "incoming/mine.mp4", "passthrough": True, "output": "outputs/mine-other.farm.mp4"}
    resp = other.client.post("/jobs", json=named)
    assert resp.status_code == 201, resp.text
    assert other.wait(resp.json()["id"])["state"] == "done"
    theirs = api.storage / "outputs" / "mine-other.farm.mp4"
    kept = theirs.read_bytes()
    resp = api.client.post("/jobs", json={**named, "overwrite": True})
    assert resp.status_code == 422 and "another API client" in resp.json()["detail"], resp.text
    assert theirs.read_bytes() == kept
    resp = other.client.post("/jobs", json={**named, "overwrite": True})      # its own earlier output
    assert resp.status_code == 201, resp.text
    assert other.wait(resp.json()["id"])["state"] == "done"
    # and the first client may overwrite its own upload's output
    resp = upload(api, src, passthrough="true", output=f"{folder}/{published.name}", overwrite="true")
    assert resp.status_code == 201, resp.text
    assert api.wait(resp.json()["id"])["state"] == "done"
    # a file no job of this client made is not overwritten over the API
    (api.storage / "outputs" / "by-hand.mp4").write_bytes(b"by hand")
    resp = api.client.post("/jobs", json={"path": "incoming/mine.mp4", "passthrough": True,
                                          "output": "outputs/by-hand.mp4", "overwrite": True})
    assert resp.status_code == 422 and "not an output of this token" in resp.json()["detail"], resp.text
    assert (api.storage / "outputs" / "by-hand.mp4").read_bytes() == b"by hand"

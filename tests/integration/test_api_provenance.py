"""The API's provenance: POST /verify gives `farm verify`'s report (an upload or a path on
storage), and a job's consent and provenance are in its JSON. A real `farm api` server
over a real local farm (tests.integration.test_api's fixture)."""

from __future__ import annotations

import shutil

from tests import clips
from tests.integration.test_api import api  # noqa: F401 - the module's server fixture
from tests.provenance_bytes import flip_media_byte


def test_job_records_consent_and_its_output_verifies_over_the_api(api, tmp_path):  # noqa: F811
    folder = api.storage / "prov"
    folder.mkdir(exist_ok=True)
    clips.make_clip(folder / "clip.mp4", seconds=1.0, audio_tracks=1)
    resp = api.client.post("/jobs", json={"path": "prov/clip.mp4", "passthrough": True, "consent": "form 2026-17",
                                          "output": "outputs/prov-clip.mp4"})
    assert resp.status_code == 201, resp.text
    job = api.wait(resp.json()["id"])
    assert job["state"] == "done" and job["consent"] == "form 2026-17", job
    assert job["provenance"].startswith("signed C2PA manifest")

    report = api.client.post("/verify", json={"path": "outputs/prov-clip.mp4"}).json()
    assert report["status"] == "valid" and report["exit_code"] == 0 and report["job_id"] == job["id"]
    assert report["consent"] == "form 2026-17" and report["passthrough"] is True and report["caveat"]

    flip_media_byte(api.storage / "outputs" / "prov-clip.mp4", tmp_path / "tampered.mp4")
    with open(tmp_path / "tampered.mp4", "rb") as fh:
        resp = api.client.post("/verify", files={"file": ("tampered.mp4", fh, "video/mp4")})
    assert resp.status_code == 200, resp.text
    assert resp.json()["exit_code"] == 1 and resp.json()["path"] == "tampered.mp4"
    assert not [p for p in (api.storage / "api").glob("verify-*")]   # the upload is not kept

    assert api.client.post("/verify", json={"path": "prov/clip.mp4"}).json()["exit_code"] == 2
    outside = api.client.post("/verify", json={"path": "/etc/passwd"})
    assert outside.status_code == 422, outside.text
    shutil.rmtree(folder)

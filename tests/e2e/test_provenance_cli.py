"""Provenance end to end through the real `farm` command (private Redis, Celery workers,
SQLite, ffmpeg, ONNX Runtime with the demo pack): every MP4 output carries a signed C2PA
manifest that `farm verify` checks; one flipped byte of media data is caught."""

from __future__ import annotations

import json


from tests import clips
from tests.e2e.farmcli import FarmCLI
from tests.e2e.test_submit_cli import job_rows
from tests.provenance_bytes import flip_media_byte


def test_demo_and_passthrough_outputs_verify_and_a_flipped_byte_does_not(cli, tmp_path):
    src = clips.make_clip(tmp_path / "talk.mp4", seconds=1.0, audio_tracks=1, gop=15)
    face = clips.make_face_image(tmp_path / "face.jpg")
    proc = cli.run("submit", str(src), "--source", str(face), "--models", "demo", "--consent", "ticket REL-42",
                   "--output", str(tmp_path / "demo.mp4"), "--wait", "--json", "--chunk-seconds", "0.5")
    assert proc.returncode == 0, proc.stderr + cli.logs()
    demo = json.loads(proc.stdout)
    assert demo["consent"] == "ticket REL-42" and demo["provenance"].startswith("signed C2PA manifest")
    assert "integrity" in demo["provenance"]   # self-signed: says what it proves

    checked = cli.run("verify", str(tmp_path / "demo.mp4"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"job {demo['id']}" in checked.stdout and "consent: ticket REL-42" in checked.stdout
    assert "inswapper_128" in checked.stdout and "sha256:" in checked.stdout
    assert "integrity" in checked.stdout and "not who signed it" in checked.stdout
    report = json.loads(cli.run("verify", str(tmp_path / "demo.mp4"), "--json").stdout)
    assert report["job_id"] == demo["id"] and report["passthrough"] is False
    assert any("inswapper_128" in m["name"] for m in report["models"]) and all(len(m["sha256"]) == 64 for m in report["models"])

    status = cli.run("status", demo["id"])
    assert "consent: ticket REL-42" in status.stdout and "provenance: signed" in status.stdout

    flip_media_byte(tmp_path / "demo.mp4", tmp_path / "tampered.mp4")
    tampered = cli.run("verify", str(tmp_path / "tampered.mp4"))
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert "INVALID" in tampered.stdout and "mismatch" in tampered.stdout

    key_lines = [ln for ln in (cli.home / "c2pa" / "signer.key").read_text().splitlines() if "-----" not in ln]
    assert oct((cli.home / "c2pa" / "signer.key").stat().st_mode & 0o777) == "0o600"
    seen = [checked.stdout, checked.stderr, status.stdout, proc.stdout, proc.stderr,
            cli.run("jobs", "--json").stdout]
    seen += [p.read_bytes().decode("latin-1") for p in cli.home.glob("farm.db*")]   # with its WAL
    seen += [p.read_text(errors="replace") for p in (cli.home / "logs").rglob("*") if p.is_file()]
    for text in seen:   # the signing key never reaches a log, the database or an output
        assert "PRIVATE KEY" not in text and not any(line in text for line in key_lines)

    unsigned = cli.run("verify", str(src))
    assert unsigned.returncode == 2 and "no C2PA manifest" in unsigned.stdout

    proc = cli.run("submit", str(src), "--passthrough", "--output", str(tmp_path / "copy.mp4"), "--wait", "--json")
    assert proc.returncode == 0, proc.stderr + cli.logs()
    copy = json.loads(cli.run("verify", str(tmp_path / "copy.mp4"), "--json").stdout)
    assert copy["status"] == "valid" and copy["passthrough"] is True and copy["models"] == []
    assert "pass-through" in cli.run("verify", str(tmp_path / "copy.mp4")).stdout


def test_matroska_output_is_published_unsigned_and_says_so(cli, tmp_path):
    src = clips.make_clip(tmp_path / "talk.mkv", seconds=1.0, audio_tracks=0, gop=15)
    proc = cli.run("submit", str(src), "--passthrough", "--wait", "--json")
    assert proc.returncode == 0, proc.stderr + cli.logs()
    result = json.loads(proc.stdout)
    assert result["provenance"].startswith("not signed: c2pa cannot embed a manifest in a matroska file")
    assert cli.run("verify", result["output"]).returncode == 2


def test_require_consent_refuses_a_submit_without_it_and_stores_nothing(farm_home, tmp_path):
    cli = FarmCLI(farm_home, extra_env={"FARM_REQUIRE_CONSENT": "true"})
    src = clips.make_clip(tmp_path / "talk.mp4", seconds=1.0)
    proc = cli.run("submit", str(src), "--passthrough", "--json")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "requires a consent reference" in proc.stderr and "--consent" in proc.stderr
    assert job_rows(farm_home) == 0 and not list((farm_home / "storage").glob("jobs/*"))
    assert not (farm_home / "run" / "redis.pid").exists()   # nothing was started either

"""A job that changed no face says so at its end (issue 15.4): `farm submit --wait --json`
on a clip without a face, through the real farm (private Redis, Celery workers, the demo
pack on ONNX Runtime's CPU provider), prints the warning on stderr and carries it in its
one JSON object; `farm status JOB` shows it and the frames counted per chunk."""

from __future__ import annotations

import json


from tests import clips, media_checks


def test_a_faceless_clip_is_done_unaltered_with_a_warning(cli, tmp_path):
    video = clips.make_clip(tmp_path / "noface.mp4", width=320, height=180, seconds=1.0)
    face = clips.make_face_image(tmp_path / "source.jpg")
    out = tmp_path / "noface.farm.mp4"
    proc = cli.run("submit", str(video), "--source", str(face), "--models", "demo", "--output", str(out),
                   "--chunk-seconds", "0.5", "--wait", "--json", timeout_s=600)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(lines) == 1, (proc.stdout, proc.stderr)
    result = json.loads(lines[0])
    assert result["state"] == "done" and result["error"] is None and result["exit_code"] == 0, result
    assert (result["frames_changed"], result["faces_changed"]) == (0, 0), result
    said = f"job {result['id']} changed no face in any of its 30 frames"
    assert result["warning"].startswith(said), result
    assert f"warning: {said}" in " ".join(proc.stderr.split()), proc.stderr
    tags = media_checks.container_tags(out)
    assert "no face found; unaltered" in tags["comment"] and tags["farm_faces_altered"] == "0", tags
    status = " ".join(cli.run("status", result["id"], check=True).stdout.split())
    assert f"warning: {said}" in status and "30/30 frames, 0 with a face changed (0 faces)" in status, status

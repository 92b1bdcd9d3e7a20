"""Frames with a face changed, per chunk and per job (issue 15.4): what the workers count
is shown by `farm status`, the jobs table, the API and the JSON; a job that changed no face
says so at its end (a `warning`) and its output label says it is unaltered.

Real jobs (submit, the worker's run_chunk, finalize, in this process; the demo pack on
ONNX Runtime's CPU provider) over SQLite on real clips; the broker calls are dropped.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import farm.workers.chunk_runner
from farm.workers.finalize import output_label, run_finalize
from fastapi.testclient import TestClient
from rich.console import Console

import farm.jobs.submit
from farm.api.app import create_app
from farm.cli.watch import job_view, jobs_table, wait_for_job
from farm.jobs.outcomes import job_json, job_outcome_json
from farm.jobs.submit import SubmitRequest, submit
from farm.state import chunks, store
from farm.state.tokens import create_token
from tests import clips, job_rows, media_checks
from tests.job_rows import hand_to_client


def render(settings, db, ctx, video: Path, out: Path) -> store.JobView:
    face = clips.make_face_image(out.parent / "source.jpg")
    req = SubmitRequest(video=video, sources=[face], models="demo", output=out, chunk_seconds=0.5,
                        face_options={"detect_max_side": 320})
    job_id = submit(req, settings, db)
    for index in range(store.get_job(db, job_id).chunk_count):
        assert farm.workers.chunk_runner.run_chunk(ctx, job_id, index, "cpu0@test").startswith("done")
    assert run_finalize(ctx, job_id, "fin") == "done", store.get_job(db, job_id).error
    return store.get_job(db, job_id)


def text_of(renderable, width: int = 160) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return " ".join(console.file.getvalue().split())


def api_client(settings, db, job_id: str) -> TestClient:
    """A client of the API whose token the job is recorded as (a client sees its own jobs only)."""
    client = TestClient(create_app(settings, db))
    token = create_token(db, "ci-" + uuid.uuid4().hex[:6])
    hand_to_client(db, job_id, token)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_frames_with_a_face_changed_are_counted_per_chunk_and_job_and_shown(inproc, tmp_path):
    settings, db, ctx = inproc
    video = clips.make_clip(tmp_path / "face.mp4", width=480, height=270, seconds=1.0, moving_face=True)
    (tmp_path / "out").mkdir()
    job = render(settings, db, ctx, video, tmp_path / "out" / "face.farm.mp4")
    per_chunk = [(c.frames_changed, c.faces_changed) for c in job.chunks]
    frames, faces = sum(f for f, _ in per_chunk), sum(n for _, n in per_chunk)
    assert job.chunk_count >= 2 and 0 < frames <= job.frames_total and faces >= frames
    # the job's JSON (CLI --json, farm jobs --json, the API) carries the totals, and no warning
    assert job.changed == (frames, faces)
    result = job_outcome_json(job)
    assert (result["frames_changed"], result["faces_changed"], result["warning"]) == (frames, faces, None)
    # farm status JOB: a column per chunk, the totals in the title
    view = text_of(job_view(job))
    assert f"{job.frames_total}/{job.frames_total} frames, {frames} with a face changed ({faces} faces)" in view
    assert "changed" in view and "warning" not in view
    for c in job.chunks:
        assert f"│ {c.index} │ done │ {c.frames_planned}/{c.frames_planned} │ {c.frames_changed} │" in \
            text_of(job_view(job)).replace("  ", " "), c
    assert f"│ {frames} │" in text_of(jobs_table([job], 200))
    # the API: per chunk and per job
    got = api_client(settings, db, job.id).get(f"/jobs/{job.id}").json()
    assert (got["frames_changed"], got["faces_changed"], got["warning"]) == (frames, faces, None)
    assert [(c["frames_changed"], c["faces_changed"]) for c in got["chunk_progress"]] == per_chunk
    # the label says in how many frames
    tags = media_checks.container_tags(job.output_path)
    assert f"in {frames} of {job.frames_total} frames ({faces} faces)" in tags["comment"], tags


def test_a_job_that_changed_no_face_says_so_at_its_end(inproc, tmp_path):
    settings, db, ctx = inproc
    video = clips.make_clip(tmp_path / "noface.mp4", width=320, height=180, seconds=1.0)
    (tmp_path / "out").mkdir()
    job = render(settings, db, ctx, video, tmp_path / "out" / "noface.farm.mp4")
    assert job.changed == (0, 0)
    warning = f"job {job.id} changed no face in any of its {job.frames_total} frames"
    result = job_outcome_json(job)
    assert result["state"] == "done" and result["exit_code"] == 0 and (result["frames_changed"], result["faces_changed"]) == (0, 0)
    assert result["warning"].startswith(warning) and "--min-score" in result["warning"]
    # at the end of `--wait`, on stderr
    console = Console(file=io.StringIO(), width=200, color_system=None)
    assert wait_for_job(db, job.id, console).state == "done"
    assert f"warning: {warning}" in " ".join(console.file.getvalue().split())
    # farm status JOB and the API
    view = text_of(job_view(job))
    assert f"warning: {warning}" in view and "0 with a face changed (0 faces)" in view
    got = api_client(settings, db, job.id).get(f"/jobs/{job.id}").json()
    assert got["warning"].startswith(warning) and got["frames_changed"] == 0
    # the output label: unaltered
    tags = media_checks.container_tags(job.output_path)
    assert "no face found; unaltered" in tags["comment"] and "faces altered" not in tags["comment"], tags


def test_a_reference_that_matched_nobody_is_named_in_the_label_and_the_warning(inproc):
    _, db, _ = inproc
    job_rows.make_job(db, "ref0", [10, 10])
    with db.transaction() as s:   # as submit records a faces=reference job
        row = store.lock_job(s, "ref0")
        row.options = {"faces": "reference", "similarity": 0.6}
        row.models = {"pack": "demo", "demo": True, "stages": ["swap"]}
    for i in range(2):
        chunks.claim_chunk(db, "ref0", i, "w", 3, stale_after_s=120)
        chunks.finish_chunk(db, "ref0", i, "w", changed=(0, 0))
    job = store.get_job(db, "ref0")
    assert job.state != "done" and job_json(job)["warning"] is None   # said at the end, once the job is done
    with db.transaction() as s:
        store.set_job_state(store.lock_job(s, "ref0"), store.JobState.DONE)
    job = store.get_job(db, "ref0")
    assert "no face matched the reference; unaltered" in output_label(job)
    assert "no face matched the reference (similarity 0.6)" in job_json(job)["warning"]
    # a pass-through job changes no face by design: no warning
    job_rows.make_job(db, "pass0", [10])
    chunks.claim_chunk(db, "pass0", 0, "w", 3, stale_after_s=120)
    chunks.finish_chunk(db, "pass0", 0, "w", changed=(0, 0))
    with db.transaction() as s:
        store.set_job_state(store.lock_job(s, "pass0"), store.JobState.DONE)
    passed = store.get_job(db, "pass0")
    assert job_json(passed)["warning"] is None and "-" in text_of(jobs_table([passed], 200))

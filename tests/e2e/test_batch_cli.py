"""Batches end to end (issue 16.1, 16.3): `farm submit FOLDER...` on the embedded farm (a real
private Redis, Celery workers, SQLite, ffmpeg), pass-through jobs of short clips."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path


from tests import clips, media_checks
from tests.e2e.farmcli import FARM, FarmCLI, hold_workers, wait_signal_pending

CHUNK = ("--chunk-seconds", "0.5")


def rows(home: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(home / "farm.db") as conn:
        return conn.execute(sql, args).fetchall()


def job_count(home: Path) -> int:
    return rows(home, "SELECT count(*) FROM jobs")[0][0]


def batch_json(cli: FarmCLI, batch_id: str) -> dict:
    proc = cli.run("status", batch_id, "--json")
    assert proc.returncode in (0, 4), proc.stderr   # 4: the local farm is stopped
    return json.loads(proc.stdout)


def wait_batch(cli: FarmCLI, batch_id: str, timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        live = rows(cli.home, "SELECT count(*) FROM jobs WHERE batch_id=? AND state IN ('queued','running',"
                              "'finalizing')", batch_id)[0][0]
        if not live:
            return batch_json(cli, batch_id)
        time.sleep(0.3)
    raise AssertionError(f"batch {batch_id} never ended: {batch_json(cli, batch_id)}\n{cli.logs()}")


def test_a_folder_mirrors_its_outputs_skips_what_is_not_a_video_fails_a_broken_file_alone_and_resumes(cli, tmp_path):
    folder = tmp_path / "shoot"
    a = clips.make_clip(folder / "a.mp4", seconds=1.0)
    b = clips.make_clip(folder / "day2" / "b.mkv", seconds=1.0)
    broken = clips.make_not_video(folder / "day2" / "broken.mp4", kind="truncated")
    (folder / ".hidden.mp4").write_bytes(a.read_bytes())
    (folder / "notes.txt").write_text("not a video")
    out = tmp_path / "out"
    args = ("submit", str(folder), "--passthrough", *CHUNK, "--output", str(out))

    proc = cli.run(*args, "--wait", "--json")
    assert proc.returncode == 1, proc.stderr + cli.logs()
    result = json.loads(proc.stdout)
    assert result["batch"].startswith("b-") and result["state"] == "done" and result["exit_code"] == 1
    assert (result["total"], result["done"], result["failed"]) == (3, 2, 1)
    items = {Path(i["input"]).name: i for i in result["items"]}
    assert set(items) == {"a.mp4", "b.mkv", "broken.mp4"}
    assert set(items["a.mp4"]) >= {"id", "input", "output", "state", "error"}
    assert items["a.mp4"]["output"] == str(out / "a.mp4") and items["b.mkv"]["output"] == str(out / "day2" / "b.mkv")
    assert items["broken.mp4"]["state"] == "failed" and "broken.mp4" in items["broken.mp4"]["error"]
    assert result["failures"] == [str(broken)]
    skipped = {Path(s["input"]).name: s["reason"] for s in result["skipped"]}
    assert skipped.keys() == {".hidden.mp4", "notes.txt"}   # images are items: tests/e2e/test_image_batch.py
    assert "hidden" in skipped[".hidden.mp4"] and "unknown extension" in skipped["notes.txt"]
    for src, dst in ((a, out / "a.mp4"), (b, out / "day2" / "b.mkv")):
        assert media_checks.frame_count(dst) == media_checks.frame_count(src)
    assert not (out / "day2" / "broken.mp4").exists() and not (out / ".hidden.mp4").exists()
    assert "broken.mp4" in proc.stderr and "skipped" in proc.stderr
    jobs = job_count(cli.home)
    assert jobs == 2

    # the same command again: nothing new is rendered, the broken file fails again
    again = json.loads(cli.run(*args, "--wait", "--json").stdout)
    assert job_count(cli.home) == jobs
    assert [i["resumed"] for i in again["items"] if i["state"] == "done"] == [True, True]
    assert {i["id"] for i in again["items"] if i["resumed"]} == {items["a.mp4"]["id"], items["b.mkv"]["id"]}

    # a changed input renders only it again, over its earlier output
    clips.make_clip(b, seconds=1.5)
    changed = json.loads(cli.run(*args, "--wait", "--json").stdout)
    assert job_count(cli.home) == jobs + 1
    by_name = {Path(i["input"]).name: i for i in changed["items"]}
    assert by_name["a.mp4"]["resumed"] and not by_name["b.mkv"]["resumed"] and by_name["b.mkv"]["state"] == "done"
    assert media_checks.frame_count(out / "day2" / "b.mkv") == 45

    # --force renders every item again; a broken-free selection exits 0
    forced = cli.run("submit", str(a), str(b), "--passthrough", *CHUNK, "--output", str(out), "--force",
                     "--wait", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["exit_code"] == 0
    assert job_count(cli.home) == jobs + 3


def hold_after_first_chunk(cli: FarmCLI, batch_id: str) -> list:
    """Suspend the workers once the batch's first chunk is done (a stop or a cancel mid-batch)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = rows(cli.home, "SELECT count(*) FROM chunks JOIN jobs ON jobs.id = chunks.job_id "
                              "WHERE jobs.batch_id=? AND chunks.state='done'", batch_id)[0][0]
        if done:
            break
        time.sleep(0.05)
    return hold_workers(cli)


def done_chunks(home: Path, batch_id: str) -> dict:
    return {(j, i): (at, n) for j, i, at, n in rows(
        home, "SELECT chunks.job_id, chunks.\"index\", chunks.finished_at, chunks.attempts FROM chunks "
              "JOIN jobs ON jobs.id = chunks.job_id WHERE jobs.batch_id=? AND chunks.state='done'", batch_id)}


def test_stopping_the_farm_mid_batch_loses_nothing_and_redoes_nothing(cli, tmp_path):
    folder = tmp_path / "in"
    for n in range(3):
        clips.make_clip(folder / f"c{n}.mp4", seconds=2.0, gop=15)
    out = tmp_path / "out"
    batch_id = cli.run("submit", str(folder), "--passthrough", *CHUNK, "--output", str(out), check=True).stdout.strip()
    held = hold_after_first_chunk(cli, batch_id)
    # `farm down` while the workers are held: they get its SIGTERM as they go on, and stop
    # after the chunk in hand (0.5 s chunks of a small clip take ~50 ms: unheld, they would
    # finish the whole batch before the stop reached them)
    down = subprocess.Popen([*FARM, "down"], env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_signal_pending(held, signal.SIGTERM)   # not a fixed sleep: `farm down` may start slowly
    for proc in held:
        proc.resume()
    assert down.wait(timeout=120) == 0, down.communicate()
    before = done_chunks(cli.home, batch_id)
    middle = batch_json(cli, batch_id)
    assert before and middle["done"] < 3, middle
    # the same command while the farm is stopped: its items are the recorded jobs, no second render
    rerun = cli.run("submit", str(folder), "--passthrough", *CHUNK, "--output", str(out), "--json")
    assert rerun.returncode == 0 and job_count(cli.home) == 3, rerun.stderr
    assert {i["id"] for i in json.loads(rerun.stdout)["items"]} == {i["id"] for i in middle["items"]}
    cli.run("up", check=True, timeout_s=120)
    result = wait_batch(cli, batch_id)
    assert (result["state"], result["done"], result["exit_code"]) == ("done", 3, 0), result
    after = done_chunks(cli.home, batch_id)
    assert all(after[key] == value for key, value in before.items()), "a chunk done before the stop ran again"
    assert job_count(cli.home) == 3
    for n in range(3):
        assert media_checks.frame_count(out / f"c{n}.mp4") == 60


def test_cancel_status_and_retry_work_on_the_batch(cli, tmp_path):
    first = clips.make_clip(tmp_path / "one.mp4", seconds=2.0, gop=15)
    second = clips.make_clip(tmp_path / "two.mp4", seconds=2.0, gop=15)
    out = tmp_path / "out"
    batch_id = cli.run("submit", str(first), str(second), "--passthrough", *CHUNK, "--output", str(out),
                       check=True).stdout.strip()
    held = hold_after_first_chunk(cli, batch_id)
    try:
        cancel = cli.run("cancel", batch_id)
    finally:
        for proc in held:
            proc.resume()
    assert cancel.returncode == 0 and "cancelled" in cancel.stderr, cancel.stderr
    stopped = wait_batch(cli, batch_id)
    assert stopped["state"] == "cancelled" and stopped["cancelled"] >= 1 and stopped["exit_code"] == 3, stopped
    table = cli.run("status", batch_id).stdout
    assert batch_id in table and "cancelled" in table and "farm retry" in table
    time.sleep(2)   # a chunk in hand when the cancel came notices it within about a second (test_cancel_retry)
    retry = cli.run("retry", batch_id)
    assert retry.returncode == 0 and "queued again" in retry.stderr, retry.stderr
    result = wait_batch(cli, batch_id)
    assert (result["state"], result["done"], result["exit_code"]) == ("done", 2, 0), result
    assert media_checks.frame_count(out / "one.mp4") == media_checks.frame_count(first)
    assert cli.run("retry", batch_id).returncode == 2   # nothing left to retry
    assert cli.run("cancel", batch_id).returncode == 2  # nothing left to cancel


def test_a_faceless_video_fails_alone_in_a_face_batch(cli, tmp_path):
    folder = tmp_path / "in"
    clips.make_clip(folder / "face.mp4", width=320, height=180, seconds=1.0, moving_face=True)
    clips.make_clip(folder / "empty-room.mp4", width=320, height=180, seconds=1.0)
    face = clips.make_face_image(tmp_path / "source.jpg")
    proc = cli.run("submit", str(folder), "--source", str(face), "--models", "demo", *CHUNK,
                   "--output", str(tmp_path / "out"), "--wait", "--json", timeout_s=600)
    assert proc.returncode == 1, proc.stderr + cli.logs()
    result = json.loads(proc.stdout)
    states = {Path(i["input"]).name: (i["state"], i["error"]) for i in result["items"]}
    assert states["face.mp4"] == ("done", None), result
    assert states["empty-room.mp4"][0] == "failed" and "no face was changed" in states["empty-room.mp4"][1]
    assert result["state"] == "done" and result["failures"] == [str(folder / "empty-room.mp4")]


def test_retry_runs_every_item_it_can_and_names_each_one_it_cannot(cli, tmp_path):
    """A faceless video's job is done though its item failed: `farm retry BATCH` used to stop
    there (exit 2, "job ... is done"), after resubmitting the items before it without saying so
    and never reaching those after it."""
    folder = tmp_path / "in"
    for name in ("a-broken.mp4", "c-broken.mp4", "d-broken.mp4"):
        clips.make_not_video(folder / name, kind="truncated")
    clips.make_clip(folder / "b-empty-room.mp4", width=320, height=180, seconds=1.0)
    face = clips.make_face_image(tmp_path / "source.jpg")
    args = ("submit", str(folder), "--source", str(face), "--models", "demo", *CHUNK, "--output", str(tmp_path / "out"))
    first = json.loads(cli.run(*args, "--wait", "--json", timeout_s=600).stdout)
    failed = {Path(i["input"]).name: i for i in first["items"]}
    assert all(i["state"] == "failed" for i in failed.values()), first
    assert failed["b-empty-room.mp4"]["id"] and "no face was changed" in failed["b-empty-room.mp4"]["error"]
    for name in ("a-broken.mp4", "c-broken.mp4"):   # fixed; d-broken.mp4 stays broken
        clips.make_clip(folder / name, width=320, height=180, seconds=1.0, moving_face=True)

    retry = cli.run("retry", first["batch"])
    lines = {line.split(":")[0]: line for line in retry.stderr.splitlines() if line.startswith(str(folder))}
    assert set(lines) == {str(folder / n) for n in ("a-broken.mp4", "b-empty-room.mp4", "c-broken.mp4",
                                                    "d-broken.mp4")}, retry.stderr
    assert "submitted again as job" in lines[str(folder / "a-broken.mp4")], retry.stderr
    assert "submitted again as job" in lines[str(folder / "c-broken.mp4")], retry.stderr
    assert "refused again" in lines[str(folder / "d-broken.mp4")], retry.stderr
    faceless = lines[str(folder / "b-empty-room.mp4")]
    assert "not retried" in faceless and "no face was changed" in faceless and \
        f"its job {failed['b-empty-room.mp4']['id']} is done" in faceless, faceless
    assert retry.returncode == 1, retry.stderr   # one retry was refused (d-broken.mp4)
    now = {Path(i["input"]).name: i for i in batch_json(cli, first["batch"])["items"]}
    assert now["a-broken.mp4"]["id"] and now["c-broken.mp4"]["id"] and not now["d-broken.mp4"]["id"]

    clips.make_clip(folder / "d-broken.mp4", width=320, height=180, seconds=1.0, moving_face=True)
    again = cli.run("retry", first["batch"])
    assert again.returncode == 0 and "d-broken.mp4: submitted again as job" in again.stderr, again.stderr
    assert "b-empty-room.mp4: not retried" in again.stderr, again.stderr
    ended = {Path(i["input"]).name: i["state"] for i in wait_batch(cli, first["batch"], timeout_s=600)["items"]}
    assert ended == {"a-broken.mp4": "done", "b-empty-room.mp4": "failed", "c-broken.mp4": "done",
                     "d-broken.mp4": "done"}, ended
    last = cli.run("retry", first["batch"])   # only the faceless item is left, and it cannot run again
    assert last.returncode == 2 and "b-empty-room.mp4: not retried" in last.stderr, last.stderr
    assert f"batch {first['batch']} has nothing to retry" in " ".join(last.stderr.split()), last.stderr

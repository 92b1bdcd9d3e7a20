"""`farm submit` refuses at once, with exit 2, naming the file, and with nothing stored:
outputs that are symlinks or lie in the farm's own folders, FIFOs given as inputs, and
images over the configured limits (real CLI, private FARM_HOME)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path


from tests import clips
from tests.e2e.farmcli import FarmCLI
from tests.e2e.test_submit_cli import job_rows


def assert_refused(cli: FarmCLI, proc, *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    assert job_rows(cli.home) == 0
    assert not list((cli.home / "storage").glob("jobs/*/source*"))
    assert "started the local farm" not in proc.stderr


def test_an_output_that_is_a_symlink_is_refused_at_submit(cli, tmp_path):
    src = clips.make_clip(tmp_path / "a.mp4", seconds=0.5)
    dangling = tmp_path / "out.mp4"
    dangling.symlink_to(tmp_path / "nowhere" / "x.mp4")
    proc = cli.run("submit", str(src), "--passthrough", "--output", str(dangling))
    assert_refused(cli, proc, str(dangling), "symbolic link", "points nowhere")
    target = tmp_path / "precious.mp4"
    target.write_bytes(b"precious")
    link = tmp_path / "link.mp4"
    link.symlink_to(target)
    proc = cli.run("submit", str(src), "--passthrough", "--output", str(link), "--overwrite")
    assert_refused(cli, proc, str(link), "symbolic link")
    assert target.read_bytes() == b"precious" and link.is_symlink()


def test_an_output_in_the_farms_own_folders_is_refused(cli, tmp_path):
    src = clips.make_clip(tmp_path / "a.mp4", seconds=0.5)
    storage = cli.home / "storage"
    other_job = storage / "jobs" / "0123456789ab"        # another job's folder, as ingest leaves it
    other_job.mkdir(parents=True)
    (other_job / "source.mp4").write_bytes(b"another job's source")
    api_job = storage / "api" / ("f" * 32)
    api_job.mkdir(parents=True)
    (api_job / "talk.farm.mp4").write_bytes(b"an API job's output")
    for out, words in [(other_job / "source.mp4", "job folders"), (api_job / "talk.farm.mp4", "API's upload folders"),
                       (storage / "outputs" / "x.mp4", "API's output folder"),
                       (cli.home / "run" / "x.mp4", "run folder")]:
        out.parent.mkdir(parents=True, exist_ok=True)
        proc = cli.run("submit", str(src), "--passthrough", "--output", str(out), "--overwrite")
        assert proc.returncode == 2, (out, proc.stderr)
        assert str(out) in proc.stderr and words in proc.stderr, (out, proc.stderr)
    # through a symlinked folder too
    (tmp_path / "sneaky").symlink_to(other_job)
    proc = cli.run("submit", str(src), "--passthrough", "--output", str(tmp_path / "sneaky" / "source.mp4"),
                   "--overwrite")
    assert proc.returncode == 2 and "job folders" in proc.stderr, proc.stderr
    assert (other_job / "source.mp4").read_bytes() == b"another job's source"
    assert (api_job / "talk.farm.mp4").read_bytes() == b"an API job's output"
    assert job_rows(cli.home) == 0


def test_fifos_as_source_image_or_spec_file_are_refused_not_waited_on(cli, tmp_path):
    src = clips.make_clip(tmp_path / "a.mp4", seconds=0.5)
    fifo = tmp_path / "face.jpg"
    os.mkfifo(fifo)
    proc = cli.run("submit", str(src), "--source", str(fifo), "--models", "demo", timeout_s=60)
    assert_refused(cli, proc, str(fifo), "not a regular file", "FIFO")
    spec = tmp_path / "render.toml"
    os.mkfifo(spec)
    proc = cli.run("submit", str(src), "--spec", str(spec), timeout_s=60)
    assert_refused(cli, proc, str(spec), "spec file", "not a regular file")
    proc = cli.run("submit", str(fifo), "--passthrough", timeout_s=60)      # as the video: refused as before
    assert_refused(cli, proc, str(fifo), "not a regular file")


def test_a_source_image_over_the_configured_limits_is_refused_before_decoding(cli, tmp_path):
    src = clips.make_clip(tmp_path / "a.mp4", seconds=0.5)
    face = clips.make_face_image(tmp_path / "face.png", size=256)
    proc = FarmCLI(cli.home, {"FARM_MAX_IMAGE_SIDE": "200"}).run("submit", str(src), "--source", str(face),
                                                                 "--models", "demo")
    assert_refused(cli, proc, str(face), "256x256 pixels", "FARM_MAX_IMAGE_SIDE")
    proc = FarmCLI(cli.home, {"FARM_MAX_IMAGE_BYTES": "1000"}).run("submit", str(src), "--source", str(face),
                                                                   "--models", "demo")
    assert_refused(cli, proc, str(face), "over the limit of 1000 bytes", "FARM_MAX_IMAGE_BYTES")


def test_a_pixel_format_that_cannot_be_processed_is_refused_naming_the_file(cli, tmp_path):
    src = tmp_path / "planar.webm"   # VP9 in planar RGB (gbrp): no encoder of the farm's takes it
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-t", "1",
                    "-c:v", "libvpx-vp9", "-pix_fmt", "gbrp", str(src)], check=True, capture_output=True)
    proc = cli.run("submit", str(src), "--passthrough")
    assert_refused(cli, proc, str(src), "pixel format gbrp cannot be processed")


def batch_rows(home: Path) -> int:
    db = home / "farm.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("SELECT count(*) FROM batches").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_a_single_image_whose_output_exists_is_refused_like_a_video(cli, tmp_path):
    photo = clips.make_no_face_image(tmp_path / "photo.png", width=64, height=64)
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    proc = cli.run("submit", str(photo), "--passthrough", "--output", str(out), "--json")
    result = json.loads(proc.stdout)
    assert proc.returncode == 2 and result["state"] == "refused", proc.stdout + proc.stderr
    assert result["error"] == f"output {out} already exists" and "--overwrite" in result["hint"], result
    assert_refused(cli, proc, str(out))
    assert batch_rows(cli.home) == 0 and out.read_bytes() == b"precious"


def test_a_folder_with_nothing_to_render_is_refused_naming_it_and_what_was_skipped(cli, tmp_path):
    folder = tmp_path / "empty_folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("no video here")
    proc = cli.run("submit", f"{folder}{os.sep}", "--passthrough")
    assert_refused(cli, proc, str(folder), "no video or image to render", "notes.txt", "unknown extension")
    assert batch_rows(cli.home) == 0

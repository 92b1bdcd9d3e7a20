"""A batch's targets, outputs, hashes and state (farm.jobs.batch, farm.state.batches): no process, no video."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from farm.errors import InputError
from farm.jobs import batch
from farm.jobs.outcomes import batch_exit_code, batch_json
from farm.state.batches import JOB, REFUSED, RESUMED, SKIPPED, BatchView, ItemView, is_batch_id, new_batch_id


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_folder_is_walked_in_order_with_hidden_unknown_and_old_outputs_skipped_and_images_kept(tmp_path):
    root = tmp_path / "in"
    for name in ("b.mkv", "a.mp4", "sub/c.MOV", ".cache/d.mp4", "sub/.e.mp4", "notes.txt", "p.jpg", "a.farm.mp4"):
        touch(root / name)
    got = batch.expand([str(root)], None)
    assert [t.input.relative_to(root).as_posix() for t in got.items] == ["a.mp4", "b.mkv", "p.jpg", "sub/c.MOV"]
    assert got.items[0].output == root / "a.farm.mp4"
    reasons = {t.input.relative_to(root).as_posix(): t.reason for t in got.skipped}
    assert reasons[".cache/d.mp4"] == reasons["sub/.e.mp4"] == "hidden"
    assert "unknown extension '.txt'" in reasons["notes.txt"]
    assert "p.jpg" not in reasons and got.items[2].output == root / "p.farm.jpg"
    assert "earlier output" in reasons["a.farm.mp4"]


def test_outputs_mirror_the_tree_under_the_output_folder_and_a_collision_is_refused(tmp_path):
    root, out = tmp_path / "in", tmp_path / "out"
    touch(root / "x" / "a.mp4")
    touch(root / "a.mp4")
    other = touch(tmp_path / "elsewhere" / "a.mp4")
    got = batch.expand([str(root), str(other), str(root / "a.mp4")], out)
    assert [t.output for t in got.items] == [out / "a.mp4", out / "x" / "a.mp4", out / "a.mp4"]
    assert got.items[2].reason and "also planned" in got.items[2].reason   # elsewhere/a.mp4 collides
    assert len(got.items) == 3   # in/a.mp4 given a second time counts once


def test_a_glob_keeps_the_tree_below_its_folder_part_and_must_match(tmp_path):
    touch(tmp_path / "in" / "day1" / "a.mp4")
    touch(tmp_path / "in" / "day2" / "b.mp4")
    got = batch.expand([str(tmp_path / "in" / "day*" / "*.mp4")], tmp_path / "out")
    assert [t.output for t in got.items] == [tmp_path / "out" / "day1" / "a.mp4", tmp_path / "out" / "day2" / "b.mp4"]
    with pytest.raises(InputError, match="matches no file"):
        batch.expand([str(tmp_path / "*.avi")], None)
    with pytest.raises(InputError, match="no such file"):
        batch.expand([str(tmp_path / "missing.mp4")], None)


def test_is_batch(tmp_path):
    clip = touch(tmp_path / "a.mp4")
    assert not batch.is_batch([str(clip)], None) and not batch.is_batch([str(clip)], str(tmp_path / "o.mp4"))
    assert batch.is_batch([str(clip), str(clip)], None) and batch.is_batch([str(tmp_path)], None)
    assert batch.is_batch([str(tmp_path / "*.mp4")], None) and not batch.is_batch([str(clip)], str(tmp_path))


def test_the_output_folder_is_checked_before_anything_is_made(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    with pytest.raises(InputError, match="inside the input folder"):
        batch.check_output_dir(str(root / "out"), [str(root)])
    with pytest.raises(InputError, match="is a file"):
        batch.check_output_dir(str(touch(tmp_path / "f.mp4")), [str(root)])
    with pytest.raises(InputError, match="looks like a file name"):
        batch.check_output_dir(str(tmp_path / "new.mp4"), [str(root)])
    assert batch.check_output_dir(str(tmp_path / "out"), [str(root)]) == tmp_path / "out"
    assert not (tmp_path / "out").exists()


def test_the_input_hash_is_the_content_or_for_big_files_samples_size_and_mtime(tmp_path, monkeypatch):
    a, b = touch(tmp_path / "a.mp4", b"1" * 4000), touch(tmp_path / "b.mp4", b"1" * 4000)
    assert batch.input_sha256(a) == batch.input_sha256(b)
    touch(b, b"1" * 3999 + b"2")
    assert batch.input_sha256(a) != batch.input_sha256(b)
    monkeypatch.setattr(batch, "FULL_HASH_MAX_BYTES", 1000)
    monkeypatch.setattr(batch, "SAMPLE_BYTES", 10)
    before = batch.input_sha256(a)
    touch(a, b"1" * 4000)   # the same bytes, a new mtime: sampled files count it as changed
    assert batch.input_sha256(a) != before


def test_the_options_hash_sees_what_changes_an_output_and_nothing_else(tmp_path):
    face = touch(tmp_path / "face.jpg", b"one")
    base = {"source": [str(face)], "crf": 20}
    assert batch.options_sha256(base) == batch.options_sha256({**base, "output": "x", "priority": 9})
    assert batch.options_sha256(base) != batch.options_sha256({**base, "crf": 21})
    before = batch.options_sha256(base)
    touch(face, b"two")
    assert batch.options_sha256(base) != before


class FakeJob:
    def __init__(self, state: str, frames: int = 10, faces: int | None = None) -> None:
        self.state, self.frames_total, self.error, self.id = state, frames, "boom" if state == "failed" else None, "j"
        self.frames_done = frames if state == "done" else 0
        self.options, self.models = ({"faces": "all"}, {"pack": "demo"}) if faces is not None else ({}, {})
        self.changed = (faces, faces) if faces is not None else None

    @property
    def live(self) -> bool:
        return self.state in ("queued", "running", "finalizing")


def view(*items: tuple[str, str | None]) -> BatchView:
    out = BatchView("b-1", dt.datetime(2026, 1, 1), {}, "in", None)
    for n, (kind, state) in enumerate(items):
        item = ItemView(n, n, f"/in/{n}.mp4", f"/out/{n}.mp4", kind, "j" if state else None,
                        "bad file" if kind in (REFUSED, SKIPPED) else None, job=FakeJob(state) if state else None)
        (out.skipped if kind == SKIPPED else out.items).append(item)
    return out


def test_a_batch_state_comes_from_its_items():
    assert view((JOB, "running"), (JOB, "done")).state == "running"
    done = view((JOB, "done"), (REFUSED, None), (RESUMED, "done"), (SKIPPED, None))
    assert done.state == "done" and batch_exit_code(done) == 1
    assert view((JOB, "done"), (JOB, "cancelled")).state == "cancelled"
    assert batch_exit_code(view((JOB, "done"), (JOB, "cancelled"))) == 3
    assert batch_exit_code(view((JOB, "done"), (RESUMED, "done"))) == 0
    shown = batch_json(done)
    assert (shown["total"], shown["done"], shown["failed"], shown["resumed"]) == (3, 2, 1, 1)
    assert [i["state"] for i in shown["items"]] == ["done", "failed", "done"]
    assert shown["items"][1]["error"] == "bad file" and shown["skipped"] == [{"input": "/in/3.mp4", "reason": "bad file"}]
    assert set(shown["items"][0]) >= {"id", "input", "output", "state", "error"}


def test_batch_ids_are_never_job_ids():
    made = new_batch_id()
    assert is_batch_id(made) and len(made) == 12 and not is_batch_id("0123456789ab")


def test_a_face_job_that_changed_no_face_is_a_failed_item_of_its_batch():
    shown = view((JOB, "done"), (JOB, "done"))
    shown.items[0].job = FakeJob("done", faces=0)
    shown.items[1].job = FakeJob("done", faces=3)
    assert [i.state for i in shown.items] == ["failed", "done"]
    assert "no face was changed in any of its 10 frames" in shown.items[0].failure
    assert shown.state == "done" and batch_exit_code(shown) == 1


def test_a_single_image_is_a_batch_and_may_name_its_output_file(tmp_path):
    photo = touch(tmp_path / "photo.JPG")
    assert batch.is_batch([str(photo)], None) and not batch.is_batch([str(tmp_path / "clip.mp4")], None)
    assert not batch.is_batch([str(tmp_path / "missing.png")], None)   # the probe says why
    assert batch.output_file([str(photo)], str(tmp_path / "out.jpg")) == tmp_path / "out.jpg"
    assert batch.output_file([str(photo)], str(tmp_path)) is None   # a folder
    got = batch.expand([str(photo)], None, batch.output_file([str(photo)], str(tmp_path / "out.jpg")))
    assert [(t.input, t.output) for t in got.items] == [(photo, tmp_path / "out.jpg")]

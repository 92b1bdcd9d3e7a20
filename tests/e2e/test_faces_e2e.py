"""Face swap end to end with the demo pack: a real face (skimage's astronaut) moving over a
background goes through the real farm (private Redis, Celery workers, ONNX Runtime on the
CPU: the GPU is the only thing that cannot run here). The face region changes; the rest of
the frame stays within encoder noise of a plain transcode; frames and audio sync are kept."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests import clips, media_checks
from tests.e2e.farmcli import FarmCLI

FACE_MARGIN = 0.35   # grow the detected face box by this share on each side


@pytest.fixture
def cli(farm_home: Path):
    farm = FarmCLI(farm_home)
    yield farm
    farm.down()


def gray_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="gray") for f in c.decode(video=0)]


def face_boxes(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    return [tuple(b) for b in cascade.detectMultiScale(gray, 1.1, 5, minSize=(24, 24))]


def outside_mask(shape: tuple[int, int], boxes) -> np.ndarray:
    mask = np.ones(shape, bool)
    for x, y, w, h in boxes:
        mx, my = int(w * FACE_MARGIN), int(h * FACE_MARGIN)
        mask[max(0, y - my):y + h + my, max(0, x - mx):x + w + mx] = False
    return mask


def test_demo_swap_changes_the_face_and_nothing_else(cli, tmp_path):
    src = clips.make_clip(tmp_path / "face.mp4", width=480, height=270, seconds=2.0, moving_face=True,
                          audio_tracks=1, gop=20)
    face = clips.make_face_image(tmp_path / "source.jpg")
    common = ["--wait", "--json", "--chunk-seconds", "0.5", "--crf", "16"]
    swapped = cli.run("submit", str(src), "--source", str(face), "--models", "demo",
                      "--output", str(tmp_path / "swapped.mp4"), *common, timeout_s=600)
    assert swapped.returncode == 0, swapped.stderr + cli.logs()
    plain = cli.run("submit", str(src), "--passthrough", "--output", str(tmp_path / "plain.mp4"), *common)
    assert plain.returncode == 0, plain.stderr
    result = json.loads(swapped.stdout)

    a, b = gray_frames(tmp_path / "swapped.mp4"), gray_frames(tmp_path / "plain.mp4")
    original = gray_frames(src)
    assert len(a) == len(b) == len(original) == media_checks.frame_count(src)
    changed_frames = 0
    for fa, fb, fo in zip(a[::5], b[::5], original[::5]):
        boxes = face_boxes(fb)
        diff = np.abs(fa.astype(np.int16) - fb.astype(np.int16))
        out = outside_mask(fb.shape, boxes)
        # encoder noise: what a plain transcode changes outside the face, against the source
        noise = np.abs(fb.astype(np.int16) - fo.astype(np.int16))[out].mean()
        assert diff[out].mean() <= max(0.5, 1.5 * noise), "pixels outside the face changed beyond encoder noise"
        if boxes and diff[~out].mean() > 8:
            changed_frames += 1
    assert changed_frames >= len(a[::5]) // 2, "the demo swap did not visibly mark the face"

    media_checks.assert_same_frame_times(media_checks.video_frame_times(src),
                                         media_checks.video_frame_times(tmp_path / "swapped.mp4"))
    media_checks.assert_av_sync(tmp_path / "swapped.mp4", flash=False)
    tags = media_checks.container_tags(tmp_path / "swapped.mp4")
    assert tags["farm_job_id"] == result["id"] and "demo" in tags["comment"]
    assert "sha256:" in tags["farm_models"]


def test_a_source_image_without_a_face_is_refused_naming_the_file(cli, tmp_path):
    src = clips.make_clip(tmp_path / "v.mp4", seconds=0.5)
    for bad in (clips.make_no_face_image(tmp_path / "wall.jpg"), tmp_path / "notes.jpg"):
        if not bad.exists():
            bad.write_text("not an image")
        proc = cli.run("submit", str(src), "--source", str(bad), "--models", "demo", "--wait")
        assert proc.returncode == 2, proc.stderr
        assert bad.name in proc.stderr
    assert json.loads(cli.run("jobs", "--json", check=True).stdout) == []


def test_a_pack_that_is_not_installed_is_refused_with_what_to_do(cli, tmp_path):
    src = clips.make_clip(tmp_path / "v.mp4", seconds=0.5)
    face = clips.make_face_image(tmp_path / "source.jpg")
    proc = cli.run("submit", str(src), "--source", str(face), "--models", "default")
    assert proc.returncode == 2
    assert "farm models fetch" in proc.stderr and "--models demo" in proc.stderr
    assert "farm models import" in proc.stderr


def test_an_unknown_face_option_value_is_refused(cli, tmp_path):
    src = clips.make_clip(tmp_path / "v.mp4", seconds=0.5)
    face = clips.make_face_image(tmp_path / "source.jpg")
    proc = cli.run("submit", str(src), "--source", str(face), "--models", "demo", "--faces", "everyone")
    assert proc.returncode == 2 and "faces" in proc.stderr

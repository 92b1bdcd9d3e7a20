"""Face swap end to end with the demo pack: a real face (skimage's astronaut) moving over a
background goes through the real farm (private Redis, Celery workers, ONNX Runtime on the
CPU: the GPU is the only thing that cannot run here). The face region changes; the rest of
the frame stays within encoder noise of a plain transcode; frames and audio sync are kept."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import av
import cv2
import numpy as np

from farm.models.manifest import MANIFEST_FILE, load_manifest
from tests import clips, media_checks

FACE_MARGIN = 0.35   # grow the detected face box by this share on each side
OUTSIDE_PERCENTILE = 99.9   # share of pixels outside the face held to the encoder-noise bound
OUTSIDE_SLACK = 2           # grey levels the swapped output's 99.9th percentile error may exceed a transcode's
WORST_SLACK = 6             # grey levels its worst pixel may exceed a transcode's worst (the stand-in
                            # swap marks faces with stripes/tints 30+ levels away)


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
        boxes = face_boxes(fb) + face_boxes(fo)   # the face as found in the transcode and the source
        out = outside_mask(fb.shape, boxes)
        # outside the face, the swapped output is one more encoding of the source's pixels:
        # its error against the source must look like a plain transcode's (encoder noise),
        # at the tail of the distribution and at its worst pixel, not only on average
        err = np.abs(fa.astype(np.int16) - fo.astype(np.int16))[out]
        noise = np.abs(fb.astype(np.int16) - fo.astype(np.int16))[out]
        high, noise_high = np.percentile(err, OUTSIDE_PERCENTILE), np.percentile(noise, OUTSIDE_PERCENTILE)
        assert high <= noise_high + OUTSIDE_SLACK, (
            f"outside the face, {OUTSIDE_PERCENTILE}% of pixels within {high} of the source; "
            f"a plain transcode: {noise_high}")
        assert err.max() <= noise.max() + WORST_SLACK, (
            f"a pixel outside the face is {err.max()} off the source; a plain transcode: {noise.max()}")
        assert err.mean() <= 1.2 * noise.mean() + 0.3, "pixels outside the face drifted on average"
        diff = np.abs(fa.astype(np.int16) - fb.astype(np.int16))
        if boxes and diff[~out].mean() > 8:
            changed_frames += 1
    assert changed_frames >= len(a[::5]) // 2, "the demo swap did not visibly mark the face"

    media_checks.assert_same_frame_times(media_checks.video_frame_times(src),
                                         media_checks.video_frame_times(tmp_path / "swapped.mp4"))
    media_checks.assert_av_sync(tmp_path / "swapped.mp4", flash=False)
    tags = media_checks.container_tags(tmp_path / "swapped.mp4")
    assert tags["farm_job_id"] == result["id"] and "demo" in tags["comment"]
    models_dir = Path(cli.env.get("FARM_MODELS_DIR") or cli.home / "models")
    assert_models_tag(tags["farm_models"], models_dir / "demo")


def assert_models_tag(text: str, pack_dir: Path) -> None:
    """farm_models names each model that made the output with the sha256 of its file: the demo
    manifest's value, which is also the file's own hash (computed here); the Haar cascade
    the demo pack detects with is named with its file's hash."""
    listed = dict(re.findall(r"(\S+) sha256:([0-9a-f]{64}|\S+)", text))
    manifest = load_manifest(pack_dir / MANIFEST_FILE)
    by_name = {m.name: m for m in manifest.models}
    roles = set()
    for name, digest in listed.items():
        if name in by_name:
            entry = by_name[name]
            assert digest == entry.sha256, f"{name}: tag says {digest}, demo manifest says {entry.sha256}"
            assert digest == hashlib.sha256((pack_dir / entry.file).read_bytes()).hexdigest()
            roles.add(entry.role)
        else:
            assert name == "opencv-haarcascade_frontalface_default", f"unknown model {name} in {text!r}"
            cascade = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
            assert digest == hashlib.sha256(cascade.read_bytes()).hexdigest()
            roles.add("detector")
    assert roles == {"detector", "recognizer", "swapper", "enhancer"}, text


def test_the_identity_is_taken_at_submit_not_from_the_source_file_later(cli, tmp_path):
    # Given a job submitted without --wait (the farm runs it in the background)
    src = clips.make_clip(tmp_path / "face.mp4", width=480, height=270, seconds=1.0, moving_face=True, gop=10)
    face = clips.make_face_image(tmp_path / "source.jpg")
    proc = cli.run("submit", str(src), "--source", str(face), "--models", "demo", "--json",
                   "--chunk-seconds", "0.4", "--crf", "16", "--output", str(tmp_path / "out.mp4"), timeout_s=300)
    assert proc.returncode == 0, proc.stderr
    job_id = json.loads(proc.stdout)["id"]
    # When the source image is deleted as soon as submit returns
    face.unlink()
    # Then every chunk still swaps in the identity computed at submit
    job = cli.wait_state(job_id, {"done", "failed", "cancelled"}, timeout_s=600)
    assert job["state"] == "done", f"{job}\n{cli.logs()}"
    assert job["chunks"] >= 2
    out, original = gray_frames(tmp_path / "out.mp4"), gray_frames(src)
    assert len(out) == len(original)
    changed = 0
    for fa, fo in zip(out[::4], original[::4]):
        boxes = face_boxes(fo)
        inside = ~outside_mask(fo.shape, boxes)
        if boxes and np.abs(fa.astype(np.int16) - fo.astype(np.int16))[inside].mean() > 8:
            changed += 1
    assert changed >= len(out[::4]) // 2, "the face was not changed"


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

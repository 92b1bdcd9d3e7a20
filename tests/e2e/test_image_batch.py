"""Images in batches end to end (issue 16.2, 16.3): `farm submit FOLDER` and `farm submit IMAGE`
on the embedded farm (a real private Redis, Celery workers, SQLite, ONNX Runtime with the demo
pack). Every format renders through the face stages in one images job; bad, animated and
faceless images fail alone; a re-run resumes; --force renders again."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image, PngImagePlugin

from farm.media.stills import read_label
from tests import clips

ICC = b"\x00\x00\x02\x0cnot a real icc profile" * 3
RENDERED = {"a.jpg", "b.png", "c.webp", "d.bmp", "e.tif", "f16.png", "g16.tif"}
FACE_ARGS = ("--models", "demo")


def count(home: Path, sql: str) -> int:
    with sqlite3.connect(home / "farm.db") as conn:
        return conn.execute(sql).fetchone()[0]


def make_folder(folder: Path, tmp: Path) -> dict[str, Path]:
    """One 320 x 320 photo (a face in the middle of a texture) in every format, and bad ones."""
    face = Image.open(clips.make_no_face_image(tmp / "ground.jpg", width=320, height=320))
    face.paste(Image.open(clips.make_face_image(tmp / "head.jpg", size=140)), (90, 90))
    folder.mkdir(parents=True)
    face.save(folder / "a.jpg", quality=95)
    rgba = np.dstack([np.asarray(face), np.linspace(0, 255, 320 * 320).reshape(320, 320).astype(np.uint8)])
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "the photographer")
    (folder / "sub").mkdir()
    Image.fromarray(rgba).save(folder / "sub" / "b.png", icc_profile=ICC, pnginfo=text)
    face.save(folder / "c.webp", lossless=True)
    face.save(folder / "d.bmp")
    face.save(folder / "e.tif")
    deep = np.asarray(face).astype(np.int32) * 257 + np.random.default_rng(4).integers(-100, 101, (320, 320, 3))
    deep = np.clip(deep, 0, 65535).astype(np.uint16)   # 16 bits a sample, fine noise in the low bits
    cv2.imwrite(str(folder / "f16.png"), np.dstack([deep[..., ::-1], (rgba[..., 3].astype(np.uint16) * 257 + 5)]))
    tifffile.imwrite(folder / "g16.tif", deep, photometric="rgb", compression="zlib", metadata=None,
                     extratags=[(34675, 7, len(ICC), ICC, True)])
    clips.make_no_face_image(folder / "noface.png", width=160, height=160)
    whole = (folder / "sub" / "b.png").read_bytes()
    (folder / "cut.png").write_bytes(whole[:len(whole) // 2])   # the header reads; the pixels do not
    face.save(folder / "anim.gif", save_all=True, append_images=[face.rotate(20)], duration=100)
    return {p.name: p for p in folder.rglob("*") if p.is_file()}


def test_a_folder_of_images_renders_in_one_job_each_image_its_own_item_and_resumes(cli, tmp_path):
    folder, out = tmp_path / "photos", tmp_path / "out"
    made = make_folder(folder, tmp_path)
    source = clips.make_face_image(tmp_path / "source.jpg")
    args = ("submit", str(folder), "--source", str(source), *FACE_ARGS, "--output", str(out))

    proc = cli.run(*args, "--wait", "--json", timeout_s=400)
    assert proc.returncode == 1, proc.stderr + cli.logs()
    result = json.loads(proc.stdout)
    items = {Path(i["input"]).name: i for i in result["items"]}
    assert set(items) == set(made) and result["skipped"] == []
    for item in items.values():
        assert set(item) >= {"id", "input", "output", "state", "error"}
    assert {n for n, i in items.items() if i["state"] == "done"} == RENDERED
    assert "convert it to a video" in items["anim.gif"]["error"] and "anim.gif" in items["anim.gif"]["error"]
    assert "cut.png" in items["cut.png"]["error"] and "truncated or corrupt" in items["cut.png"]["error"]
    assert "no face was changed" in items["noface.png"]["error"]
    assert (result["state"], result["exit_code"], result["failed"]) == ("done", 1, 3)
    assert count(cli.home, "SELECT count(*) FROM jobs") == 1   # one images job
    assert items["sub/b.png".split("/")[-1]]["output"] == str(out / "sub" / "b.png")

    for name in sorted(RENDERED):
        src, dst = Image.open(made[name]), Image.open(items[name]["output"])
        assert (dst.format, dst.mode, dst.size) == (src.format, src.mode, src.size), name
        label = read_label(Path(items[name]["output"]))
        assert label and "synthetic media made by farm" in label and items[name]["id"] in label, name
        assert "faces altered" in label and "demo" in label, name
        a, b = np.asarray(src.convert("RGBA")), np.asarray(dst.convert("RGBA"))
        assert not np.array_equal(a, b), f"{name}: the face was not changed"
        if name != "a.jpg":   # lossless: away from the face (a 20 px border) the input's, bit for bit
            assert np.array_equal(a[:20], b[:20]) and np.array_equal(a[:, -20:], b[:, -20:]), name
    png = Image.open(out / "sub" / "b.png")
    assert png.info["icc_profile"] == ICC and png.text["Author"] == "the photographer"
    assert np.array_equal(np.asarray(png)[..., 3], np.asarray(Image.open(made["b.png"]))[..., 3])   # alpha untouched
    assert "unaltered" in read_label(out / "noface.png")
    for name in ("f16.png", "g16.tif"):   # 16 bits a sample: every one the face left is the input's
        a, b = (cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in (made[name], items[name]["output"]))
        assert b.dtype == np.uint16 and b.shape == a.shape, name
        assert np.array_equal(a[:20], b[:20]) and np.array_equal(a[:, -20:], b[:, -20:]), name
        assert not np.array_equal(a[..., :3], b[..., :3]), f"{name}: the face was not changed"
        assert np.array_equal(a[..., 3:], b[..., 3:]), f"{name}: alpha changed"
    assert Image.open(items["g16.tif"]["output"]).info["icc_profile"] == ICC

    # the same command again: every done image is resumed; only the one that failed while
    # rendering is tried again (a new images job of one image), and fails again
    again = json.loads(cli.run(*args, "--wait", "--json").stdout)
    assert count(cli.home, "SELECT count(*) FROM jobs") == 2
    resumed = {Path(i["input"]).name for i in again["items"] if i["resumed"]}
    assert resumed == RENDERED | {"noface.png"}
    assert [Path(i) for i in again["failures"]] == sorted([made["anim.gif"], made["cut.png"], made["noface.png"]])

    # the animated GIF made a still one: `farm retry BATCH` submits the refused image again
    Image.open(made["a.jpg"]).save(made["anim.gif"])
    retried = cli.run("retry", result["batch"])
    assert retried.returncode == 0 and "anim.gif: submitted again in images job" in retried.stderr, retried.stderr
    deadline = time.monotonic() + 120
    while (shown := json.loads(cli.run("status", result["batch"], "--json").stdout))["state"] == "running":
        assert time.monotonic() < deadline, shown
        time.sleep(0.5)
    gif = next(i for i in shown["items"] if i["input"] == str(made["anim.gif"]))
    assert gif["state"] == "done" and Image.open(gif["output"]).format == "GIF", gif

    # one image alone, forced: a new render (default output beside the input when none is named)
    single = cli.run("submit", str(made["a.jpg"]), "--source", str(source), *FACE_ARGS, "--force",
                     "--wait", "--json", timeout_s=300)
    assert single.returncode == 0, single.stderr
    one = json.loads(single.stdout)["items"]
    assert [(i["state"], i["output"]) for i in one] == [("done", str(folder / "a.farm.jpg"))]
    assert count(cli.home, "SELECT count(*) FROM jobs") == 4

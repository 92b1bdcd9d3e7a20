"""Still images in and out (farm.media.stills, farm.pipeline.still_frame): every format keeps
its size, mode, bit depth, alpha, orientation, ICC profile and text, and carries the label;
only the pixels a stage changed differ (lossless formats); animated and 16-bit colour images
are refused naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from farm.errors import InputError
from farm.media import stills
from farm.pipeline.still_frame import copy_planes, frame_from_rgb, rgb_from_frame

TAGS = {"description": "synthetic media made by farm 0.1.0, job abc: faces altered", "farm_job_id": "abc",
        "farm_models": "demo", "farm_version": "0.1.0"}
ICC = b"\x00\x00\x02\x0cfake icc profile bytes" * 4
SIDE = 8192


def picture(h: int = 40, w: int = 60) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (h, w, 3), np.uint8)


def render(path: Path, out: Path, box=(slice(5, 10), slice(8, 14))) -> tuple[stills.Still, int]:
    """Read `path`, paint a red box on its upright RGB (a stand-in face), write `out`."""
    still = stills.read_still(path, SIDE)
    rgb = still.rgb.copy()
    rgb[box] = (255, 0, 0)
    return still, stills.write_still(still, rgb, out, TAGS, out.with_name("." + out.name + ".tmp"))


@pytest.mark.parametrize("name, make, lossless", [
    ("rgb.png", lambda a: Image.fromarray(a), True),
    ("rgba.png", lambda a: Image.fromarray(np.dstack([a, a[..., 1]])), True),
    ("grey16.png", lambda a: Image.fromarray(a[..., 0].astype(np.uint16) * 257 + 3), True),
    ("palette.png", lambda a: Image.fromarray(a).quantize(32), True),
    ("la.png", lambda a: Image.fromarray(np.dstack([a[..., 0], a[..., 2]]), "LA"), True),
    ("lossless.webp", lambda a: Image.fromarray(a), True),
    ("plain.bmp", lambda a: Image.fromarray(a), True),
    ("plain.tif", lambda a: Image.fromarray(a), True),
    ("still.gif", lambda a: Image.fromarray(a).quantize(64), True),
    ("photo.jpg", lambda a: Image.fromarray(a), False),
])
def test_each_format_keeps_its_mode_size_and_pixels_and_carries_the_label(tmp_path, name, make, lossless):
    src, out = tmp_path / name, tmp_path / f"out-{name}"
    kw = {"lossless": True} if name.endswith(".webp") else {"quality": 90} if name.endswith(".jpg") else {}
    make(picture()).save(src, **kw)
    _still, changed = render(src, out)
    before, after = Image.open(src), Image.open(out)
    assert (after.format, after.mode, after.size) == (before.format, before.mode, before.size)
    assert changed > 0
    a, b = np.array(before), np.array(after)
    outside = np.ones(a.shape[:2], bool)
    outside[5:10, 8:14] = False
    if lossless:
        assert np.array_equal(a[outside], b[outside]), "a pixel outside the face changed"
    if a.ndim == 3 and a.shape[2] in (2, 4):
        assert np.array_equal(a[..., -1], b[..., -1]), "alpha changed"
    label = stills.read_label(out)
    assert label is not None and "synthetic media made by farm" in label and "abc" in label
    if name.endswith(".bmp"):
        assert (tmp_path / f"out-{name}.xmp").exists()
    if name == "grey16.png":
        assert b.dtype == np.uint16 and b[5, 8] > 255   # written back at 16 bits


def test_orientation_icc_exif_and_text_are_kept_and_faces_are_seen_upright(tmp_path):
    src, out = tmp_path / "turned.png", tmp_path / "out.png"
    exif = Image.Exif()
    exif[stills.EXIF_ORIENTATION] = 6   # stored turned: shown rotated 90 degrees clockwise
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "someone")
    Image.fromarray(picture(40, 60)).save(src, exif=exif, icc_profile=ICC, pnginfo=text)
    still, _ = render(src, out, box=(slice(0, 3), slice(0, 3)))   # the upright image's top-left corner
    assert still.rgb.shape == (60, 40, 3)   # upright: width and height swapped
    after = Image.open(out)
    assert after.size == (60, 40) and after.getexif()[stills.EXIF_ORIENTATION] == 6
    assert after.info["icc_profile"] == ICC and after.text["Author"] == "someone"
    assert after.text["farm_job_id"] == "abc"
    stored = np.array(after)
    assert (stored[-3:, :3] == (255, 0, 0)).all()   # upright top-left: stored bottom-left (PIL's exif_transpose)


def test_jpeg_keeps_its_exif_icc_and_quantisation(tmp_path):
    src, out = tmp_path / "p.jpg", tmp_path / "o.jpg"
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    Image.fromarray(picture()).save(src, quality=70, exif=exif, icc_profile=ICC)
    render(src, out)
    before, after = Image.open(src), Image.open(out)
    assert after.info["icc_profile"] == ICC and after.getexif()[0x010F] == "CameraMaker"
    assert after.quantization == before.quantization
    assert after.getexif()[stills.EXIF_DESCRIPTION] == TAGS["description"]


def test_animated_images_and_16_bit_colour_are_refused_naming_the_file(tmp_path):
    frames = [Image.fromarray(picture()), Image.fromarray(picture()[::-1])]
    for name in ("anim.gif", "anim.webp"):
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:], duration=100)
        with pytest.raises(InputError, match=rf"{name}: an animated .* farm renders still images") as got:
            stills.check_still(tmp_path / name, SIDE)
        assert "convert it to a video" in got.value.hint
    deep = tmp_path / "deep.tif"
    Image.fromarray(picture()).save(deep)   # rewritten below as 16 bits a sample
    import cv2

    cv2.imwrite(str(deep), (picture().astype(np.uint16) * 257))
    with pytest.raises(InputError, match="deep.tif: 16-bit colour"):
        stills.check_still(deep, SIDE)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="junk.png: not a readable image"):
        stills.check_still(tmp_path / "junk.png", SIDE)


def test_a_frame_made_from_rgb_gives_back_the_same_rgb_where_no_stage_wrote():
    rgb = picture()
    frame = frame_from_rgb(rgb)
    before = copy_planes(frame)
    assert np.array_equal(rgb_from_frame(frame, before, rgb), rgb)
    frame.planes[0][2:4, 2:4] = 250
    back = rgb_from_frame(frame, before, rgb)
    changed = np.any(back != rgb, axis=2)
    assert changed[2:4, 2:4].all() and changed.sum() == 4

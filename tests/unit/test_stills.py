"""Still images in and out (farm.media.stills, farm.pipeline.still_frame): every format keeps
its size, mode, bit depth, alpha, orientation, ICC profile and text, and carries the label;
only the pixels a stage changed differ (lossless formats); 16-bit colour PNG and TIFF keep
every 16-bit sample the stages did not change; animated images are refused naming the file."""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from farm.errors import InputError
from farm.media import stills
from farm.media.deep_stills import _chunk, _itxt, apply_change, view8
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


def test_animated_images_are_refused_naming_the_file(tmp_path):
    frames = [Image.fromarray(picture()), Image.fromarray(picture()[::-1])]
    for name in ("anim.gif", "anim.webp"):
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:], duration=100)
        with pytest.raises(InputError, match=rf"{name}: an animated .* farm renders still images") as got:
            stills.check_still(tmp_path / name, SIDE)
        assert "convert it to a video" in got.value.hint
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="junk.png: not a readable image"):
        stills.check_still(tmp_path / "junk.png", SIDE)


def deep_picture(alpha: bool) -> np.ndarray:
    """The astronaut at 16 bits a sample with fine low-bit noise (+-100 of 65535: every sample's
    low byte differs from the 8-bit value's), and a 16-bit alpha ramp when `alpha`."""
    from skimage import data

    rgb = data.astronaut()[:120, 160:280].astype(np.int32) * 257
    noise = np.random.default_rng(5).integers(-100, 101, rgb.shape)
    deep = np.clip(rgb + noise, 0, 65535).astype(np.uint16)
    if alpha:
        deep = np.dstack([deep, np.linspace(0, 65535, 120 * 120).reshape(120, 120).astype(np.uint16)])
    return deep


def read16(path: Path) -> np.ndarray:
    """Samples of a 16-bit PNG/TIFF as RGB(A), read with OpenCV (Pillow reads only 8 bits of them)."""
    got = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return got[..., [2, 1, 0, 3][:got.shape[2]]]


@pytest.mark.parametrize("name", ["rgb16.png", "rgba16.png", "rgb16.tif", "rgba16.tif"])
def test_16_bit_colour_keeps_every_sample_the_stages_left_and_its_depth_alpha_icc_and_text(tmp_path, name):
    import tifffile

    src, out = tmp_path / name, tmp_path / f"out-{name}"
    deep = deep_picture(alpha="rgba" in name)
    if name.endswith(".png"):   # OpenCV's samples, then an ICC profile and a text chunk after the header
        cv2.imwrite(str(src), deep[..., [2, 1, 0, 3][:deep.shape[2]]])
        whole = src.read_bytes()
        icc = _chunk(b"iCCP", b"profile\0\0" + zlib.compress(ICC))
        src.write_bytes(whole[:33] + icc + _itxt("Author", "someone") + whole[33:])
    else:
        tags = [(33432, "s", 0, "(c) someone", True), (34675, 7, len(ICC), ICC, True)]
        tifffile.imwrite(src, deep, photometric="rgb", compression="zlib", metadata=None, resolution=(300, 300),
                         resolutionunit=2, extratags=tags, **({"extrasamples": (2,)} if deep.shape[2] == 4 else {}))
    fmt, mode, size = stills.check_still(src, SIDE)
    assert (fmt, mode, size) == ("TIFF" if name.endswith(".tif") else "PNG", "RGBA;16" if "rgba" in name else
                                 "RGB;16", (120, 120))
    still, changed = render(src, out, box=(slice(40, 70), slice(30, 60)))   # the stand-in face: the box
    assert changed == 30 * 30 and still.rgb.dtype == np.uint8
    a, b = deep, read16(out)
    assert b.dtype == np.uint16 and b.shape == a.shape
    outside = np.ones(a.shape[:2], bool)
    outside[40:70, 30:60] = False
    assert np.array_equal(a[outside], b[outside]), "a 16-bit sample outside the face changed"
    assert (b[40:70, 30:60, 0] >= 65535 - 128).all() and (b[40:70, 30:60, 1:3] <= 128).all()   # red, at 16 bits
    if a.shape[2] == 4:
        assert np.array_equal(a[..., 3], b[..., 3]), "alpha changed"
    after = Image.open(out)
    assert (after.format, after.mode, after.size) == (fmt, mode.split(";")[0], size)
    assert after.info["icc_profile"] == ICC
    if name.endswith(".png"):
        assert after.text["Author"] == "someone" and after.text["farm_job_id"] == "abc"
    else:
        assert after.tag_v2[33432] == "(c) someone" and after.info["dpi"] == (300, 300)
    label = stills.read_label(out)
    assert label == TAGS["description"]


def test_a_16_bit_tiff_in_lzw_is_rendered_and_written_as_deflate(tmp_path):
    src, out = tmp_path / "lzw.tif", tmp_path / "out.tif"
    deep = deep_picture(alpha=False)
    cv2.imwrite(str(src), deep[..., ::-1])   # OpenCV writes TIFF with LZW, which tifffile cannot decode alone
    render(src, out)
    assert Image.open(out).info["compression"] == "tiff_adobe_deflate"
    b = read16(out)
    outside = np.ones(deep.shape[:2], bool)
    outside[5:10, 8:14] = False
    assert np.array_equal(deep[outside], b[outside]) and not np.array_equal(deep, b)


def test_16_bit_grey_with_alpha_is_refused_not_written_back_as_rgba(tmp_path):
    src = tmp_path / "la16.png"   # colour type 4 at 16 bits: Pillow shows it as RGBA, OpenCV reads 4 samples
    data = np.random.default_rng(0).integers(0, 65535, (4, 5, 2)).astype(">u2")
    raw = b"".join(b"\0" + row.tobytes() for row in data)
    header = (5).to_bytes(4, "big") + (4).to_bytes(4, "big") + bytes([16, 4, 0, 0, 0])
    src.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw))
                    + _chunk(b"IEND", b""))
    with pytest.raises(InputError, match="la16.png: 16-bit grey with alpha in PNG") as got:
        stills.check_still(src, SIDE)
    assert "16-bit RGBA" in got.value.hint


def test_the_stages_change_is_added_at_16_bits_and_untouched_samples_are_the_inputs():
    stored = np.array([[[0, 300, 65535, 1234], [65400, 40000, 129, 7]]], np.uint16)
    before = view8(stored[..., :3])
    assert before.tolist() == [[[0, 1, 255], [254, 156, 1]]]
    after = before.copy()
    after[0, 0, 0] = 10       # +10 -> +2570
    after[0, 1, 0] = 255      # clipped at 65535
    out = apply_change(stored, before, after)
    assert out.tolist() == [[[2570, 300, 65535, 1234], [65535, 40000, 129, 7]]]


def test_a_frame_made_from_rgb_gives_back_the_same_rgb_where_no_stage_wrote():
    rgb = picture()
    frame = frame_from_rgb(rgb)
    before = copy_planes(frame)
    assert np.array_equal(rgb_from_frame(frame, before, rgb), rgb)
    frame.planes[0][2:4, 2:4] = 250
    back = rgb_from_frame(frame, before, rgb)
    changed = np.any(back != rgb, axis=2)
    assert changed[2:4, 2:4].all() and changed.sum() == 4


def test_changed_pixels_is_any_channel_differing_and_nothing_for_the_same_image():
    before = picture(33, 47)
    after = before.copy()
    after[3, 5, 0] ^= 1       # red only
    after[10, 20, 2] ^= 128   # blue only
    after[30, 46] = 255 - after[30, 46]
    got = stills.changed_pixels(after, before)
    assert got.shape == (33, 47) and got.dtype == bool
    assert np.array_equal(got, np.any(after != before, axis=2))   # the plain definition
    assert not stills.changed_pixels(before, before).any()
    assert not stills.changed_pixels(before.copy(), before).any()


def test_an_rgb_image_read_and_written_back_unchanged_is_the_same_pixels(tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(picture()).save(src)
    still = stills.read_still(src, SIDE)
    assert still.rgb is still.stored or np.array_equal(still.rgb, still.stored)
    out = tmp_path / "out.png"
    assert stills.write_still(still, still.rgb, out, TAGS, tmp_path / ".out.png") == 0
    assert np.array_equal(np.asarray(Image.open(out)), picture())
    assert np.array_equal(np.asarray(Image.open(src)), picture())   # the input is untouched

"""Files the user names are checked before they are opened: regular files only (a FIFO
would block the reader forever), images no bigger than their limits, judged from the
file size and the header before a pixel is decoded."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from farm.errors import InputError
from farm.faces.identity import ImageLimits, compute_identity, read_image
from farm.jobs.spec import load_spec
from farm.user_files import check_regular_file, open_regular_file


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def png_bomb(path: Path, side: int) -> Path:
    """A grey PNG of side x side pixels, all zero: tiny on disk, side*side*3 bytes decoded as BGR."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\0" * (side + 1)          # filter byte + one byte per pixel
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_the_check_refuses_fifos_folders_and_missing_files_naming_them(tmp_path):
    fifo = make_fifo(tmp_path / "pipe.jpg")
    for path, words in [(fifo, "FIFO"), (tmp_path, "folder"), (tmp_path / "nope.jpg", "no such file")]:
        with pytest.raises(InputError) as info:
            check_regular_file(path, "source image")
        assert str(path) in str(info.value) and words in str(info.value) and "source image" in str(info.value)
        assert info.value.exit_code == 2
    real = tmp_path / "real.jpg"
    real.write_bytes(b"x")
    link = tmp_path / "link.jpg"
    link.symlink_to(real)
    assert check_regular_file(link, "source image").st_size == 1      # links to files are followed
    with open_regular_file(link, "source image") as fh:
        assert fh.read() == b"x"


def test_a_fifo_as_source_or_reference_image_is_refused_not_waited_on(tmp_path):
    fifo = make_fifo(tmp_path / "face.jpg")
    for what in ("source image", "reference image"):
        with pytest.raises(InputError, match="not a regular file") as info:
            compute_identity([fifo], detector=None, recognizer=object(), what=what)
        assert str(fifo) in str(info.value) and what in str(info.value)


def test_a_fifo_as_spec_file_is_refused_not_waited_on(tmp_path):
    fifo = make_fifo(tmp_path / "render.toml")
    with pytest.raises(InputError, match="not a regular file") as info:
        load_spec(fifo)
    assert "spec file" in str(info.value) and str(fifo) in str(info.value)


def test_a_decompression_bomb_is_refused_from_its_header_before_decoding(tmp_path):
    bomb = png_bomb(tmp_path / "bomb.png", 20000)     # ~0.4 MB on disk, 1.2 GB decoded
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(InputError) as info:
        read_image(bomb)                               # the default limits: 8192 px a side
    message = str(info.value)
    assert "20000x20000" in message and "8192" in message and "FARM_MAX_IMAGE_SIDE" in message
    assert str(bomb) in message and info.value.exit_code == 2


def test_image_limits_are_configurable_and_checked_before_decoding(tmp_path):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((300, 400, 3), 90, np.uint8))
    assert read_image(photo, ImageLimits(max_side=400, max_bytes=10**6)).shape == (300, 400, 3)
    with pytest.raises(InputError, match="400x300 pixels, over the limit of 399"):
        read_image(photo, ImageLimits(max_side=399, max_bytes=10**6))
    size = photo.stat().st_size
    with pytest.raises(InputError, match=f"{size} bytes, over the limit of {size - 1} bytes") as info:
        read_image(photo, ImageLimits(max_side=8192, max_bytes=size - 1))
    assert "FARM_MAX_IMAGE_BYTES" in str(info.value)


def test_an_image_whose_format_has_no_header_reader_is_refused(tmp_path):
    odd = tmp_path / "face.jpg"
    odd.write_bytes(b"\xff\xd8\xff" + b"garbage" * 100)    # a JPEG start, no frame header
    with pytest.raises(InputError, match="not a readable image"):
        read_image(odd)


def test_image_limits_come_from_the_settings():
    from farm.config import load_settings

    settings = load_settings({"FARM_HOME": "/tmp/x", "FARM_MAX_IMAGE_SIDE": "1000", "FARM_MAX_IMAGE_BYTES": "12345"})
    assert ImageLimits.from_settings(settings) == ImageLimits(max_side=1000, max_bytes=12345)
    assert ImageLimits() == ImageLimits(max_side=8192, max_bytes=50 * 1024**2)


@pytest.mark.parametrize("ext,params", [
    (".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]), (".bmp", []), (".tiff", [])])
def test_header_sizes_match_the_decoded_image(tmp_path, ext, params):
    from farm.faces.image_header import image_size

    path = tmp_path / f"img{ext}"
    assert cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (37, 53, 3), np.uint8), params)
    data = path.read_bytes()
    assert image_size(data) == (53, 37)
    assert read_image(path).shape == (37, 53, 3)


def test_header_sizes_of_other_writers(tmp_path):
    from PIL import Image  # test-only: an independent writer (GIF, extended WebP with alpha)

    from farm.faces.image_header import image_size

    img = Image.new("RGBA", (61, 29), (10, 200, 30, 128))
    for name, kwargs in [("a.gif", {}), ("b.tiff", {"tiffinfo": {}}), ("c.webp", {"lossless": False}),
                         ("d.png", {})]:
        img.save(tmp_path / name, **kwargs)
        assert image_size((tmp_path / name).read_bytes()) == (61, 29), name
    assert image_size(b"MM\0*" + b"\0" * 10) is None and image_size(b"not an image") is None

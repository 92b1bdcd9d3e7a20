"""Still images in and out (Pillow): what a face job needs from a photo, and the photo back
as it came, with the synthetic-media label in its own metadata.

- `check_still` reads the header only (at submit): the format, mode and size, and refuses
  (InputError naming the file) an animated image (GIF, WebP: convert it to video), a
  multi-page TIFF, a colour image of more than 8 bits a sample other than 16-bit RGB(A)
  PNG/TIFF, or a mode the farm cannot write back.
- `read_still` decodes it: `rgb` (H x W x 3 uint8, upright: the EXIF orientation applied,
  so the detector sees faces the right way up), the stored samples, alpha and metadata.
  16-bit colour (mode "RGB;16"/"RGBA;16") is read and written by farm.media.deep_stills;
  the stages see its 8-bit view and their change is added back at 16 bits.
- `write_still` writes the result in the input's format, size, mode and bit depth, to a
  temporary name renamed into place. Only pixels whose RGB the face chain changed are
  replaced (turned back into the stored orientation and mode); every other sample, and
  alpha, is the input's, so a lossless format keeps them bit for bit. ICC profile, EXIF
  (orientation included), XMP, PNG text chunks, DPI and TIFF tags are kept; the label goes
  in EXIF ImageDescription/Software (JPEG, WebP), PNG iTXt chunks, TIFF ImageDescription
  and Software, a GIF comment, and for BMP, which has no metadata, an XMP sidecar
  `<output>.xmp` beside it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from farm.errors import InputError
from farm.media import deep_stills

FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}
"""The Pillow formats rendered, with one extension each (farm.jobs.batch.IMAGE_EXTS lists them all)."""
COLOUR_MODES = frozenset({"RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "I;16", "I;16B", "I;16L"})
"""Modes written back as they came (alpha untouched; I;16: 16-bit grey, processed at 8 bits)."""
EXIF_DESCRIPTION, EXIF_SOFTWARE, EXIF_ORIENTATION = 0x010E, 0x0131, 0x0112
TIFF_STRUCTURE = frozenset({256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325, 338, 339})
"""TIFF tags that describe the pixel layout: Pillow writes its own."""
CONVERT_HINT = "convert it to a video (e.g. `ffmpeg -i anim.gif anim.mp4`) and submit the video"


@dataclass
class Still:
    """A decoded image: the upright RGB the stages see and what writing it back needs."""

    path: Path
    format: str
    mode: str
    stored: np.ndarray            # the samples as stored (the mode's own array), never changed
    rgb: np.ndarray               # H x W x 3 uint8, upright (EXIF orientation applied)
    orientation: int = 1
    info: dict[str, Any] = field(default_factory=dict)
    palette: Any = None           # P/PA: the Pillow palette
    extras: dict[str, Any] = field(default_factory=dict)   # format-specific save options


def _refuse(path: Path, why: str, hint: str) -> InputError:
    return InputError(f"{path}: {why}", hint=hint)


def _open(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise _refuse(path, f"not a readable image ({exc})", "re-export the file, or remove it from the batch") \
            from None


def _rawmode(im: Any) -> str:
    raw = im.tile[0][3] if im.tile else ""
    raw = raw[0] if isinstance(raw, tuple) else raw
    return raw if isinstance(raw, str) else ""


def _sample_bits(im: Any) -> int:
    """Bits per colour sample as stored (Pillow reads 16-bit RGB PNG/TIFF as 8-bit RGB)."""
    if im.format == "TIFF":
        bits = im.tag_v2.get(258) or (8,)
        return max(bits) if isinstance(bits, tuple) else int(bits)
    return 16 if ";16" in _rawmode(im) else 8


def _stored_as_rgb(im: Any) -> bool:
    """Whether the samples are stored as RGB(A) (Pillow also shows 16-bit grey + alpha PNG as RGBA)."""
    if im.format == "TIFF":
        return im.tag_v2.get(262) == 2
    return _rawmode(im).startswith(("RGB;", "RGBA;"))


def check_still(path: Path, max_side: int) -> tuple[str, str, tuple[int, int]]:
    """(format, mode, (width, height)) from the header, or InputError saying why the image is not rendered."""
    with _open(path) as im:
        if im.format not in FORMATS:
            raise _refuse(path, f"a {im.format} image; farm renders {', '.join(FORMATS)}", "convert it to PNG or JPEG")
        if getattr(im, "is_animated", False) or getattr(im, "n_frames", 1) > 1:
            what = "a multi-page TIFF" if im.format == "TIFF" else f"an animated {im.format} ({im.n_frames} frames)"
            raise _refuse(path, f"{what}: farm renders still images and videos",
                          CONVERT_HINT if im.format != "TIFF" else "split the pages into single images")
        mode = im.mode
        if mode not in COLOUR_MODES:
            raise _refuse(path, f"its pixel mode {mode} cannot be written back", "convert it to 8-bit RGB or RGBA")
        bits = _sample_bits(im)
        if mode in deep_stills.DEEP_MODES and bits > 8:
            if bits != 16 or im.format not in deep_stills.DEEP_FORMATS or not _stored_as_rgb(im):
                what = f"{bits}-bit colour" if _stored_as_rgb(im) else f"{bits}-bit grey with alpha"
                raise _refuse(path, f"{what} in {im.format}: farm renders images of 8 bits a sample, 16-bit grey "
                                    "and 16-bit RGB or RGBA PNG and TIFF", "convert it to 16-bit RGBA or to 8 bits a "
                                    "sample")
            mode = deep_stills.DEEP_MODES[mode]
        width, height = im.size
    if not (0 < width <= max_side and 0 < height <= max_side):
        raise _refuse(path, f"{width}x{height} pixels, over the limit of {max_side} a side (FARM_MAX_WIDTH/HEIGHT)",
                      "scale the image down")
    return im.format, mode, (width, height)


# the EXIF orientations as numpy array operations: (upright from stored, stored from upright)
_ORIENT = {
    2: (lambda a: a[:, ::-1], lambda a: a[:, ::-1]),
    3: (lambda a: a[::-1, ::-1], lambda a: a[::-1, ::-1]),
    4: (lambda a: a[::-1], lambda a: a[::-1]),
    5: (lambda a: a.swapaxes(0, 1), lambda a: a.swapaxes(0, 1)),
    6: (lambda a: np.rot90(a, -1), lambda a: np.rot90(a, 1)),
    7: (lambda a: a[::-1, ::-1].swapaxes(0, 1), lambda a: a[::-1, ::-1].swapaxes(0, 1)),
    8: (lambda a: np.rot90(a, 1), lambda a: np.rot90(a, -1)),
}


def read_still(path: Path, max_side: int) -> Still:
    """Decode the image (check_still's refusals first); InputError when the data is broken."""
    fmt, mode, _size = check_still(path, max_side)
    with _open(path) as im:
        try:
            im.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise _refuse(path, f"cannot be decoded ({exc}): the file is truncated or corrupt",
                          "re-export the file, or remove it from the batch") from None
        deep = mode in deep_stills.DEEP_MODES.values()
        if deep:
            stored = deep_stills.read_samples(path, len(mode.split(";")[0]))
            rgb = deep_stills.view8(stored[..., :3])
        elif mode.startswith("I;16"):
            stored = np.array(im)
            rgb = np.repeat((stored.astype(np.uint32) >> 8).astype(np.uint8)[..., None], 3, axis=2)
        else:
            stored = np.array(im)
            # an RGB image's stored samples are its RGB: one array serves as both (neither is
            # written to), which saves a second copy out of Pillow (~12 ms at 1080p)
            rgb = stored if mode == "RGB" else np.asarray(im.convert("RGB"))
        exif = im.getexif()
        orientation = int(exif.get(EXIF_ORIENTATION, 1) or 1)
        extras: dict[str, Any] = {}
        if fmt == "JPEG":
            from PIL import JpegImagePlugin

            extras = {"qtables": im.quantization, "subsampling": JpegImagePlugin.get_sampling(im)}
            extras = {k: v for k, v in extras.items() if v not in (None, -1)}
        elif fmt == "TIFF":
            extras = {"tags": {k: v for k, v in im.tag_v2.items() if k not in TIFF_STRUCTURE},
                      "compression": im.info.get("compression", "raw")}
        elif fmt == "WEBP":
            with open(path, "rb") as fh:
                extras = {"lossless": b"VP8L" in fh.read(64)}
        elif fmt == "PNG":
            extras = {"text": dict(getattr(im, "text", {}) or {})}
        if deep:
            extras = deep_stills.read_extras(fmt, path)
        palette = im.palette.copy() if mode in ("P", "PA") and im.palette is not None else None
        info = dict(im.info)
        info["exif_object"] = exif
    if orientation in _ORIENT:
        rgb = np.ascontiguousarray(_ORIENT[orientation][0](rgb))
    return Still(path, fmt, mode, stored, np.ascontiguousarray(rgb), orientation, info, palette, extras)


def _from_rgb(still: Still, rgb: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """The stored array with the `changed` pixels (stored orientation) replaced from `rgb`."""
    from PIL import Image

    if not changed.any():
        return still.stored   # nothing to replace: the input's samples as they are (not written to)
    out = still.stored.copy()
    mode = still.mode
    if mode.startswith("I;16"):
        grey = np.asarray(Image.fromarray(rgb, "RGB").convert("L")).astype(np.uint16) * 257
        out[changed] = grey[changed].astype(out.dtype)
        return out
    if mode in ("P", "PA"):
        pal = np.frombuffer(still.palette.tobytes(), np.uint8).reshape(-1, 3).astype(np.int32)
        wanted = rgb[changed].astype(np.int32)
        nearest = np.argmin(((wanted[:, None, :] - pal[None, :, :]) ** 2).sum(axis=2), axis=1)
        if mode == "P":
            out[changed] = nearest.astype(out.dtype)
        else:
            out[..., 0][changed] = nearest.astype(out.dtype)
        return out
    colour = {"RGBA": "RGB", "LA": "L"}.get(mode, mode)
    converted = np.asarray(Image.fromarray(rgb, "RGB").convert(colour))
    if mode in ("RGBA", "LA"):
        part = out[..., :3] if mode == "RGBA" else out[..., 0]
        part[changed] = converted[changed]
    else:
        out[changed] = converted[changed]
    return out


def changed_pixels(rgb: np.ndarray, before: np.ndarray) -> np.ndarray:
    """H x W bool: the pixels whose R, G or B differ between two H x W x 3 arrays. The three
    channels' comparisons are OR-ed plane by plane (np.any over the last axis costs ~7x more:
    ~37 against ~5 ms at 1080p), and an unchanged image is found by one comparison (~1 ms)."""
    if rgb is before or np.array_equal(rgb, before):
        return np.zeros(rgb.shape[:2], bool)
    diff = rgb != before
    return diff[..., 0] | diff[..., 1] | diff[..., 2]


def label_exif(still: Still, label: str, software: str) -> Any:
    exif = still.info.get("exif_object")
    if exif is None:
        from PIL import Image

        exif = Image.Exif()
    exif[EXIF_DESCRIPTION] = label
    exif[EXIF_SOFTWARE] = software
    return exif


def xmp_packet(tags: Mapping[str, str]) -> bytes:
    """An XMP packet holding the label (dc:description) and the farm's tags (farm: namespace)."""
    from xml.sax.saxutils import escape, quoteattr

    attrs = " ".join(f"farm:{k.removeprefix('farm_')}={quoteattr(v)}" for k, v in tags.items() if k.startswith("farm_"))
    return (f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            f'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:farm="https://farm.invalid/ns/1.0/" {attrs}>'
            f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{escape(tags["description"])}</rdf:li>'
            f'</rdf:Alt></dc:description></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()


def write_still(still: Still, rgb: np.ndarray, out: Path, tags: Mapping[str, str], tmp: Path) -> int:
    """Write `rgb` (upright, as read_still gave it, faces changed) to `out` in the input's
    format via `tmp` (renamed into place); returns the pixels changed. `tags`: the label
    (farm.workers.finalize.output_metadata's keys)."""
    from PIL import Image, PngImagePlugin

    changed = changed_pixels(rgb, still.rgb)
    if still.orientation in _ORIENT:
        back = _ORIENT[still.orientation][1]
        rgb, changed = np.ascontiguousarray(back(rgb)), np.ascontiguousarray(back(changed))
    label, software = tags["description"], f"farm {tags.get('farm_version', '')}".strip()
    if still.mode in deep_stills.DEEP_MODES.values():
        _write_deep(still, rgb, out, tags, software, tmp)
        return int(changed.sum())
    array = _from_rgb(still, rgb, changed)
    image = Image.fromarray(array)
    if image.mode != still.mode:   # the same array read as P, PA, LA or CMYK
        image = Image.fromarray(array, still.mode)
    if still.palette is not None:
        image.putpalette(still.palette)
    info = still.info
    kw: dict[str, Any] = {k: info[k] for k in ("icc_profile", "dpi") if info.get(k)}
    fmt = still.format
    if fmt == "JPEG":
        kw.update(still.extras, exif=label_exif(still, label, software), comment=label)
        if info.get("xmp"):
            kw["xmp"] = info["xmp"]
    elif fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        for key, value in still.extras.get("text", {}).items():
            if key not in tags and key.lower() != "xml:com.adobe.xmp":
                text.add_itxt(key, str(value))
        for key, value in tags.items():
            text.add_itxt("Description" if key == "description" else key, value)
        kw.update(pnginfo=text)
        if info.get("exif"):
            kw["exif"] = info["exif"]
        if "transparency" in info:
            kw["transparency"] = info["transparency"]
    elif fmt == "WEBP":
        kw.update(exif=label_exif(still, label, software), xmp=info.get("xmp") or xmp_packet(tags))
        kw.update({"lossless": True, "exact": True} if still.extras.get("lossless") else {"quality": 92})
    elif fmt == "TIFF":
        tiff = dict(still.extras.get("tags", {}))
        tiff[270], tiff[305] = label, software
        kw.update(tiffinfo=tiff, compression=still.extras.get("compression") or "raw")
        kw.pop("dpi", None)   # carried in the tags
    elif fmt == "GIF":
        kw = {"comment": label.encode(), **({"transparency": info["transparency"]} if "transparency" in info else {})}
    try:
        image.save(tmp, format=fmt, **kw)
        if fmt == "BMP":   # no metadata in BMP: the label goes in an XMP sidecar
            side = out.with_name(out.name + ".xmp")
            side_tmp = tmp.with_name(tmp.name + ".xmp")
            side_tmp.write_bytes(xmp_packet(tags))
            os.replace(side_tmp, side)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return int(changed.sum())


def _write_deep(still: Still, rgb: np.ndarray, out: Path, tags: Mapping[str, str], software: str, tmp: Path) -> None:
    """A 16-bit colour image: the stages' change (`rgb`, stored orientation) added back at 16 bits."""
    samples = deep_stills.apply_change(still.stored, deep_stills.view8(still.stored[..., :3]), rgb)
    try:
        if still.format == "PNG":
            deep_stills.write_png16(still.extras["chunks"], samples, tags, tmp)
        else:
            deep_stills.write_tiff16(still.extras, samples, tags["description"], software, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def read_label(path: Path) -> str | None:
    """The synthetic-media label an output carries (None when it has none): for tests and `farm verify`-like checks."""
    from PIL import Image

    if path.suffix.lower() == ".bmp":
        side = path.with_name(path.name + ".xmp")
        return side.read_text() if side.exists() else None
    with Image.open(path) as im:
        if im.format == "PNG":
            return (getattr(im, "text", {}) or {}).get("Description")
        if im.format == "TIFF":
            return im.tag_v2.get(270)
        if im.format == "GIF":
            comment = im.info.get("comment")
            return comment.decode() if isinstance(comment, bytes) else comment
        return im.getexif().get(EXIF_DESCRIPTION)

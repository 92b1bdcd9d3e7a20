"""The preview picture: the original frame and the result side by side, each face boxed
and numbered on both, and a text panel under them naming the frame, models and options.

`compose` is a pure function of the two frames (BGR uint8, the same size), the face
boxes and the panel's lines. Both halves get the same boxes and numbers at the same
places, so they differ only inside the face boxes. A frame whose longer side is over
`max_side` is shown scaled down (both halves alike, area averaging; the panel says so);
each box is then scaled outwards, so it still holds every picture pixel its face changed.
`png_bytes` encodes the sheet as PNG with text chunks saying it is synthetic media.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from farm import __version__

Box = tuple[int, int, int, int]

PICTURE_MAX_SIDE = 1920
"""Longest side (px) of each half; a larger frame (4K) is shown scaled down."""
BOX_BGR, TAG_TEXT_BGR = (0, 215, 255), (0, 0, 0)
PANEL_BGR, PANEL_TEXT_BGR = (32, 32, 32), (235, 235, 235)
FONT, FONT_SCALE, LINE_PX, MARGIN_PX = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 18, 8
BOX_THICKNESS = 2


@dataclass
class Sheet:
    """The composed picture: `image` is (picture height + panel) x (2 x half_width) x 3;
    `boxes` are the face boxes drawn on the left half (px; add half_width for the right)."""

    image: np.ndarray
    half_width: int
    picture_height: int
    scale: float
    boxes: list[Box]


def picture_size(width: int, height: int, max_side: int = PICTURE_MAX_SIDE) -> tuple[int, int]:
    """The size (px) a width x height frame is shown at: itself, or scaled to fit max_side."""
    if max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def scale_box(box: Box, sx: float, sy: float, width: int, height: int) -> Box:
    """A frame box on the scaled picture (width x height), rounded outwards with one pixel
    to spare: every picture pixel that averages a pixel of the box is inside it."""
    if sx == 1.0 and sy == 1.0:
        return box
    x0, y0, x1, y1 = box
    return (max(0, math.floor(x0 * sx) - 1), max(0, math.floor(y0 * sy) - 1),
            min(width, math.ceil(x1 * sx) + 1), min(height, math.ceil(y1 * sy) + 1))


def draw_faces(image: np.ndarray, boxes: list[Box]) -> None:
    """Draw each box and its number (1, 2, ...) on `image` in place; the number sits on a
    filled tag above the box (inside it at the top of the picture)."""
    for number, (x0, y0, x1, y1) in enumerate(boxes, start=1):
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), BOX_BGR, BOX_THICKNESS, cv2.LINE_8)
        (tw, th), base = cv2.getTextSize(str(number), FONT, FONT_SCALE, 1)
        top = y0 - th - base - 4 if y0 - th - base - 4 >= 0 else y0
        cv2.rectangle(image, (x0, top), (x0 + tw + 6, top + th + base + 4), BOX_BGR, cv2.FILLED)
        cv2.putText(image, str(number), (x0 + 3, top + th + 2), FONT, FONT_SCALE, TAG_TEXT_BGR, 1, cv2.LINE_AA)


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def wrap(text: str, width: int) -> list[str]:
    """`text` in lines that fit `width` px in the panel's font (a long word is cut)."""
    def fits(line: str) -> bool:
        return cv2.getTextSize(line, FONT, FONT_SCALE, 1)[0][0] <= width

    lines: list[str] = []
    line = ""
    for word in _ascii(text).split(" "):
        candidate = f"{line} {word}" if line else word
        if fits(candidate):
            line = candidate
            continue
        if line:
            lines.append(line)
        while not fits(word) and len(word) > 1:
            cut = len(word) - 1
            while cut > 1 and not fits(word[:cut]):
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    return lines + ([line] if line else [])


def panel(lines: list[str], width: int) -> np.ndarray:
    """The text panel: `lines` wrapped to `width` px, light text on dark grey."""
    wrapped = [row for line in lines for row in wrap(line, width - 2 * MARGIN_PX)]
    image = np.full((2 * MARGIN_PX + LINE_PX * max(1, len(wrapped)), width, 3), PANEL_BGR, np.uint8)
    for n, row in enumerate(wrapped):
        cv2.putText(image, row, (MARGIN_PX, MARGIN_PX + LINE_PX * n + 13), FONT, FONT_SCALE, PANEL_TEXT_BGR, 1,
                    cv2.LINE_AA)
    return image


def compose(original: np.ndarray, result: np.ndarray, boxes: list[Box], lines: list[str],
            max_side: int = PICTURE_MAX_SIDE) -> Sheet:
    """The sheet: original | result (each scaled to fit max_side), the same numbered boxes
    on both, and the panel of `lines` under them. boxes: frame px, x1/y1 exclusive."""
    if original.shape != result.shape:
        raise ValueError(f"the original {original.shape} and the result {result.shape} differ in size")
    height, width = original.shape[:2]
    pw, ph = picture_size(width, height, max_side)
    halves = [img if (pw, ph) == (width, height) else cv2.resize(img, (pw, ph), interpolation=cv2.INTER_AREA)
              for img in (original, result)]
    drawn = [scale_box(box, pw / width, ph / height, pw, ph) for box in boxes]
    halves = [np.ascontiguousarray(half).copy() for half in halves]   # drawn on: never the caller's
    for half in halves:
        draw_faces(half, drawn)
    image = np.vstack([np.hstack(halves), panel(lines, 2 * pw)])
    return Sheet(image=image, half_width=pw, picture_height=ph, scale=pw / width, boxes=drawn)


def png_bytes(image: np.ndarray, text: Mapping[str, str]) -> bytes:
    """`image` (BGR uint8) as PNG bytes, with a tEXt chunk for each keyword -> text."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("the preview could not be encoded as PNG")
    data = encoded.tobytes()
    chunks = b""
    for key, value in text.items():
        body = b"tEXt" + key.encode("latin-1") + b"\0" + value.encode("latin-1", "replace")
        chunks += struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    end_of_header = 8 + 8 + 13 + 4   # signature, IHDR's length + type, its 13 bytes, its CRC
    return data[:end_of_header] + chunks + data[end_of_header:]


def altered_text(label: Mapping[str, Any], faces: int) -> str:
    """What the result is, as the output label says it: the stages that changed faces."""
    if not faces:
        return "no face found: the result is the original frame"
    named = label.get("stage_labels") or {}
    stages = [named.get(stage, stage) for stage in label.get("stages") or []]
    return f"faces altered by {' + '.join(stages) or 'the face stages'}"


def panel_lines(preview: Any, sheet_size: tuple[int, int]) -> list[str]:
    """The panel's lines for a farm.jobs.preview.Preview shown at sheet_size (each half, px)."""
    shown = "" if sheet_size == (preview.width, preview.height) else \
        f", shown scaled to {sheet_size[0]}x{sheet_size[1]} for this picture only (the job renders full size)"
    rotated = f", stored pixels (rotation {preview.rotation} deg not applied)" if preview.rotation else ""
    label = preview.label
    models = ", ".join(f"{role} {entry['name']}" for role, entry in (label.get("models") or {}).items())
    demo = " (demo stand-in models, not real face swap)" if label.get("demo") else ""
    options = ", ".join(f"{name}={_shown(value)}" for name, value in preview.options.items() if value is not None)
    faces = "; ".join(f"{n}: {x0},{y0}-{x1},{y1} score {score:.2f}" for n, ((x0, y0, x1, y1), score)
                      in enumerate(zip(preview.boxes, preview.scores), start=1))
    lines = [
        (f"farm preview of {preview.video.name}: frame {preview.index} of {preview.frame_count} at "
         f"{preview.time_s:.3f} s, {preview.width}x{preview.height}{shown}{rotated}"),
        (f"left: the original frame; right: the result, synthetic media made by farm {__version__}: "
         f"{altered_text(label, len(preview.boxes))}"),
        f"faces (boxed and numbered, frame px): {faces}" if faces else "faces: none found by the chain",
        f"models: pack {label.get('pack', '?')}{demo}: {models}",
        f"options: {options}",
        "source: " + ", ".join(p.name for p in preview.sources) + (f"; consent: {preview.consent}"
                                                                   if preview.consent else ""),
    ]
    if preview.ignored:
        lines.append("ignored (job-only options of the spec file): " + ", ".join(preview.ignored))
    return lines


def _shown(value: Any) -> str:
    """An option's value on the panel, as a flag takes it; a path by its file name (no
    server folder shown)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):   # a list option (mask = box,occlusion), as a flag takes it
        return ",".join(f"{v:g}" if isinstance(v, float) else _shown(v) for v in value)
    text = str(value)
    return text.rsplit("/", 1)[-1] if "/" in text else text


def render_sheet(preview: Any, max_side: int = PICTURE_MAX_SIDE) -> tuple[Sheet, bytes]:
    """The sheet of a Preview and its PNG bytes."""
    size = picture_size(preview.width, preview.height, max_side)
    sheet = compose(preview.original, preview.result, preview.boxes, panel_lines(preview, size), max_side)
    text = {"Software": f"farm {__version__}",
            "Description": f"farm preview (synthetic media): {altered_text(preview.label, len(preview.boxes))}; "
                           f"model pack {preview.label.get('pack', '?')}"}
    return sheet, png_bytes(sheet.image, text)


def preview_json(preview: Any, sheet: Sheet, path: str | None) -> dict[str, Any]:
    """What a machine reads about a preview (`farm preview --json`)."""
    label = preview.label
    return {
        "path": path, "video": str(preview.video), "frame": preview.index, "time_s": round(preview.time_s, 6),
        "width": preview.width, "height": preview.height,
        "picture": {"width": int(sheet.image.shape[1]), "height": int(sheet.image.shape[0]),
                    "half_width": sheet.half_width, "picture_height": sheet.picture_height,
                    "scale": round(sheet.scale, 6)},
        "faces": [{"number": n, "box": list(box), "picture_box": list(drawn), "score": round(score, 4)}
                  for n, (box, drawn, score) in enumerate(zip(preview.boxes, sheet.boxes, preview.scores), start=1)],
        "options": preview.options,
        "models": {"pack": label.get("pack"), "demo": label.get("demo"), "stages": label.get("stages"),
                   "models": {role: entry["name"] for role, entry in (label.get("models") or {}).items()}},
        "warning": preview.warning, "ignored": preview.ignored,
    }

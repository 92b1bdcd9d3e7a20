"""The contact sheet of a survey (farm.jobs.faces_survey): one row per person.

A header panel names the video, the sampling and the models; each row holds a label block
(the person's number, time on screen, first appearance, sightings) and up to
CROPS_PER_ROW crops spread over the person's time on screen, each letterboxed into a
CELL_PX square. The text panels are farm.jobs.preview_sheet's; `png_bytes` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from farm import __version__
from farm.jobs.preview_sheet import PANEL_BGR, panel, png_bytes

CELL_PX = 112
"""Side of the square each crop is shown in (px)."""
CROPS_PER_ROW = 6
GAP_PX = 8
LABEL_PX = 200
"""Width of a row's label block (px)."""
ROW_PX = CELL_PX + 2 * GAP_PX
SHEET_WIDTH = LABEL_PX + CROPS_PER_ROW * (CELL_PX + GAP_PX) + GAP_PX
CELL_BGR = (16, 16, 16)


@dataclass
class ContactSheet:
    """The composed picture (BGR uint8, height x SHEET_WIDTH x 3); rows start at
    header_height, ROW_PX each, in person order."""

    image: np.ndarray
    header_height: int
    rows: int

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def clock(seconds: float) -> str:
    """m:ss.s (h:mm:ss past an hour)."""
    whole = int(seconds)
    if whole >= 3600:
        return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return f"{whole // 60}:{seconds - 60 * (whole // 60):04.1f}"


def cell(crop_png: bytes) -> np.ndarray:
    """A crop (PNG bytes) scaled to fit CELL_PX x CELL_PX, centred on a dark square."""
    out = np.full((CELL_PX, CELL_PX, 3), CELL_BGR, np.uint8)
    image = cv2.imdecode(np.frombuffer(crop_png, np.uint8), cv2.IMREAD_COLOR) if crop_png else None
    if image is None:
        return out
    h, w = image.shape[:2]
    s = CELL_PX / max(h, w)
    nw, nh = max(1, min(CELL_PX, round(w * s))), max(1, min(CELL_PX, round(h * s)))
    image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    y, x = (CELL_PX - nh) // 2, (CELL_PX - nw) // 2
    out[y:y + nh, x:x + nw] = image
    return out


def row_lines(person: Any, duration_s: float) -> list[str]:
    share = f" ({100 * person.seconds / duration_s:.0f}%)" if duration_s > 0 else ""
    return [f"person {person.number}", f"on screen {person.seconds:.1f} s{share}",
            f"first seen at {clock(person.first_s)}", f"{len(person.sightings)} sightings"]


def header_lines(survey: Any) -> list[str]:
    label = survey.label
    demo = " (demo stand-ins, not real face models)" if label.get("demo") else ""
    models = ", ".join(f"{role} {entry['name']}" for role, entry in (label.get("models") or {}).items())
    found = (f"{len(survey.people)} people in {survey.faces_seen} faces" if survey.people
             else "no face found")
    return [f"farm faces of {survey.video.name}: {survey.width}x{survey.height}, {survey.duration_s:.1f} s; "
            f"{len(survey.samples)} frames sampled every {survey.every_s:g} s; {found}; grouped at "
            f"similarity {survey.threshold:g}",
            f"models: pack {label.get('pack', '?')}{demo}: {models}"]


def compose_sheet(survey: Any) -> ContactSheet:
    """The sheet of a Survey: the header, then one row per person."""
    header = panel(header_lines(survey), SHEET_WIDTH)
    rows = []
    for person in survey.people:
        row = np.full((ROW_PX, SHEET_WIDTH, 3), PANEL_BGR, np.uint8)
        text = panel(row_lines(person, survey.duration_s), LABEL_PX)[:ROW_PX]
        row[:text.shape[0], :LABEL_PX] = text
        for n, seen in enumerate(person.spread(CROPS_PER_ROW)):
            x = LABEL_PX + n * (CELL_PX + GAP_PX)
            row[GAP_PX:GAP_PX + CELL_PX, x:x + CELL_PX] = cell(seen.crop)
        rows.append(row)
    return ContactSheet(np.vstack([header, *rows]), int(header.shape[0]), len(rows))


def sheet_png(survey: Any) -> tuple[ContactSheet, bytes]:
    """The sheet and its PNG bytes (tEXt: made by farm, from which video)."""
    sheet = compose_sheet(survey)
    text = {"Software": f"farm {__version__}",
            "Description": f"farm faces contact sheet of {survey.video.name}: {len(survey.people)} people"}
    return sheet, png_bytes(sheet.image, text)

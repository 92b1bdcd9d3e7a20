"""What a survey (farm.jobs.faces_survey) gives back: the table as JSON, and the folder.

The folder (`--out DIR`, default `<video stem>.faces` here) holds `sheet.png` (the contact
sheet), one reference crop per person (`person-1.png`, ...) and `faces.json`: the table
plus each person's mean embedding in the recogniser's raw output space (the space
farm.faces.identity.compute_identity averages source images in) and the recogniser that
made it, so that a later job can name `person-N` of this run as a reference face.

The folder is written whole: into a temporary folder beside it, then renamed. An existing
folder is replaced only with `--overwrite` and only when it is empty or an earlier
survey's (it holds faces.json); a folder holding anything else is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from farm.errors import InputError, UnavailableError
from farm.storage import check_writable_folder

FACES_JSON = "faces.json"
SHEET_PNG = "sheet.png"
FORMAT_VERSION = 1
"""Version of faces.json's layout."""


def crop_name(person: Any) -> str:
    return f"{person.name}.png"


def table_json(survey: Any, sheet: Any | None = None, out: Path | None = None) -> dict[str, Any]:
    """What a machine reads about a survey (`farm faces --json`, GET /faces): one entry per
    person, frame ranges [first, end) (end exclusive), times in seconds."""
    people = []
    for p in survey.people:
        best = p.best()
        people.append({
            "number": p.number, "name": p.name, "seconds": round(p.seconds, 3),
            "share": round(p.seconds / survey.duration_s, 4) if survey.duration_s > 0 else 0.0,
            "first_s": round(p.first_s, 3), "sightings": len(p.sightings),
            "frames": [list(r) for r in p.ranges],
            "crop": str(out / crop_name(p)) if out else crop_name(p),
            "reference": {"frame": best.frame, "box": [round(v, 1) for v in best.box], "score": round(best.score, 4)},
        })
    label = survey.label
    return {
        "video": str(survey.video), "out": str(out) if out else None,
        "sheet": str(out / SHEET_PNG) if out else SHEET_PNG,
        "width": survey.width, "height": survey.height, "frames": survey.frame_count,
        "duration_s": round(survey.duration_s, 6), "every_s": survey.every_s, "threshold": survey.threshold,
        "samples": len(survey.samples), "faces_seen": survey.faces_seen, "people": people,
        "picture": {"width": sheet.width, "height": sheet.height, "header_height": sheet.header_height,
                    "rows": sheet.rows} if sheet is not None else None,
        "models": {"pack": label.get("pack"), "demo": label.get("demo"),
                   "models": {role: entry["name"] for role, entry in (label.get("models") or {}).items()}},
        "options": survey.options, "warning": survey.warning,
    }


def faces_file(survey: Any) -> dict[str, Any]:
    """faces.json: the table (paths relative to the folder) plus, per person, the mean raw
    embedding and the recogniser (name, sha256) whose space it is in."""
    data = table_json(survey)
    data["version"] = FORMAT_VERSION
    data["recognizer"] = (survey.label.get("models") or {}).get("recognizer")
    for entry, person in zip(data["people"], survey.people):
        entry["embedding"] = [round(float(v), 7) for v in person.embedding]
    return data


def default_out(video: Path) -> Path:
    """`<video stem>.faces` in the current folder."""
    return Path.cwd() / f"{Path(video).stem}.faces"


def _earlier_survey(path: Path) -> bool:
    return path.is_dir() and (not any(path.iterdir()) or (path / FACES_JSON).is_file())


def check_out_dir(out: Path | None, video: Path, overwrite: bool,
                  names: tuple[str, str] = ("--out", "--overwrite")) -> Path:
    """The folder's path, absolute, or InputError: not a link; absent, or an empty folder,
    or (with `overwrite`) an earlier survey's; its parent exists and is writable."""
    path = Path(os.path.abspath((out or default_out(video)).expanduser()))
    if path.is_symlink():
        raise InputError(f"{path} is a symbolic link; the faces folder is not written through links",
                         hint=f"give the real path as {names[0]}, or remove the link")
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{path} exists and is not a folder", hint=f"choose another {names[0]}")
        if any(path.iterdir()):
            if not (path / FACES_JSON).is_file():
                raise InputError(f"{path} holds files that are not an earlier `farm faces` run's; it is never "
                                 "replaced", hint=f"choose another {names[0]}")
            if not overwrite:
                raise InputError(f"{path} already holds a `farm faces` run",
                                 hint=f"pass {names[1]} or choose another {names[0]}")
    check_writable_folder(path, names[0])
    return path


def write_folder(path: Path, survey: Any, sheet_bytes: bytes, overwrite: bool) -> None:
    """Write the sheet, the crops and faces.json into `path` whole (see the module doc)."""
    from farm.storage import temp_name

    tmp = temp_name(path)
    old = temp_name(path)
    try:
        tmp.mkdir()
        (tmp / SHEET_PNG).write_bytes(sheet_bytes)
        for person in survey.people:
            (tmp / crop_name(person)).write_bytes(person.best().crop)
        (tmp / FACES_JSON).write_text(json.dumps(faces_file(survey), indent=1) + "\n")
        if path.exists():
            if not _earlier_survey(path) or (any(path.iterdir()) and not overwrite):
                raise InputError(f"{path} appeared meanwhile and is not replaced",
                                 hint="pass --overwrite or choose another --out")
            os.rename(path, old)
        os.rename(tmp, path)
    except OSError as exc:
        if old.exists() and not path.exists():
            os.rename(old, path)   # put the earlier run back
        raise UnavailableError(f"writing {path} failed: {exc}", hint="check the folder's space and permissions") \
            from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)

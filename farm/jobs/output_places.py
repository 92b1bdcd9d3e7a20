"""Where a job's output may be written: never into the farm's own files.

The farm writes these itself, so no output goes there, whoever asks:

    <storage>/jobs/        ingested sources, chunk files, staged outputs of every job
    <storage>/trt-cache/   TensorRT engines
    the run folder (pid files, the embedded Redis), the log folder, the models folder,
    the SQLite job database and the config file

and these belong to the HTTP API, so `farm submit` does not write there either:

    <storage>/api/         one folder per API upload (its input, then its default output)
    <storage>/outputs/     outputs an API client names (see farm.api.outputs)

Paths are compared after resolving the output's folder (symlinks too), so a link to one
of these folders is no way in; an output that is itself a symlink is refused by
farm.jobs.submit.check_output.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from farm.config import Settings
from farm.errors import InputError

JOBS_DIR = "jobs"
API_UPLOADS_DIR = "api"
API_OUTPUTS_DIR = "outputs"
TRT_CACHE_DIR = "trt-cache"


SUFFIX_OF_OUTPUT = {".webm": ".mkv"}
"""An input suffix whose output has another: WebM holds only VP8/VP9/AV1 video and farm
encodes H.264 or HEVC, so a WebM's output is the Matroska it is written as (farm.media.formats)."""


def output_suffix(video: Path) -> str:
    """The file suffix an output of `video` must have: the input's, as typed, but see SUFFIX_OF_OUTPUT."""
    return SUFFIX_OF_OUTPUT.get(video.suffix.lower(), video.suffix)


def default_output(video: Path) -> Path:
    """`<name>.farm.<ext>` beside the input (a job's output when none is named)."""
    return video.with_name(f"{video.stem}.farm{output_suffix(video)}")


def into_folder(video: Path, raw: str | Path | None) -> Path | None:
    """A single video's output when `raw` (--output as given) names a folder: an existing one,
    or a name ending in a slash (made by made_folder if missing). The output is the input's
    name in the output's container (SUFFIX_OF_OUTPUT) in that folder, as a batch puts a single
    file straight under its output folder; None when `raw` names a file (or is None). A spec
    file's output comes as a Path (resolved beside the spec), which keeps no trailing slash."""
    if raw is None:
        return None
    folder = Path(raw).expanduser()
    if not (str(raw).endswith(("/", os.sep)) and isinstance(raw, str) or folder.is_dir()):
        return None
    return Path(os.path.abspath(folder)) / f"{video.stem}{output_suffix(video)}"


@contextmanager
def made_folder(folder: Path, name: str = "--output") -> Iterator[None]:
    """Create the output folder `folder` (and its missing parents) for the block; what it
    created is removed again (when empty) if the block raises, so a refused job leaves none."""
    made = [p for p in [folder, *folder.parents] if not p.exists()]   # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {folder}: {exc.strerror}",
                         hint=f"choose a folder you can write to as {name}, or create it first") from None
    try:
        yield
    except BaseException:
        for p in made:
            try:
                os.rmdir(p)
            except OSError:
                break
        raise


def real_output_path(out: Path) -> Path:
    """`out` with its folder resolved (symlinks too); the last component stays as given."""
    return Path(os.path.realpath(out.parent)) / out.name


def is_within(path: Path, folder: Path) -> bool:
    """Whether real path `path` is `folder` or inside it (`folder` is resolved here)."""
    root = Path(os.path.realpath(folder))
    return path == root or root in path.parents


def farm_places(settings: Settings) -> list[tuple[Path, str]]:
    """(path, what it is) of every place the farm writes itself."""
    storage = settings.storage_dir
    places = [(storage / JOBS_DIR, "the farm's job folders (ingested sources and chunks)"),
              (storage / TRT_CACHE_DIR, "the farm's TensorRT engine cache"),
              (settings.run_dir, "the farm's run folder"), (settings.log_dir, "the farm's log folder"),
              (settings.models_path, "the farm's models folder")]
    if settings.database.startswith("sqlite:///"):
        db_file = Path(settings.database.removeprefix("sqlite:///"))
        places += [(db_file.with_name(db_file.name + suffix), "the farm's job database")
                   for suffix in ("", "-wal", "-shm", "-journal")]
    if settings.config_file is not None:
        places.append((settings.config_file, "the farm's config file"))
    return places


def api_places(settings: Settings) -> list[tuple[Path, str]]:
    """(path, what it is) of the places that belong to the HTTP API's jobs."""
    storage = settings.storage_dir
    return [(storage / API_UPLOADS_DIR, "the API's upload folders"),
            (storage / API_OUTPUTS_DIR, "the API's output folder")]


def check_output_place(out: Path, settings: Settings, *, api: bool) -> Path:
    """The real output path, or InputError when it lies in one of the farm's own places
    (for a local user, `api` False, also the API's places)."""
    real = real_output_path(out)
    places = farm_places(settings) + ([] if api else api_places(settings))
    for place, what in places:
        if is_within(real, place):
            raise InputError(f"output {out} is inside {what} ({place}); the farm never writes an output there",
                             hint="choose an output (--output) outside the farm's own folders")
    return real

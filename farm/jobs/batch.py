"""A batch's targets: the paths given (videos, images, folders, quoted globs) expanded into
items, each with its planned output, and the hashes that decide whether an item is done.

- A folder is walked recursively in name order; hidden files and folders (a name starting
  with '.'), files of an unknown extension and, when no --output folder is given, earlier
  outputs beside their inputs (`name.farm.ext`) are listed as skipped with the reason.
- A path that does not exist and holds a glob character (`*`, `?`, `[`) is a glob
  (`**` reaches into sub-folders); it must match something.
- Images (JPEG, PNG, WebP, BMP, TIFF, GIF) are items like videos; they render in tasks of many
  images each (farm.jobs.image_batch).
- A front end may pass `keep`, the paths it may read (the API's: farm.api.reading): a
  target, a glob's match or a walked file it leaves out is treated as absent, not listed.
- With an output folder, every output keeps its path relative to its target (the folder,
  or the glob's folder part; a single file goes straight under it); without one, each
  output goes beside its input as `name.farm.ext`. Two targets planned onto one output:
  the second is refused (a failed item), never written over the first.

The input hash (input_sha256) is the sha256 of the whole file up to FULL_HASH_MAX_BYTES;
bigger files hash their size, mtime and three 1 MiB samples (start, middle, end), so that
re-running a batch of long videos does not read every byte again (a change that keeps a
big file's size and mtime and misses the samples goes unseen: --force renders it).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TypeVar

from farm.errors import FarmError, InputError
from farm.jobs.output_places import SUFFIX_OF_OUTPUT, default_output

VIDEO_EXTS = frozenset({".mp4", ".m4v", ".mov", ".3gp", ".3g2", ".mkv", ".webm", ".avi", ".ts", ".m2ts", ".mts",
                        ".nut"})
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
GLOB_CHARS = frozenset("*?[")
FULL_HASH_MAX_BYTES = 64 * 1024 * 1024
SAMPLE_BYTES = 1024 * 1024
NOT_RENDER_OPTIONS = frozenset({"output", "overwrite", "force", "priority", "keep_chunks"})
"""Options that do not change what an item's output holds: left out of its options hash."""
P = TypeVar("P", str, Path)
Keep = Callable[[list[P]], list[P]]
"""Of the paths given, those a batch may read, in order (see the module's rules)."""


def _all(paths: list[P]) -> list[P]:
    return paths


@dataclass(frozen=True)
class Target:
    """One file to render (reason None) or a file listed as skipped (reason says why)."""

    input: Path
    output: Path | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Expanded:
    """The targets of a batch, in order: rendered and skipped, and the roots they came from."""

    items: list[Target]
    skipped: list[Target]


def refusal(exc: FarmError) -> str:
    """A refused item's error: the message and, when there is one, what to do."""
    return exc.message + (f" (what to do: {exc.hint})" if exc.hint else "")


def is_glob(raw: str) -> bool:
    return any(ch in raw for ch in GLOB_CHARS) and not Path(raw).expanduser().exists()


def is_batch(paths: list[str], output: str | None) -> bool:
    """Whether `farm submit PATH...` is a batch: several targets, a folder, a glob or an image
    (images render in tasks of many: farm.jobs.image_batch). A single video is a job whatever
    --output names (a file, or a folder: farm.jobs.output_places.into_folder), so that its
    --json is the job's object either way."""
    if len(paths) != 1:
        return True
    one = Path(paths[0]).expanduser()
    return one.is_dir() or is_glob(paths[0]) or is_image(one)


def is_image(path: Path) -> bool:
    """A regular file with an image's extension (a FIFO named face.jpg is refused by the probe)."""
    return _kind(path) == "image" and path.is_file()


def output_file(paths: list[str], raw: str | None) -> Path | None:
    """--output as the file of a single image (`farm submit face.png --output out.png`), else None."""
    if raw is None or len(paths) != 1 or not is_image(Path(paths[0]).expanduser()):
        return None
    out = Path(raw).expanduser()
    return Path(os.path.abspath(out)) if _kind(out) == "image" and not out.is_dir() else None


def _kind(path: Path) -> str | None:
    """'video', 'image' or None (an unknown extension)."""
    return _kind_of(path.suffix)


def _kind_of(suffix: str) -> str | None:
    ext = suffix.lower()
    return "video" if ext in VIDEO_EXTS else "image" if ext in IMAGE_EXTS else None


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split(os.sep))


def _suffix(name: str) -> str:
    """Path(name).suffix of a file name, without making a Path (expand sees 10,000s of names)."""
    at = name.rfind(".")
    return name[at:] if 0 < at < len(name) - 1 else ""


def _mirrored(output_dir: Path | str, relative: str, suffix: str) -> str:
    """The output of the input at `relative` under `output_dir`: the same path, with the output's
    suffix where it differs from the input's (farm.jobs.output_places.SUFFIX_OF_OUTPUT)."""
    other = SUFFIX_OF_OUTPUT.get(suffix.lower())
    if other is not None:
        relative = relative[:len(relative) - len(suffix)] + other
    return os.path.join(output_dir, relative)


def _walk(root: Path) -> Iterable[str]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            yield os.path.join(folder, name)


def _glob_base(raw: str) -> Path:
    """The folder part of a glob before its first magic component."""
    parts = Path(raw).expanduser().parts
    plain = [p for p in parts[:next((i for i, p in enumerate(parts) if any(c in p for c in GLOB_CHARS)), len(parts))]]
    return Path(*plain) if plain else Path(".")


def _candidates(raw: str, keep: Keep) -> tuple[Path, list[str], bool]:
    """(the root outputs are relative to, the files, walked: folder/glob rules apply)."""
    path = Path(raw).expanduser()
    if is_glob(raw):
        matched = keep(sorted(Path(p) for p in glob.glob(str(path), recursive=True)))
        if not matched:
            raise InputError(f"the glob {raw!r} matches no file", hint="check the pattern; quote it so that "
                             "the shell does not expand it")
        files: list[str] = []
        for m in matched:
            files += keep(list(_walk(m))) if m.is_dir() else [str(m)]
        return _glob_base(raw), files, True
    if (not path.exists() and not path.is_symlink()) or not keep([path]):
        raise InputError(f"{raw}: no such file, folder or glob match", hint="check the path")
    if path.is_dir():
        return path, keep(list(_walk(path))), True
    return path.parent, [str(path)], False


def expand(paths: list[str], output_dir: Path | None, output_to: Path | None = None, keep: Keep = _all) -> Expanded:
    """Every target of `paths` with its planned output (see the module's rules); `output_to`:
    the output file of a single image (output_file); `keep`: what the batch may read."""
    items: list[Target] = []
    skipped: list[Target] = []
    planned: dict[str, str] = {}   # output -> input, absolute paths as text (10,000s: no Path until kept)
    seen: set[str] = set()
    for raw in paths:
        root, files, walked = _candidates(raw, keep)
        root_abs = os.path.abspath(root)
        inside = root_abs.rstrip(os.sep) + os.sep
        for file in files:
            absolute = os.path.abspath(file)
            if absolute in seen:
                continue
            seen.add(absolute)
            relative = absolute[len(inside):] if absolute.startswith(inside) else os.path.relpath(absolute, root_abs)
            name = absolute[absolute.rfind(os.sep) + 1:]
            suffix = _suffix(name)
            kind = _kind_of(suffix)
            reason = None
            if walked and _hidden(relative):
                reason = "hidden"
            elif kind is None:
                reason = f"unknown extension {suffix or '(none)'!r}: neither a video nor an image"
            elif walked and output_dir is None and name[:len(name) - len(suffix)].endswith(".farm"):
                reason = "an earlier output of farm (name.farm.ext); give --output DIR to render outputs elsewhere"
            if reason is not None:
                skipped.append(Target(Path(absolute), reason=reason))
                continue
            out = str(output_to) if output_to else (_mirrored(output_dir, relative, suffix) if output_dir is not None
                                                    else str(default_output(Path(absolute))))
            out = os.path.abspath(out)
            if out in planned:
                items.append(Target(Path(absolute), Path(out), f"its output {out} is also planned for "
                                    f"{planned[out]}; rename one of them or render them in separate batches"))
                continue
            planned[out] = absolute
            items.append(Target(Path(absolute), Path(out)))
    return Expanded(items, skipped)


def nothing_to_render(paths: list[str], skipped: list[Target]) -> InputError:
    """The refusal of targets (a folder, a glob) that hold no video or image to render."""
    shown = ", ".join(paths)
    why = "" if not skipped else "; skipped: " + "; ".join(
        f"{t.input.name} ({t.reason})" for t in skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
    return InputError(f"{shown}: no video or image to render{why}",
                      hint="give a folder that holds videos or images (hidden files and unknown extensions are "
                           "skipped; earlier outputs name.farm.ext are rendered again only with --output DIR)")


def check_output_dir(raw: str | None, paths: list[str]) -> Path | None:
    """The output folder of a batch (make_output_dir creates it), or InputError: an existing file,
    a name with a video's extension (a file is an output only for a single target), or a
    folder inside one of the folders being walked (its outputs would become inputs)."""
    if raw is None:
        return None
    out = Path(os.path.abspath(Path(raw).expanduser()))
    if out.exists() and not out.is_dir():
        raise InputError(f"--output {raw} is a file; with several targets --output names a folder",
                         hint="give a folder (it is created if missing); --output is a file only for a single video")
    if not out.exists() and _kind(out) is not None:
        raise InputError(f"--output {raw} looks like a file name; with several targets --output names a folder",
                         hint="give a folder; --output is a file only for a single video")
    for given in paths:
        folder = Path(given).expanduser()
        folder = folder if folder.is_dir() else _glob_base(given) if is_glob(given) else None
        if folder is not None:
            real = Path(os.path.realpath(folder))
            if out == real or real in Path(os.path.realpath(out)).parents:
                raise InputError(f"--output {raw} is inside the input folder {folder}: its outputs would be "
                                 "read as inputs by the next run", hint="choose an output folder outside the inputs")
    return out


def make_output_dir(out: Path) -> None:
    """Create the batch's output folder (once its targets are known: a refused batch makes none)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {out}: {exc.strerror}") from None


def input_sha256(path: Path) -> str:
    """The input's hash (module docstring: whole file, or size+mtime+samples past 64 MiB)."""
    digest = hashlib.sha256()
    st = path.stat()
    with open(path, "rb") as fh:
        if st.st_size <= FULL_HASH_MAX_BYTES:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
            return digest.hexdigest()
        digest.update(f"sampled {st.st_size} {st.st_mtime_ns}".encode())
        for at in (0, st.st_size // 2, st.st_size - SAMPLE_BYTES):
            fh.seek(at)
            digest.update(fh.read(SAMPLE_BYTES))
    return digest.hexdigest()


def options_sha256(options: Mapping[str, Any]) -> str:
    """The hash of what decides an output's content: every option but NOT_RENDER_OPTIONS,
    and the content of each image an option names (a changed source face re-renders)."""
    kept = {k: v for k, v in options.items() if k not in NOT_RENDER_OPTIONS and v is not None}
    images: dict[str, str] = {}
    for p in list(kept.get("source") or []) + ([kept["reference"]] if kept.get("reference") else []):
        try:
            images[str(p)] = input_sha256(Path(p).expanduser())
        except OSError:
            images[str(p)] = "unreadable"   # refused at submit, with its own message
    text = json.dumps({"options": kept, "images": images}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()

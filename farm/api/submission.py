"""What a POST /jobs asks for, as a SubmitRequest: every path confined to the farm's storage,
and every path it reads one this client may read (farm.api.reading).

Two shapes, the same options as `farm submit` (farm.jobs.spec.SUBMIT_OPTIONS):
- multipart/form-data: the video as a file part `video`; `source` and `reference` as
  file parts (or as text: paths on storage); every other option a text field.
- application/json: {"path": "<video on storage>", "source": [...], ...options}; paths
  are absolute or relative to the storage root, and must resolve (symlinks too) inside it.

The request's sha256 (its options and the content of its uploads, or the paths it
names) is what an Idempotency-Key is bound to.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.api.reading import Reader
from farm.api.uploads import Form
from farm.errors import InputError
from farm.jobs.spec import check_options, submit_request
from farm.options import job_options, split_pair
from farm.storage import Storage
from farm.user_files import check_regular_file

FILE_FIELDS = ("video", "source", "reference")
def _list_fields() -> tuple[str, ...]:
    """Form fields that may repeat: the options that take several paths or pairs (`map`)."""
    return tuple(name for name, option in job_options().items() if option.kind in ("paths", "pairs"))

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass
class Submission:
    request: Any           # farm.jobs.submit.SubmitRequest, its output set (the default made explicit)
    sha256: str            # of what was asked (options + uploads or paths)
    output_given: bool = False        # the client named the output (farm.api.outputs rules)
    own_folder: Path | None = None    # this request's new upload folder


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def confine(storage: Storage, raw: str, what: str) -> Path:
    """A client's path as a real path inside storage (relative ones from the storage root)."""
    if not raw or "\0" in raw:
        raise InputError(f"{what} path is empty or invalid")
    path = Path(raw)
    return storage.confine(path if path.is_absolute() else storage.root / path)


def read_path(reader: Reader, raw: str, what: str, *, file: bool = True) -> Path:
    """A client's path to be read: confined, one this client may read (else refused as a
    missing file), and with `file` a regular file (a FIFO would block the server)."""
    path = confine(reader.storage, raw, what)
    reader.check(path, what)
    if file:
        check_regular_file(path, what)
    return path


def read_options(reader: Reader, options: dict[str, Any]) -> None:
    """The paths of `options` that are read (source, reference, --map's and --map-others'
    images, a models folder) as real paths this client may read, in place."""
    if "source" in options:
        options["source"] = [read_path(reader, p, "source image") for p in options["source"]]
    if options.get("reference") is not None:
        options["reference"] = read_path(reader, options["reference"], "reference image")
    if options.get("map"):   # a reference FOLDER/person-N need not exist itself: its folder's faces.json is read
        confined = []
        for item in options["map"]:
            ref, src = split_pair(item)
            ref_path = read_path(reader, ref, "map reference", file=False)
            if ref_path.exists():
                check_regular_file(ref_path, "map reference")
            confined.append(f"{ref_path}={read_path(reader, src, 'map source')}")
        options["map"] = confined
    if options.get("map_others") not in (None, "keep"):
        options["map_others"] = str(read_path(reader, options["map_others"], "map-others source"))
    models = options.get("models")   # a pack by name, or a directory on storage (never an arbitrary server path)
    if models is not None and not (set(models) <= _NAME_CHARS and not models.startswith(".")):
        options["models"] = str(read_path(reader, models, "models", file=False))


def from_form(form: Form, reader: Reader, upload_dir: Path) -> Submission:
    """A multipart request; the uploaded video is at `upload_dir`/..., the output goes beside it."""
    raw: dict[str, Any] = {}
    for name, value in form.fields:
        if name in ("video", "path"):
            raise InputError(f"form field {name!r} must be a file part (the video to process)",
                             hint="send the video as multipart file field 'video', or POST JSON with 'path'")
        if name in _list_fields():
            raw.setdefault(name, []).append(value)
        elif name in raw:
            raise InputError(f"form field {name!r} is given twice")
        else:
            raw[name] = value
    options = check_options(raw, "the form", text=True)
    videos = [f for f in form.files if f.field == "video"]
    unknown = [f.field for f in form.files if f.field not in FILE_FIELDS]
    if unknown:
        raise InputError(f"unexpected file field {unknown[0]!r}", hint="file fields: " + ", ".join(FILE_FIELDS))
    if len(videos) != 1:
        raise InputError("send exactly one video, as the multipart file field 'video'")
    video = videos[0]
    if not Path(video.filename).suffix:
        raise InputError(f"the uploaded video's file name {video.filename!r} has no extension",
                         hint="name the file part like clip.mp4 (the output keeps the container)")
    refs = [f for f in form.files if f.field == "reference"]
    if len(refs) > 1 or (refs and "reference" in options):
        raise InputError("give one reference image at most")
    read_options(reader, options)
    options["source"] = options.get("source", []) + [f.path for f in form.files if f.field == "source"]
    if refs:
        options["reference"] = refs[0].path
    given = "output" in options
    if given:
        options["output"] = confine(reader.storage, options["output"], "output")
    else:
        from farm.jobs.output_places import default_output

        options["output"] = default_output(upload_dir / Path(video.filename).name)
    payload = {"options": {k: v for k, v in raw.items() if k not in ("source", "reference", "output")},
               "output": raw.get("output"), "source_paths": raw.get("source"), "reference_path": raw.get("reference"),
               "files": [(f.field, f.filename, f.sha256) for f in form.files]}
    return Submission(submit_request(video.path, options), _digest(payload), output_given=given,
                      own_folder=upload_dir)


def from_json(body: bytes, reader: Reader) -> Submission:
    """A JSON request naming a video already on storage."""
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError("the JSON body must be an object: {\"path\": ..., options}")
    data = dict(data)
    path = data.pop("path", None)
    if not isinstance(path, str):
        raise InputError("the JSON body needs 'path': the video, on the farm's storage",
                         hint="or upload the video as multipart/form-data field 'video'")
    options = check_options(data, "the JSON body")
    video = read_path(reader, path, "video")
    read_options(reader, options)
    from farm.jobs.submit import default_output

    given = "output" in options
    options["output"] = confine(reader.storage, options["output"], "output") if given else default_output(video)
    return Submission(submit_request(video, options), _digest({"path": path, "options": data}), output_given=given)

"""A synthetic-media label read back: a file's tags as ffmpeg reads them (read_tags, which
finalize checks before publishing), and the job that made a file (job_of).

Finalize writes the label (farm.workers.finalize.output_metadata: `farm_job_id` where the
container keeps free tags); every label starts "synthetic media made by farm VERSION, job ID"
(label_head), so the job is named also where a container keeps only the label text (AVI's
comment, MPEG-TS's service name, 3GP's dscp box, an MP4 with cover art, an image's description).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from farm import __version__
from farm.errors import VerifyError
from farm.media.ffmpeg import base_args, ffmpeg_exe, input_args

HEAD = re.compile(r"synthetic media made by farm \S+, job ([^\s:,;]+)")
"""label_head as read back: group 1 is the job id."""
LABEL_KEYS = ("comment", "description", "service_name")
"""The tags that carry the label text, by container."""
SUFFIXES_3GPP = frozenset({".3gp", ".3g2"})
"""Outputs whose tags are 3GPP asset boxes, which FFmpeg does not read (farm.media.tags_3gpp)."""
NO_LABEL = ""
"""job_of's answer for a file that was read and carries no farm label."""


def label_head(job_id: str) -> str:
    """The start of every label (farm.workers.finalize.output_label): what made the file, for which job."""
    return f"synthetic media made by farm {__version__}, job {job_id}"


def job_of(path: Path, *, image: bool = False) -> str | None:
    """The id of the job whose label the video (`image`: the image) at `path` carries;
    NO_LABEL when it was read and carries none; None when that cannot be told (the file is
    missing or cannot be read)."""
    try:
        if image:
            from farm.media.stills import read_label

            texts = [read_label(path) or ""]
        else:
            tags = video_tags(path)
            if tags.get("farm_job_id"):
                return tags["farm_job_id"]
            texts = [tags.get(key, "") for key in LABEL_KEYS]
    except (OSError, ValueError):
        return None
    found = next((m for text in texts if (m := HEAD.search(text))), None)
    return found[1] if found else NO_LABEL


def video_tags(path: Path) -> dict[str, str]:
    """A video's container tags, names in lower case (an MPEG-TS: its first program's, where its
    service name is; a 3GP: its 3GPP boxes'); OSError when it cannot be read."""
    import av

    if path.suffix.lower() in SUFFIXES_3GPP:
        from farm.media.tags_3gpp import read_3gpp_tags

        try:
            return read_3gpp_tags(path)
        except VerifyError as exc:
            raise OSError(exc.message) from None
    try:
        with av.open(str(path.absolute())) as container:
            if container.format.name != "mpegts":
                return {key.lower(): value for key, value in container.metadata.items()}
    except av.FFmpegError as exc:
        raise OSError(f"cannot open {path}: {exc}") from None
    try:
        return read_tags(path, "mpegts", program=True)
    except VerifyError as exc:
        raise OSError(exc.message) from None


def read_tags(path: Path, demuxer: str, *, program: bool = False) -> dict[str, str]:
    """Container tags of a file as ffmpeg reads them; program=True: the first program's (MPEG-TS)."""
    argv = base_args(ffmpeg_exe()) + input_args(path, demuxer)
    argv += ["-map_metadata", "0:p:0" if program else "0", "-f", "ffmetadata", "pipe:1"]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VerifyError(f"cannot read the tags of {path.name}: {exc}") from None
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace")[-1000:].strip()
        raise VerifyError(f"cannot read the tags of {path.name} (ffmpeg exit {done.returncode}): {tail}")
    return parse_ffmetadata(done.stdout.decode("utf-8", "replace"))


def parse_ffmetadata(text: str) -> dict[str, str]:
    """The global key=value tags of ffmpeg's FFMETADATA1 output.

    A backslash escapes the next character ('=', ';', '#', a backslash or a newline);
    lines starting with ';' or '#' are comments; the first '[SECTION]' ends the globals.
    """
    lines: list[list[tuple[str, bool]]] = [[]]   # (character, escaped)
    escaped = False
    for ch in text:
        if escaped:
            lines[-1].append((ch, True))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "\n":
            lines.append([])
        else:
            lines[-1].append((ch, False))
    tags: dict[str, str] = {}
    for line in lines:
        if not line or (not line[0][1] and line[0][0] in ";#"):
            continue
        if not line[0][1] and line[0][0] == "[":
            break
        eq = next((k for k, (c, esc) in enumerate(line) if c == "=" and not esc), None)
        if eq is not None:
            tags["".join(c for c, _ in line[:eq]).lower()] = "".join(c for c, _ in line[eq + 1:])
    return tags

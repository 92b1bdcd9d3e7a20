"""Which video stream of a file is "the video": the rule, on plain numbers.

`choose_video_stream`: never cover art or a still-image stream (the caller leaves those
out); of the others, the one with the most frames. Streams with at least
SIMILAR_FRAMES_RATIO of that count are rivals; among rivals the only one flagged
`default` wins, else one with at least LARGER_AREA_FACTOR times the pixels of every
other rival; otherwise the file is refused (exit 2) rather than guessed at. (FFmpeg's
own "best stream" also skips cover art and ranks by the default flag first; we rank by
length first, because a one-frame still flagged default is not the video.) Kept apart
from `farm.media.probe`, which counts the frames, so the rule can be read and tested
without a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

from farm.errors import InputError

#: A video stream with at least this share of the most frames is a rival for the main video.
SIMILAR_FRAMES_RATIO = 0.9
#: A rival wins on picture size when it has at least this many times the pixels of every other.
LARGER_AREA_FACTOR = 2


@dataclass(frozen=True)
class VideoCandidate:
    """A video stream that may be the one we process (not cover art, not a still image)."""

    index: int
    codec: str | None
    width: int
    height: int
    frames: int
    default: bool = False

    def describe(self) -> str:
        flag = ", flagged default" if self.default else ""
        return f"#{self.index} ({self.codec} {self.width}x{self.height}, {self.frames} frames{flag})"


def choose_video_stream(candidates: Sequence[VideoCandidate], path: str | os.PathLike[str] = "the file"
                        ) -> tuple[int, str]:
    """(stream index, why) of the video to process among several candidates (rule: module doc).

    Raises InputError when the file does not say which one it is.
    """
    most = max(c.frames for c in candidates)
    rivals = [c for c in candidates if c.frames >= SIMILAR_FRAMES_RATIO * most]
    flagged = [c for c in rivals if c.default]
    by_area = sorted(rivals, key=lambda c: c.width * c.height, reverse=True)
    if len(rivals) == 1:
        best, why = rivals[0], "the most frames"
    elif len(flagged) == 1:
        best, why = flagged[0], "flagged default among streams of similar length"
    elif by_area[0].width * by_area[0].height >= LARGER_AREA_FACTOR * by_area[1].width * by_area[1].height:
        best, why = by_area[0], "the largest picture among streams of similar length"
    else:
        raise InputError(
            f"{path}: cannot tell which video stream to process: "
            + " and ".join(c.describe() for c in rivals)
            + " are of similar length and size, and not exactly one of them is flagged default",
            hint="remux it with only the video stream to process, e.g. `ffmpeg -i IN -map 0 -map -0:1 -c copy OUT` "
                 "drops stream #1 (or flag the one to process default: `-disposition:1 default`)",
        )
    everyone = ", ".join(c.describe() for c in candidates)
    return best.index, f"stream {best.index} of {len(candidates)} video streams: {why} ({everyone})"

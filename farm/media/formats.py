"""Container knowledge: which inputs we accept, how we name them, what we write.

A user-supplied file is identified by its first bytes (never by its name and never by
ffmpeg's own probing, which would happily open an HLS playlist or a concat list that
reads other files or URLs). The demuxer found here is then *forced* when the file is
opened, together with the file-only protocol whitelist.
"""

from __future__ import annotations

import os
from pathlib import Path

from farm.errors import InputError
from farm.media.tags_3gpp import muxes_3gpp_tags

#: demuxer (as forced with ``-f`` / ``av.open(format=...)``) -> human name
ALLOWED_DEMUXERS: dict[str, str] = {
    "mov": "QuickTime/MP4 (mov, mp4, m4v, 3gp)",
    "matroska": "Matroska/WebM (mkv, webm)",
    "avi": "AVI",
    "mpegts": "MPEG transport stream (ts, m2ts)",
    "nut": "NUT",
}

#: Containers that store no presentation times: a frame's time is its decode position
#: (dts). Whatever pts libavformat guesses for them is replaced by the dts.
DTS_ONLY_DEMUXERS = frozenset({"avi"})

#: Options for opening any user-supplied input (PyAV container options / ffmpeg input
#: options): local files only. The demuxer is forced separately, and MOV's external
#: data references stay off (FFmpeg's default).
SAFE_INPUT_OPTIONS: dict[str, str] = {"protocol_whitelist": "file"}

#: Container of the intermediate chunk files. MP4 keeps each packet's pts and dts
#: exactly in the track timescale we ask for (`intermediate_options`), supports
#: B-frames (negative dts), and its 'colr' box keeps the colour range even when nothing
#: else about colour is known. NUT rewrites the time base and drops dts, Matroska rounds
#: to 1 ms, MPEG-TS to 90 kHz. Codecs MP4 cannot hold go into MOV (the same muxer in
#: QuickTime mode); VP8 only fits Matroska (its sources are WebM, already 1 ms).
INTERMEDIATE_MUXER = "mp4"
_INTERMEDIATE_BY_CODEC = {
    "vp8": "matroska",
    **{c: "mov" for c in ("prores", "dnxhd", "qtrle", "cfhd", "v210", "v410", "rawvideo", "dvvideo",
                          "hap", "png", "r210", "svq1", "svq3", "cinepak", "h263")},
}
_SUFFIX_BY_MUXER = {"mov": ".mov", "mp4": ".mp4", "matroska": ".mkv"}

_MOV_ATOMS = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"junk"}
_NUT_MAGIC = b"nut/multimedia container\x00"
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_WEBM_CODECS = {"vp8", "vp9", "av1", "opus", "vorbis", "webvtt"}


def sniff_demuxer(path: str | os.PathLike[str]) -> str:
    """Return the allowed demuxer name for the file's first bytes, or raise InputError."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(1024)
    except FileNotFoundError:
        raise InputError(f"{p}: the file does not exist", hint="check the path; the file may have been "
                                                              "moved or deleted") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a folder, not a video file", hint="name a video file") from None
    except PermissionError as exc:
        raise InputError(f"{p}: cannot be read ({exc.strerror})", hint="check the file's permissions") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot be read ({exc.strerror})",
                         hint="check the file and the disk or mount it is on") from None
    demuxer = demuxer_for_head(head)
    if demuxer is None:
        what = _describe_head(head)
        raise InputError(
            f"{p}: not an accepted video container ({what})",
            hint="submit a video file in one of: " + ", ".join(ALLOWED_DEMUXERS.values()),
        )
    return demuxer


def demuxer_for_head(head: bytes) -> str | None:
    """Identify an allowed container from up to 1 KiB of file head; None if not allowed."""
    if len(head) >= 8 and head[4:8] in _MOV_ATOMS:
        return "mov"
    if head.startswith(_EBML_MAGIC):
        return "matroska"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    if head.startswith(_NUT_MAGIC):
        return "nut"
    for packet_size, offset in ((188, 0), (192, 4), (204, 0)):
        hits = [offset + k * packet_size for k in range(4)]
        if len(head) > hits[-1] and all(head[i] == 0x47 for i in hits):
            return "mpegts"
    return None


def _describe_head(head: bytes) -> str:
    text = head[:16].lstrip(b"\xef\xbb\xbf").lower()
    if not head:
        return "the file is empty"
    if text.startswith(b"#extm3u"):
        return "an HLS playlist"
    if text.startswith(b"ffconcat") or text.startswith(b"file "):
        return "an ffmpeg concat list"
    if text.startswith(b"<?xml") or text.startswith(b"<mpd"):
        return "an XML manifest"
    return "unrecognised format"


def output_muxer(demuxer: str, major_brand: str | None, suffix: str, codecs: set[str]) -> str:
    """The muxer that writes the same kind of container as the source.

    major_brand: the MP4 ``ftyp`` brand ('qt  ' means QuickTime); suffix: the source's
    file suffix (a tie breaker); codecs: every codec that will go into the output.
    """
    suffix = suffix.lower()
    if demuxer == "mov":
        brand = (major_brand or "").strip().lower()
        if brand == "qt" or (not brand and suffix == ".mov"):
            return "mov"
        if brand.startswith("3g2") or suffix == ".3g2":
            return "3g2"
        if brand.startswith("3g") or suffix == ".3gp":
            return "3gp"
        return "mp4"
    if demuxer == "matroska":
        return "webm" if suffix == ".webm" and codecs <= _WEBM_CODECS else "matroska"
    return demuxer  # avi, mpegts, nut: muxer and demuxer share the name


def is_mov_family(muxer: str) -> bool:
    """True for the ISO-BMFF/QuickTime muxers (mp4, mov, 3gp, 3g2, ipod)."""
    return muxer in ("mp4", "mov", "3gp", "3g2", "ipod")


def keeps_free_tags(muxer: str) -> bool:
    """True if the container stores arbitrary key=value tags (ours: comment, farm_*).

    Not 3GP/3G2: FFmpeg's muxer writes only the 3GPP asset boxes there (farm.media.tags_3gpp).
    """
    return (is_mov_family(muxer) and not muxes_3gpp_tags(muxer)) or muxer in ("matroska", "webm", "nut")


def holds_cover_art(muxer: str) -> bool:
    """True if cover art (an attached picture) can be stream-copied into it.

    MP4 keeps it in its iTunes tag list ('covr'); FFmpeg's MOV and 3GP muxers have no
    place for it. Matroska stores it as an attachment.
    """
    return muxer in ("mp4", "ipod") or not is_mov_family(muxer)


def keeps_data_streams(muxer: str) -> bool:
    """True if data streams (KLV, telemetry) are stream-copied into it.

    Not for MP4/MOV: there the muxer rebuilds the chapter ('text') and timecode
    ('tmcd') tracks from the chapters and the video's timecode tag, and copying them
    as data fails; Matroska has no data streams.
    """
    return muxer in ("mpegts", "nut")


def intermediate_muxer(codec: str) -> str:
    """Muxer of the intermediate files holding a stream of this codec (see above)."""
    return _INTERMEDIATE_BY_CODEC.get(codec, INTERMEDIATE_MUXER)


def joined_muxer(output: str, codec: str) -> str:
    """Muxer of the joined video that finalize copies into an output written by `output`.

    Matroska for a Matroska or WebM output: it declares the video's frame rate
    (DefaultDuration), which ffmpeg copies into the output, and its 1 ms timestamps are
    the output's own. From an MP4 ffmpeg would derive the rate from the sample
    durations, which a 1 ms timescale rounds (24000/1001 read back as 68500/2857).
    Other outputs: the codec's intermediate muxer, as for chunks.
    """
    return "matroska" if output in ("matroska", "webm") else intermediate_muxer(codec)


def intermediate_suffix(muxer: str) -> str:
    """File suffix for an intermediate written by `muxer`."""
    return _SUFFIX_BY_MUXER[muxer]


def intermediate_options(muxer: str, time_base_den: int, keep_range: bool) -> dict[str, str]:
    """Muxer options so an intermediate MP4/MOV keeps the source's time base exactly.

    The movie timescale matters too: the edit list that shifts a track to a non-zero
    start is counted in it (default 1 ms, which would round the start). keep_range:
    always write the 'colr' box, so a known colour range survives on its own (only
    when it is known: an unknown range would be read back as 'tv').
    """
    if muxer not in ("mov", "mp4"):
        return {}
    options = {"video_track_timescale": str(time_base_den), "movie_timescale": str(time_base_den)}
    if keep_range:
        options["movflags"] = "+write_colr"
    return options

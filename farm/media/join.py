"""Join chunk outputs into the final video, without re-encoding anything.

Two steps:
1. PyAV concatenates the chunks' video packets into one intermediate MP4 (exact pts:
   each chunk already carries the source's; dts are made strictly increasing across
   seams) and sets the source's display matrix (rotation, flips). For a Matroska or
   WebM output it is a Matroska file declaring the source's frame rate, which ffmpeg
   copies into the output (formats.joined_muxer). A job of one chunk, without a
   display matrix, whose output takes an MP4, skips this: its chunk output is that
   video already.
2. ffmpeg (stream copy, -copyts) writes the output in the source's container: that
   video plus every other stream of the source (audio, subtitles, attachments, other
   video streams, cover art, data) that the container can hold, its container and
   stream tags, chapters, and our tags. What it cannot hold (`streams_not_kept`: cover
   art in MOV/3GP, data streams in MP4/MOV/Matroska) is said in the job's log at submit.
"""

from __future__ import annotations

import os
import re
import time
from fractions import Fraction
from pathlib import Path
from typing import Mapping, Sequence

import av

from farm.errors import MediaError
from farm.media.ffmpeg import (
    FinalizeSpec,
    ffmpeg_exe,
    finalize_argv,
    range_bsf,
    run_ffmpeg,
)
from farm.media.formats import (
    holds_cover_art,
    intermediate_muxer,
    is_mov_family,
    joined_muxer,
    keeps_data_streams,
    keeps_free_tags,
    output_muxer,
    sniff_demuxer,
)
from farm.media.intermediate import open_read, open_write, temp_path_for
from farm.media.media_info import MediaInfo, StreamInfo

_TAG_KEY = re.compile(r"[A-Za-z0-9_.\-]+")


def join_chunks(chunk_paths: Sequence[str | os.PathLike[str]], source: str | os.PathLike[str],
                info: MediaInfo, out_path: str | os.PathLike[str], metadata: Mapping[str, str],
                times: dict[str, float] | None = None, scratch: str | os.PathLike[str] | None = None) -> None:
    """Write out_path: the chunks' video + the source's other streams and metadata.
    `times`, when given, gets the seconds of each step ("join": the video packets, "remux");
    `scratch`: the folder of the joined video's temporary (default: out_path's)."""
    if not chunk_paths:
        raise MediaError("nothing to join: no chunk outputs")
    out = Path(out_path)
    video_tmp = temp_path_for(Path(scratch or out.parent) / (out.name + ".video"))
    times = {} if times is None else times
    try:
        started = time.perf_counter()
        codec, timescale = video_params(Path(chunk_paths[0]))
        joined_as = joined_muxer(muxer_for(info, codec), codec)
        if len(chunk_paths) == 1 and not info.video.display_matrix and joined_as == intermediate_muxer(codec):
            video = Path(chunk_paths[0])   # one chunk is the joined video already: no joined temporary
        else:
            video = video_tmp
            codec, timescale = concat_video(chunk_paths, video_tmp, info, joined_as)
        joined = time.perf_counter()
        times["join"] = joined - started
        spec = finalize_spec(info, Path(source), video, out, metadata, timescale, codec, sniff_demuxer(video))
        run_ffmpeg(finalize_argv(ffmpeg_exe(), spec), what=f"write {out.name}")
        times["remux"] = time.perf_counter() - joined
    finally:
        video_tmp.unlink(missing_ok=True)


def video_params(path: Path) -> tuple[str, int]:
    """(codec name, time base denominator) of an intermediate file's video, as concat_video returns them."""
    try:
        with open_read(path) as src:
            stream = src.streams.video[0]
            return stream.codec_context.codec.canonical_name, stream.time_base.denominator
    except (av.FFmpegError, IndexError) as exc:
        raise MediaError(f"reading the chunk output {path.name} failed: {exc}") from None


def finalize_spec(info: MediaInfo, source: Path, video_path: Path, out_path: Path,
                  metadata: Mapping[str, str], timescale: int | None, video_codec: str,
                  video_demuxer: str) -> FinalizeSpec:
    """Which streams go where (pure: decided from the probe and the joined video alone).

    timescale: the joined video's time base denominator (kept in MP4/MOV outputs).
    """
    bad = [k for k in metadata if not _TAG_KEY.fullmatch(str(k))]
    if bad:
        raise MediaError(f"metadata keys must be letters, digits, '_', '-' or '.': {bad}")
    muxer = muxer_for(info, video_codec)
    tb = info.video.time_base
    kept = [s for s in info.streams if s.index == info.video.index or keeps_stream(s, muxer)]
    return FinalizeSpec(
        video_path=video_path,
        video_demuxer=video_demuxer,
        source_path=source,
        source_demuxer=info.demuxer,
        out_path=out_path,
        muxer=muxer,
        stream_map=tuple((0, 0) if s.index == info.video.index else (1, s.index) for s in kept),
        meta_from=tuple(s.index for s in kept),
        metadata=tuple((str(k), str(v)) for k, v in metadata.items()),
        video_timescale=timescale,
        write_colr=info.video.colour.range != 0,
        video_tag="hvc1" if video_codec == "hevc" and is_mov_family(muxer) else None,
        video_range_bsf=range_bsf(video_codec, info.video.colour.range),
        video_time_base=f"{tb.numerator}/{tb.denominator}" if timescale and tb != Fraction(1, timescale) else None,
        free_tags=uses_free_tags(info, muxer),
    )


def muxer_for(info: MediaInfo, video_codec: str) -> str:
    """The muxer of the output: the source's kind of container (see formats.output_muxer)."""
    codecs = {video_codec} | {s.codec for s in info.streams if s.codec and s.index != info.video.index}
    return output_muxer(info.demuxer, info.tags.get("major_brand"), info.path.suffix, codecs)


def muxer_for_encoder(info: MediaInfo, encoder: str) -> str:
    """muxer_for, given the encoder's name ('libx264') rather than the codec's."""
    return muxer_for(info, av.codec.Codec(encoder, "w").canonical_name)


def keeps_stream(s: StreamInfo, muxer: str) -> bool:
    """True if a non-main source stream is copied into an output written by `muxer`.

    Other video streams are copied untouched (only the main one is processed); cover
    art where the container holds it (formats.holds_cover_art).
    """
    if s.type in ("audio", "subtitle", "attachment"):
        return True
    if s.type == "video":
        return holds_cover_art(muxer) if s.attached_pic else True
    if s.type == "data":
        return keeps_data_streams(muxer)
    return False


def streams_not_kept(info: MediaInfo, muxer: str) -> list[str]:
    """One sentence per source stream the output cannot hold (the job's log and stderr say so)."""
    notes = []
    for s in info.streams:
        if s.index == info.video.index or keeps_stream(s, muxer):
            continue
        if s.type == "data" and is_mov_family(muxer) and s.timecode:
            continue   # a timecode track: the muxer writes it again from the video's timecode tag
        what = "cover art" if s.attached_pic else f"{s.type} stream"
        if s.attached_pic:
            why = f"a {muxer} file cannot hold cover art (MP4 and Matroska can)"
        elif s.type == "data" and is_mov_family(muxer):
            why = (f"{muxer} data tracks cannot be copied (a chapter track is written again from the "
                   "source's chapters, a timecode track from its timecode)")
        else:
            why = f"a {muxer} file cannot hold {s.type} streams"
        notes.append(f"stream {s.index} ({what}, {s.codec or 'unknown codec'}) is not copied into the output: {why}")
    return notes


def uses_free_tags(info: MediaInfo, muxer: str) -> bool:
    """True if the output's tags are written free-form (our farm_* keys).

    Not for an MP4 that keeps cover art: the picture lives in the iTunes tag list, and
    ffmpeg writes either that list or free-form tags, never both; such an output carries
    its label in the iTunes `comment` and `description` tags only.
    """
    if not keeps_free_tags(muxer):
        return False
    return not (is_mov_family(muxer) and any(s.attached_pic and keeps_stream(s, muxer) for s in info.streams
                                             if s.index != info.video.index))


def output_video_index(info: MediaInfo, muxer: str) -> int:
    """Index of the processed video among the output's streams (the source's order, less
    the streams not kept)."""
    kept = [s.index for s in info.streams if s.index == info.video.index or keeps_stream(s, muxer)]
    return kept.index(info.video.index)


def concat_video(chunk_paths: Sequence[str | os.PathLike[str]], out_path: Path,
                 info: MediaInfo, muxer: str | None = None) -> tuple[str, int]:
    """Concatenate the chunks' video packets into one intermediate file.

    Returns (codec name, time base denominator of the file written). Each chunk keeps
    its pts; a dts that does not rise across a seam (possible with variable frame rate
    and B-frames) is moved up by one tick, which is always <= its pts with a fine time
    base. muxer: the file's container (default: the codec's intermediate muxer). The
    stream declares the source's average frame rate where the container keeps one
    (Matroska's DefaultDuration), not the rate the chunks' headers give (x264 writes
    its time base's tick there: 1000 fps for a 1 ms source).
    """
    with open_read(chunk_paths[0]) as c0:
        template = c0.streams.video[0]
        tb, codec = template.time_base, template.codec_context.codec.canonical_name
        headers = template.codec_context.extradata
        sink = open_write(out_path, codec, tb.denominator, info.video.colour.range, muxer)
        stream = sink.add_stream_from_template(template)
        stream.time_base = tb
        if info.video.fps:
            stream.codec_context.framerate = info.video.fps
    prev_dts: int | None = None
    try:
        if info.video.display_matrix:
            stream.set_display_matrix(info.video.display_matrix)
        for n, path in enumerate(chunk_paths):
            with open_read(path) as src:
                vs = src.streams.video[0]
                name = vs.codec_context.codec.canonical_name
                if vs.time_base != tb or name != codec:
                    raise MediaError(f"chunk {n} is {name} at {vs.time_base}, chunk 0 {codec} at {tb}")
                if vs.codec_context.extradata != headers:
                    raise MediaError(f"chunk {n} was encoded with other codec headers than chunk 0")
                for pkt in src.demux(vs):
                    if pkt.size == 0:
                        continue
                    if pkt.dts is not None and prev_dts is not None and pkt.dts <= prev_dts:
                        pkt.dts = prev_dts + 1
                        if pkt.pts is not None and pkt.dts > pkt.pts:
                            raise MediaError(f"chunk {n}: no room for a rising dts at pts {pkt.pts}")
                    prev_dts = pkt.dts
                    pkt.stream = stream
                    sink.mux(pkt)
        written = stream.time_base   # the muxer's own (Matroska: 1 ms)
        sink.close()
    except av.FFmpegError as exc:
        raise MediaError(f"joining chunks failed: {exc}") from None
    finally:
        try:
            sink.close()
        except av.FFmpegError:
            pass
    return codec, written.denominator

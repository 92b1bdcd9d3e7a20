"""Join chunk outputs into the final video, without re-encoding anything.

Two steps:
1. PyAV concatenates the chunks' video packets into one intermediate MP4 (exact pts:
   each chunk already carries the source's; dts are made strictly increasing across
   seams) and sets the source's display matrix (rotation, flips).
2. ffmpeg (stream copy, -copyts) writes the output in the source's container: that
   video plus every audio, subtitle, attachment (and data, where the container allows)
   stream of the source, its container and stream tags, chapters, and our tags.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path
from typing import Mapping, Sequence

import av

from farm.errors import MediaError
from farm.media.ffmpeg import FinalizeSpec, ffmpeg_exe, finalize_argv, run_ffmpeg
from farm.media.formats import is_mov_family, keeps_data_streams, output_muxer, sniff_demuxer
from farm.media.intermediate import open_read, open_write, temp_path_for
from farm.media.probe import MediaInfo, StreamInfo

_TAG_KEY = re.compile(r"[A-Za-z0-9_.\-]+")


def join_chunks(chunk_paths: Sequence[str | os.PathLike[str]], source: str | os.PathLike[str],
                info: MediaInfo, out_path: str | os.PathLike[str], metadata: Mapping[str, str]) -> None:
    """Write out_path: the chunks' video + the source's other streams and metadata."""
    if not chunk_paths:
        raise MediaError("nothing to join: no chunk outputs")
    out = Path(out_path)
    video_tmp = temp_path_for(out.with_name(out.name + ".video"))
    try:
        codec, timescale = concat_video(chunk_paths, video_tmp, info)
        spec = finalize_spec(info, Path(source), video_tmp, out, metadata, timescale, codec,
                             sniff_demuxer(video_tmp))
        run_ffmpeg(finalize_argv(ffmpeg_exe(), spec), what=f"write {out.name}")
    finally:
        video_tmp.unlink(missing_ok=True)


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
        video_time_base=f"{tb.numerator}/{tb.denominator}" if timescale and tb != Fraction(1, timescale) else None,
    )


def muxer_for(info: MediaInfo, video_codec: str) -> str:
    """The muxer of the output: the source's kind of container (see formats.output_muxer)."""
    codecs = {video_codec} | {s.codec for s in info.streams if s.codec and s.index != info.video.index}
    return output_muxer(info.demuxer, info.tags.get("major_brand"), info.path.suffix, codecs)


def keeps_stream(s: StreamInfo, muxer: str) -> bool:
    """True if a non-main source stream is copied into an output written by `muxer`."""
    if s.type in ("audio", "subtitle", "attachment"):
        return True
    if s.type == "video":
        # cover art, except in MP4/MOV: there it lives in the iTunes tag list, which
        # our free-form tags (use_metadata_tags) replace. Other video tracks are not
        # processed, so they are not copied either.
        return s.attached_pic and not is_mov_family(muxer)
    if s.type == "data":
        return keeps_data_streams(muxer)
    return False


def concat_video(chunk_paths: Sequence[str | os.PathLike[str]], out_path: Path,
                 info: MediaInfo) -> tuple[str, int]:
    """Concatenate the chunks' video packets into one intermediate file.

    Returns (codec name, time base denominator). Each chunk keeps its pts; a dts that
    does not rise across a seam (possible with variable frame rate and B-frames) is
    moved up by one tick, which is always <= its pts with a fine time base.
    """
    with open_read(chunk_paths[0]) as c0:
        template = c0.streams.video[0]
        tb, codec = template.time_base, template.codec_context.codec.canonical_name
        headers = template.codec_context.extradata
        sink = open_write(out_path, codec, tb.denominator, info.video.colour.range)
        stream = sink.add_stream_from_template(template)
        stream.time_base = tb
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
        sink.close()
    except av.FFmpegError as exc:
        raise MediaError(f"joining chunks failed: {exc}") from None
    finally:
        try:
            sink.close()
        except av.FFmpegError:
            pass
    return codec, tb.denominator

"""Split the source's video stream into chunk input segments by stream copy.

One pass over the source's video packets; each packet goes into every segment whose
decode-order range holds it (segments overlap by their pre-/post-roll). Segments are
written as MP4 with the source's time base as track timescale, so each packet keeps
its exact pts and dts (see farm.media.formats.INTERMEDIATE_MUXER), to a temporary
name in the output folder, then renamed: re-running overwrites atomically.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Sequence

import av
from av.stream import Discard

from farm.errors import MediaError, UnavailableError
from farm.media.ffmpeg import file_url
from farm.media.formats import SAFE_INPUT_OPTIONS
from farm.media.intermediate import chunk_file_name, open_write, temp_path_for
from farm.media.media_info import MediaInfo
from farm.media.plan import ChunkPlan


def split_chunks(source: str | os.PathLike[str], info: MediaInfo, plans: Sequence[ChunkPlan],
                 out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write one segment file per plan into out_dir; return their paths in plan order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    finals = [out / chunk_file_name(plan.index, info.video.codec) for plan in plans]
    temps = [temp_path_for(f) for f in finals]
    by_start = sorted(range(len(plans)), key=lambda n: plans[n].seg_first_packet)
    open_outputs: dict[int, tuple[av.container.OutputContainer, av.stream.Stream]] = {}
    try:
        with av.open(file_url(source), format=info.demuxer, container_options=dict(SAFE_INPUT_OPTIONS)) as src:
            vstream = src.streams[info.video.index]
            for s in src.streams:
                if s.index != vstream.index:
                    s.discard = Discard.all
            nxt = 0
            idx = 0
            for pkt in src.demux(vstream):
                if pkt.size == 0:
                    continue
                if info.pts_from_dts:
                    pkt.pts = pkt.dts
                _check_packet(info, idx, pkt)
                while nxt < len(by_start) and plans[by_start[nxt]].seg_first_packet == idx:
                    n = by_start[nxt]
                    open_outputs[n] = _open_segment(temps[n], vstream, info)
                    nxt += 1
                for n in list(open_outputs):
                    container, stream = open_outputs[n]
                    pkt.stream = stream
                    container.mux(pkt)
                    if idx + 1 >= plans[n].seg_end_packet:
                        container.close()
                        del open_outputs[n]
                idx += 1
            if idx != len(info.packets) or open_outputs or nxt < len(by_start):
                raise MediaError(
                    f"{source}: read {idx} video packets, probe saw {len(info.packets)}; "
                    "the source changed since it was probed"
                )
        for tmp, final in zip(temps, finals):
            os.replace(tmp, final)
    except (av.FFmpegError, OSError) as exc:
        if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
            raise UnavailableError(f"splitting {source} into chunks: no space left on the storage {out}; "
                                   "nothing was stored and no job was created",
                                   hint="free space on the storage, then submit the video again") from None
        raise MediaError(f"splitting {source} failed: {exc}") from None
    finally:
        for container, _ in open_outputs.values():
            try:
                container.close()
            except av.FFmpegError:
                pass
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    return finals


def _check_packet(info: MediaInfo, idx: int, pkt: av.Packet) -> None:
    if idx >= len(info.packets) or info.packets[idx].pts != pkt.pts:
        raise MediaError(
            f"{info.path}: video packet {idx} differs from the probe; the source changed since it was probed"
        )


def _open_segment(tmp: Path, vstream: av.video.stream.VideoStream,
                  info: MediaInfo) -> tuple[av.container.OutputContainer, av.stream.Stream]:
    container = open_write(tmp, info.video.codec, info.video.time_base.denominator, info.video.colour.range)
    stream = container.add_stream_from_template(vstream, opaque=True)  # works for decoder-only codecs (libdav1d)
    stream.time_base = vstream.time_base
    return container, stream

"""Chunk inputs read by range from the job's ingested source, instead of split copies.

Where the container has an index to seek by (MP4/MOV) and every video packet has a decode
timestamp, strictly rising, a chunk's input segment is not copied at submit: the worker
opens the ingested source, seeks to the segment's first packet (a keyframe) and feeds the
decoder exactly the packets a split segment would hold (the same bytes, in the same order,
to a fresh decoder: the same frames, bit for bit). The packet is found by its timestamps,
never by the seek's word alone: packets before it are skipped, and a seek that lands past
it is taken back to the start of the file. Other containers (and sources with packets to
discard, edit lists) are split as before (farm.media.split).
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence

import av
import numpy as np

from farm.errors import MediaError
from farm.media.media_info import MediaInfo, PacketInfo, PacketTable, packet_columns
from farm.media.plan import ChunkPlan

#: Demuxers whose seeks go by an index of every sample (exact, cheap).
RANGE_DEMUXERS = ("mov",)


def _dts(packets: Sequence[PacketInfo]) -> np.ndarray:
    """Every packet's dts (int64, decode order); PacketTable.NO_DTS where there is none."""
    if isinstance(packets, PacketTable):
        return np.frombuffer(packets._dts, np.int64)
    return np.array([PacketTable.NO_DTS if p.dts is None else p.dts for p in packets], np.int64)


def reads_in_place(info: MediaInfo) -> bool:
    """True if chunks of this source can read their segments from it by range."""
    if info.demuxer not in RANGE_DEMUXERS or info.pts_from_dts or not len(info.packets):
        return False
    dts = _dts(info.packets)
    columns = packet_columns(info.packets)
    return bool(not columns.is_discard.any() and (dts != PacketTable.NO_DTS).all() and (np.diff(dts) > 0).all())


def source_ranges(info: MediaInfo, plans: Sequence[ChunkPlan]) -> list[ChunkPlan]:
    """The plans, each naming the source range of its segment (ChunkPlan.source_stream,
    seg_first_pts, seg_first_dts); for a source reads_in_place accepts."""
    pts, dts = packet_columns(info.packets).pts, _dts(info.packets)
    return [dataclasses.replace(p, source_stream=info.video.index, seg_first_pts=int(pts[p.seg_first_packet]),
                                seg_first_dts=int(dts[p.seg_first_packet])) for p in plans]


def range_packets(src: av.container.InputContainer, plan: ChunkPlan) -> Iterator[av.Packet]:
    """The video packets of the plan's segment, read from the source `src` (opened, nothing read yet)."""
    stream = src.streams[plan.source_stream]
    for other in src.streams:
        if other.index != stream.index:
            other.discard = av.stream.Discard.all
    want = plan.seg_end_packet - plan.seg_first_packet
    first = (plan.seg_first_pts, plan.seg_first_dts)
    if plan.seg_first_packet > 0:
        src.seek(plan.seg_first_dts, backward=True, any_frame=False, stream=stream)
    sent = 0
    for pkt in _from(src, stream, first, plan.seg_first_packet > 0):
        yield pkt
        sent += 1
        if sent == want:
            return
    raise MediaError(f"{src.name}: the source ends {want - sent} packets before chunk {plan.index}'s segment does; "
                     "it changed since it was probed")


def _from(src: av.container.InputContainer, stream: av.stream.Stream, first: tuple[int | None, int | None],
          sought: bool) -> Iterator[av.Packet]:
    """Non-empty packets of `stream` from the one with timestamps `first` on; a seek that went
    past it (`sought`) starts again from the file's beginning."""
    found = False
    for pkt in src.demux(stream):
        if pkt.size == 0:
            continue
        if not found:
            if (pkt.pts, pkt.dts) == first:
                found = True
            elif sought and pkt.dts is not None and pkt.dts > first[1]:
                src.seek(0, backward=True, any_frame=False, stream=stream)
                yield from _from(src, stream, first, False)
                return
            else:
                continue
        yield pkt
    if not found:
        raise MediaError(f"{src.name}: no packet at pts {first[0]}, dts {first[1]}; "
                         "the source changed since it was probed")

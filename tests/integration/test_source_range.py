"""Chunk segments read by range from the source (farm.media.source_range) decode to exactly the
frames of the split copies they replace: same pts, same pixels, for GOP-aligned and mid-GOP
chunks, B-frames, open GOPs (HEVC), variable frame rate and warm/tail context frames; a seek
that lands past the segment's first packet is taken back; other containers are still split."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import av
import pytest

from farm.errors import MediaError
from farm.media.decode import iter_chunk_frames
from farm.media.intermediate import open_read
from farm.media.plan import plan_chunks
from farm.media.probe import probe
from farm.media.source_range import _from, reads_in_place, source_ranges
from farm.media.split import split_chunks
from tests.clips import make_clip


def frames_of(path: Path, plan) -> list[tuple[int, str]]:
    return [(f.pts, f.time_base, hashlib.sha256(f.to_ndarray().tobytes()).hexdigest())
            for f in iter_chunk_frames(path, plan)]


CASES = {
    "gop-aligned, B-frames": dict(gop=12, bframes=2, seconds=1.5, chunk=12),
    "mid-GOP chunks": dict(gop=30, bframes=2, seconds=2.0, chunk=7),
    "variable frame rate": dict(gop=10, vfr=True, seconds=2.0, chunk=9),
    "open GOP (HEVC)": dict(gop=12, codec="libx265", seconds=1.5, chunk=10),
}


@pytest.mark.parametrize("case", CASES)
def test_range_reads_decode_the_frames_of_the_split_copies(tmp_path, case):
    opts = dict(CASES[case])
    chunk = opts.pop("chunk")
    src = make_clip(tmp_path / "src.mp4", audio_tracks=1, **opts)
    info = probe(src)
    assert reads_in_place(info)
    for warm, tail in ((0, 0), (5, 3)):
        plans = plan_chunks(info, chunk, warm, tail)
        assert len(plans) >= 2
        segments = split_chunks(src, info, plans, tmp_path / f"in{warm}")
        for plan, ranged, segment in zip(plans, source_ranges(info, plans), segments):
            assert ranged.source_stream == info.video.index and ranged.seg_first_packet == plan.seg_first_packet
            want = frames_of(segment, plan)
            assert want and frames_of(src, ranged) == want, (case, plan.index, warm)


def test_a_seek_past_the_segment_start_is_taken_back(tmp_path):
    src = make_clip(tmp_path / "src.mp4", gop=10, seconds=2.0)
    info = probe(src)
    first = info.packets[10]
    with open_read(src) as container:
        stream = container.streams.video[0]
        container.seek(info.packets[40].dts, backward=True, any_frame=False, stream=stream)   # well past it
        got = [(p.pts, p.dts) for p, _ in zip(_from(container, stream, (first.pts, first.dts), True), range(3))]
    assert got == [(q.pts, q.dts) for q in info.packets[10:13]]


def test_a_segment_the_source_no_longer_holds_is_an_error(tmp_path):
    src = make_clip(tmp_path / "src.mp4", gop=10, seconds=1.0)
    info = probe(src)
    plan = source_ranges(info, plan_chunks(info, 10))[1]
    gone = dataclasses.replace(plan, seg_first_pts=plan.seg_first_pts + 1)
    with pytest.raises(MediaError, match="changed since it was probed"):
        list(iter_chunk_frames(src, gone))


@pytest.mark.parametrize("suffix", [".mkv", ".ts"])
def test_other_containers_are_split(tmp_path, suffix):
    mp4 = make_clip(tmp_path / "src.mp4", gop=10, seconds=1.0)
    other = tmp_path / f"src{suffix}"
    with av.open(str(mp4)) as inp, av.open(str(other), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for pkt in inp.demux(inp.streams.video[0]):
            if pkt.size:
                pkt.stream = stream
                out.mux(pkt)
    assert not reads_in_place(probe(other))

"""plan_packets on constructed packet lists: exact partition, bounded chunks, safe segments."""

from __future__ import annotations

from fractions import Fraction

import pytest

from farm.media.media_info import PacketInfo
from farm.media.plan import ChunkPlan, default_chunk_frames, plan_packets
from farm.state import records


def cfr_ibp(n: int, gop: int, bframes: int = 0, tick: int = 512, open_gop: bool = False) -> list[PacketInfo]:
    """Decode-order packets of n frames: a keyframe every `gop` frames, runs of `bframes`
    B-frames between references (closed GOP unless open_gop: then each GOP's first
    B-frames are leading pictures decoded after the keyframe but shown before it)."""
    display = list(range(n))
    order: list[int] = []
    pending: list[int] = []
    for f in display:
        if f % gop == 0 or len(pending) == bframes or f == n - 1:
            if f % gop == 0 and pending and not open_gop:
                order.extend(pending)   # closed GOP: flush the Bs before the new keyframe
                pending = []
            order.append(f)
            order.extend(pending)
            pending = []
        else:
            pending.append(f)
    order.extend(pending)
    assert sorted(order) == display
    delay = bframes
    return [
        PacketInfo(pts=f * tick, dts=(k - delay) * tick, is_keyframe=f % gop == 0, duration=tick)
        for k, f in enumerate(order)
    ]


def check_plans(packets: list[PacketInfo], plans: list[ChunkPlan], chunk_frames: int) -> None:
    """The plans partition the shown frames in presentation order, each chunk is bounded,
    and each chunk's segment starts on a keyframe and holds all of the chunk's packets."""
    shown = sorted(p.pts for p in packets if not p.is_discard)
    assert sum(p.frame_count for p in plans) == len(shown)
    first = 0
    for n, plan in enumerate(plans):
        assert plan.index == n
        assert plan.first_frame == first
        assert 1 <= plan.frame_count <= chunk_frames
        members = [pts for pts in shown if plan.selects(pts)]
        assert members == shown[first:first + plan.frame_count]
        assert plan.start_pts == members[0]
        assert plan.end_pts == (shown[first + plan.frame_count] if n < len(plans) - 1 else None)
        assert packets[plan.seg_first_packet].is_keyframe
        decode_idx = [i for i, p in enumerate(packets) if plan.selects(p.pts) and not p.is_discard]
        assert plan.seg_first_packet <= min(decode_idx) and max(decode_idx) < plan.seg_end_packet
        assert plan.seg_end_packet == max(decode_idx) + 1
        # no frame of the chunk is a leading picture of the segment's first keyframe
        assert packets[plan.seg_first_packet].pts <= plan.start_pts
        first += plan.frame_count
    assert first == len(shown)


def test_regular_gop_cuts_at_keyframes() -> None:
    # Given 90 frames with a keyframe every 15 and no B-frames
    packets = cfr_ibp(90, gop=15)
    # When planned in chunks of at most 20 frames
    plans = plan_packets(packets, 20)
    # Then every chunk starts on a keyframe, with no pre-roll
    check_plans(packets, plans, 20)
    assert [p.frame_count for p in plans] == [15] * 6
    assert all(p.seg_first_packet == p.first_frame for p in plans)


def test_single_keyframe_is_still_bounded() -> None:
    # Given 100 frames with B-frames and one keyframe for the whole clip
    packets = cfr_ibp(100, gop=10**6, bframes=2)
    # When planned in chunks of 30
    plans = plan_packets(packets, 30)
    # Then chunks are cut mid-GOP, bounded, and every segment starts at the only keyframe
    check_plans(packets, plans, 30)
    assert [p.frame_count for p in plans] == [30, 30, 30, 10]
    assert all(p.seg_first_packet == 0 for p in plans)


@pytest.mark.parametrize("open_gop", [False, True])
@pytest.mark.parametrize("chunk_frames", [7, 12, 25, 1000])
def test_b_frames_partition_exactly(open_gop: bool, chunk_frames: int) -> None:
    # Given B-frames (open or closed GOP) and chunk sizes that do and do not fit the GOP
    packets = cfr_ibp(97, gop=12, bframes=3, open_gop=open_gop)
    # When planned
    plans = plan_packets(packets, chunk_frames)
    # Then the frames are partitioned exactly and segments hold what the chunk needs
    check_plans(packets, plans, chunk_frames)


def test_open_gop_leading_pictures_get_preroll_and_postroll() -> None:
    # Given an open GOP: the B-frames shown just before keyframe 12 are decoded after it
    packets = cfr_ibp(48, gop=12, bframes=2, open_gop=True)
    plans = plan_packets(packets, 12)
    check_plans(packets, plans, 12)
    key_idx = [i for i, p in enumerate(packets) if p.is_keyframe]
    # Then the chunk cut at keyframe 12 (display) ends after its leading pictures
    # (post-roll past the next keyframe in decode order) ...
    first_chunk = plans[0]
    assert first_chunk.end_pts == 12 * 512
    assert first_chunk.seg_end_packet > key_idx[1]
    # ... and a chunk starting mid-GOP on a leading picture reaches back one GOP (pre-roll)
    mid = plan_packets(packets, 11)
    check_plans(packets, mid, 11)
    assert mid[1].start_pts == 11 * 512          # a leading picture of keyframe 12
    assert mid[1].seg_first_packet == key_idx[0]  # so the segment starts one GOP earlier


def test_vfr_timestamps() -> None:
    # Given variable frame durations (1, 1, 2 ticks repeating) and a keyframe every 10 frames
    pts = [4 * (k // 3) + (k % 3) for k in range(50)]
    packets = [PacketInfo(pts=t * 1000, dts=t * 1000, is_keyframe=k % 10 == 0, duration=1000)
               for k, t in enumerate(pts)]
    plans = plan_packets(packets, 16, Fraction(1, 30000))
    # Then the partition follows the irregular timestamps exactly
    check_plans(packets, plans, 16)
    assert all(p.time_base == Fraction(1, 30000) for p in plans)


def test_discarded_packets_are_decoded_but_not_counted() -> None:
    # Given an edit list that hides the first two decoded frames
    packets = cfr_ibp(30, gop=10, bframes=1)
    packets = [p._replace(is_discard=p.pts < 2 * 512) for p in packets]
    plans = plan_packets(packets, 10)
    check_plans(packets, plans, 10)
    assert sum(p.frame_count for p in plans) == 28
    assert plans[0].seg_first_packet == 0


def test_bad_chunk_size_is_refused() -> None:
    with pytest.raises(ValueError):
        plan_packets(cfr_ibp(10, gop=5), 0)


def test_default_chunk_frames() -> None:
    assert default_chunk_frames(Fraction(30000, 1001), 10) == 300
    assert default_chunk_frames(25, 0.01) == 1


def test_plan_round_trips_through_json() -> None:
    import json

    plan = plan_packets(cfr_ibp(30, gop=10), 10, Fraction(1001, 30000))[1]
    assert records.load(ChunkPlan, json.loads(json.dumps(records.dump(plan)))) == plan

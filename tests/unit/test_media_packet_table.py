"""The probe's column-wise packet list (farm.media.media_info.PacketTable): it reads back
as the PacketInfo it was given, and planning on it gives the plans a tuple gives."""

from __future__ import annotations

import pytest

from farm.media.media_info import PacketInfo, PacketTable, shown_in_order
from farm.media.plan import plan_packets


def open_gop_packets(frames: int, gop: int = 12) -> list[PacketInfo]:
    """Decode-order packets of an IBBP stream: a B pair decoded after the P it precedes,
    some leading B frames of open GOPs, an edit-list discard at the start, no dts once."""
    out: list[PacketInfo] = []
    n = 0
    while n < frames:
        out.append(PacketInfo(n * 512, n * 512 - 1024, n % gop == 0, 512, n == 0))
        if n + 3 <= frames:
            out.append(PacketInfo((n + 3) * 512, n * 512 - 512, False, 512))
            out.append(PacketInfo((n + 1) * 512, n * 512, False, 512))
            out.append(PacketInfo((n + 2) * 512, None if n == 4 else n * 512 + 1, False, 512))
            n += 4
        else:
            n += 1
    return out


def test_a_table_reads_back_as_its_packets():
    given = open_gop_packets(100)
    table = PacketTable(given)
    assert len(table) == len(given) and list(table) == given and table == given
    assert table[3] == given[3] and table[-1] == given[-1] and table[2:5] == given[2:5]
    assert any(p.dts is None for p in table) and table[0].is_discard
    with pytest.raises(IndexError):
        table[len(given)]
    pts, durations = shown_in_order(table)
    assert pts.tolist() == sorted(p.pts for p in given if not p.is_discard) and set(durations.tolist()) == {512}


@pytest.mark.parametrize("warm, tail", [(0, 0), (15, 2)])
def test_plans_on_a_table_equal_plans_on_a_tuple(warm, tail):
    given = open_gop_packets(600)
    assert plan_packets(PacketTable(given), 50, warm_frames=warm, tail_frames=tail) == \
        plan_packets(tuple(given), 50, warm_frames=warm, tail_frames=tail)

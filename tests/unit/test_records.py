"""Stored chunk plans and encoder settings round-trip exactly through JSON."""

import json
from fractions import Fraction

import pytest

from farm.media.chunk_codec import EncoderSettings
from farm.media.colour import Colour
from farm.media.plan import ChunkPlan
from farm.state import records


def test_chunk_plan_round_trips_through_json():
    plan = ChunkPlan(index=2, first_frame=30, frame_count=15, start_pts=15360, end_pts=None,
                     seg_first_packet=10, seg_end_packet=60, time_base=Fraction(1, 15360))
    assert records.load(ChunkPlan, json.loads(json.dumps(records.dump(plan)))) == plan


def test_encoder_settings_round_trip_with_nested_colour():
    enc = EncoderSettings(codec="libx265", preset="fast", crf=20, pix_fmt="yuv420p10le",
                          options={"x265-params": "hdr10=1"}, colour=Colour(9, 16, 9, 1), fps=Fraction(30000, 1001))
    assert records.load(EncoderSettings, json.loads(json.dumps(records.dump(enc)))) == enc


def test_unknown_fields_are_refused():
    with pytest.raises(ValueError, match="unknown fields"):
        records.load(Colour, {"primaries": 1, "bogus": 2})

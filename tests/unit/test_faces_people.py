"""Grouping faces into people (farm.faces.people) and the survey's sampling plan
(farm.jobs.faces_survey): pure functions on synthetic embeddings and packet lists."""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest

from farm.errors import InputError
from farm.faces.people import Sample, Sighting, group_sightings, summarise
from farm.jobs import faces_survey
from farm.media.media_info import PacketInfo

RNG = np.random.default_rng(7)


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def around(base: np.ndarray, noise: float = 0.15) -> np.ndarray:
    """A raw embedding near `base` (scaled, as raw ArcFace outputs are not unit length)."""
    return (unit(base + noise * RNG.standard_normal(base.shape)) * RNG.uniform(15, 25)).astype(np.float32)


def sighting(sample: int, embedding, x: float = 0.0, size: float = 50.0) -> Sighting:
    return Sighting(sample, sample * 10, (x, 0.0, x + size, size), 0.9, np.asarray(embedding, np.float32))


def test_two_people_seen_in_turns_and_together_are_two_groups_every_time():
    a, b = RNG.standard_normal(512), RNG.standard_normal(512)   # two random directions: nearly orthogonal
    seen = []
    for n in range(12):
        if n % 3 != 2:
            seen.append(sighting(n, around(a)))
        if n >= 4:
            seen.append(sighting(n, around(b), x=100))
    groups = group_sightings(seen, 0.5)
    assert len(groups) == 2
    assert {tuple(g) for g in groups} == {tuple(i for i, s in enumerate(seen) if s.box[0] == x) for x in (0, 100)}
    assert group_sightings(seen, 0.5) == groups   # deterministic


def test_two_faces_in_one_frame_are_never_one_person():
    same = around(RNG.standard_normal(512), 0.0)
    seen = [sighting(0, same), sighting(0, same, x=100), sighting(1, same)]
    groups = group_sightings(seen, 0.0)
    assert sorted(len(g) for g in groups) == [1, 2]
    assert all(len({seen[i].sample for i in g}) == len(g) for g in groups)


def test_the_threshold_decides_whether_two_like_faces_are_one_person():
    # Given two faces whose directions are 0.6 alike, seen at different times
    a = np.zeros(512)
    a[0] = 1.0
    b = np.zeros(512)
    b[0], b[1] = 0.6, 0.8
    seen = [sighting(n, around(a, 0.001)) for n in range(5)] + [sighting(n, around(b, 0.001)) for n in range(5, 10)]
    # Then a threshold under 0.6 makes them one person, one above it two
    assert len(group_sightings(seen, 0.5)) == 1
    assert len(group_sightings(seen, 0.7)) == 2
    with pytest.raises(ValueError):
        group_sightings(seen, 1.5)


def test_people_split_by_the_order_faces_came_in_are_merged():
    # e1, then e2 (0.4 alike: a new person), then their mean (joins the first): the first
    # person's mean is now 0.645 alike to the second, who never shares a frame with them
    e1, e2 = np.zeros(512), np.zeros(512)
    e1[0] = 1.0
    e2[0], e2[1] = 0.4, np.sqrt(1 - 0.16)
    seen = [sighting(0, e1), sighting(1, e2), sighting(2, unit(e1 + e2))]
    assert group_sightings(seen, 0.5) == [[0, 1, 2]]


def test_a_summary_numbers_people_by_time_on_screen_with_their_frame_ranges():
    # 10 fps, a 6 s video sampled every second: samples stand for 10 frames each
    samples = [Sample(10 * n, float(n), 10 * n + 10, float(n + 1)) for n in range(6)]
    a, b = RNG.standard_normal(512), RNG.standard_normal(512)
    seen = [sighting(n, around(b), x=100) for n in (3, 4)] + [sighting(n, around(a)) for n in (0, 1, 2, 4)]
    seen.sort(key=lambda s: s.sample)
    people = summarise(seen, samples, group_sightings(seen, 0.5))
    first, second = people
    assert (first.number, first.name, first.seconds, first.first_s) == (1, "person-1", 4.0, 0.0)
    assert first.ranges == [(0, 30), (40, 50)] and all(s.box[0] == 0 for s in first.sightings)
    assert (second.number, second.seconds, second.first_s, second.ranges) == (2, 2.0, 3.0, [(30, 50)])
    # the mean embedding is the mean of the raw embeddings, as compute_identity averages sources
    np.testing.assert_allclose(first.embedding, np.mean([s.embedding for s in first.sightings], axis=0), rtol=1e-5)
    best = first.best()
    sims = [float(unit(s.embedding) @ unit(first.embedding)) for s in first.sightings]
    assert best is first.sightings[int(np.argmax(sims))]
    assert [s.sample for s in first.spread(3)] == [0, 2, 4] and len(first.spread(10)) == 4


def fake_info(frames: int, fps: int = 10, gop: int = 10) -> SimpleNamespace:
    """What the sampling reads of a probed video: packets in decode order (no B-frames)."""
    packets = tuple(PacketInfo(pts=k, dts=k, is_keyframe=k % gop == 0, duration=1) for k in range(frames))
    video = SimpleNamespace(first_pts=0, time_base=Fraction(1, fps), duration_s=frames / fps)
    return SimpleNamespace(packets=packets, video=video, frame_pts=list(range(frames)))


def test_samples_are_the_frames_on_screen_every_few_seconds_each_standing_for_the_next():
    info = fake_info(60)   # 6 s at 10 fps
    samples = faces_survey.sample_frames(info, 1.5)
    assert [s.frame for s in samples] == [0, 15, 30, 45]
    assert [(s.until, s.until_s) for s in samples] == [(15, 1.5), (30, 3.0), (45, 4.5), (60, 6.0)]
    assert sum(s.span_s for s in samples) == pytest.approx(6.0)
    assert [s.frame for s in faces_survey.sample_frames(info, 0.01)] == list(range(60))   # each frame once


def test_the_step_is_widened_for_long_videos_and_a_given_one_is_checked():
    assert faces_survey.choose_every(60.0, None) == faces_survey.DEFAULT_EVERY_S
    assert faces_survey.choose_every(7200.0, None) * faces_survey.MAX_SAMPLES >= 7200.0
    assert faces_survey.choose_every(60.0, 0.25) == 0.25
    with pytest.raises(InputError, match="--every 1 samples more than 3600 frames"):
        faces_survey.choose_every(7200.0, 1.0)


def test_samples_whose_segments_overlap_are_decoded_from_one_segment(monkeypatch):
    info = fake_info(60)   # a keyframe every 10 frames
    groups = faces_survey._group_plans(info, [0, 5, 15, 35])
    assert [members for _, members in groups] == [[0, 5], [15], [35]]
    plan = groups[0][0]
    assert (plan.first_frame, plan.frame_count, plan.seg_first_packet, plan.seg_end_packet) == (0, 6, 0, 6)
    assert (plan.start_pts, plan.end_pts) == (0, 6) and [p.index for p, _ in groups] == [0, 1, 2]
    assert groups[1][0].seg_first_packet == 10   # from its own keyframe
    # a group is cut where its segment would pass PASS_PACKETS
    monkeypatch.setattr(faces_survey, "PASS_PACKETS", 3)
    assert [members for _, members in faces_survey._group_plans(info, [0, 2, 5])] == [[0, 2], [5]]


def test_survey_options_are_checked_by_the_table_s_converter():
    given = faces_survey.check_survey_options({"every": 2, "threshold": 0.7, "min_score": 0.4}, "x", cli=True)
    assert given == {"every": 2.0, "threshold": 0.7, "min_score": 0.4}
    with pytest.raises(InputError, match="--threshold must be 0..1"):
        faces_survey.check_survey_options({"threshold": 1.5}, "the command line", cli=True)
    with pytest.raises(InputError, match="every must be"):
        faces_survey.check_survey_options({"every": "0"}, "the query", cli=False, text=True)
    with pytest.raises(InputError, match="unknown option 'crf'"):
        faces_survey.check_survey_options({"crf": 18}, "the query", cli=False)

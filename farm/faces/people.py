"""Who is in a video: faces seen in sampled frames grouped into people by their embeddings.

Pure numpy, deterministic (the same sightings in the same order give the same people).
`group_sightings` is a greedy pass in time order followed by merging:

1. each sampled frame's faces are matched to the people found so far, most similar pair
   first, each person at most once per frame (two faces in one frame are two people); a
   face joins a person when the cosine similarity of its embedding to the person's mean
   embedding (raw recogniser space, normalised) is at least `threshold`, else it starts a
   new person;
2. two people whose mean embeddings are at least `threshold` alike and who never share a
   frame are merged, most similar pair first, until no pair is left.

`summarise` turns the groups into Person records: the mean raw embedding, the frame
ranges and the time on screen (each sample stands for the frames up to the next sample).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

DEFAULT_THRESHOLD = 0.5
"""Least cosine similarity of a face to a person's mean face (ArcFace w600k: the same
person is mostly above 0.5, two people mostly below 0.3)."""


@dataclass
class Sighting:
    """One face in one sampled frame. sample: index into the survey's samples; frame: the
    frame index (0-based, presentation order); box: x0, y0, x1, y1 in frame px; embedding:
    raw recogniser output (float32 [D]); crop: the face and some margin, PNG bytes."""

    sample: int
    frame: int
    box: tuple[float, float, float, float]
    score: float
    embedding: np.ndarray
    crop: bytes = b""

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


@dataclass(frozen=True)
class Sample:
    """One sampled frame: its index, its time (s from the first frame) and the frames it
    stands for, [frame, until) (up to the next sample, or the end of the video)."""

    frame: int
    time_s: float
    until: int
    until_s: float

    @property
    def span_s(self) -> float:
        """Seconds of video this sample stands for."""
        return max(0.0, self.until_s - self.time_s)


@dataclass
class Person:
    """One identity. number: 1 = most time on screen; embedding: mean raw embedding of every
    sighting (float32 [D], the space compute_identity averages in); ranges: [first, end)
    frame ranges (end exclusive) of consecutive samples showing the person; seconds: time
    on screen, estimated at the sampling step."""

    number: int
    sightings: list[Sighting]
    embedding: np.ndarray
    ranges: list[tuple[int, int]] = field(default_factory=list)
    seconds: float = 0.0
    first_s: float = 0.0

    @property
    def name(self) -> str:
        return f"person-{self.number}"

    def best(self) -> Sighting:
        """The sighting most like the person's mean face, the larger one on a tie: the
        reference crop."""
        mean = _unit(self.embedding)
        return max(self.sightings, key=lambda s: (round(float(_unit(s.embedding) @ mean), 6), s.area, -s.sample))

    def spread(self, count: int) -> list[Sighting]:
        """At most `count` sightings spread evenly over the person's time on screen."""
        seen = self.sightings
        if len(seen) <= count:
            return list(seen)
        picks = np.linspace(0, len(seen) - 1, count).round().astype(int)
        return [seen[i] for i in dict.fromkeys(picks.tolist())]


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64).ravel()
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


class _Group:
    """A person being built: members (indices into the sightings), the sum of their raw
    embeddings, the samples they are in."""

    def __init__(self) -> None:
        self.members: list[int] = []
        self.total: np.ndarray | None = None
        self.samples: set[int] = set()

    def add(self, index: int, sighting: Sighting) -> None:
        vec = np.asarray(sighting.embedding, np.float64).ravel()
        self.total = vec.copy() if self.total is None else self.total + vec
        self.members.append(index)
        self.samples.add(sighting.sample)

    def absorb(self, other: "_Group") -> None:
        assert self.total is not None and other.total is not None
        self.total = self.total + other.total
        self.members = sorted(self.members + other.members)
        self.samples |= other.samples

    def direction(self) -> np.ndarray:
        assert self.total is not None
        return _unit(self.total)


def group_sightings(sightings: Sequence[Sighting], threshold: float = DEFAULT_THRESHOLD) -> list[list[int]]:
    """Indices of `sightings` (ordered by sample) grouped into people, each group in
    sighting order, the groups by their first sighting."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold {threshold} is not in 0..1")
    groups: list[_Group] = []
    by_sample: dict[int, list[int]] = {}
    for i, s in enumerate(sightings):
        by_sample.setdefault(s.sample, []).append(i)
    for sample in sorted(by_sample):
        faces = by_sample[sample]
        pairs = sorted(((float(_unit(sightings[i].embedding) @ g.direction()), n, k)
                        for n, i in enumerate(faces) for k, g in enumerate(groups)),
                       key=lambda p: (-p[0], p[1], p[2]))
        placed: dict[int, int] = {}
        taken: set[int] = set()
        for sim, n, k in pairs:
            if sim < threshold:
                break
            if n not in placed and k not in taken:
                placed[n] = k
                taken.add(k)
        for n, i in enumerate(faces):
            if n in placed:
                groups[placed[n]].add(i, sightings[i])
            else:
                groups.append(_Group())
                groups[-1].add(i, sightings[i])
    _merge(groups, threshold)
    return sorted((g.members for g in groups), key=lambda m: m[0])


def _merge(groups: list[_Group], threshold: float) -> None:
    """Merge, most similar first, the pairs of groups alike by at least `threshold` that
    never share a sample (in place)."""
    while True:
        best: tuple[float, int, int] | None = None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                if groups[a].samples & groups[b].samples:
                    continue
                sim = float(groups[a].direction() @ groups[b].direction())
                if sim >= threshold and (best is None or sim > best[0]):
                    best = (sim, a, b)
        if best is None:
            return
        _, a, b = best
        groups[a].absorb(groups.pop(b))


def summarise(sightings: Sequence[Sighting], samples: Sequence[Sample], groups: list[list[int]]) -> list[Person]:
    """People from the groups: numbered by time on screen (most first; then by first
    appearance), with mean embedding, frame ranges and seconds on screen."""
    people = []
    for members in groups:
        seen = [sightings[i] for i in members]
        shown = sorted({s.sample for s in seen})
        ranges: list[tuple[int, int]] = []
        for n in shown:
            sample = samples[n]
            if ranges and ranges[-1][1] == sample.frame:
                ranges[-1] = (ranges[-1][0], sample.until)
            else:
                ranges.append((sample.frame, sample.until))
        mean = np.mean(np.stack([np.asarray(s.embedding, np.float32).ravel() for s in seen]), axis=0)
        people.append(Person(0, seen, mean.astype(np.float32), ranges,
                             round(sum(samples[n].span_s for n in shown), 6), samples[shown[0]].time_s))
    people.sort(key=lambda p: (-p.seconds, p.first_s, p.sightings[0].sample))
    for number, person in enumerate(people, start=1):
        person.number = number
    return people

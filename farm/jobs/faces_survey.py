"""`farm faces` and GET /faces: who is in a video, from frames sampled every few seconds.

The path of a job's detect and recognise steps, on sampled frames: the video probed as
submit probes it (farm.media.probe, the farm's limits), the sampled frames cut out by
stream copy and decoded as chunks decode theirs (farm.media.plan.plan_frame,
farm.media.split.split_chunks, farm.media.decode.iter_chunk_frames), the faces found by
the job's detect stage (farm.faces.detect.DetectStage, built as a worker builds it, its
state reset before each sample: every sample is scanned whole, as a chunk's first frame)
and embedded by the pack's recogniser (farm.faces.recognise), with the pack loaded as a
worker loads it (settings.providers). farm.faces.people groups the faces into people.
Nothing is recorded: no job, no broker, no worker.

Samples: the frame on screen at 0, every, 2 x every ... seconds (default every 1 s, wider
for a video over an hour: at most MAX_SAMPLES). Frames whose segments overlap are decoded
from one segment; segments are split in passes of at most PASS_PACKETS packets, so the
temporary disk used stays bounded for long videos.
"""

from __future__ import annotations

import bisect
import dataclasses
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from farm.config import Settings
from farm.errors import InputError, MediaError
from farm.faces.people import DEFAULT_THRESHOLD, Person, Sample, Sighting, group_sightings, summarise
from farm.options import SUBMIT_OPTIONS, Option, convert

MAX_SAMPLES = 3600
"""Most frames one survey samples (an hour at the default step)."""
DEFAULT_EVERY_S = 1.0
PASS_PACKETS = 9000
"""Most video packets split into temporary segments at once (5 min at 30 fps)."""
BATCH_SAMPLES = 8
"""Sampled frames whose faces go through the recogniser together."""
CROP_MARGIN = 0.4
"""A crop is the face box grown by this share of its size on each side ..."""
CROP_MAX_SIDE = 256
"""... at most this many pixels a side (scaled down, area averaging)."""

DETECT_OPTIONS = ("detector", "min_score", "detect_max_side")
"""The face options a survey takes: its detect stage's."""

SURVEY_OPTIONS: dict[str, Option] = {
    "every": Option("float", None, f"seconds between two sampled frames (default {DEFAULT_EVERY_S:g} s, more "
                    f"for a video over an hour: at most {MAX_SAMPLES} samples)", minimum=0.01, maximum=3600.0,
                    unit="s", metavar="SECONDS"),
    "threshold": Option("float", DEFAULT_THRESHOLD, "least cosine similarity of a face to a person's mean face "
                        "for it to be that person (higher: more people)", minimum=0.0, maximum=1.0),
}
"""A survey's own options (its flags, query parameters and JSON keys)."""


def survey_options() -> dict[str, Option]:
    """name -> Option of what a survey takes: every, threshold, models and the detect
    stage's options (read from the option table at each call)."""
    from farm.faces.options import FACE_OPTIONS

    return {**SURVEY_OPTIONS, "models": SUBMIT_OPTIONS["models"], **{n: FACE_OPTIONS[n] for n in DETECT_OPTIONS}}


def check_survey_options(raw: Mapping[str, Any], origin: str, *, cli: bool, text: bool = False) -> dict[str, Any]:
    """The given options converted by the table's one converter (farm.options.convert);
    InputError naming an unknown option or a bad value (as a flag when `cli`)."""
    table = survey_options()
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in table:
            raise InputError(f"unknown option {key!r} in {origin}", hint="a survey takes " + ", ".join(table))
        if value is not None:
            out[name] = convert(table[name].flag(name) if cli else name, table[name], value, origin, text=text)
    return out


@dataclass
class Survey:
    """What a survey found. samples: the sampled frames; people: numbered by time on screen;
    label: the pack and its models (farm.models.packs.ModelPack.label); options: as used."""

    video: Path
    width: int
    height: int
    frame_count: int
    duration_s: float
    every_s: float
    threshold: float
    samples: list[Sample]
    people: list[Person]
    faces_seen: int
    options: dict[str, Any]
    label: dict[str, Any] = field(default_factory=dict)

    @property
    def warning(self) -> str | None:
        """Said when no face was found in any sampled frame."""
        if self.people:
            return None
        return (f"no face found in the {len(self.samples)} sampled frames of {self.video.name} (every "
                f"{self.every_s:g} s); try a smaller --every, a lower --min-score or a larger --detect-max-side")


def frame_times(info: Any) -> list[Fraction]:
    """Seconds from the first frame to each frame, in presentation order."""
    return [(pts - info.video.first_pts) * info.video.time_base for pts in info.frame_pts]


def choose_every(duration_s: float, every_s: float | None, where: str = "--every") -> float:
    """The sampling step (s): `every_s`, or the default widened to MAX_SAMPLES samples;
    InputError when a given step asks for more than MAX_SAMPLES."""
    least = duration_s / MAX_SAMPLES
    if every_s is None:
        return max(DEFAULT_EVERY_S, round(least + 0.005, 2))
    if every_s < least:
        raise InputError(f"{where} {every_s:g} samples more than {MAX_SAMPLES} frames of a {duration_s:.0f} s video",
                         hint=f"give {where} {least:.2f} or more")
    return every_s


def sample_frames(info: Any, every_s: float) -> list[Sample]:
    """The frames on screen at 0, every_s, 2 every_s, ... s (each once), and what each
    stands for: up to the next sample, the last one up to the end of the video."""
    times = frame_times(info)
    end_s = float(info.video.duration_s)
    frames: list[int] = []
    k = 0
    while True:
        t = Fraction(k) * Fraction(str(every_s))
        if t >= end_s or (k and t > times[-1]):
            break
        index = max(0, bisect.bisect_right(times, t) - 1)
        if not frames or index != frames[-1]:
            frames.append(index)
        k += 1
    samples = []
    for n, index in enumerate(frames):
        until = frames[n + 1] if n + 1 < len(frames) else len(times)
        until_s = float(times[until]) if until < len(times) else end_s
        samples.append(Sample(index, float(times[index]), until, until_s))
    return samples


def _group_plans(info: Any, frames: Sequence[int]) -> list[tuple[Any, list[int]]]:
    """(plan, the sampled frames it holds) for runs of samples whose segments overlap:
    one plan decodes them all (frames [first, last] in presentation order)."""
    from farm.media.plan import plan_frame

    order = sorted((p.pts, i) for i, p in enumerate(info.packets) if not p.is_discard)
    groups: list[tuple[Any, list[int]]] = []
    for index in frames:
        one = plan_frame(info, index)
        if groups and one.seg_first_packet < groups[-1][0].seg_end_packet:
            plan, members = groups[-1]
            end = max(plan.seg_end_packet, max(i for _, i in order[members[-1]:index + 1]) + 1)
            if end - plan.seg_first_packet <= PASS_PACKETS:
                groups[-1] = (dataclasses.replace(plan, frame_count=index - plan.first_frame + 1,
                                                  end_pts=one.end_pts, seg_end_packet=end), members + [index])
                continue
        groups.append((dataclasses.replace(one, index=len(groups)), [index]))
    return groups


def iter_sampled_frames(info: Any, frames: Sequence[int]) -> Iterator[tuple[int, Any]]:
    """(frame index, planar av.VideoFrame) of each of `frames` (sorted), decoded as a chunk
    decodes its frames; MediaError when one cannot be decoded."""
    from farm.media.decode import iter_chunk_frames
    from farm.media.split import split_chunks

    groups = _group_plans(info, frames)
    start = 0
    while start < len(groups):
        stop, packets = start, 0
        while stop < len(groups) and (stop == start or packets + _packets(groups[stop][0]) <= PASS_PACKETS):
            packets += _packets(groups[stop][0])
            stop += 1
        with tempfile.TemporaryDirectory(prefix="farm-faces-") as folder:
            plans = [plan for plan, _ in groups[start:stop]]
            for segment, (plan, members) in zip(split_chunks(info.path, info, plans, folder), groups[start:stop]):
                wanted = set(members)
                decoded = iter_chunk_frames(segment, plan)
                try:
                    for n, picture in enumerate(decoded):
                        if plan.first_frame + n in wanted:
                            wanted.discard(plan.first_frame + n)
                            yield plan.first_frame + n, picture
                finally:
                    decoded.close()
                if wanted:
                    raise MediaError(f"{info.path}: frame {min(wanted)} could not be decoded",
                                     hint="re-export the video, or sample other frames with another --every")
        start = stop


def _packets(plan: Any) -> int:
    return plan.seg_end_packet - plan.seg_first_packet


def face_crop(frame: Any, box: Sequence[float]) -> bytes:
    """The face box grown by CROP_MARGIN a side (clipped to the frame), at most
    CROP_MAX_SIDE px a side, as PNG bytes; b'' when nothing of it is in the frame."""
    import cv2

    from farm.pipeline import regions

    x0, y0, x1, y1 = (float(v) for v in box)
    mx, my = (x1 - x0) * CROP_MARGIN, (y1 - y0) * CROP_MARGIN
    clipped = regions.clip_box((x0 - mx, y0 - my, x1 + mx, y1 + my), frame.width, frame.height)
    if clipped is None:
        return b""
    bgr = regions.read_bgr(frame, clipped)
    h, w = bgr.shape[:2]
    if max(h, w) > CROP_MAX_SIDE:
        s = CROP_MAX_SIDE / max(h, w)
        bgr = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".png", bgr)
    return data.tobytes() if ok else b""


def run_survey(video: Path, options: Mapping[str, Any], settings: Settings,
               on_progress: Callable[[int, int], None] | None = None) -> Survey:
    """Sample `video`, find and recognise its faces with the pack a worker loads, and group
    them into people. options: checked (check_survey_options). on_progress(done, total)
    after each batch of samples. InputError (exit 2) for a video submit refuses."""
    from farm.faces.chain import ChainInputs
    from farm.faces.detect import DetectStage
    from farm.faces.options import FACE_OPTIONS
    from farm.faces.recognise import embed_faces_of_frames
    from farm.jobs.submit import probe_limits
    from farm.media.probe import probe
    from farm.models.packs import load_pack
    from farm.pipeline.frame import Frame

    video = Path(video).expanduser()
    info = probe(video, limits=probe_limits(settings))
    duration_s = float(info.video.duration_s)
    every_s = choose_every(duration_s, options.get("every"))
    threshold = float(options.get("threshold", DEFAULT_THRESHOLD))
    face_options = {name: option.default for name, option in FACE_OPTIONS.items()}
    face_options.update({k: v for k, v in options.items() if k in DETECT_OPTIONS})
    pack_ref = options.get("models") or settings.models
    pack = load_pack(pack_ref, models_dir=settings.models_path, providers=settings.providers,
                     cache_dir=settings.storage_dir / "trt-cache")   # as a worker loads it
    detect = DetectStage.build(ChainInputs(face_options, pack, None))
    roles = DetectStage.roles(face_options, pack)
    recognizer = pack.session("recognizer")
    samples = sample_frames(info, every_s)
    by_frame = {s.frame: n for n, s in enumerate(samples)}
    sightings: list[Sighting] = []
    batch: list[tuple[int, Any]] = []

    def flush() -> None:
        embed_faces_of_frames(recognizer, [(frame, frame.faces) for _, frame in batch if frame.faces])
        for n, frame in batch:
            for face in frame.faces:
                if face.embedding is not None:
                    box = tuple(float(v) for v in face.bbox)
                    sightings.append(Sighting(n, frame.index, box, face.score, face.embedding, face_crop(frame, box)))
        batch.clear()

    done = 0
    for index, picture in iter_sampled_frames(info, [s.frame for s in samples]):
        try:
            frame = Frame.from_av(picture, index)
        except ValueError as exc:   # a pixel format the pipeline does not take
            raise InputError(f"{video}: frame {index} cannot be read for faces ({exc})") from None
        detect.setup()   # nothing followed from the previous sample: each is scanned whole
        batch.append((by_frame[index], detect.process(frame)))
        if len(batch) >= BATCH_SAMPLES:
            done += len(batch)
            flush()
            if on_progress:
                on_progress(done, len(samples))
    done += len(batch)
    flush()
    if on_progress:
        on_progress(done, len(samples))
    people = summarise(sightings, samples, group_sightings(sightings, threshold))
    used = {"every": every_s, "threshold": threshold, "models": str(pack_ref),
            **{k: face_options[k] for k in DETECT_OPTIONS}}
    return Survey(video=video, width=int(info.video.width), height=int(info.video.height),
                  frame_count=len(info.frame_pts), duration_s=duration_s, every_s=every_s, threshold=threshold,
                  samples=samples, people=people, faces_seen=len(sightings), options=used,
                  label=pack.label([*roles, "recognizer"], haar=not roles))

"""One source per person, in one pass (issue 15.2): --map REFERENCE=SOURCE, --map-others.

Real jobs in one process (real submit through the spec-file/API converter, the worker's
run_chunk, real finalize; the demo pack on ONNX Runtime's CPU provider), the broker calls
dropped. The clip (tests.three_people) holds three people the whole time; the demo swapper
tints a face by its source's identity, so a face swapped to source A looks like the same
face in a job whose one source is A, and unlike it in a job whose one source is B.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

import farm.cli.main as cli
import farm.jobs.submit
import farm.workers.chunk_runner
from farm.cli import faces_command
from farm.cli.watch import job_table
from farm.errors import InputError
from farm.jobs.outcomes import job_json
from farm.jobs.spec import check_options, submit_request
from farm.jobs.submit import submit
from farm.state import store
from farm.workers.finalize import run_finalize
from tests import media_checks
from tests.three_people import face_boxes, make_three_people_clip, write_person, write_stranger

WORKER = "cpu0@test"
SIMILARITY = 0.75
"""Between the demo recogniser's similarity of a person to their own crop (>= 0.9) and to
the others' (<= 0.6) in this clip."""




@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, Path]:
    """The clip, a crop of each person in it, and two source images of people not in it."""
    folder = tmp_path_factory.mktemp("three")
    clip = make_three_people_clip(folder / "three.mp4")
    return {"clip": clip.path, **{f"person{i}": write_person(folder / f"person-{i + 1}.png", i) for i in range(3)},
            "a": write_stranger(folder / "a.png", 0), "b": write_stranger(folder / "b.png", 26)}


def render(settings, db, ctx, video: Path, out: Path, **options) -> store.JobView:
    """Submit a job from options as a spec file or the API gives them, run its chunks, finalize it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    checked = check_options({"models": "demo", "chunk_seconds": 0.5, "enhance": False, "output": str(out),
                             "detect_max_side": 320, **options}, "the test")
    job_id = submit(submit_request(video, checked), settings, db)
    job = store.get_job(db, job_id)
    for index in range(job.chunk_count):
        assert farm.workers.chunk_runner.run_chunk(ctx, job_id, index, WORKER).startswith("done")
    assert run_finalize(ctx, job_id, "fin") == "done", store.get_job(db, job_id).error
    return store.get_job(db, job_id)


def pictures(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)]


def region_gap(a: list[np.ndarray], b: list[np.ndarray], person: int) -> float:
    """Mean absolute difference (0..255) of two videos' pictures inside one person's face box."""
    h, w = a[0].shape[:2]
    gaps = []
    for k, (x, y) in enumerate(zip(a, b)):
        x0, y0, x1, y1 = (int(v) for v in face_boxes(k, w, h)[person])
        gaps.append(float(np.abs(x[y0:y1, x0:x1] - y[y0:y1, x0:x1]).mean()))
    return float(np.mean(gaps))


def test_each_person_gets_their_own_source_and_the_third_is_kept_in_one_job(inproc, scene, tmp_path):
    settings, db, ctx = inproc
    clip = scene["clip"]
    # Given single-source jobs with A and with B (every face swapped to that one source)
    only_a = render(settings, db, ctx, clip, tmp_path / "a" / "out.mp4", source=[str(scene["a"])])
    only_b = render(settings, db, ctx, clip, tmp_path / "b" / "out.mp4", source=[str(scene["b"])])
    # When one job maps person 1 to A and person 2 to B, and keeps everyone else
    mapped = render(settings, db, ctx, clip, tmp_path / "map" / "out.mp4", similarity=SIMILARITY,
                    map=[f"{scene['person0']}={scene['a']}", f"{scene['person1']}={scene['b']}"])
    # Then it is one job whose frames and timestamps are the source's, frame for frame
    media_checks.assert_same_frame_times(mapped.output_path, clip)
    source, out = pictures(clip), pictures(Path(mapped.output_path))
    a, b = pictures(Path(only_a.output_path)), pictures(Path(only_b.output_path))
    # and person 1 looks as in the A job, person 2 as in the B job, person 3 as in the input
    assert region_gap(out, a, 0) < 2.0 < 4 * 2.0 < region_gap(out, b, 0)
    assert region_gap(out, b, 1) < 2.0 < 4 * 2.0 < region_gap(out, a, 1)
    assert region_gap(out, source, 2) < 3.0 < 4 * 3.0 < min(region_gap(a, source, 2), region_gap(b, source, 2))
    # and two faces were changed in every frame
    assert mapped.changed == (len(source), 2 * len(source))
    # and the label lists the mapping
    expected = "swap (map: person-1.png -> a.png, person-2.png -> b.png, others kept)"
    assert mapped.models["stage_labels"]["swap"] == expected
    comment = media_checks.container_tags(mapped.output_path)["comment"]
    n = len(source)
    assert f"faces altered by {expected} in {n} of {n} frames ({2 * n} faces" in comment, comment
    # and the counts are kept per person (issue 15.4): in the job, the label, the JSON and `farm status`
    assert mapped.people_changed == {"0": n, "1": n}
    assert f"; person-1.png -> a.png: {n} frames, person-2.png -> b.png: {n} frames)" in comment, comment
    assert job_json(mapped)["people_changed"] == [{"mapping": "person-1.png -> a.png", "frames": n},
                                                   {"mapping": "person-2.png -> b.png", "frames": n}]
    assert f"person-1.png -> a.png: {n}, person-2.png -> b.png: {n}" in str(job_table(mapped, width=300).title)
    assert [sum((c.people_changed or {}).values()) for c in mapped.chunks] == \
        [2 * c.frames_planned for c in mapped.chunks]   # each chunk counted its own frames


def test_map_others_swaps_everyone_else_to_its_source(inproc, scene, tmp_path):
    settings, db, ctx = inproc
    clip = scene["clip"]
    only_b = render(settings, db, ctx, clip, tmp_path / "b" / "out.mp4", source=[str(scene["b"])])
    # When person 1 goes to A and everyone else to B
    mapped = render(settings, db, ctx, clip, tmp_path / "map" / "out.mp4", similarity=SIMILARITY,
                    map=f"{scene['person0']}={scene['a']}", map_others=str(scene["b"]))
    out, b = pictures(Path(mapped.output_path)), pictures(Path(only_b.output_path))
    # Then persons 2 and 3 look as in the B job, person 1 does not
    assert region_gap(out, b, 1) < 2.0 and region_gap(out, b, 2) < 2.0 < 4 * 2.0 < region_gap(out, b, 0)
    assert mapped.changed == (len(out), 3 * len(out))
    assert mapped.people_changed == {"0": len(out), "1": len(out)}   # the others' source counts as one mapping
    assert job_json(mapped)["people_changed"][1] == {"mapping": "others -> b.png", "frames": len(out)}
    assert mapped.models["stage_labels"]["swap"] == "swap (map: person-1.png -> a.png, others -> b.png)"


def test_map_refusals_at_submit(inproc, scene, tmp_path):
    settings, db, _ = inproc
    clip, out = scene["clip"], str(tmp_path / "out.mp4")

    def refused(match: str, **options) -> None:
        with pytest.raises(InputError, match=match):
            checked = check_options({"models": "demo", "output": out, "similarity": SIMILARITY, **options}, "t")
            submit(submit_request(clip, checked), settings, db)

    pair = f"{scene['person0']}={scene['a']}"
    refused("given together", map=pair, source=[str(scene["b"])])
    refused("goes with faces=all", map=pair, faces="largest")
    refused("needs map", map_others=str(scene["b"]), source=[str(scene["b"])])
    refused("does not exist", map=f"{tmp_path / 'nobody.png'}={scene['a']}")
    # two references of one person (two crops of person 1)
    again = write_person(tmp_path / "again.png", 0, margin=0.3)
    refused("are the same person", map=[pair, f"{again}={scene['b']}"])
    # a reference with no face in it
    blank = tmp_path / "blank.png"
    import cv2

    cv2.imwrite(str(blank), np.full((200, 200, 3), 90, np.uint8))
    refused("no face found in --map reference image", map=f"{blank}={scene['a']}")
    assert store.list_jobs(db) == []


def test_a_reference_may_be_a_person_of_a_farm_faces_run(inproc, scene, tmp_path, monkeypatch, capsys):
    settings, db, ctx = inproc
    clip = scene["clip"]
    # Given `farm faces` run on the clip (its folder: person-N.png crops and faces.json)
    monkeypatch.setenv("FARM_HOME", str(settings.home))
    monkeypatch.setenv("FARM_PROVIDERS", "cpu")
    folder = tmp_path / "three.faces"
    with pytest.raises(SystemExit) as done:
        cli.main(["faces", str(clip), "--models", "demo", "--every", "0.5", "--threshold", str(SIMILARITY),
                  "--out", str(folder), "--json"])
    assert done.value.code in (0, None)
    table = json.loads(capsys.readouterr().out)
    faces_command.register(cli.app)   # as at import: without the detect options
    by_x = sorted(table["people"], key=lambda p: p["reference"]["box"][0])
    assert len(by_x) == 3, table["people"]
    left, middle = by_x[0]["name"], by_x[1]["name"]
    (folder / f"{left}.png").unlink()   # the person is read from faces.json, not from the crop
    # When the job names two of its people
    mapped = render(settings, db, ctx, clip, tmp_path / "map" / "out.mp4", similarity=SIMILARITY,
                    map=[f"{folder / left}={scene['a']}", f"{folder / middle}={scene['b']}"])
    only_a = render(settings, db, ctx, clip, tmp_path / "a" / "out.mp4", source=[str(scene["a"])])
    # Then the left person is swapped to A, and the right one kept
    out, a, source = pictures(Path(mapped.output_path)), pictures(Path(only_a.output_path)), pictures(clip)
    assert region_gap(out, a, 0) < 2.0 < 4 * 2.0 < region_gap(out, a, 1)
    assert region_gap(out, source, 2) < 3.0
    assert mapped.changed == (len(out), 2 * len(out))
    assert mapped.models["stage_labels"]["swap"] == f"swap (map: {left} -> a.png, {middle} -> b.png, others kept)"


def test_a_preview_maps_each_person_as_the_job_does(inproc, scene):
    settings, _, _ = inproc
    from farm.jobs.preview import render_preview

    options = check_options({"models": "demo", "enhance": False, "detect_max_side": 320, "similarity": SIMILARITY,
                             "map": f"{scene['person0']}={scene['a']}"}, "the test")
    shown = render_preview(scene["clip"], options, settings, frame=0)
    h, w = shown.original.shape[:2]
    changed = [float(np.abs(shown.result[y0:y1, x0:x1].astype(int) - shown.original[y0:y1, x0:x1]).mean())
               for x0, y0, x1, y1 in (np.asarray(box, int) for box in face_boxes(0, w, h))]
    assert changed[0] > 8.0 and changed[1] == changed[2] == 0.0, changed

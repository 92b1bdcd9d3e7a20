"""`--faces reference --reference-frame N` at submit: the user's video is opened like probe opens
it (demuxer sniffed and forced, local files only), frame N is the N-th decoded frame, and
its largest face gives the reference identity; the saved identity is what workers read."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

import farm.jobs.face_prep as face_prep
from farm.errors import FarmError, InputError
from farm.faces.detect import HaarDetector, detect_small
from farm.faces.recognise import embed_frame_faces
from farm.jobs.face_prep import prepare_faces
from farm.jobs.submit import SubmitRequest
from farm.media.formats import SAFE_INPUT_OPTIONS
from farm.models.packs import clear_pack_cache, load_pack
from farm.pipeline.frame import Frame
from farm.storage import Storage
from farm.workers.job_chain import load_identity
from tests import clips

FRAME = 7


@pytest.fixture(scope="module")
def material(tmp_path_factory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("ref")
    video = clips.make_clip(folder / "face.mp4", width=480, height=270, seconds=0.5, moving_face=True, gop=5,
                            bframes=2)
    return SimpleNamespace(video=video, face=clips.make_face_image(folder / "face.jpg"), folder=folder)


def _settings(tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(models="default", models_path=tmp_path / "models", storage_dir=tmp_path / "storage",
                           max_image_side=8192, max_image_bytes=50 * 1024**2, providers="cpu")


def _request(material, **face_options) -> SubmitRequest:
    return SubmitRequest(video=material.video, sources=[material.face], models="demo",
                         face_options={"faces": "reference", **face_options})


def test_the_reference_is_the_largest_face_of_frame_n(material, tmp_path):
    clear_pack_cache()
    prep = prepare_faces(_request(material, reference_frame=FRAME), _settings(tmp_path))
    # independently: decode the whole video with PyAV, take frame N, detect and embed it
    with av.open(str(material.video)) as c:
        frames = [f for f in c.decode(video=0)]
    frame = Frame.from_av(frames[FRAME], FRAME)
    pack = load_pack("demo", tmp_path / "models", providers="cpu")
    faces = detect_small(HaarDetector(), frame, 640)
    assert faces, "the clip's frame holds a face"
    largest = max(faces, key=lambda f: f.area)
    embed_frame_faces(pack.session("recognizer"), frame, [largest])
    assert prep.reference_embedding is not None
    assert np.allclose(prep.reference_embedding, largest.embedding, atol=1e-5)
    # and another frame of the moving face gives another embedding
    other = prepare_faces(_request(material, reference_frame=0), _settings(tmp_path))
    assert not np.allclose(other.reference_embedding, prep.reference_embedding, atol=1e-3)


def test_the_video_is_opened_like_probe_opens_it(material, tmp_path, monkeypatch):
    calls = []
    real_open = av.open

    def spy(url, *args, **kwargs):
        calls.append((url, kwargs))
        return real_open(url, *args, **kwargs)

    monkeypatch.setattr(av, "open", spy)
    clear_pack_cache()
    prepare_faces(_request(material, reference_frame=1), _settings(tmp_path))
    opened = [(u, k) for u, k in calls if str(material.video.name) in str(u)]
    assert opened, "the reference frame was read from the video"
    for url, kwargs in opened:
        assert str(url).startswith("file:")
        assert kwargs.get("format") == "mov"   # sniffed from the file's head, forced
        assert kwargs.get("container_options") == dict(SAFE_INPUT_OPTIONS)


def test_a_frame_past_the_end_is_refused_naming_the_file(material, tmp_path):
    clear_pack_cache()
    with pytest.raises(InputError) as info:
        prepare_faces(_request(material, reference_frame=10_000), _settings(tmp_path))
    assert info.value.exit_code == 2
    assert str(material.video) in info.value.message and "10000" in info.value.message
    assert "0 to" in info.value.hint


def test_a_video_that_is_not_an_accepted_container_is_refused(material, tmp_path):
    bogus = tmp_path / "clip.mp4"
    bogus.write_text("#EXTM3U\nhttp://example.invalid/x.ts\n")
    with pytest.raises(InputError) as info:
        face_prep.reference_from_video(bogus, 0, HaarDetector(), None)
    assert str(bogus) in info.value.message


def test_workers_read_the_saved_reference_and_refuse_a_missing_identity(material, tmp_path):
    clear_pack_cache()
    prep = prepare_faces(_request(material, reference_frame=FRAME), _settings(tmp_path))
    storage = Storage(tmp_path / "storage")
    job = SimpleNamespace(id="job1", options=prep.options, models=prep.label)
    ctx = SimpleNamespace(storage=storage)
    prep.save(storage.identity(job.id))
    source, reference = load_identity(ctx, job)
    assert np.array_equal(source, prep.source_embedding)
    assert np.array_equal(reference, prep.reference_embedding)
    storage.identity(job.id).unlink()
    with pytest.raises(FarmError) as info:
        load_identity(ctx, job)
    assert "job1" in info.value.message and "identity" in info.value.message


def test_the_reference_frame_is_counted_in_the_real_video_not_a_still_track_before_it(material, tmp_path):
    # Given the same video behind a one-frame still as track 0
    stilled = clips.prepend_still_track(material.video, tmp_path / "stilled.mkv")
    clear_pack_cache()
    want = prepare_faces(_request(material, reference_frame=FRAME), _settings(tmp_path))
    got = prepare_faces(_request(SimpleNamespace(video=stilled, face=material.face), reference_frame=FRAME),
                        _settings(tmp_path))
    assert got.reference_embedding is not None
    assert np.allclose(got.reference_embedding, want.reference_embedding, atol=1e-5)

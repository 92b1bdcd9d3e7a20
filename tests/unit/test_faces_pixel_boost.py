"""Pixel boost (issue 14.1): the polyphase split and merge, the boosted swap on real ONNX
Runtime sessions of stand-in swappers with inswapper_128's inputs and outputs (target
[1,3,128,128] RGB 0..1, source [1,512]; and the same with a dynamic batch 'N'), the
option's refusals, `auto`'s choice of size, and the label."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from farm.errors import InputError
from farm.faces import pixel_boost as boost
from farm.faces import stages
from farm.faces.align import estimate_norm, warp_face
from farm.faces.options import validate_options
from farm.faces.swap import MAX_SUBS_PER_RUN, SwapStage
from farm.faces.types import Face
from farm.jobs.spec import CLI, check_options
from farm.models.manifest import TensorSpec
from farm.pipeline import regions
from tests.unit.test_faces_standins import KPS, _model, astronaut_frame, session

RNG = np.random.default_rng(14)
LATENT = (RNG.standard_normal(512) / np.sqrt(512)).astype(np.float32)


def swapper(batch: int | str = 1, identity: bool = False) -> SimpleNamespace:
    """A stand-in swapper session with inswapper_128's names, shapes and dtypes.

    identity: output = target (the source is read, times 0); else a source-dependent,
    element-wise recolouring, clip(0.7 * target + 0.3 * sigmoid(source @ W)) per
    channel, so each output pixel depends on its own input pixel only (a batch cannot
    change it). Returns the session wrapped to count its runs and the batch of each."""
    colour = np.random.default_rng(7).standard_normal((512, 3)) * 4   # the same in every stand-in
    w = numpy_helper.from_array(colour.astype(np.float32), "W")
    consts = [w, numpy_helper.from_array(np.array(0.7, np.float32), "keep"),
              numpy_helper.from_array(np.array(0.3, np.float32), "mix"),
              numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
              numpy_helper.from_array(np.array(1.0, np.float32), "one"),
              numpy_helper.from_array(np.array([-1, 3, 1, 1], np.int64), "c_shape")]
    nodes = [helper.make_node("MatMul", ["source", "W"], ["logit"]),
             helper.make_node("Sigmoid", ["logit"], ["colour"]),
             helper.make_node("Reshape", ["colour", "c_shape"], ["colour4"])]
    if identity:
        nodes += [helper.make_node("Mul", ["colour4", "zero"], ["nothing"]),
                  helper.make_node("Add", ["target", "nothing"], ["output"])]
    else:
        nodes += [helper.make_node("Mul", ["target", "keep"], ["kept"]),
                  helper.make_node("Mul", ["colour4", "mix"], ["tint"]),
                  helper.make_node("Add", ["kept", "tint"], ["mixed"]),
                  helper.make_node("Clip", ["mixed", "zero", "one"], ["output"])]
    model = _model(nodes,
                   [helper.make_tensor_value_info("target", TensorProto.FLOAT, [batch, 3, 128, 128]),
                    helper.make_tensor_value_info("source", TensorProto.FLOAT, [batch, 512])],
                   [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 3, 128, 128])], consts)
    real = session(model)
    runs: list[int] = []

    def run(names, feed):
        runs.append(feed["target"].shape[0])
        return real.run(names, feed)

    return SimpleNamespace(run=run, get_inputs=real.get_inputs, get_outputs=real.get_outputs, runs=runs)


def aligned_crop(size: int) -> np.ndarray:
    frame = astronaut_frame()
    return warp_face(regions.read_bgr(frame, (0, 0, 512, 512)), estimate_norm(KPS, "arcface_128", size), size)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 8])
def test_unshuffle_then_shuffle_is_exact(n):
    crop = np.random.default_rng(n).integers(0, 256, (128 * n, 128 * n, 3), dtype=np.uint8)
    subs = boost.unshuffle(crop, n)
    assert subs.shape == (n * n, 128, 128, 3) and subs.dtype == np.uint8
    for i in range(n):
        for j in range(n):
            assert np.array_equal(subs[i * n + j], crop[i::n, j::n])
    assert np.array_equal(boost.shuffle(subs, n), crop)


@pytest.mark.parametrize("batch", [1, "N"])
@pytest.mark.parametrize("size", ["256", "512", "1024"])
def test_a_boosted_identity_swap_gives_back_the_crop(size, batch):
    stage = SwapStage(swapper(batch, identity=True), LATENT, size)
    crop = aligned_crop(int(size))
    out = stage.run_crop(crop)
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - crop.astype(int)).max() <= 1
    n = int(size) // 128
    runs = [MAX_SUBS_PER_RUN] * (n * n // MAX_SUBS_PER_RUN) if n * n > MAX_SUBS_PER_RUN else [n * n]
    assert stage.session.runs == (runs if batch == "N" else [1] * (n * n))


def test_boost_1024_runs_its_64_sub_images_in_bounded_batches_with_the_same_pixels():
    """Memory: 64 sub-images in one run would hold 64 x the batch-1 activations; they go in
    runs of MAX_SUBS_PER_RUN, and the pixels equal the one-by-one path's."""
    fixed, dynamic = swapper(1), swapper("N")
    crop = aligned_crop(1024)
    one_by_one = SwapStage(fixed, LATENT, "1024").run_crop(crop)
    bounded = SwapStage(dynamic, LATENT, "1024").run_crop(crop)
    assert dynamic.runs == [MAX_SUBS_PER_RUN] * (64 // MAX_SUBS_PER_RUN) and fixed.runs == [1] * 64
    assert np.array_equal(one_by_one, bounded)
    assert not np.array_equal(bounded, crop)   # it did swap


@pytest.mark.parametrize("size", ["512", "auto"])
def test_batched_and_one_by_one_give_the_same_pixels_on_a_real_face(size):
    fixed, dynamic = swapper(1), swapper("N")
    frames = []
    for sess in (fixed, dynamic):
        frame = astronaut_frame()
        frame.faces = [Face([175, 62, 275, 165], 0.9, KPS)]
        SwapStage(sess, LATENT, size).process(frame)
        assert frame.faces_changed == 1
        frames.append(frame)
    assert len(dynamic.runs) == 1 and len(fixed.runs) == dynamic.runs[0] > 1
    for a, b in zip(*(f.planes for f in frames)):
        assert np.array_equal(a, b)
    before = astronaut_frame()
    assert any(not np.array_equal(a, b) for a, b in zip(before.planes, frames[0].planes))   # it did swap


def test_the_default_is_the_swappers_native_size():
    assert validate_options({})["pixel_boost"] == "native"
    stage = SwapStage(swapper(1), LATENT)
    frame = astronaut_frame()
    frame.faces = [Face([175, 62, 275, 165], 0.9, KPS)]
    stage.process(frame)
    assert stage.session.runs == [1] and stage.face_size(frame.faces[0]) == 128


@pytest.mark.parametrize("value", [200, "200", 64, "64", "big", 512.5])
def test_an_invalid_boost_is_refused_naming_the_option(value):
    with pytest.raises(InputError, match="pixel_boost must be one of native, auto, 128"):
        validate_options({"pixel_boost": value})
    with pytest.raises(InputError, match="--pixel-boost must be one of"):
        check_options({"pixel_boost": value}, "the command line", names=CLI)


def test_a_number_among_the_choices_is_taken_as_written_in_a_spec_file_or_json():
    assert validate_options({"pixel_boost": 512})["pixel_boost"] == "512"
    assert check_options({"pixel-boost": 256}, "the JSON body") == {"pixel_boost": "256"}


def fake_pack(native: int) -> SimpleNamespace:
    target = TensorSpec("target", (1, 3, native, native), "float32")
    entries = {"swapper": SimpleNamespace(name="swapper", role="swapper",
                                          inputs=(target, TensorSpec("source", (1, 512), "float32"))),
               "enhancer": SimpleNamespace(name="enhancer", role="enhancer",
                                           inputs=(TensorSpec("input", (1, 3, 512, 512), "float32"),))}
    return SimpleNamespace(entry=lambda role: entries[role])


def test_a_boost_the_packs_swapper_cannot_take_is_refused_at_submit():
    # a 256 px swapper (hyperswap-like) takes 256, 512, 768, 1024, not 128 or 384
    for value in ("128", "384"):
        with pytest.raises(InputError, match=r"pixel_boost \(--pixel-boost\) = .* native size of 256") as err:
            stages.check_models(validate_options({"pixel_boost": value}), fake_pack(256))
        assert "256, 512, 768, 1024" in (err.value.hint or "")
    for value in ("native", "auto", "512", "1024"):
        stages.check_models(validate_options({"pixel_boost": value}), fake_pack(256))
    for value in boost.CHOICES:
        stages.check_models(validate_options({"pixel_boost": value}), fake_pack(128))
    with pytest.raises(ValueError, match="not a multiple"):   # and a worker never runs one
        SwapStage(swapper(1), LATENT, 200)


def test_auto_picks_a_larger_crop_for_a_larger_face_and_at_most_1024():
    stage = SwapStage(swapper(1), LATENT, "auto")
    centre = KPS.mean(axis=0)

    def face(scale: float) -> Face:
        kps = (KPS - centre) * scale + centre
        return Face([0, 0, 1, 1], 0.9, kps)

    # the astronaut's face: eyes 44 px apart, the native crop covers ~160 frame px
    span = boost.face_span(estimate_norm(KPS, "arcface_128", 128), 128)
    assert 140 < span < 180
    sizes = [stage.face_size(face(s)) for s in (0.5, 1.0, 2.0, 4.0, 20.0)]
    assert sizes == [128, 256, 384, 768, 1024]
    assert all(boost.auto_size(span, 128) >= min(span, 1024) for span in (1, 100, 128, 129, 500, 900, 1024))
    assert boost.auto_size(10**6, 128) == 1024 and boost.auto_size(10**6, 512) == 1024
    assert boost.auto_size(1, 256) == 256


def test_the_label_names_the_boost_unless_native():
    from farm.workers.finalize import output_label

    def label(options: dict, native: int = 128) -> dict:
        p = fake_pack(native)
        p.label = lambda roles, haar=False: {"pack": "p", "models": {}}
        p.detector = "haar"
        return stages.face_label(validate_options(options), p, pack_ref="p")

    assert "stage_labels" not in label({}) and label({})["stages"] == ["swap", "enhance"]
    assert "stage_labels" not in label({"pixel_boost": "128"})   # native, said out loud
    boosted = label({"pixel_boost": "512"})
    assert boosted["stages"] == ["swap", "enhance"]
    assert boosted["stage_labels"] == {"swap": "swap (pixel boost 512)"}
    assert label({"pixel_boost": "auto"})["stage_labels"] == {"swap": "swap (pixel boost auto)"}
    assert label({"pixel_boost": "256"}, native=256).get("stage_labels") is None
    job = SimpleNamespace(id="j1", options={"faces": "all"}, models=boosted, chunks=[], frames_total=10)
    assert "faces altered by swap (pixel boost 512) + enhance with model pack p" in output_label(job)
    plain = SimpleNamespace(id="j2", options={"faces": "all"}, models=label({}), chunks=[], frames_total=10)
    assert "faces altered by swap + enhance with model pack p" in output_label(plain)

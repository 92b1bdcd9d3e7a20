"""farm.faces.stages: the option table, chain order, model roles and label all come from the
registered stage classes; the stage contract's defaults (a batch is a loop) and the
count of changed faces kept by the shared crop-model-paste base."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from farm.faces import stages
from farm.faces.detect import DetectStage, HaarDetector
from farm.faces.enhance import EnhanceStage
from farm.faces.mask_stage import MaskStage
from farm.faces.options import FACE_OPTIONS, Option, validate_options
from farm.faces.select import SelectStage
from farm.faces.swap import SwapStage, emap_latent
from farm.faces.tracking import TrackStage
from farm.faces.types import Face
from farm.pipeline.frame import Frame
from farm.pipeline.stage import Stage, StageChain
from farm.workers.chunk_runner import batch_for
from tests.unit.test_faces_standins import astronaut_frame, session, swapper_model


def test_each_option_is_declared_once_by_the_stage_it_names():
    assert list(FACE_OPTIONS) == ["detect_max_side", "min_score", "detector", "faces", "reference",
                                  "reference_frame", "similarity", "map", "map_others", "smooth", "smooth_min_cutoff",
                                  "smooth_beta",
                                  "fill_gaps", "mask", "mask_blur", "mask_padding", "mask_regions",
                                  "swapper", "pixel_boost", "enhance", "enhance_blend", "enhancer",
                                  "enhancer_fidelity"]
    by_name = {stage.name: stage for stage in stages.FACE_STAGES}
    for name, option in FACE_OPTIONS.items():
        declaring = [s.name for s in stages.FACE_STAGES if name in s.options]
        assert declaring == [option.stage] and by_name[option.stage].options[name].default == option.default
    assert FACE_OPTIONS["detect_max_side"].unit == "px"


def test_two_stages_declaring_one_option_are_refused(monkeypatch):
    class Again(Stage):
        name = "again"
        options = {"faces": Option("choice", "all", "again", choices=("all",))}

    monkeypatch.setattr(stages, "FACE_STAGES", [*stages.FACE_STAGES, Again])
    with pytest.raises(ValueError, match="'faces' is declared by stage 'select' and 'again'"):
        validate_options({})


def test_a_stage_checks_its_own_combinations(monkeypatch):
    seen = []

    class Picky(Stage):
        name = "picky"

        @classmethod
        def check_options(cls, options):
            seen.append(options["similarity"])

    monkeypatch.setattr(stages, "FACE_STAGES", [*stages.FACE_STAGES, Picky])
    validate_options({"similarity": "0.5"})
    assert seen == [0.5]   # after conversion


def pack(detector: str = "onnx", roles: tuple[str, ...] = ("detector", "recognizer", "swapper", "enhancer")):
    labelled = []

    def label(wanted, haar=False):
        labelled.append((list(wanted), haar))
        return {"pack": "p", "models": {r: {"name": r} for r in wanted}}

    return SimpleNamespace(name="p", detector=detector, has=lambda r: r in roles, label=label, labelled=labelled,
                           entry=lambda key: SimpleNamespace(name=key, role=key))


@pytest.mark.parametrize("options, detector, roles", [
    ({}, "haar", ["recognizer", "swapper", "enhancer"]),
    ({}, "onnx", ["detector", "recognizer", "swapper", "enhancer"]),
    ({"enhance": False}, "onnx", ["detector", "recognizer", "swapper"]),
    ({"enhance_blend": 0}, "haar", ["recognizer", "swapper"]),
    ({"faces": "reference", "reference": "me.jpg", "detector": "yunet"}, "onnx",
     ["detector_yunet", "recognizer", "swapper", "enhancer"]),
])
def test_required_roles_follow_the_wanted_stages(options, detector, roles):
    p = pack(detector, ("detector", "detector_yunet", "recognizer", "swapper", "enhancer"))
    assert stages.required_roles(validate_options(options), p) == roles


def test_the_label_names_the_stages_that_change_pixels():
    p = pack("haar")
    label = stages.face_label(validate_options({}), p, pack_ref="demo")
    assert label["stages"] == ["swap", "enhance"] and label["pack_ref"] == "demo"
    assert p.labelled == [(["recognizer", "swapper", "enhancer"], True)]   # Haar listed as the detector
    assert stages.face_label(validate_options({"enhance": False}), pack(), "x")["stages"] == ["swap"]


def test_chain_order_is_the_registry_order():
    assert [s.name for s in stages.wanted_stages(validate_options({}))] == ["detect", "select", "swap", "enhance"]
    assert stages.FACE_STAGES == [DetectStage, SelectStage, TrackStage, MaskStage, SwapStage, EnhanceStage]


def frame(index: int = 0) -> Frame:
    y = np.full((64, 64), 16, np.uint8)
    u = np.full((32, 32), 128, np.uint8)
    return Frame.from_arrays([y, u, u.copy()], "yuv420p", index=index)


def test_a_batch_is_a_loop_unless_a_stage_says_otherwise():
    seen = []

    class Plain(Stage):
        name = "plain"

        def process(self, f):
            seen.append(f.index)
            return f

    frames = [frame(i) for i in range(3)]
    assert Plain().process_batch(frames) == frames and seen == [0, 1, 2]
    assert batch_for(StageChain([Plain()])) is None                       # frame by frame
    chain = StageChain([DetectStage(HaarDetector()), Plain()])
    assert batch_for(chain) == chain.process_batch                         # detect declares `batches`


def test_the_model_stage_counts_the_faces_it_replaced():
    swap, emap = swapper_model(invert=True)
    stage = SwapStage(session(swap), emap_latent(np.ones(512, np.float32), emap))
    chain = StageChain([stage])
    face = astronaut_frame()
    kps = np.array([[205, 105], [245, 105], [225, 125], [210, 145], [240, 145]], np.float32)
    face.faces = [Face([180, 70, 270, 160], 0.9, kps)]
    far = frame(1)
    far.faces = [Face([5000, 5000, 5100, 5100], 0.9, kps + 5000)]   # its crop lies outside the frame
    with chain:
        chain.process_batch([face, far])
    assert (face.faces_changed, far.faces_changed) == (1, 0) and face.touched and not far.touched
    assert (chain.changed.frames, chain.changed.faces) == (1, 1)
    chain.setup()   # the next chunk starts counting again
    assert (chain.changed.frames, chain.changed.faces) == (0, 0)

"""Faces batched across frames: same faces as frame by frame, fewer model runs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from farm.faces.detect import DetectStage, ScrfdDetector, batchable
from farm.faces.select import SelectStage
from farm.faces.types import Face
from farm.pipeline.frame import Frame
from farm.pipeline.stage import Stage, StageChain

SIZE = 640


class DynamicScrfd:
    """A SCRFD-shaped session with a dynamic batch: a face wherever the image is bright."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def get_inputs(self):
        return [SimpleNamespace(name="input.1", shape=["N", 3, SIZE, SIZE], type="tensor(float)")]

    def get_outputs(self):
        return [SimpleNamespace(name=f"o{i}", shape=["N", "A", w], type="tensor(float)")
                for i, w in enumerate([1, 1, 1, 4, 4, 4, 10, 10, 10])]

    def run(self, names, feed):
        blob = feed["input.1"]
        n = blob.shape[0]
        self.batches.append(n)
        outs = []
        for k, width in ((0, 1), (1, 4), (2, 10)):
            for s in (8, 16, 32):
                outs.append(np.zeros((n, (SIZE // s) ** 2 * 2, width), np.float32))
        for i in range(n):
            if blob[i].max() > 0:           # bright image: one face at stride 16, cell (10, 20)
                j = (10 * (SIZE // 16) + 20) * 2
                outs[1][i, j] = 0.9
                outs[4][i, j] = [3, 4, 5, 6]
        return outs


def frame(bright: bool, index: int) -> Frame:
    y = np.full((360, 640), 200 if bright else 16, np.uint8)
    u = np.full((180, 320), 128, np.uint8)
    return Frame.from_arrays([y, u, u.copy()], "yuv420p", index=index)


def test_dynamic_batch_detection_matches_frame_by_frame() -> None:
    pattern = [True, False, True, True, False, True, True, False, True, True]
    session = DynamicScrfd()
    stage = DetectStage(ScrfdDetector(session))
    assert batchable(session) and stage.detector.batched
    one = [stage.process(frame(b, i)) for i, b in enumerate(pattern)]
    session.batches.clear()
    many = stage.process_batch([frame(b, i) for i, b in enumerate(pattern)])
    assert session.batches == [8, 2]                      # MAX_DETECT_BATCH images per run
    assert [len(f.faces) for f in many] == [int(b) for b in pattern]
    for a, b in zip(one, many):
        assert [f.bbox.tolist() for f in a.faces] == [f.bbox.tolist() for f in b.faces]


def test_fixed_batch_detector_runs_per_frame() -> None:
    session = DynamicScrfd()
    session.get_inputs = lambda: [SimpleNamespace(name="input.1", shape=[1, 3, SIZE, SIZE], type="tensor(float)")]
    stage = DetectStage(ScrfdDetector(session))
    assert not stage.detector.batched
    stage.process_batch([frame(True, i) for i in range(3)])
    assert session.batches == [1, 1, 1]


class CountingRecogniser:
    def __init__(self) -> None:
        self.batches: list[int] = []

    def get_inputs(self):
        return [SimpleNamespace(name="data", shape=["N", 3, 112, 112], type="tensor(float)")]

    def get_outputs(self):
        return [SimpleNamespace(name="emb", shape=["N", 512], type="tensor(float)")]

    def run(self, names, feed):
        n = feed["data"].shape[0]
        self.batches.append(n)
        return [np.ones((n, 512), np.float32)]


def test_reference_selection_embeds_faces_of_several_frames_together() -> None:
    rec = CountingRecogniser()
    stage = SelectStage("reference", np.ones(512, np.float32), 0.5, rec)
    kps = np.array([[270, 150], [370, 150], [320, 200], [280, 250], [360, 250]], np.float32)
    frames = []
    for i in range(3):
        f = frame(True, i)
        f.faces = [Face([240, 100, 400, 280], 0.9, kps), Face([240, 100, 400, 280], 0.9, kps + 5)]
        frames.append(f)
    out = stage.process_batch(frames)
    assert rec.batches == [6] and all(len(f.faces) == 2 for f in out)


def test_process_batch_runs_plain_stages_per_frame_in_order() -> None:
    seen: list[tuple[str, int]] = []

    class Tag(Stage):
        def __init__(self, name: str) -> None:
            self.name = name

        def process(self, f: Frame) -> Frame:
            seen.append((self.name, f.index))
            return f

    frames = [frame(False, i) for i in range(3)]
    assert StageChain([Tag("a"), Tag("b")]).process_batch(frames) == frames
    assert seen == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]

"""farm.faces.enhance: the GFPGAN contract and the enhanced/original blend ratio."""

from __future__ import annotations

import numpy as np
import pytest
from tests.unit.test_faces_standins import KPS, astronaut_frame, enhancer_model, outside, session

from farm.faces.align import estimate_norm
from farm.faces.enhance import EnhanceStage
from farm.faces.paste import region_box
from farm.faces.types import Face
from farm.pipeline import regions


@pytest.mark.parametrize("blend", [0.0, 0.3, 0.8, 1.0])
def test_blend_ratio_with_a_constant_model(blend):
    # Given a stand-in whose output is 0 in [-1, 1], i.e. 127.5 in 0..255
    stage = EnhanceStage(session(enhancer_model(0.0)), blend=blend)
    crop = np.full((512, 512, 3), 40, np.uint8)
    crop[..., 2] = 250
    # Then the result is blend * 127.5 + (1 - blend) * original, per channel
    out = stage.run_crop(crop).astype(float)
    assert np.allclose(out[..., 0], np.rint(blend * 127.5 + (1 - blend) * 40), atol=0.5)
    assert np.allclose(out[..., 2], np.rint(blend * 127.5 + (1 - blend) * 250), atol=0.5)


def test_enhance_stage_input_contract_and_paste_back():
    class Recorder:
        def __init__(self):
            self.inner = session(enhancer_model(1.0))  # white

        def get_inputs(self):
            return self.inner.get_inputs()

        def get_outputs(self):
            return self.inner.get_outputs()

        def run(self, names, feed):
            self.feed = feed
            return self.inner.run(names, feed)

    frame = astronaut_frame()
    before = [p.copy() for p in frame.planes]
    x, y = int(KPS[2, 0]), int(KPS[2, 1])
    nose = regions.read_bgr(frame, (x, y, x + 1, y + 1)).astype(float)
    rec = Recorder()
    frame.faces = [Face([175, 62, 275, 165], 0.9, KPS)]
    EnhanceStage(rec, blend=0.8).process(frame)
    blob = rec.feed["input"]
    # (x / 255 - 0.5) / 0.5, RGB, 1x3x512x512
    assert blob.shape == (1, 3, 512, 512) and -1.0 <= blob.min() and blob.max() <= 1.0
    # the nose is 0.8 white + 0.2 original; outside the region nothing changed
    after = regions.read_bgr(frame, (x, y, x + 1, y + 1)).astype(float)
    assert np.abs(after - (0.8 * 255 + 0.2 * nose)).max() <= 4
    box = region_box(frame, estimate_norm(KPS, "ffhq_512", 512), 512)
    for i, (a, b) in enumerate(zip(before, frame.planes)):
        keep = outside(box, a.shape, 1 if i == 0 else 2, 1 if i == 0 else 2)
        assert (a[keep] == b[keep]).all()


def test_blend_outside_zero_one_is_refused():
    with pytest.raises(ValueError):
        EnhanceStage(session(enhancer_model()), blend=1.5)

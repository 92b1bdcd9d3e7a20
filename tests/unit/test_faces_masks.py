"""Masks (issue 14.3): the box's blur and padding, the inward softening, the combination by
minimum, region selection, the models' pre/post-processing checked against computations
written from their public description (XSeg: NHWC BGR x/255; BiSeNet: NCHW RGB with
ImageNet mean/std, argmax over 19 classes), the face mask's frame box, the options and the
label, and the demo stand-ins' behaviour. No process, no video."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from skimage.transform import SimilarityTransform

from farm.errors import InputError
from farm.faces import masks
from farm.faces.mask_stage import MaskStage
from farm.faces.options import validate_options
from farm.faces.paste import feather_mask
from farm.faces.types import Face
from farm.models.demo import default_manifest_path
from farm.models.manifest import load_manifest
from farm.models.standins_masks import (
    OCCLUDER_KEY_BGR,
    face_parser_standin,
    occluder_standin,
)
from farm.pipeline import regions
from tests.unit.test_faces_standins import KPS, astronaut_frame

ARCFACE_128 = np.array([[0.36167656, 0.40387734], [0.63696719, 0.40235469], [0.50019687, 0.56044219],
                        [0.38710391, 0.72160547], [0.61507734, 0.72034453]])


def real_entry(role: str):
    return load_manifest(default_manifest_path()).entry(role)


def standin_session(role: str) -> ort.InferenceSession:
    make = {"occluder": occluder_standin, "face_parser": face_parser_standin}[role]
    return ort.InferenceSession(make(real_entry(role)).SerializeToString(), providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------- box: blur and padding


@pytest.mark.parametrize("size", [128, 256, 384, 512, 768, 1024])
def test_the_default_box_is_the_feather_every_face_had(size):
    assert np.array_equal(masks.box_mask(size), feather_mask(size))


def test_blur_sets_the_zero_border_and_the_feather():
    size, blur = 256, 0.5
    m = masks.box_mask(size, blur)
    border = round(size * blur / 4)   # FaceFusion: blur amount = size * blur / 2, zero area = half of it
    assert m[0].max() == 0 and m[:, 0].max() == 0 and m[-1].max() == 0 and m[:, -1].max() == 0
    assert m[size // 2, size // 2] == pytest.approx(1.0, abs=1e-6)
    row = m[size // 2, : size // 2]
    assert np.all(np.diff(row) >= -1e-7)   # rises from the edge to the middle
    assert row[0] == 0.0 < row[border // 2] < row[border] < row[2 * border] < 1.0   # feathered across the border
    wider = masks.box_mask(size, 0.8)
    assert wider[size // 2, border] < m[size // 2, border]   # more blur reaches further in


def test_blur_zero_is_a_hard_box_with_a_one_pixel_border():
    m = masks.box_mask(64, 0.0)
    expected = np.zeros((64, 64), np.float32)
    expected[1:-1, 1:-1] = 1.0
    assert np.array_equal(m, expected)


def test_padding_zeroes_each_side_by_its_percentage():
    size = 200
    m = masks.box_mask(size, 0.0, (25.0, 10.0, 0.0, 50.0))   # top, right, bottom, left
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    assert (rows[0], rows[-1] + 1) == (50, size - 1)     # 25% of 200 on top, the 1 px border at the bottom
    assert (cols[0], cols[-1] + 1) == (100, size - 20)   # 50% on the left, 10% on the right
    soft = masks.box_mask(size, 0.28, (25.0, 0.0, 0.0, 0.0))
    assert soft[:50].max() < 0.5 and soft[0].max() == 0 and soft[-1].max() == 0
    assert soft[:, 0].max() == 0 and soft[size // 2 + 30, size // 2] == pytest.approx(1.0, abs=1e-6)
    assert masks.box_mask(size, 0.28, (60.0, 0.0, 50.0, 0.0)).max() == 0.0   # nothing left


# ---------------------------------------------------------------- soften, combine, regions


def test_soften_keeps_excluded_pixels_at_zero_and_draws_edges_in():
    m = np.ones((256, 256), np.float32)
    m[:, :128] = 0.0
    s = masks.soften(m)
    assert s[:, :128].max() == 0.0 and np.all(s <= m)
    assert s[128, 250] == pytest.approx(1.0, abs=1e-6) and 0.0 <= s[128, 130] < 0.5 < s[128, 150]


def test_masks_combine_by_their_minimum():
    rng = np.random.default_rng(3)
    a, b, c = (rng.random((32, 32)).astype(np.float32) for _ in range(3))
    got = masks.combine([a, b, c])
    expected = np.array([[min(a[i, j], b[i, j], c[i, j]) for j in range(32)] for i in range(32)], np.float32)
    assert np.array_equal(got, expected)
    with pytest.raises(ValueError):
        masks.combine([])


def test_region_selection_is_the_argmax_class_among_the_chosen_regions():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((1, 19, 16, 16)).astype(np.float32)
    chosen = ["skin", "nose", "lower-lip"]
    got = masks.region_mask(logits, chosen)
    for i in range(16):
        for j in range(16):
            best = int(np.argmax(logits[0, :, i, j]))
            assert got[i, j] == (1.0 if best in (1, 10, 13) else 0.0)
    assert masks.FACE_REGIONS["mouth"] == 11 and set(masks.FACE_REGIONS.values()) == {1, 2, 3, 4, 5, 6, 10, 11, 12, 13}


# ---------------------------------------------------------------- the models' inputs, independently


def test_model_inputs_follow_the_public_descriptions():
    crop = np.random.default_rng(5).integers(0, 256, (8, 8, 3), dtype=np.uint8)   # BGR
    occ = masks.occluder_input(crop)
    assert occ.shape == (1, 8, 8, 3) and occ.dtype == np.float32
    for c in range(3):   # XSeg: channels as read (B, G, R), divided by 255
        assert np.allclose(occ[0, :, :, c], crop[:, :, c] / 255.0)
    par = masks.parser_input(crop)
    assert par.shape == (1, 3, 8, 8) and par.dtype == np.float32
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    for c, bgr_index in enumerate((2, 1, 0)):   # BiSeNet: R, G, B planes, ImageNet mean/std
        assert np.allclose(par[0, c], (crop[:, :, bgr_index] / 255.0 - mean[c]) / std[c], atol=1e-6)
    out = np.full((1, 8, 8, 1), 1.5, np.float32)
    out[0, 0, 0, 0] = -0.2
    got = masks.occluder_mask(out)
    assert got.shape == (8, 8) and got[0, 0] == 0.0 and got[1, 1] == 1.0   # clipped to 0..1


class Recorder:
    """A session that records what it is fed and answers a fixed output."""

    def __init__(self, name: str, shape: list, outputs: list[np.ndarray]) -> None:
        self.inputs = [SimpleNamespace(name=name, shape=shape, type="tensor(float)")]
        self.outputs = outputs
        self.fed: list[np.ndarray] = []

    def get_inputs(self):
        return self.inputs

    def get_outputs(self):
        return [SimpleNamespace(name=f"out{i}", shape=list(o.shape)) for i, o in enumerate(self.outputs)]

    def run(self, names, feed):
        self.fed.append(next(iter(feed.values())))
        return self.outputs[: len(names)] if names else self.outputs


def independent_crop(frame, size: int) -> np.ndarray:
    """The arcface_128-aligned crop of the whole frame, by skimage's similarity estimate."""
    tform = SimilarityTransform.from_estimate(KPS.astype(np.float64), ARCFACE_128 * size)
    full = regions.read_bgr(frame, (0, 0, frame.width, frame.height))
    return cv2.warpAffine(full, tform.params[:2], (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def test_the_stage_feeds_each_model_its_aligned_crop_as_described():
    frame = astronaut_frame()
    frame.faces = [Face([175, 62, 275, 165], 0.9, KPS)]
    occluder = Recorder("input", ["batch", 256, 256, 3], [np.ones((1, 256, 256, 1), np.float32)])
    logits = np.zeros((1, 19, 512, 512), np.float32)
    logits[0, 1] = 1.0   # skin everywhere
    parser = Recorder("input", ["batch", 3, 512, 512], [logits, logits * 0, logits * 0])
    MaskStage(("box", "occlusion", "region"), occluder=occluder, parser=parser).process(frame)
    crop256, crop512 = independent_crop(frame, 256), independent_crop(frame, 512)
    fed_occ, fed_par = occluder.fed[0], parser.fed[0]
    expected_occ = crop256.astype(np.float32)[None] / 255.0
    expected_par = np.stack([(crop512[..., 2 - c] / 255.0 - m) / s for c, (m, s) in
                             enumerate(zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))])[None]
    assert fed_occ.shape == (1, 256, 256, 3) and fed_par.shape == (1, 3, 512, 512)
    assert np.abs(fed_occ - expected_occ).mean() < 0.5 / 255 and np.abs(fed_occ - expected_occ).max() <= 3 / 255
    assert np.abs(fed_par - expected_par).mean() < 0.01 and np.abs(fed_par - expected_par).max() < 0.06
    face_mask = frame.faces[0].mask
    (x0, y0, x1, y1), values = face_mask.area
    assert values.shape == (y1 - y0, x1 - x0) and values.max() == pytest.approx(1.0, abs=1e-5)
    assert values[0, 0] == 0.0   # outside the crop's footprint (its rotated corner): 0


def test_face_mask_over_a_box_reads_its_area_and_zero_beyond():
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    fm = masks.FaceMask(area=((10, 20, 14, 23), values), limited=True)
    got = fm.over((12, 19, 16, 22))   # overlaps the area's right part, one row above it
    assert got.shape == (3, 4)
    assert np.array_equal(got[0], np.zeros(4)) and np.array_equal(got[1:, :2], values[:2, 2:])
    assert np.array_equal(got[1:, 2:], np.zeros((2, 2)))
    assert masks.FaceMask().over((0, 0, 4, 4)) is None   # box only: nothing beyond the crop mask
    assert masks.FaceMask(limited=True).over((0, 0, 4, 4)).max() == 0.0   # asked for, not found: no change
    assert masks.FaceMask(box=False).crop_mask(8).min() == 1.0


# ---------------------------------------------------------------- options, roles, label


def test_mask_options_convert_check_and_name_themselves():
    default = validate_options({})
    assert (default["mask"], default["mask_blur"], default["mask_padding"]) == (["box"], 0.28, [0.0] * 4)
    assert default["mask_regions"] == list(masks.FACE_REGIONS)
    assert not MaskStage.wanted(default) and MaskStage.roles(default, None) == []
    opts = validate_options({"mask": "box,occlusion,region", "mask_regions": "skin,nose", "mask_blur": 0.5,
                             "mask_padding": "10,0,5,0"})
    assert opts["mask"] == ["box", "occlusion", "region"] and opts["mask_padding"] == [10.0, 0.0, 5.0, 0.0]
    assert MaskStage.wanted(opts) and MaskStage.roles(opts, None) == ["occluder", "face_parser"]
    assert MaskStage.label(opts, None) == "mask (box+occlusion+region; blur 0.5; padding 10,0,5,0; regions skin,nose)"
    assert MaskStage.label(validate_options({"mask": ["box", "occlusion"]}), None) == "mask (box+occlusion)"
    assert MaskStage.wanted(validate_options({"mask_padding": [0, 0, 10, 0]}))
    for bad, match in (({"mask": "box,hands"}, "mask must be one or more of box, occlusion, region"),
                       ({"mask_padding": "10,0"}, "mask_padding must be 4 numbers in 0..100 %"),
                       ({"mask_regions": "skin,ears"}, "mask_regions must be one or more of skin"),
                       ({"mask_regions": "skin"}, "mask_regions = skin needs region in mask")):
        with pytest.raises(InputError, match=match):
            validate_options(bad)


# ---------------------------------------------------------------- the demo stand-ins


def test_the_occluder_standin_covers_its_key_colour_only_as_bgr_over_255():
    sess = standin_session("occluder")
    crop = np.full((256, 256, 3), 128, np.uint8)
    crop[:, :100] = OCCLUDER_KEY_BGR
    out = masks.occluder_mask(sess.run(None, {"input": masks.occluder_input(crop)})[0])
    assert out[:, :100].max() == 0.0 and out[:, 100:].min() == 1.0
    as_rgb = masks.occluder_input(np.ascontiguousarray(crop[..., ::-1]))
    assert sess.run(None, {"input": as_rgb})[0].min() == 1.0   # fed RGB: nothing found
    assert sess.run(None, {"input": crop[None].astype(np.float32)})[0].min() == 1.0   # fed 0..255: nothing


def test_the_parser_standin_labels_regions_where_the_template_puts_them():
    sess = standin_session("face_parser")
    outs = sess.run(None, {"input": np.zeros((2, 3, 512, 512), np.float32)})
    assert len(outs) == 3 and all(o.shape == (2, 19, 512, 512) for o in outs)
    labels = outs[0][1].argmax(axis=0)
    at = {name: labels[int(v * 512), int(u * 512)] for name, (u, v) in
          zip(("left-eye", "right-eye", "nose", "left-mouth", "right-mouth"), ARCFACE_128)}
    assert at["left-eye"] == 4 and at["right-eye"] == 5 and at["nose"] == 10
    mouth = labels[int(0.72 * 512), int(0.5 * 512)]
    assert mouth == masks.FACE_REGIONS["mouth"] and labels[5, 5] == 0 and labels[256, 120] == 1


def test_a_pack_without_the_mask_model_is_refused_at_submit_naming_it():
    pack = SimpleNamespace(name="mine", has=lambda role: role in ("swapper", "occluder"))
    MaskStage.check_models(validate_options({"mask": "box,occlusion"}), pack)   # it has an occluder
    with pytest.raises(InputError, match="needs a BiSeNet face parser .* pack mine has no 'face_parser' model"):
        MaskStage.check_models(validate_options({"mask": "box,occlusion,region"}), pack)

"""A choice of swapper and restorer (issue 14.2): each model of the default manifest runs
through its stage with the stand-in the farm generates for it, and the stage's pre- and
post-processing (channel order, range, normalisation, template, source latent) agree
with a computation written here from the models' public descriptions, not from
farm.models.conventions.

Public facts used (FaceFusion's model sets, insightface, GFPGAN's facexlib template):
hyperswap_1x_256: arcface_128 points at 256 px, RGB (x/255-0.5)/0.5 in and out, source
= e/|e|; simswap_256: the original ArcFace 112 points at 256 px, RGB with ImageNet
mean/std in, 0..1 out, source = normalise(crossface_simswap(e)); CodeFormer and
GPEN-BFR: FFHQ 512 points at the model's size, RGB (x/255-0.5)/0.5 in and out,
CodeFormer's fidelity a float64 [1] input named weight.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import skimage.data
from onnx import numpy_helper
from skimage.transform import SimilarityTransform

from farm.errors import InputError
from farm.faces import stages
from farm.faces.align import estimate_norm, warp_face
from farm.faces.chain import build_chain, latent_for_pack
from farm.faces.enhance import EnhanceStage
from farm.faces.options import validate_options
from farm.faces.swap import SwapStage, source_latent
from farm.models.conventions import conventions
from farm.models.demo import build_demo_pack
from farm.models.packs import load_pack
from tests.unit.test_faces_standins import KPS, astronaut_frame

ARCFACE_128_PX = np.array([[46.2946, 51.6963], [81.5318, 51.5014], [64.0252, 71.7366], [49.5493, 92.3655],
                           [78.7299, 92.2041]]) / 128.0   # insightface arcface_dst, x + 8, of a 128 px crop
ARCFACE_112_V1_PX = np.array([[39.7300, 51.1380], [72.2700, 51.1380], [56.0000, 68.4930], [42.4630, 87.0100],
                              [69.5370, 87.0100]]) / 112.0
FFHQ_512_PX = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                        [201.26117, 371.41043], [313.08905, 371.15118]]) / 512.0

SWAPPERS = {
    "hyperswap_1a_256": dict(points=ARCFACE_128_PX, mean=(0.5,) * 3, std=(0.5,) * 3, out=(-1.0, 1.0)),
    "hyperswap_1b_256": dict(points=ARCFACE_128_PX, mean=(0.5,) * 3, std=(0.5,) * 3, out=(-1.0, 1.0)),
    "hyperswap_1c_256": dict(points=ARCFACE_128_PX, mean=(0.5,) * 3, std=(0.5,) * 3, out=(-1.0, 1.0)),
    "simswap_256": dict(points=ARCFACE_112_V1_PX, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                        out=(0.0, 1.0)),
}
ENHANCERS = {"codeformer": 512, "gpen_bfr_512": 512, "gpen_bfr_1024": 1024}


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("packs") / "demo"
    build_demo_pack(folder)
    return load_pack(str(folder), models_dir=folder.parent, providers="cpu")


def weights(pack, name: str) -> dict[str, np.ndarray]:
    """The initializers of the pack's stand-in file for `name`, by name."""
    model = onnx.load(str(pack.path(name)))
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def face_crop(size: int, points: np.ndarray) -> np.ndarray:
    """The astronaut's face aligned by skimage's own similarity estimate onto points * size."""
    bgr = np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])
    return warp_face(bgr, _similarity(KPS, points * size), size)


def rgb_planes(crop_bgr: np.ndarray, mean, std) -> np.ndarray:
    rgb = crop_bgr[..., ::-1].astype(np.float64) / 255.0
    return ((rgb - np.array(mean)) / np.array(std)).transpose(2, 0, 1)


def to_pixels(planes: np.ndarray, lo: float, hi: float) -> np.ndarray:
    unit = np.clip((planes - lo) / (hi - lo), 0.0, 1.0)
    return np.rint(unit.transpose(1, 2, 0)[..., ::-1] * 255.0)


@pytest.mark.parametrize("name", list(SWAPPERS))
def test_each_swapper_is_fed_and_read_as_its_public_code_says(pack, name):
    public = SWAPPERS[name]
    identity = np.random.default_rng(7).standard_normal(512)
    if name.startswith("simswap"):
        converted = identity @ weights(pack, "crossface_simswap")["q"].astype(np.float64)
        expected_latent = converted / np.linalg.norm(converted)
    else:
        expected_latent = identity / np.linalg.norm(identity)
    latent = source_latent(identity, pack, name)
    np.testing.assert_allclose(latent, expected_latent, atol=1e-5)
    assert np.array_equal(latent, latent_for_pack(identity, pack, {"swapper": name}))

    feeding = conventions(pack.entry(name))
    stage = SwapStage(pack.session(name), latent, "native", feeding)
    assert stage.crop_size == 256
    np.testing.assert_allclose(estimate_norm(KPS, stage.template, 256),
                               _similarity(KPS, public["points"] * 256), atol=1e-6)   # the template
    crop = face_crop(256, public["points"])
    w = weights(pack, name)
    planes = rgb_planes(crop, public["mean"], public["std"])
    lo, hi = public["out"]
    out = np.clip(planes * w["gain"].reshape(3, 1, 1) + (latent.astype(np.float64) @ w["projection"]).reshape(3, 1, 1),
                  lo, hi)
    got = stage.run_crop(crop).astype(np.int16)
    assert np.abs(got - to_pixels(out, lo, hi)).max() <= 1
    swapped_rb = to_pixels(out[::-1], lo, hi)   # a swapped channel order would be far off
    assert np.abs(got - swapped_rb).max() > 20


@pytest.mark.parametrize("name", list(ENHANCERS))
def test_each_restorer_is_fed_and_read_as_its_public_code_says(pack, name):
    size = ENHANCERS[name]
    stage = EnhanceStage(pack.session(name), 1.0, conventions(pack.entry(name)), fidelity=0.7)
    assert stage.crop_size == size
    np.testing.assert_allclose(estimate_norm(KPS, stage.template, size), _similarity(KPS, FFHQ_512_PX * size),
                               atol=1e-6)
    crop = face_crop(size, FFHQ_512_PX)
    w = weights(pack, name)
    planes = rgb_planes(crop, (0.5,) * 3, (0.5,) * 3) * w["gain"].reshape(3, 1, 1) + w["bias"].reshape(3, 1, 1)
    if name == "codeformer":
        planes = planes + 0.7 * w["weight_gain"].reshape(3, 1, 1)
        other = EnhanceStage(pack.session(name), 1.0, conventions(pack.entry(name)), fidelity=0.1)
        assert not np.array_equal(other.run_crop(crop), stage.run_crop(crop))   # the weight reaches the model
    got = stage.run_crop(crop).astype(np.int16)
    assert np.abs(got - to_pixels(np.clip(planes, -1, 1), -1.0, 1.0)).max() <= 1


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """skimage's least-squares similarity src -> dst, 2x3 (an estimate independent of farm's)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if hasattr(SimilarityTransform, "from_estimate"):
        return SimilarityTransform.from_estimate(src, dst).params[:2]
    tform = SimilarityTransform()
    assert tform.estimate(src, dst)
    return tform.params[:2]


def test_a_chain_with_a_chosen_swapper_and_restorer_changes_the_face(pack):
    options = validate_options({"faces": "all", "swapper": "simswap_256", "enhancer": "gpen_bfr_512"})
    identity = np.random.default_rng(3).standard_normal(512)
    chain = build_chain(options, pack, latent_for_pack(identity, pack, options))
    swap = next(s for s in chain.stages if s.name == "swap")
    enhance = next(s for s in chain.stages if s.name == "enhance")
    assert (swap.crop_size, swap.template, enhance.crop_size) == (256, "arcface_112_v1", 512)
    frame = astronaut_frame()
    before = frame.planes[0].copy()
    chain.process(frame)
    assert frame.faces_changed == 1 and not np.array_equal(before, frame.planes[0])


def test_choices_are_checked_against_the_pack_at_submit_and_named_in_the_label(pack):
    def check(**given):
        options = validate_options({"faces": "all", **given})
        stages.check_models(options, pack)
        return options

    with pytest.raises(InputError, match="has no swapper 'nosuch'") as refused:
        check(swapper="nosuch")
    assert "hyperswap_1a_256" in refused.value.hint and "simswap_256" in refused.value.hint
    with pytest.raises(InputError, match="has no swapper 'codeformer'"):
        check(swapper="codeformer")          # a restorer is not a swapper
    with pytest.raises(InputError, match="has no enhancer 'hyperswap_1a_256'"):
        check(enhancer="hyperswap_1a_256")
    with pytest.raises(InputError, match="gfpgan_1.4 has no fidelity weight input"):
        check(enhancer_fidelity=0.9)
    with pytest.raises(InputError, match="multiple of|is refused"):
        check(swapper="hyperswap_1a_256", pixel_boost="384")   # 384 is not a multiple of 256

    options = check(swapper="simswap_256", enhancer="codeformer", enhancer_fidelity=0.7, pixel_boost="512")
    assert stages.required_roles(options, pack)[-3:] == ["simswap_256", "crossface_simswap", "codeformer"]
    label = stages.face_label(options, pack, pack_ref="demo")
    assert label["models"]["swapper"]["name"] == "demo-simswap_256"
    assert label["models"]["embedding_converter"]["name"] == "demo-crossface_simswap"
    assert label["models"]["enhancer"]["name"] == "demo-codeformer"
    assert label["stage_labels"] == {"swap": "swap (demo-simswap_256, pixel boost 512)",
                                     "enhance": "enhance (demo-codeformer, fidelity 0.7)"}
    plain = check()
    assert "stage_labels" not in stages.face_label(plain, pack, pack_ref="demo")
    assert stages.face_label(plain, pack, pack_ref="demo")["models"]["swapper"]["name"] == "demo-inswapper_128"
    off = check(enhancer="none")
    assert [s.name for s in stages.wanted_stages(off)] == ["detect", "select", "swap"]


def test_a_pack_directory_may_add_its_own_swapper(pack, tmp_path: Path):
    """A fine-tuned file in a pack folder: same manifest format, its own kind and template."""
    import shutil

    folder = tmp_path / "mine"
    shutil.copytree(pack.root, folder)
    text = (folder / "manifest.toml").read_text()
    text = text.replace('name = "demo"', 'name = "mine"', 1)
    block = text[text.index('name = "demo-hyperswap_1a_256"'):]
    block = block[:block.index("[[model]]")] if "[[model]]" in block else block
    mine = block.replace('name = "demo-hyperswap_1a_256"', 'name = "my_finetune_256"').replace(
        'template = "arcface_128"', 'template = "ffhq_512"').replace(
        'file = "demo_hyperswap_1a_256.onnx"', 'file = "my_finetune_256.onnx"')
    shutil.copy(folder / "demo_hyperswap_1a_256.onnx", folder / "my_finetune_256.onnx")
    (folder / "manifest.toml").write_text(text + "\n[[model]]\n" + mine)
    own = load_pack(str(folder), models_dir=tmp_path, providers="cpu")
    options = validate_options({"faces": "all", "swapper": "my_finetune_256"})
    stages.check_models(options, own)
    stage = next(s for s in build_chain(options, own, np.ones(512, np.float32) / np.sqrt(512)).stages
                 if s.name == "swap")
    assert stage.template == "ffhq_512" and stage.crop_size == 256

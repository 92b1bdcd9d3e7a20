"""Masks (issue 14.3) on a real face and through the farm.

On skimage's astronaut (a real photo, as a bt601 yuv420p frame) with the demo pack's
stand-ins of the real models' inputs and outputs (swapper, enhancer, occluder, face
parser; ONNX Runtime CPU), the mask stage, swap and enhance run as a worker chains them:
a flat "glove" over half the face keeps its decoded pixels with mask box,occlusion (and
is painted over without it); with mask box,region and the mouth left out of
mask_regions, the mouth keeps its pixels (and changes with all regions); and wherever the
face's mask is 0, outside the face's region included, every sample of every plane is
unchanged. Then the options are a `farm submit` flag, a spec-file key, an API field and
in the OpenAPI schema, and a real demo job with masks (real clip, ffmpeg, SQLite) runs
them, loads the two new models and says so in its label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import skimage.data
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import farm.cli.main as cli
from farm.errors import InputError
from farm.faces.align import estimate_norm, transform_points
from farm.faces.enhance import EnhanceStage
from farm.faces.mask_stage import MaskStage
from farm.faces.masks import FACE_REGIONS
from farm.faces.options import validate_options
from farm.faces.swap import SwapStage
from farm.faces.types import Face
from farm.jobs.spec import CLI, check_options, load_spec
from farm.models.demo import default_manifest_path
from farm.models.manifest import load_manifest
from farm.models.standins import standin_for
from farm.models.standins_masks import OCCLUDER_KEY_BGR, PARSER_LAYOUT
from farm.pipeline.frame import Frame
from farm.state.tokens import create_token
from tests import clips, media_checks
from tests.face_scenes import ASTRONAUT_FACE, to_i420
from tests.integration.test_face_stages import render
from tests.unit.test_faces_standins import KPS

GLOVE = (168, 56, 226, 176)
"""x0, y0, x1, y1 of the flat glove drawn over the left half of the astronaut's face (her right
eye and mouth corner; the face box is 175..275 wide, its middle at x ~225)."""
MARGIN_PX = 3


def sessions() -> dict[str, ort.InferenceSession]:
    manifest = load_manifest(default_manifest_path())
    return {role: ort.InferenceSession(standin_for(manifest.entry(role)).SerializeToString(),
                                       providers=["CPUExecutionProvider"])
            for role in ("swapper", "enhancer", "occluder", "face_parser")}


SESSIONS = sessions()
LATENT = np.random.default_rng(143).standard_normal(512).astype(np.float32)
LATENT /= np.linalg.norm(LATENT)


def astronaut(glove: bool = False) -> Frame:
    bgr = np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])
    if glove:
        x0, y0, x1, y1 = GLOVE
        bgr[y0:y1, x0:x1] = OCCLUDER_KEY_BGR
    frame = Frame.from_arrays(to_i420(bgr), "yuv420p", colorspace="bt601")
    frame.faces = [Face(ASTRONAUT_FACE, 0.9, KPS)]
    return frame


def rendered(frame: Frame, **options) -> Frame:
    """The frame through mask (when wanted), swap and enhance, built from these options."""
    opts = validate_options(options)
    chain = []
    if MaskStage.wanted(opts):
        chain.append(MaskStage(opts["mask"], opts["mask_blur"], opts["mask_padding"], opts["mask_regions"],
                               occluder=SESSIONS["occluder"], parser=SESSIONS["face_parser"]))
    chain += [SwapStage(SESSIONS["swapper"], LATENT), EnhanceStage(SESSIONS["enhancer"], 0.8)]
    for stage in chain:
        frame = stage.process(frame)
    assert frame.faces_changed == 1
    return frame


def face_mask_plane(frame: Frame) -> np.ndarray:
    """The face's mask on the whole frame (0 outside its box)."""
    (x0, y0, x1, y1), values = frame.faces[0].mask.area
    full = np.zeros((frame.height, frame.width), np.float32)
    full[y0:y1, x0:x1] = values
    return full


def assert_unchanged_where_the_mask_is_zero(before: Frame, after: Frame) -> None:
    zero = face_mask_plane(after) == 0.0
    assert zero.mean() > 0.9   # most of the frame: everything outside the face's region
    y_before, y_after = before.planes[0], after.planes[0]
    assert np.array_equal(y_before[zero], y_after[zero])
    chroma_zero = zero.reshape(before.height // 2, 2, before.width // 2, 2).all(axis=(1, 3))
    for k in (1, 2):
        assert np.array_equal(before.planes[k][chroma_zero], after.planes[k][chroma_zero]), k


def inside(box, margin: int) -> tuple[slice, slice]:
    x0, y0, x1, y1 = box
    return slice(y0 + margin, y1 - margin), slice(x0 + margin, x1 - margin)


def test_a_glove_over_half_the_face_keeps_its_pixels_with_occlusion():
    original = astronaut(glove=True)
    out = rendered(astronaut(glove=True), mask="box,occlusion")
    rows, cols = inside(GLOVE, MARGIN_PX)
    covered = face_mask_plane(out)[rows, cols]
    assert covered.max() == 0.0
    assert np.array_equal(out.planes[0][rows, cols], original.planes[0][rows, cols])
    for k in (1, 2):
        assert np.array_equal(out.planes[k][rows.start // 2 + 1:rows.stop // 2 - 1, cols.start // 2 + 1:cols.stop // 2 - 1],
                              original.planes[k][rows.start // 2 + 1:rows.stop // 2 - 1,
                                                 cols.start // 2 + 1:cols.stop // 2 - 1])
    visible = (slice(100, 150), slice(235, 265))   # her left cheek, beside the glove
    diff = np.abs(out.planes[0][visible].astype(int) - original.planes[0][visible].astype(int))
    assert diff.mean() > 4, diff.mean()   # the rest of the face is swapped
    assert_unchanged_where_the_mask_is_zero(original, out)
    plain = rendered(astronaut(glove=True))   # box only: the glove is painted over
    assert plain.faces[0].mask is None
    changed = np.abs(plain.planes[0][rows, cols].astype(int) - original.planes[0][rows, cols].astype(int))
    assert (changed > 2).mean() > 0.3


def mouth_pixels(frame: Frame, margin: float = 0.015) -> np.ndarray:
    """True for the frame's luma pixels the stand-in parser calls mouth, kept `margin` (crop
    fraction) inside its box, from the face's landmarks and the arcface_128 template."""
    (u0, v0, u1, v1), = [box for name, _, box in PARSER_LAYOUT if name == "mouth"]
    yy, xx = np.mgrid[0:frame.height, 0:frame.width]
    uv = transform_points(estimate_norm(KPS, "arcface_128", 1.0), np.stack([xx.ravel(), yy.ravel()], 1))
    u, v = uv[:, 0].reshape(yy.shape), uv[:, 1].reshape(yy.shape)
    return (u > u0 + margin) & (u < u1 - margin) & (v > v0 + margin) & (v < v1 - margin)


def test_leaving_the_mouth_out_of_the_regions_keeps_its_pixels():
    original = astronaut()
    regions = [name for name in FACE_REGIONS if name != "mouth"]
    out = rendered(astronaut(), mask="box,region", mask_regions=",".join(regions))
    mouth = mouth_pixels(out)
    assert mouth.sum() > 30
    assert face_mask_plane(out)[mouth].max() == 0.0
    assert np.array_equal(out.planes[0][mouth], original.planes[0][mouth])
    skin = (slice(125, 135), slice(230, 245))   # her cheek, by the nose
    assert np.abs(out.planes[0][skin].astype(int) - original.planes[0][skin].astype(int)).mean() > 4
    assert_unchanged_where_the_mask_is_zero(original, out)
    every = rendered(astronaut(), mask="box,region")   # all regions: the mouth is swapped too
    assert (np.abs(every.planes[0][mouth].astype(int) - original.planes[0][mouth].astype(int)) > 2).mean() > 0.5


def test_padding_and_blur_keep_a_box_only_job_inside_its_box():
    original = astronaut()
    out = rendered(astronaut(), mask_padding="30,0,0,0", mask_blur=0.5)
    face_mask = out.faces[0].mask
    assert face_mask is not None and face_mask.area is None and face_mask.padding == (30.0, 0.0, 0.0, 0.0)
    forehead = (slice(66, 76), slice(205, 245))   # the top 30% of the swap crop: not pasted by swap
    default = rendered(astronaut())
    top = np.abs(out.planes[0][forehead].astype(int) - original.planes[0][forehead].astype(int)).mean()
    assert top < np.abs(default.planes[0][forehead].astype(int) - original.planes[0][forehead].astype(int)).mean()




def test_mask_options_are_flags_spec_keys_api_fields_and_in_the_schema(api_app, submit_with_faces, farm_home, tmp_path,
                                                                      monkeypatch):
    shown = CliRunner().invoke(cli.app, ["submit", "--help"], env={"COLUMNS": "240"})
    assert shown.exit_code == 0, shown.output
    for text in ("--mask ", "box[,occlusion][,region]", "--mask-blur", "--mask-padding", "TOP,RIGHT,BOTTOM,LEFT",
                 "--mask-regions"):
        assert text in shown.output, (text, shown.output)
    given: dict = {}
    monkeypatch.setattr(cli, "run_submit", lambda video, options, **kw: given.update(options))
    args = ["submit", "v.mp4", "--mask", "box,occlusion", "--mask-padding", "10,0,0,0", "--mask-blur", "0.4",
            "--mask-regions", "skin,nose"]
    assert CliRunner().invoke(cli.app, args).exit_code == 0
    assert check_options(given, "the command line", names=CLI) == {
        "mask": ["box", "occlusion"], "mask_padding": [10.0, 0.0, 0.0, 0.0], "mask_blur": 0.4,
        "mask_regions": ["skin", "nose"]}
    with pytest.raises(InputError, match="--mask must be one or more of box, occlusion, region"):
        check_options({"mask": "box,hands"}, "the command line", names=CLI)
    spec = tmp_path / "render.toml"
    spec.write_text('mask = ["box", "region"]\nmask-regions = "skin,nose,upper-lip"\nmask_padding = [0, 5, 0, 5]\n')
    assert load_spec(spec) == {"mask": ["box", "region"], "mask_regions": ["skin", "nose", "upper-lip"],
                               "mask_padding": [0.0, 5.0, 0.0, 5.0]}
    settings, db, app = api_app   # a migrated database and the app (conftest)
    body = app.openapi()["paths"]["/jobs"]["post"]["requestBody"]["content"]
    for kind in ("multipart/form-data", "application/json"):
        props = body[kind]["schema"]["properties"]
        assert props["mask"]["anyOf"][0]["items"]["enum"] == ["box", "occlusion", "region"], props["mask"]
        assert props["mask"]["default"] == ["box"] and props["mask_padding"]["anyOf"][0]["maxItems"] == 4
        assert props["mask_blur"]["default"] == 0.28 and "mouth" in props["mask_regions"]["anyOf"][0]["items"]["enum"]
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {create_token(db, 'ci')}"
    refused = client.post("/jobs", json={"path": "clip.mp4", "mask": ["box", "hands"]})
    assert refused.status_code == 422 and "mask must be one or more of" in refused.json()["detail"], refused.text
    refused = client.post("/jobs", files={"video": ("clip.mp4", b"not a video", "video/mp4")},
                          data={"mask_padding": "10,0,0"})   # a form field: text, comma-separated
    assert refused.status_code == 422 and "mask_padding must be 4 numbers" in refused.json()["detail"], refused.text
    db.dispose()


def test_a_masked_demo_job_runs_loads_the_mask_models_and_says_so(inproc, tmp_path):
    settings, db, ctx = inproc
    video = clips.make_clip(tmp_path / "face.mp4", width=480, height=270, seconds=0.5, moving_face=True)
    regions = "skin,nose,left-eye,right-eye"
    job = render(settings, db, ctx, video, tmp_path / "out" / "face.farm.mp4", mask="box,occlusion,region",
                 mask_regions=regions)
    assert sum(c.faces_changed for c in job.chunks) > 0
    assert job.models["stages"] == ["mask", "swap", "enhance"]
    label = f"mask (box+occlusion+region; regions {regions})"
    assert job.models["stage_labels"] == {"mask": label}
    assert {"occluder", "face_parser"} <= set(job.models["models"]), job.models
    mask = next(stage for stage in ctx.chain_for(job).stages if stage.name == "mask")
    assert (mask.occluder_size, mask.parser_size, mask.face_regions) == (256, 512, tuple(regions.split(",")))
    tags = media_checks.container_tags(job.output_path)
    assert f"faces altered by {label} + swap + enhance in " in tags["comment"], tags
    assert Path(job.output_path).is_file()

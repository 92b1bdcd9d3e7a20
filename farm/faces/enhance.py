"""Face restoration: an aligned crop in, the restored crop out, blended with the original.

Which restorer runs is the job's `enhancer` option (a manifest entry of the pack; default
the pack's `enhancer` role, GFPGAN 1.4; `none` turns restoration off): GFPGAN 1.4,
CodeFormer, GPEN-BFR 512/1024 all take [1,3,S,S] RGB (x/255-0.5)/0.5 on the FFHQ
template and answer in -1..1 (farm.models.conventions). A model with a second input
(CodeFormer's `weight`, float64 [1]) gets the job's `enhancer_fidelity` there.
"""

from __future__ import annotations

from typing import Any, Mapping

import cv2
import numpy as np

from farm.errors import InputError
from farm.faces.model_stage import FaceModelStage
from farm.faces.options import Option
from farm.faces.session_io import SessionLike, run, to_planes
from farm.faces.swap import check_choice
from farm.models.conventions import ENHANCER, KINDS, Conventions
from farm.pipeline.frame import Frame

NO_ENHANCER = "none"

ENHANCE_SIZE = 512
ENHANCE_TEMPLATE = "ffhq_512"


class EnhanceStage(FaceModelStage):
    """Restores every face in frame.faces: blend * enhanced + (1 - blend) * original crop."""

    name = "enhance"
    options = {
        "enhance": Option("bool", True, "restore swapped faces with GFPGAN"),
        "enhance_blend": Option("float", 0.8, "share of the restored face in the result",
                                minimum=0.0, maximum=1.0),
        "enhancer": Option("str", None, "restorer model of the pack (`farm models list`): gfpgan_1.4 (the "
                           "default), codeformer, gpen_bfr_512, gpen_bfr_1024, a pack's own, or none",
                           metavar="MODEL"),
        "enhancer_fidelity": Option("float", 0.5, "CodeFormer's fidelity weight: 0 restores most, 1 keeps "
                                    "most of the input face (models with a weight input only)",
                                    minimum=0.0, maximum=1.0),
    }
    model_roles = ("enhancer",)
    crop_size = ENHANCE_SIZE
    template = ENHANCE_TEMPLATE

    def __init__(self, session: SessionLike, blend: float = 0.8, feeding: Conventions = KINDS["gfpgan"],
                 fidelity: float = 0.5) -> None:
        if not 0.0 <= blend <= 1.0:
            raise ValueError(f"enhance blend {blend} is outside 0..1")
        self.session = session
        self.blend = float(blend)
        self.feeding = feeding
        self.template = feeding.template
        inputs = session.get_inputs()
        image = [n for n in inputs if len(n.shape) == 4]
        if len(image) != 1:
            raise ValueError(f"enhancer inputs {[n.name for n in inputs]} have no single image input")
        self.input_name = image[0].name
        size = list(image[0].shape)[2]
        self.crop_size = size if isinstance(size, int) and size > 0 else ENHANCE_SIZE
        self.extra = {n.name: np.array([fidelity], np.float64) for n in inputs if n is not image[0]}
        """CodeFormer's weight input (float64 [1]): the fidelity."""

    @classmethod
    def wanted(cls, options: Mapping[str, Any]) -> bool:
        """Only when asked for, with a model, and with a share above 0 (a blend of 0 would
        change nothing)."""
        return (bool(options.get("enhance")) and options.get("enhancer") != NO_ENHANCER
                and float(options.get("enhance_blend") or 0) > 0)

    @classmethod
    def roles(cls, options: Mapping[str, Any], pack: Any) -> list[str]:
        return [enhancer_key(options)]

    @classmethod
    def check_models(cls, options: Mapping[str, Any], pack: Any) -> None:
        """The chosen restorer is a restorer of the pack; a fidelity other than the default
        needs one with a weight input."""
        key = enhancer_key(options)
        check_choice(pack, key, ENHANCER, "enhancer (--enhancer)")
        entry = pack.entry(key)
        default = cls.options["enhancer_fidelity"].default
        if options.get("enhancer_fidelity", default) != default and len(entry.inputs) < 2:
            raise InputError(f"option enhancer_fidelity (--enhancer-fidelity) is refused: {entry.name} has no "
                             "fidelity weight input", hint="use --enhancer codeformer, or leave the option out")

    @classmethod
    def label(cls, options: Mapping[str, Any], pack: Any) -> str:
        """`enhance`, or `enhance (codeformer, fidelity 0.7)` with a chosen model."""
        if not options.get("enhancer"):
            return cls.name
        entry = pack.entry(enhancer_key(options))
        fidelity = f", fidelity {options.get('enhancer_fidelity', 0.5):g}" if len(entry.inputs) > 1 else ""
        return f"{cls.name} ({entry.name}{fidelity})"

    @classmethod
    def build(cls, inputs: Any) -> "EnhanceStage":
        key = enhancer_key(inputs.options)
        return cls(inputs.session(key), inputs.options["enhance_blend"], inputs.feeding(key),
                   inputs.options["enhancer_fidelity"])

    def run_crop(self, crop_bgr: np.ndarray) -> np.ndarray:
        """The blended S x S BGR result for an aligned S x S BGR crop (S: the model's size)."""
        blob = to_planes([crop_bgr], self.feeding.mean, self.feeding.std)
        out = run(self.session, {self.input_name: blob, **self.extra})[0]
        return blend_planes(out, crop_bgr, self.feeding.output_range, self.blend)

    def process(self, frame: Frame) -> Frame:
        if self.blend == 0.0:
            return frame
        return super().process(frame)


def blend_planes(out: np.ndarray, crop_bgr: np.ndarray, output_range: tuple[float, float],
                 blend: float) -> np.ndarray:
    """uint8 BGR rint(clip(blend * clip((rgb - lo) * 255 / (hi - lo), 0, 255) + (1 - blend) * crop, 0, 255))
    for the model's RGB planes `out` (1 x 3 x S x S).

    Plane by plane, in place, in float32 (as the whole-image expression computes it with these
    Python scalars: bit-identical), without its HxWx3 float temporaries and strided copies
    (a 512 crop: ~5x faster; bench/bench_face_path.py)."""
    lo, hi = output_range
    h, w = crop_bgr.shape[:2]
    rgb = np.asarray(out, np.float32).reshape(3, h, w)
    planes = cv2.split(np.ascontiguousarray(crop_bgr))        # B, G, R
    result = []
    for c in range(3):                                         # BGR channel c is RGB plane 2 - c
        v = np.subtract(rgb[2 - c], lo)
        v *= 255.0 / (hi - lo)
        np.clip(v, 0.0, 255.0, out=v)
        v *= blend
        v += (1.0 - blend) * planes[c].astype(np.float32)
        np.rint(v, out=v)
        np.clip(v, 0, 255, out=v)
        result.append(v.astype(np.uint8))
    return cv2.merge(result)


def enhancer_key(options: Mapping[str, Any]) -> str:
    """The manifest key of the job's restorer: the `enhancer` option, else the role."""
    value = options.get("enhancer")
    return value if value and value != NO_ENHANCER else ENHANCER

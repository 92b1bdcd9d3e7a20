"""The mask stage: decides, from the original frame, where the pasting stages may change a face.

It runs after select and before swap, so the occluder and the face parser see each face
as it was decoded (a swapped face would hide the hand in front of it from the occluder).
For every face it sets `Face.mask` (farm.faces.masks.FaceMask): whether the pasting stages
use their feathered box and with what blur and padding, and, with occlusion or region,
the combined mask in frame coordinates over the face's region. Swap and enhance multiply
the box they warp back by it, so an occluded or excluded pixel keeps its decoded value
through the whole chain, and nothing outside the face's region is read or written.

Differences from FaceFusion, deliberate: the region mask is parsed from the original
face, not from the swapped one (what to keep is decided by what was there); both masks
are computed once per face, not once per processor; the crop is the swapper's (template
arcface_128), warped at each model's own size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from farm.errors import InputError
from farm.faces import masks
from farm.faces.align import estimate_norm, invert, shift, warp_face
from farm.faces.options import Option
from farm.faces.paste import region_box
from farm.faces.session_io import SessionLike, run
from farm.pipeline import regions
from farm.pipeline.frame import Frame
from farm.pipeline.stage import Stage

MASK_TEMPLATE = "arcface_128"
"""The alignment of the crop the mask models see (the swapper's, as in FaceFusion)."""
OCCLUDER_SIZE = 256
PARSER_SIZE = 512
"""Crop sizes (px) where a model's input does not fix them (XSeg 256, BiSeNet 512)."""


def _side(shape: Any, axis: int, default: int) -> int:
    value = list(shape)[axis] if len(list(shape)) == 4 else None
    return value if isinstance(value, int) and value > 0 else default


class MaskStage(Stage):
    """Sets each face's mask; runs only when the job's mask options differ from the defaults.

    Options: mask (box, occlusion, region: combined by their minimum), mask_blur and
    mask_padding (the box's feather and per-side padding, farm.faces.masks.box_mask),
    mask_regions (the face parser's classes that may change, with region).
    Roles: occluder (with occlusion), face_parser (with region).
    """

    name = "mask"
    options = {
        "mask": Option("list", masks.DEFAULT_MASK, "masks a face is pasted back with, combined by their minimum: "
                       "box (the crop's feathered square), occlusion (what covers the face stays: hands, hair; "
                       "an XSeg model), region (only the chosen face regions change; a BiSeNet face parser)",
                       choices=masks.MASK_TYPES, metavar="box[,occlusion][,region]"),
        "mask_blur": Option("float", masks.DEFAULT_MASK_BLUR, "feather of the box mask, as a fraction of the crop "
                            "(its zero border is a quarter of it)", minimum=0.0, maximum=1.0),
        "mask_padding": Option("numbers", masks.NO_PADDING, "padding of the box mask per side, in percent of the "
                               "crop", minimum=0.0, maximum=100.0, unit="%", count=4, metavar="TOP,RIGHT,BOTTOM,LEFT"),
        "mask_regions": Option("list", tuple(masks.FACE_REGIONS), "face regions that may change with --mask region",
                               choices=tuple(masks.FACE_REGIONS), metavar="REGION[,REGION...]"),
    }
    model_roles = ("occluder", "face_parser")
    alters = True
    """Not a pixel change of its own, but it decides which pixels swap and enhance change,
    so the output label names it (`mask (box+occlusion)`) when a job sets it."""

    def __init__(self, mask: Any = masks.DEFAULT_MASK, blur: float = masks.DEFAULT_MASK_BLUR,
                 padding: Any = masks.NO_PADDING, face_regions: Any = tuple(masks.FACE_REGIONS),
                 occluder: SessionLike | None = None, parser: SessionLike | None = None) -> None:
        self.types = tuple(mask)
        unknown = set(self.types) - set(masks.MASK_TYPES)
        if not self.types or unknown:
            raise ValueError(f"unknown mask {sorted(unknown)} (masks: {', '.join(masks.MASK_TYPES)})")
        if "occlusion" in self.types and occluder is None:
            raise ValueError("mask occlusion needs an occluder session")
        if "region" in self.types and parser is None:
            raise ValueError("mask region needs a face parser session")
        self.blur = float(blur)
        top, right, bottom, left = (float(p) for p in padding)
        self.padding = (top, right, bottom, left)
        self.face_regions = tuple(face_regions)
        self.occluder = occluder if "occlusion" in self.types else None
        self.parser = parser if "region" in self.types else None
        self.occluder_size = _side(occluder.get_inputs()[0].shape, 1, OCCLUDER_SIZE) if self.occluder else 0
        self.parser_size = _side(parser.get_inputs()[0].shape, 2, PARSER_SIZE) if self.parser else 0

    @classmethod
    def wanted(cls, options: Mapping[str, Any]) -> bool:
        """When some mask option differs from its default (else every paste is as it always was)."""
        return (list(options.get("mask", masks.DEFAULT_MASK)) != list(masks.DEFAULT_MASK)
                or float(options.get("mask_blur", masks.DEFAULT_MASK_BLUR)) != masks.DEFAULT_MASK_BLUR
                or [float(p) for p in options.get("mask_padding", masks.NO_PADDING)] != list(masks.NO_PADDING))

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """mask_regions other than all needs region in mask (else it would change nothing)."""
        chosen = list(options.get("mask_regions", masks.FACE_REGIONS))
        if chosen != list(masks.FACE_REGIONS) and "region" not in options.get("mask", masks.DEFAULT_MASK):
            raise InputError(f"option mask_regions = {','.join(chosen)} needs region in mask "
                             f"(mask = {','.join(options.get('mask', masks.DEFAULT_MASK))})",
                             hint="add region to --mask (e.g. --mask box,region), or leave mask_regions out")

    @classmethod
    def roles(cls, options: Mapping[str, Any], pack: Any) -> list[str]:
        """occluder with occlusion, face_parser with region, in that order."""
        chosen = options.get("mask", masks.DEFAULT_MASK)
        return [role for kind, role in (("occlusion", "occluder"), ("region", "face_parser")) if kind in chosen]

    @classmethod
    def check_models(cls, options: Mapping[str, Any], pack: Any) -> None:
        """A mask whose model the pack has no entry for is refused, naming the model to add."""
        for role in cls.roles(options, pack):
            if not pack.has(role):
                model = {"occluder": "an XSeg occluder (xseg_1)", "face_parser": "a BiSeNet face parser "
                         "(bisenet_resnet_34)"}[role]
                raise InputError(f"option mask = {','.join(options['mask'])} needs {model}, and model pack "
                                 f"{getattr(pack, 'name', pack)} has no {role!r} model",
                                 hint="use --models default (farm models fetch xseg_1 bisenet_resnet_34) or "
                                      f"--models demo, or add a {role!r} entry to the pack's manifest.toml")

    @classmethod
    def label(cls, options: Mapping[str, Any], pack: Any) -> str:
        """`mask (box+occlusion)`; with a blur, padding or regions not the defaults, those too:
        `mask (box+region; blur 0.5; padding 10,0,0,0; regions skin,nose)`."""
        chosen = list(options.get("mask", masks.DEFAULT_MASK))
        parts = ["+".join(chosen)]
        blur = float(options.get("mask_blur", masks.DEFAULT_MASK_BLUR))
        if "box" in chosen and blur != masks.DEFAULT_MASK_BLUR:
            parts.append(f"blur {blur:g}")
        padding = [float(p) for p in options.get("mask_padding", masks.NO_PADDING)]
        if "box" in chosen and padding != list(masks.NO_PADDING):
            parts.append("padding " + ",".join(f"{p:g}" for p in padding))
        chosen_regions = list(options.get("mask_regions", masks.FACE_REGIONS))
        if "region" in chosen and chosen_regions != list(masks.FACE_REGIONS):
            parts.append("regions " + ",".join(chosen_regions))
        return f"{cls.name} ({'; '.join(parts)})"

    @classmethod
    def build(cls, inputs: Any) -> MaskStage:
        opts = inputs.options
        chosen = tuple(opts["mask"])
        return cls(chosen, opts["mask_blur"], opts["mask_padding"], opts["mask_regions"],
                   occluder=inputs.session("occluder") if "occlusion" in chosen else None,
                   parser=inputs.session("face_parser") if "region" in chosen else None)

    def process(self, frame: Frame) -> Frame:
        limited = self.occluder is not None or self.parser is not None
        for face in frame.faces:
            area = self.face_area(frame, face.kps) if limited else None
            face.mask = masks.FaceMask("box" in self.types, self.blur, self.padding, area, limited)
        return frame

    def face_area(self, frame: Frame, kps: np.ndarray) -> tuple[regions.Box, np.ndarray] | None:
        """(frame box, its float32 mask): the occlusion and region masks of the face with these
        landmarks, each from its model's crop of the original frame, warped back onto the box
        of the crop's footprint (0 outside the crop) and combined. None when off the frame."""
        size = max(self.occluder_size, self.parser_size)
        box = region_box(frame, estimate_norm(kps, MASK_TEMPLATE, size), size)
        if box is None:
            return None
        x0, y0 = box[0], box[1]
        region = regions.read_bgr(frame, box)
        found = []
        if self.occluder is not None:
            found.append(self._back(self._occlusion(region, kps, x0, y0), kps, box))
        if self.parser is not None:
            found.append(self._back(self._regions(region, kps, x0, y0), kps, box))
        return box, masks.combine(found)

    def _crop(self, region: np.ndarray, kps: np.ndarray, x0: int, y0: int, size: int) -> np.ndarray:
        return warp_face(region, shift(estimate_norm(kps, MASK_TEMPLATE, size), x0, y0), size)

    def _occlusion(self, region: np.ndarray, kps: np.ndarray, x0: int, y0: int) -> np.ndarray:
        assert self.occluder is not None
        crop = self._crop(region, kps, x0, y0, self.occluder_size)
        out = run(self.occluder, {self.occluder.get_inputs()[0].name: masks.occluder_input(crop)})[0]
        return masks.soften(masks.occluder_mask(out))

    def _regions(self, region: np.ndarray, kps: np.ndarray, x0: int, y0: int) -> np.ndarray:
        assert self.parser is not None
        crop = self._crop(region, kps, x0, y0, self.parser_size)
        first = [self.parser.get_outputs()[0].name]   # BiSeNet's main output; not its two auxiliary ones
        out = self.parser.run(first, {self.parser.get_inputs()[0].name: masks.parser_input(crop)})[0]
        return masks.soften(masks.region_mask(out, self.face_regions))

    def _back(self, crop_mask: np.ndarray, kps: np.ndarray, box: regions.Box) -> np.ndarray:
        """A crop-space mask warped back onto the frame box (bilinear; 0 outside the crop)."""
        x0, y0, x1, y1 = box
        m = shift(estimate_norm(kps, MASK_TEMPLATE, crop_mask.shape[0]), x0, y0)
        return cv2.warpAffine(crop_mask, invert(m), (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)

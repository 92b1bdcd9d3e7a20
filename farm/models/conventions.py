"""How a face model is fed and read: its family, crop template, normalisation, output range
and (for swappers) how the source identity becomes its source input.

Each model family's conventions are stated once here, from the models' public code
(insightface for inswapper; FaceFusion's model sets for hyperswap, simswap, CodeFormer and
GPEN-BFR; GFPGAN's own inference code). A manifest entry names its `kind` and may override
any field (a fine-tuned file in a pack directory with its own template or normalisation);
`conventions(entry)` merges the two. Values:

- template: a farm.faces.align template name; the crop size in px is the model's input size.
- mean, std: per RGB channel, on pixel values scaled to 0..1: input = (rgb/255 - mean) / std.
- output_range: the output values that mean black and white: pixel = (v - lo) / (hi - lo)
  clipped to 0..1, times 255 (RGB planes in, BGR pixels out).
- embedding (swappers): 'emap' (insightface: normalise(normalise(e) @ emap), emap the
  model's last initializer), 'normed' (e / |e|), 'converted' (normalise(converter(e)), the
  converter another manifest entry named by `embedding_converter`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from farm.errors import ModelError

SWAPPER, ENHANCER = "swapper", "enhancer"
"""The families a job option picks a model from (--swapper, --enhancer)."""

EMBEDDINGS = ("emap", "normed", "converted")


@dataclass(frozen=True)
class Conventions:
    """The feeding conventions of one model (see the module docstring for units)."""

    kind: str
    family: str
    template: str = ""
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    output_range: tuple[float, float] = (0.0, 1.0)
    embedding: str = ""
    embedding_converter: str = ""


_HALF = (0.5, 0.5, 0.5)
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

KINDS: dict[str, Conventions] = {
    # insightface inswapper_128: RGB 0..1 in, 0..1 out, source = emap latent
    "inswapper": Conventions("inswapper", SWAPPER, "arcface_128", embedding="emap"),
    # FaceFusion hyperswap_1a/1b/1c_256: RGB (x-0.5)/0.5 in, the same range out, normed source
    "hyperswap": Conventions("hyperswap", SWAPPER, "arcface_128", _HALF, _HALF, (-1.0, 1.0), embedding="normed"),
    # SimSwap 256 (FaceFusion's export): ImageNet-normalised RGB in, 0..1 out, source through
    # the crossface_simswap embedding converter, normalised
    "simswap": Conventions("simswap", SWAPPER, "arcface_112_v1", _IMAGENET_MEAN, _IMAGENET_STD, (0.0, 1.0),
                           embedding="converted", embedding_converter="crossface_simswap"),
    # GFPGAN 1.x, CodeFormer, GPEN-BFR: RGB (x-0.5)/0.5 in and out, FFHQ 512 template
    "gfpgan": Conventions("gfpgan", ENHANCER, "ffhq_512", _HALF, _HALF, (-1.0, 1.0)),
    "codeformer": Conventions("codeformer", ENHANCER, "ffhq_512", _HALF, _HALF, (-1.0, 1.0)),
    "gpen": Conventions("gpen", ENHANCER, "ffhq_512", _HALF, _HALF, (-1.0, 1.0)),
    # an embedding converter: [N,512] recogniser embedding -> [N,512] swapper identity
    "embedding_converter": Conventions("embedding_converter", "embedding_converter"),
}

ROLE_KINDS = {"swapper": "inswapper", "swapper_fp16": "inswapper", "enhancer": "gfpgan",
              "embedding_converter": "embedding_converter"}
"""The kind of an entry that names none (manifests written before kinds existed)."""


def kind_of(entry: Any) -> str:
    """The entry's kind: its own, else the one its role implies, else its role."""
    return getattr(entry, "kind", "") or ROLE_KINDS.get(entry.role, entry.role)


def conventions(entry: Any) -> Conventions:
    """The conventions of a manifest entry: its kind's, with the entry's own fields on top.

    ModelError for an entry whose kind has no conventions (not a swapper or enhancer)."""
    kind = kind_of(entry)
    if kind not in KINDS:
        raise ModelError(f"model {entry.name} (kind {kind!r}) is not a face model farm knows how to feed",
                         hint="known kinds: " + ", ".join(KINDS))
    base = KINDS[kind]
    own = {key: getattr(entry, key) for key in ("template", "mean", "std", "output_range", "embedding",
                                                 "embedding_converter") if getattr(entry, key, None)}
    return replace(base, **own)


def family_of(entry: Any) -> str:
    """'swapper', 'enhancer', ... for an entry of a known kind; '' for any other model."""
    kind = kind_of(entry)
    return KINDS[kind].family if kind in KINDS else ""

"""Face swap: an aligned target crop + the source identity in, the swapped crop out.

Which swapper runs is the job's `swapper` option (a manifest entry of the pack; default
the pack's `swapper` role, inswapper_128): its crop template, normalisation, output range
and source-embedding convention come from farm.models.conventions (inswapper_128: RGB
0..1 [1,3,128,128] + emap latent [1,512]; hyperswap_1x_256: RGB in -1..1 + normed
embedding; simswap_256: ImageNet-normalised RGB + converted embedding).

With pixel boost (option pixel_boost, farm.faces.pixel_boost) the face is aligned at
P = n * 128 px and the swapper runs on its n * n polyphase sub-images; in one session
run when the model's target input has a dynamic batch dimension, else one run each.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from farm.errors import InputError
from farm.faces import pixel_boost as boost
from farm.faces.align import estimate_norm
from farm.faces.mapping import map_label
from farm.faces.model_stage import FaceModelStage
from farm.faces.options import Option
from farm.faces.session_io import SessionLike, from_blob, run, to_planes
from farm.faces.types import Face
from farm.models.conventions import KINDS, SWAPPER, Conventions, conventions, family_of

SWAP_SIZE = 128
SWAP_TEMPLATE = "arcface_128"
MAX_SUBS_PER_RUN = 16
"""At most this many pixel-boost sub-images go through the swapper in one run: boost 1024
on a 128 model makes 64 of them, and a batch's activations grow with its size (about
16 x the batch-1 arena for 16), so a 4K close-up's batch stays bounded on the GPU."""


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if n == 0.0:
        raise ValueError("cannot normalise a zero vector")
    return v / n


def emap_latent(embedding: np.ndarray, emap: np.ndarray) -> np.ndarray:
    """float32 [512] source latent: normalise(normalise(e) @ emap) (insightface)."""
    e = np.asarray(embedding, np.float64).reshape(-1)
    return _unit(_unit(e) @ np.asarray(emap, np.float64)).astype(np.float32)


def load_emap(model_path: str | Path) -> np.ndarray:
    """The emap matrix of an inswapper model: its last graph initializer (512x512).

    Reading it means importing onnx (~1.5 s) and parsing the whole model (554 MB for the
    real one), at every submit. So it is kept beside the model in a hidden .npy named by
    the model's file name, size and mtime (a changed model file misses the cache); where
    that folder is read-only it is read from the model every time.
    """
    path = Path(model_path)
    st = path.stat()
    cache = path.with_name(f".{path.name}.{st.st_size}.{st.st_mtime_ns}.emap.npy")
    try:
        emap = np.load(cache, allow_pickle=False)
        if emap.shape == (512, 512):
            return emap
    except (OSError, ValueError):
        pass
    import onnx
    from onnx import numpy_helper

    emap = numpy_helper.to_array(onnx.load(str(path), load_external_data=False).graph.initializer[-1])
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, emap, allow_pickle=False)
        os.replace(tmp, cache)
    except OSError:   # a read-only models folder: no cache
        tmp.unlink(missing_ok=True)
    return emap


def _swap_inputs(session: SessionLike) -> tuple[str, str]:
    """(target name, source name): the 4-D input is the target, the 2-D one the source."""
    nodes = session.get_inputs()
    target = [n.name for n in nodes if len(n.shape) == 4]
    source = [n.name for n in nodes if len(n.shape) == 2]
    if len(target) != 1 or len(source) != 1:
        raise ValueError(f"swapper inputs {[n.name for n in nodes]} are not (target, source)")
    return target[0], source[0]


def _native_size(shape: Any) -> int:
    """The swapper's native crop size (px) from its target input's shape [B,3,H,W]
    (SWAP_SIZE where the model leaves it dynamic)."""
    h, w = list(shape)[2:4]
    if isinstance(h, int) and isinstance(w, int) and h > 0:
        if h != w:
            raise ValueError(f"swapper target input {h}x{w} is not square")
        return h
    return SWAP_SIZE


def _dynamic_batch(shape: Any) -> bool:
    """True when a model input's first dimension is not a fixed number (e.g. 'N')."""
    b = list(shape)[0]
    return not (isinstance(b, int) and b > 0)


def pack_native_size(pack: Any, key: str = SWAPPER) -> int:
    """The native crop size (px) of a pack's swapper `key` (name or role), from its manifest."""
    target = [t for t in pack.entry(key).inputs if len(t.shape) == 4]
    return _native_size(target[0].shape) if target else SWAP_SIZE


def swapper_key(options: Mapping[str, Any]) -> str:
    """The manifest key of the job's swapper: the `swapper` option, else the role."""
    return options.get("swapper") or SWAPPER


def source_latent(identity: np.ndarray, pack: Any, key: str = SWAPPER) -> np.ndarray:
    """float32 [512]: the source input of swapper `key` for an identity (the raw mean
    recogniser embedding), by the swapper's embedding convention (emap, normed, converted)."""
    conv = conventions(pack.entry(key))
    e = np.asarray(identity, np.float64).reshape(-1)
    if conv.embedding == "emap":
        return emap_latent(e, load_emap(pack.path(key)))
    if conv.embedding == "converted":
        converter = pack.session(conv.embedding_converter)
        feed = {converter.get_inputs()[0].name: e.astype(np.float32).reshape(1, -1)}
        e = np.asarray(run(converter, feed)[0], np.float64).reshape(-1)
    return _unit(e).astype(np.float32)


class SwapStage(FaceModelStage):
    """Swaps every face in frame.faces for the source latent, pasting each result back.

    latent: float32 [L], the job's one source, or [M, L], one row per source of a --map job:
    a face is swapped to row Face.source (row 0 when None).

    Its roles: the swapper, and the recognizer that made the source identity at submit
    (the latent is the recognizer's embedding through the swapper's emap).
    pixel_boost: 'native' (the swapper's own size), 'auto' (per face, see face_size) or
    a crop size in px that is a multiple of the native size."""

    name = "swap"
    options = {
        "swapper": Option("str", None, "swapper model of the pack (`farm models list`): inswapper_128 (the "
                          "default), inswapper_128_fp16, hyperswap_1a_256, hyperswap_1b_256, hyperswap_1c_256, "
                          "simswap_256, or a pack's own", metavar="MODEL"),
        "pixel_boost": Option("choice", boost.NATIVE, "crop size to align each face at; the swapper runs on its "
                              "(size/native)^2 pixel-unshuffled sub-images, as many runs per face. native: the "
                              "swapper's own size (128 for inswapper_128); auto: per face, from its size on the "
                              f"frame, at most {boost.MAX_BOOST}",
                              choices=boost.CHOICES, unit="px"),
    }
    model_roles = ("recognizer", "swapper")
    crop_size = SWAP_SIZE
    template = SWAP_TEMPLATE

    def __init__(self, session: SessionLike, latent: np.ndarray, pixel_boost: str | int = boost.NATIVE,
                 feeding: Conventions = KINDS["inswapper"]) -> None:
        self.session = session
        self.feeding = feeding
        self.template = feeding.template
        self.latents = np.atleast_2d(np.asarray(latent, np.float32))
        self.latent = self.latents[:1]
        """The source of the face being swapped ([1, L])."""
        self.target_name, self.source_name = _swap_inputs(session)
        shapes = {n.name: list(n.shape) for n in session.get_inputs()}
        self.crop_size = _native_size(shapes[self.target_name])
        self.batched = _dynamic_batch(shapes[self.target_name])
        """True: all sub-images of a face go through the swapper in one run."""
        self._tile_source = _dynamic_batch(shapes[self.source_name])
        self.pixel_boost = str(pixel_boost)
        if self.pixel_boost not in (boost.NATIVE, boost.AUTO):
            boost.factor(int(self.pixel_boost), self.crop_size)   # ValueError when it does not fit

    @classmethod
    def build(cls, inputs: Any) -> "SwapStage":
        key = swapper_key(inputs.options)
        face_map = inputs.face_map() if inputs.options.get("map") else None
        latents = inputs.source_latent if face_map is None else face_map.latents
        return cls(inputs.session(key), latents, inputs.options["pixel_boost"], inputs.feeding(key))

    @classmethod
    def roles(cls, options: Mapping[str, Any], pack: Any) -> list[str]:
        """The recogniser, the chosen swapper and, for one whose source goes through an
        embedding converter, that converter."""
        key = swapper_key(options)
        feeding = conventions(pack.entry(key))
        converter = [feeding.embedding_converter] if feeding.embedding == "converted" else []
        return ["recognizer", key, *converter]

    @classmethod
    def check_models(cls, options: Mapping[str, Any], pack: Any) -> None:
        """The chosen swapper is a swapper of the pack; a boost size is a multiple of its
        native size, and not below it."""
        key = swapper_key(options)
        check_choice(pack, key, SWAPPER, "swapper (--swapper)")
        value = options.get("pixel_boost", boost.NATIVE)
        if value in (boost.NATIVE, boost.AUTO):
            return
        native = pack_native_size(pack, key)
        problem = boost.size_problem(int(value), native)
        if problem:
            sizes = ", ".join(str(s) for s in boost.allowed_sizes(native))
            raise InputError(f"option pixel_boost (--pixel-boost) = {value} is refused: {problem}",
                             hint=f"use native, auto or one of {sizes} with this model pack")

    @classmethod
    def label(cls, options: Mapping[str, Any], pack: Any) -> str:
        """`swap`, or with a chosen swapper and/or a boost `swap (hyperswap_1a_256, pixel boost 512)`;
        with --map it lists the mapping: `swap (map: person-1 -> a.jpg, person-2 -> b.jpg, others kept)`."""
        key = swapper_key(options)
        parts = [pack.entry(key).name] if options.get("swapper") else []
        if options.get("map"):
            parts.append(map_label(options))
        value = str(options.get("pixel_boost", boost.NATIVE))
        if not (value == boost.NATIVE or (value != boost.AUTO and int(value) == pack_native_size(pack, key))):
            parts.append(f"pixel boost {value}")
        return f"{cls.name} ({', '.join(parts)})" if parts else cls.name

    def face_size(self, face: Face) -> int:
        """The aligned crop's side (px): the native size, the job's boost, or with `auto`
        the smallest allowed size at least the face's size on the frame (the native
        crop's footprint in frame px, pixel_boost.face_span), at most MAX_BOOST."""
        if self.pixel_boost == boost.NATIVE:
            return self.crop_size
        if self.pixel_boost == boost.AUTO:
            span = boost.face_span(estimate_norm(face.kps, self.template, self.crop_size), self.crop_size)
            return boost.auto_size(span, self.crop_size)
        return int(self.pixel_boost)

    def run_face(self, face: Face, crop_bgr: np.ndarray) -> np.ndarray:
        """run_crop with the face's own source (Face.source, with --map)."""
        self.latent = self.latents[face.source or 0][None]
        return self.run_crop(crop_bgr)

    def run_crop(self, crop_bgr: np.ndarray) -> np.ndarray:
        """The swapped face for an aligned P x P BGR crop, P = n * native: the swapper's
        result itself for n = 1, else the pixel-shuffle of its results on the n * n
        pixel-unshuffled sub-images (all with the same source latent), at most
        MAX_SUBS_PER_RUN of them in one run."""
        n = boost.factor(crop_bgr.shape[0], self.crop_size)
        if n == 1:
            return self._swap([crop_bgr])[0]
        subs = boost.unshuffle(crop_bgr, n)
        if self.batched:
            swapped = [out for at in range(0, len(subs), MAX_SUBS_PER_RUN)
                       for out in self._swap(list(subs[at:at + MAX_SUBS_PER_RUN]))]
        else:
            swapped = [self._swap([sub])[0] for sub in subs]
        return boost.shuffle(np.stack(swapped), n)

    def _swap(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """The swapper's BGR uint8 results for native-size BGR uint8 crops, in one run."""
        source = np.repeat(self.latent, len(crops), axis=0) if self._tile_source else self.latent
        target = to_planes(crops, self.feeding.mean, self.feeding.std)
        out = run(self.session, {self.target_name: target, self.source_name: source})[0]
        lo, hi = self.feeding.output_range
        return [from_blob(o, lo, hi) for o in out]


def check_choice(pack: Any, key: str, family: str, what: str) -> None:
    """InputError (at submit) unless `key` names a model of `family` in the pack."""
    from farm.errors import ModelError

    try:
        if family_of(pack.entry(key)) == family:
            return
    except ModelError:
        pass
    choices = [m.name.removeprefix("demo-") for m in pack.manifest.models if family_of(m) == family]
    raise InputError(f"option {what} = {key} is refused: model pack {pack.name!r} has no {family} {key!r}",
                     hint="use one of " + ", ".join(choices) + " (see `farm models list`)")

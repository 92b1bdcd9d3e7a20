"""One source per person: `--map REFERENCE=SOURCE` (repeatable) and `--map-others SOURCE|keep`.

At submit (farm.jobs.face_prep) each mapping's reference identity (the raw recogniser
embedding of the person in REFERENCE) and source latent (the swapper's source input for
the face in SOURCE) are computed once and stored with the job as a FaceMap. In each chunk
the select stage gives every face the source of the nearest reference whose cosine
similarity is at least the job's `similarity` (Face.source, an index into
FaceMap.latents); a face like no reference gets the `--map-others` source, or is left
as it is (`keep`, the default).

REFERENCE is an image of the person (a crop written by `farm faces`, a photo), or
FOLDER/person-N, the person N of a `farm faces` folder (its faces.json holds each
person's mean embedding in the recogniser's raw space).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from farm.errors import InputError
from farm.options import split_pair

KEEP = "keep"
"""--map-others' word for: faces like no reference are left as they are."""

PERSON = re.compile(r"person-[1-9][0-9]*")
"""How `farm faces` names a person (its crop is <name>.png, its entry in faces.json)."""

FACES_JSON = "faces.json"


@dataclass
class FaceMap:
    """The identities of a --map job, as stored with it.

    references: float32 [K, D], each mapping's raw reference embedding, in the order given;
    latents: float32 [K, L] or [K + 1, L], the swapper's source input of each mapping, then
    the --map-others source when there is one (others is True)."""

    references: np.ndarray
    latents: np.ndarray
    others: bool = False

    def __post_init__(self) -> None:
        self.references = np.asarray(self.references, np.float32).reshape(len(self.references), -1)
        self.latents = np.asarray(self.latents, np.float32).reshape(len(self.latents), -1)
        if len(self.latents) != len(self.references) + int(self.others):
            raise ValueError(f"{len(self.latents)} source latents for {len(self.references)} references "
                             f"({'with' if self.others else 'without'} an others source)")

    def assign(self, embeddings: Sequence[np.ndarray | None], similarity: float) -> list[int | None]:
        """For each face embedding (raw, or None for a face that could not be embedded) the
        index into `latents` of its source: the most similar reference when that cosine
        similarity is at least `similarity`, else the others source, else None (kept)."""
        refs = self.references / np.maximum(np.linalg.norm(self.references, axis=1, keepdims=True), 1e-12)
        others = len(self.references) if self.others else None
        out: list[int | None] = []
        for e in embeddings:
            if e is None:
                out.append(others)
                continue
            v = np.asarray(e, np.float32).reshape(-1)
            scores = refs @ (v / max(float(np.linalg.norm(v)), 1e-12))
            best = int(np.argmax(scores))
            out.append(best if scores[best] >= similarity else others)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays saved with the job (FacePrep.save), read back by from_arrays."""
        return {"map_references": self.references, "map_latents": self.latents,
                "map_others": np.asarray(self.others)}

    @classmethod
    def from_arrays(cls, data: Mapping[str, Any]) -> "FaceMap | None":
        """The FaceMap of a job's saved arrays (None when the job has no --map)."""
        if "map_references" not in data:
            return None
        return cls(data["map_references"], data["map_latents"], bool(np.asarray(data["map_others"])))


def pairs(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The job's (reference, source) texts, in the order given (empty without --map)."""
    return [split_pair(item) for item in options.get("map") or []]


def others_source(options: Mapping[str, Any]) -> str | None:
    """The --map-others image, or None for keep."""
    value = options.get("map_others") or KEEP
    return None if value == KEEP else str(value)


def map_label(options: Mapping[str, Any]) -> str:
    """`map: person-1 -> a.jpg, ref.png -> b.jpg, others kept` (file names, not folders)."""
    parts = [f"{Path(ref).name} -> {Path(src).name}" for ref, src in pairs(options)]
    others = others_source(options)
    parts.append("others kept" if others is None else f"others -> {Path(others).name}")
    return "map: " + ", ".join(parts)


def people_counts(options: Mapping[str, Any], counted: Mapping[str, int]) -> list[tuple[str, int]]:
    """Each mapping's `REFERENCE -> SOURCE` name (as map_label writes it) with the frames its
    person was changed in (`counted`: {Face.source index as text: frames}; 0 when absent),
    in the order given, then `others -> SOURCE` when --map-others has one."""
    names = [f"{Path(ref).name} -> {Path(src).name}" for ref, src in pairs(options)]
    others = others_source(options)
    if others is not None:
        names.append(f"others -> {Path(others).name}")
    return [(name, int(counted.get(str(i), 0))) for i, name in enumerate(names)]


def person_embedding(path: Path, recognizer_label: Mapping[str, Any] | None = None) -> np.ndarray:
    """The mean raw embedding of person `path.name` in `path.parent`/faces.json; InputError
    when that folder holds no such person, or its recogniser is not the job's."""
    file = path.parent / FACES_JSON
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"--map reference {path}: cannot read {file} ({exc})",
                         hint="run `farm faces VIDEO --out FOLDER` again, or give an image of the person") from None
    people = {p.get("name"): p for p in data.get("people", []) if isinstance(p, dict)}
    if path.name not in people or not people[path.name].get("embedding"):
        known = ", ".join(sorted(n for n in people if isinstance(n, str))) or "nobody"
        raise InputError(f"--map reference {path}: {file} has no {path.name}", hint=f"it lists {known}")
    theirs, ours = data.get("recognizer") or {}, recognizer_label or {}
    if theirs.get("sha256") and ours.get("sha256") and theirs["sha256"] != ours["sha256"]:
        raise InputError(f"--map reference {path}: {file} was made with recogniser {theirs.get('name')}, "
                         f"this job's is {ours.get('name')}; their embeddings do not compare",
                         hint="run `farm faces` with this job's model pack, or give the crop image person-N.png")
    return np.asarray(people[path.name]["embedding"], np.float32)


def reference_identity(text: str, image_identity: Callable[[Path], np.ndarray],
                       recognizer_label: Mapping[str, Any] | None = None) -> np.ndarray:
    """The raw embedding of a --map REFERENCE: an image (through `image_identity`), or
    FOLDER/person-N of a `farm faces` folder."""
    path = Path(text).expanduser()
    if not path.exists() and PERSON.fullmatch(path.name) and (path.parent / FACES_JSON).is_file():
        return person_embedding(path, recognizer_label)
    return image_identity(path)


def check_distinct(names: Sequence[str], references: np.ndarray, similarity: float) -> None:
    """InputError when two references are the same person (cosine similarity at least
    `similarity`): every face like one would be like the other."""
    refs = np.asarray(references, np.float32)
    refs = refs / np.maximum(np.linalg.norm(refs, axis=1, keepdims=True), 1e-12)
    sims = refs @ refs.T
    for i in range(len(refs)):
        for j in range(i + 1, len(refs)):
            if sims[i, j] >= similarity:
                raise InputError(f"--map references {names[i]} and {names[j]} are the same person "
                                 f"(similarity {sims[i, j]:.2f}, at least --similarity {similarity:g})",
                                 hint="give each person once, or raise --similarity")


def prepare_map(options: Mapping[str, Any], image_identity: Callable[[Path, str], np.ndarray],
                latent: Callable[[np.ndarray], np.ndarray],
                recognizer_label: Mapping[str, Any] | None = None) -> FaceMap:
    """The FaceMap of a job's --map options, computed once at submit.

    image_identity(path, what): the raw identity of the largest face in an image
    (InputError for an unreadable image or one with no face); latent(identity): the
    swapper's source input for it. InputError for two references of one person."""
    given = pairs(options)
    found = [reference_identity(ref, lambda p: image_identity(p, "--map reference image"), recognizer_label)
             for ref, _ in given]
    sizes = {len(e) for e in found}
    if len(sizes) > 1:
        raise InputError(f"--map references have embeddings of different sizes ({sorted(sizes)}): a faces.json "
                         "made with another recogniser", hint="run `farm faces` again with this job's model pack")
    refs = np.stack(found)
    check_distinct([ref for ref, _ in given], refs, float(options["similarity"]))
    sources = [src for _, src in given]
    others = others_source(options)
    if others is not None:
        sources.append(others)
    latents = np.stack([latent(image_identity(Path(src).expanduser(), "--map source image")) for src in sources])
    return FaceMap(refs, latents, others is not None)

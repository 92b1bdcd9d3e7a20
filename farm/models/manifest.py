"""The model manifest: a TOML file that lists every model of a pack (see models/manifest.toml).

`load_manifest(path)` parses and validates it into frozen dataclasses; `dump_manifest`
writes the same format back (used for the generated demo pack). Any defect raises
`ModelError` naming the file and the field.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm.errors import ModelError

MANIFEST_FILE = "manifest.toml"
"""Name of the manifest inside a pack folder."""

FORMAT_VERSION = 1

DTYPES = frozenset({"float32", "float16", "float64", "uint8", "int8", "int32", "int64", "bool"})
DETECTOR_BACKENDS = frozenset({"onnx", "haar"})
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, shape (ints fixed, strings dynamic), dtype."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str
    name_confirmed: bool = True


@dataclass(frozen=True)
class ModelEntry:
    """One model file of a pack."""

    name: str
    role: str
    file: str
    urls: tuple[str, ...]
    sha256: str
    size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    optional: bool = False
    also_sha256: tuple[str, ...] = ()
    sha256_source: str = ""
    sha256_note: str = ""
    size_note: str = ""
    license: str = ""
    notes: str = ""
    kind: str = ""
    """The model family (farm.models.conventions.KINDS); '' = the one its role implies."""
    template: str = ""
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    output_range: tuple[float, ...] = ()
    embedding: str = ""
    embedding_converter: str = ""
    """Feeding conventions that override the kind's (farm.models.conventions)."""
    fp16: str = ""
    """The name of this model's fp16 file's entry, if it has one (farm.models.precision); a
    pack that leaves that entry out simply has no fp16 file for it."""

    @property
    def accepted_sha256(self) -> frozenset[str]:
        """Every digest that verification accepts (empty when none is known)."""
        return frozenset(s for s in (self.sha256, *self.also_sha256) if s)


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: the pack's header and its models in file order."""

    name: str
    models: tuple[ModelEntry, ...]
    description: str = ""
    demo: bool = False
    detector: str = "onnx"
    source: Path | None = field(default=None, compare=False)

    def entry(self, key: str) -> ModelEntry:
        """The model named `key` (in a generated demo pack also `demo-<key>`), else the
        first model of role `key`: a role's first entry is its default."""
        for m in self.models:
            if m.name == key or (self.demo and m.name == f"demo-{key}"):
                return m
        for m in self.models:
            if m.role == key:
                return m
        known = ", ".join(m.name for m in self.models)
        raise ModelError(f"pack {self.name!r} has no model or role {key!r} (it has: {known})")

    def select(self, names: list[str] | tuple[str, ...] | None, *, include_optional: bool = False) -> list[ModelEntry]:
        """The entries named (by name or role); all required ones (plus optional) when None/empty."""
        if not names:
            return [m for m in self.models if include_optional or not m.optional]
        return [self.entry(n) for n in dict.fromkeys(names)]


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file; raises ModelError on any defect."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no model manifest at {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"cannot read model manifest {path}: {exc}") from None
    return parse_manifest(raw, source=path)


def parse_manifest(raw: dict[str, Any], *, source: Path | None = None) -> Manifest:
    """Validate an already-parsed TOML document."""
    where = str(source) if source else "<manifest>"

    def fail(msg: str) -> ModelError:
        return ModelError(f"invalid model manifest {where}: {msg}")

    fmt = raw.get("format", FORMAT_VERSION)
    if fmt != FORMAT_VERSION:
        raise fail(f"format {fmt!r} is not supported (expected {FORMAT_VERSION})")
    head = raw.get("pack", {})
    if not isinstance(head, dict):
        raise fail("[pack] must be a table")
    name = _str(head, "name", "pack", fail, required=True)
    detector = _str(head, "detector", "pack", fail) or "onnx"
    if detector not in DETECTOR_BACKENDS:
        raise fail(f"pack.detector must be one of {sorted(DETECTOR_BACKENDS)}, not {detector!r}")
    demo = head.get("demo", False)
    if not isinstance(demo, bool):
        raise fail("pack.demo must be true or false")
    items = raw.get("model", [])
    if not isinstance(items, list) or not items:
        raise fail("no [[model]] entries")
    models = tuple(_parse_entry(item, i, fail) for i, item in enumerate(items))
    for attr in ("name", "file"):   # a role may repeat: its first entry is the role's default
        seen: set[str] = set()
        for m in models:
            value = getattr(m, attr)
            if value in seen:
                raise fail(f"two models share the {attr} {value!r}")
            seen.add(value)
    return Manifest(
        name=name,
        models=models,
        description=_str(head, "description", "pack", fail),
        demo=demo,
        detector=detector,
        source=source,
    )


def _str(table: dict[str, Any], key: str, where: str, fail: Any, *, required: bool = False) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise fail(f"{where}.{key} must be a string")
    if required and not value:
        raise fail(f"{where}.{key} is required")
    return value


def _parse_entry(item: Any, index: int, fail: Any) -> ModelEntry:
    if not isinstance(item, dict):
        raise fail(f"model #{index + 1} must be a table")
    where = f"model {item.get('name') or '#' + str(index + 1)}"
    name = _str(item, "name", where, fail, required=True)
    role = _str(item, "role", where, fail, required=True)
    file = _str(item, "file", where, fail, required=True)
    for label, value in (("name", name), ("role", role), ("file", file)):
        if not _NAME.match(value) or ".." in value:
            raise fail(f"{where}.{label} {value!r} must be a plain name (letters, digits, . _ -)")
    urls = item.get("urls", [])
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise fail(f"{where}.urls must be a list of strings")
    for u in urls:
        if not u.startswith(("https://", "http://")):
            raise fail(f"{where}.urls: {u!r} is not an http(s) address")
    sha = _str(item, "sha256", where, fail).lower()
    note = _str(item, "sha256_note", where, fail)
    if sha and not _SHA256.match(sha):
        raise fail(f"{where}.sha256 must be 64 hex digits or \"\"")
    if not sha and not note:
        raise fail(f"{where}: sha256 is empty, so sha256_note must say why")
    also = item.get("also_sha256", [])
    if not isinstance(also, list) or not all(isinstance(s, str) and _SHA256.match(s.lower()) for s in also):
        raise fail(f"{where}.also_sha256 must be a list of 64-hex-digit strings")
    size = item.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise fail(f"{where}.size must be a whole number of bytes (0 = unknown)")
    size_note = _str(item, "size_note", where, fail)
    if size == 0 and not size_note:
        raise fail(f"{where}: size is 0 (unknown), so size_note must say why")
    optional = item.get("optional", False)
    if not isinstance(optional, bool):
        raise fail(f"{where}.optional must be true or false")
    inputs = _parse_tensors(item.get("inputs"), f"{where}.inputs", fail)
    outputs = _parse_tensors(item.get("outputs"), f"{where}.outputs", fail)
    feeding = _parse_feeding(item, where, fail)
    return ModelEntry(
        name=name,
        role=role,
        file=file,
        urls=tuple(urls),
        sha256=sha,
        size=size,
        inputs=inputs,
        outputs=outputs,
        optional=optional,
        also_sha256=tuple(s.lower() for s in also),
        sha256_source=_str(item, "sha256_source", where, fail),
        sha256_note=note,
        size_note=size_note,
        license=_str(item, "license", where, fail),
        notes=_str(item, "notes", where, fail),
        **feeding,
    )


_FEEDING_LENGTHS = {"mean": 3, "std": 3, "output_range": 2}


def _parse_feeding(item: dict[str, Any], where: str, fail: Any) -> dict[str, Any]:
    """The optional feeding fields of an entry (kind, template, mean, std, output_range,
    embedding, embedding_converter), checked for type and length."""
    from farm.models.conventions import EMBEDDINGS, KINDS

    out: dict[str, Any] = {}
    for key in ("kind", "template", "embedding", "embedding_converter", "fp16"):
        out[key] = _str(item, key, where, fail)
    if out["kind"] and out["kind"] not in KINDS:
        raise fail(f"{where}.kind {out['kind']!r} is not one of {sorted(KINDS)}")
    if out["embedding"] and out["embedding"] not in EMBEDDINGS:
        raise fail(f"{where}.embedding {out['embedding']!r} is not one of {list(EMBEDDINGS)}")
    if out["template"]:
        from farm.faces.align import TEMPLATES

        if out["template"] not in TEMPLATES:
            raise fail(f"{where}.template {out['template']!r} is not one of {sorted(TEMPLATES)}")
    for key, length in _FEEDING_LENGTHS.items():
        value = item.get(key, [])
        numbers = isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in value)
        if not numbers or len(value) not in (0, length):
            raise fail(f"{where}.{key} must be a list of {length} numbers")
        out[key] = tuple(float(v) for v in value)
    if out["std"] and min(out["std"]) <= 0:
        raise fail(f"{where}.std must be positive")
    if out["output_range"] and out["output_range"][0] >= out["output_range"][1]:
        raise fail(f"{where}.output_range must be [low, high] with low < high")
    return out


def _parse_tensors(items: Any, where: str, fail: Any) -> tuple[TensorSpec, ...]:
    if not isinstance(items, list) or not items:
        raise fail(f"{where}: at least one tensor is required")
    specs = []
    for i, t in enumerate(items):
        if not isinstance(t, dict):
            raise fail(f"{where}[{i}] must be a table")
        name = _str(t, "name", f"{where}[{i}]", fail, required=True)
        shape = t.get("shape")
        if not isinstance(shape, list) or not shape:
            raise fail(f"{where}[{i}].shape must be a non-empty list")
        for d in shape:
            ok_int = isinstance(d, int) and not isinstance(d, bool) and d > 0
            if not (ok_int or (isinstance(d, str) and d)):
                raise fail(f"{where}[{i}].shape: {d!r} is neither a positive integer nor a dim name")
        dtype = _str(t, "dtype", f"{where}[{i}]", fail, required=True)
        if dtype not in DTYPES:
            raise fail(f"{where}[{i}].dtype {dtype!r} is not one of {sorted(DTYPES)}")
        confirmed = t.get("name_confirmed", True)
        if not isinstance(confirmed, bool):
            raise fail(f"{where}[{i}].name_confirmed must be true or false")
        specs.append(TensorSpec(name=name, shape=tuple(shape), dtype=dtype, name_confirmed=confirmed))
    return tuple(specs)


# ---------------------------------------------------------------- writing


def dump_manifest(manifest: Manifest) -> str:
    """The manifest as TOML text in the same format `load_manifest` reads."""
    lines = [
        "# Generated by farm; same format as models/manifest.toml.",
        f"format = {FORMAT_VERSION}",
        "",
        "[pack]",
        f"name = {_q(manifest.name)}",
        f"description = {_q(manifest.description)}",
        f"demo = {'true' if manifest.demo else 'false'}",
        f"detector = {_q(manifest.detector)}",
    ]
    for m in manifest.models:
        lines += [
            "",
            "[[model]]",
            f"name = {_q(m.name)}",
            f"role = {_q(m.role)}",
            f"file = {_q(m.file)}",
            f"optional = {'true' if m.optional else 'false'}",
            f"urls = [{', '.join(_q(u) for u in m.urls)}]",
            f"sha256 = {_q(m.sha256)}",
        ]
        for key in ("sha256_source", "sha256_note", "size_note", "license", "notes", "kind", "template",
                    "embedding", "embedding_converter", "fp16"):
            value = getattr(m, key)
            if value:
                lines.append(f"{key} = {_q(value)}")
        for key in _FEEDING_LENGTHS:
            if getattr(m, key):
                lines.append(f"{key} = [{', '.join(repr(v) for v in getattr(m, key))}]")
        if m.also_sha256:
            lines.append(f"also_sha256 = [{', '.join(_q(s) for s in m.also_sha256)}]")
        lines.append(f"size = {m.size}")
        for kind, tensors in (("inputs", m.inputs), ("outputs", m.outputs)):
            for t in tensors:
                dims = ", ".join(_q(d) if isinstance(d, str) else str(d) for d in t.shape)
                lines += ["", f"[[model.{kind}]]", f"name = {_q(t.name)}", f"shape = [{dims}]", f"dtype = {_q(t.dtype)}"]
                if not t.name_confirmed:
                    lines.append("name_confirmed = false")
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'

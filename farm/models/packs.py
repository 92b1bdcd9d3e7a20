"""Model packs: which manifest, which folder, and the per-process ModelPack with its sessions.

A pack is chosen by `--models PACK` / FARM_MODELS:
- "default": the real weights listed in models/manifest.toml, installed in <models_dir>/default;
- "demo": stand-ins generated on first use into <models_dir>/demo (no download);
- a directory holding its own manifest.toml (same format), files next to it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.errors import ModelError
from farm.models import providers as prov
from farm.models.precision import Plan
from farm.models.checks import stamp_for
from farm.models.demo import default_manifest_path, ensure_demo_pack, haar_cascade_path
from farm.models.manifest import MANIFEST_FILE, Manifest, ModelEntry, load_manifest

log = logging.getLogger("farm.models")

DEFAULT_PACK = "default"
DEMO_PACK = "demo"
ENV_VAR = "FARM_MODELS"


def choose_pack(cli_value: str | None, environ: Mapping[str, str] | None = None) -> str:
    """--models beats FARM_MODELS beats 'default'."""
    env = os.environ if environ is None else environ
    return cli_value or env.get(ENV_VAR) or DEFAULT_PACK


@dataclass(frozen=True)
class PackLocation:
    """A pack's manifest and the folder its files live in (no sessions, nothing loaded)."""

    name: str
    manifest: Manifest
    root: Path

    @property
    def is_demo(self) -> bool:
        return self.manifest.demo


def locate_pack(name_or_dir: str | Path | None, models_dir: str | Path,
                *, default_manifest: str | Path | None = None) -> PackLocation:
    """Resolve 'default', 'demo' or a directory; the demo pack is generated here if needed."""
    value = str(name_or_dir or DEFAULT_PACK)
    models_dir = Path(models_dir).expanduser()
    if value == DEFAULT_PACK:
        manifest = load_manifest(default_manifest or default_manifest_path())
        return PackLocation(DEFAULT_PACK, manifest, models_dir / DEFAULT_PACK)
    if value == DEMO_PACK:
        root = models_dir / DEMO_PACK
        return PackLocation(DEMO_PACK, ensure_demo_pack(root), root)
    path = Path(value).expanduser()
    if path.is_file() and path.suffix == ".toml":
        path = path.parent
    if path.is_dir():
        root = path.resolve()
        return PackLocation(str(root), load_manifest(root / MANIFEST_FILE), root)
    raise ModelError(
        f"unknown model pack {value!r}",
        hint=f"use {DEFAULT_PACK!r} (real weights), {DEMO_PACK!r} (generated stand-ins) "
        f"or a directory holding a {MANIFEST_FILE}",
    )


def missing_files(loc: PackLocation, roles: Sequence[str] | None = None) -> list[ModelEntry]:
    """Required (or the named) entries whose file is absent or has the wrong size (no hashing)."""
    out = []
    for entry in loc.manifest.select(roles):
        path = loc.root / entry.file
        if not path.is_file() or (entry.size and path.stat().st_size != entry.size and not entry.also_sha256):
            out.append(entry)
            continue
        stamp = stamp_for(loc.root, entry)
        if stamp is not None and not stamp.get("ok"):
            out.append(entry)
    return out


def not_installed_error(loc: PackLocation, missing: Sequence[ModelEntry]) -> ModelError:
    """The refusal that says exactly how to get the pack (optional models are fetched by name)."""
    files = ", ".join(e.file for e in missing)
    named = [e.name for e in missing] if any(e.optional for e in missing) else []  # plain fetch skips optional
    fetch = "farm models fetch" + "".join(f" {n}" for n in named)
    if loc.name == DEFAULT_PACK:
        total = sum(e.size for e in missing) if named else sum(e.size for e in loc.manifest.select(None))
        hint = (f"download it: `{fetch}` (about {total / 1e9:.1f} GB into {loc.root}); "
                f"air-gapped: `farm models import DIR` with a folder holding {files}; "
                f"or try the farm without weights: `--models {DEMO_PACK}` (FARM_MODELS={DEMO_PACK})")
    else:
        hint = (f"copy the files into {loc.root} and run `farm models verify --models {loc.root}`, "
                f"or `{fetch} --models {loc.root}` / `farm models import DIR --models {loc.root}`; "
                f"or try `--models {DEMO_PACK}`")
    return ModelError(f"model pack {loc.name!r} is not installed: missing or unverified {files}", hint=hint)


class ModelPack:
    """A located pack plus the providers to run it on; sessions are made once per process."""

    def __init__(self, location: PackLocation, *, providers: Sequence[str] | str | None = None,
                 cache_dir: str | Path | None = None, precision: Plan | None = None) -> None:
        self.location = location
        self.providers = prov.resolve_providers(providers)
        self.precision = precision or Plan()
        """Which files and engines (farm.models.precision); the default: fp32 files,
        TensorRT fp16 engines."""
        self.cache_dir = Path(cache_dir) if cache_dir else location.root / ".cache"
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.location.name

    @property
    def root(self) -> Path:
        return self.location.root

    @property
    def manifest(self) -> Manifest:
        return self.location.manifest

    @property
    def is_demo(self) -> bool:
        return self.location.is_demo

    @property
    def detector(self) -> str:
        """'onnx' (use the detector model) or 'haar' (the demo pack: OpenCV's Haar cascade)."""
        return self.manifest.detector

    def haar_cascade_path(self) -> Path:
        return haar_cascade_path()

    def has(self, role: str) -> bool:
        return any(m.role == role for m in self.manifest.models)

    def entry(self, role: str) -> ModelEntry:
        """The model `role` (a role or a name) runs: the manifest's, or its fp16 file's entry
        where the precision plan uses fp16 files (installed, or required by --precision fp16)."""
        entry = self.manifest.entry(role)
        half = next((m for m in self.manifest.models if entry.fp16 and m.name == entry.fp16), None)
        if self.precision.fp16_files and half is not None:
            if self.precision.require or (self.root / half.file).is_file():
                return half
        return entry

    def path(self, role: str) -> Path:
        """The installed file for `role`; ModelError (with how to get it) when absent."""
        entry = self.entry(role)
        path = self.root / entry.file
        if not path.is_file():
            raise not_installed_error(self.location, [entry])
        return path

    def check_installed(self, roles: Sequence[str] | None = None) -> None:
        """Raise ModelError when a required (or named) model is absent or known bad."""
        names = [self.entry(role).name for role in roles] if roles else roles
        missing = missing_files(self.location, names)
        if missing:
            raise not_installed_error(self.location, missing)

    def sha256(self, role: str) -> str:
        """The manifest's sha256, or the measured one where the manifest has none ('' if unknown)."""
        entry = self.entry(role)
        if entry.sha256:
            stamp = stamp_for(self.root, entry)
            return str(stamp["sha256"]) if stamp and stamp.get("sha256") else entry.sha256
        stamp = stamp_for(self.root, entry)
        return str(stamp.get("sha256", "")) if stamp else ""

    def session(self, role: str) -> Any:
        """The onnxruntime session for `role`, created on first use through the one factory
        (from the model's verified batched copy where the farm derived one, farm.models.derive)."""
        with self._lock:
            if role not in self._sessions:
                from farm.models.sessions import create_session  # noqa: PLC0415

                derived = self.derived(role)
                path, digest = (derived.path, derived.sha256) if derived else (self.path(role), self.sha256(role))
                self._sessions[role] = create_session(path, self.providers, self.cache_dir, digest or None,
                                                      tensorrt_fp16=self.precision.tensorrt_fp16)
            return self._sessions[role]

    def derived(self, role: str) -> Any:
        """The verified batched copy of the model `role` (farm.models.derive.Derived), or None."""
        from farm.models.derive import batched_copy, wants_batched_copy

        entry = self.entry(role)
        if not wants_batched_copy(entry) or not (self.root / entry.file).is_file():
            return None
        return batched_copy(self.root, entry, self.sha256(role))

    def providers_in_use(self) -> list[str]:
        """ONNX Runtime provider names that this pack's sessions report (session.get_providers()),
        in order, without repeats; [] while no session has been made."""
        with self._lock:
            sessions = list(self._sessions.values())
        used: dict[str, None] = {}
        for session in sessions:
            used.update(dict.fromkeys(session.get_providers()))
        return list(used)

    def label(self, roles: Sequence[str] | None = None, *, haar: bool = False) -> dict[str, Any]:
        """What to write into output metadata: pack, demo flag, each model's name + sha256.

        roles: the models a job used, by role or name (--swapper hyperswap_1a_256), each
        listed under its role; None: every installed model, a role's other models under
        their names. haar: the job found faces with OpenCV's Haar cascade (the demo pack);
        it is listed as its detector.
        """
        models = {}
        if roles is None:
            chosen = [(e.role if self.entry(e.role) is e else e.name, e) for e in self.manifest.models]
        else:
            chosen = []
            for key in roles:
                try:
                    entry = self.entry(key)   # the file that runs (its fp16 file, say), under the asked role
                    chosen.append((self.manifest.entry(key).role, entry))
                except ModelError:   # a role this pack does not have (e.g. no YuNet file entry)
                    continue
        for key, entry in chosen:
            if (self.root / entry.file).is_file():
                models[key] = {"name": entry.name, "sha256": self.sha256(entry.name)}
                derived = self.derived(entry.name)
                if derived is not None:   # what the sessions really load
                    models[key]["derived"] = {"file": derived.path.name, "sha256": derived.sha256,
                                              "from": "the same graph with a dynamic batch dimension"}
        if haar:
            cascade = self.haar_cascade_path()
            models["detector"] = {"name": f"opencv-{cascade.stem}", "sha256": _file_sha256(cascade)}
        return {
            "pack": self.name,
            "demo": self.is_demo,
            "precision": self.precision.name,
            "note": "demo stand-ins, not real face models" if self.is_demo else "",
            "models": models,
        }

    def label_text(self) -> str:
        """One line for a metadata tag, e.g. 'farm models: demo (stand-ins, NOT real weights)'."""
        if self.is_demo:
            return f"farm models: {self.name} (demo stand-ins, NOT real weights)"
        parts = [f"{m['name']}:{m['sha256'][:12] or 'unverified'}" for m in self.label()["models"].values()]
        return f"farm models: {self.name} ({', '.join(parts)})"


def _file_sha256(path: Path) -> str:
    """sha256 hex digest of a (small) file."""
    import hashlib  # noqa: PLC0415

    return hashlib.sha256(path.read_bytes()).hexdigest()


_packs: dict[tuple[str, tuple[str, ...], str], ModelPack] = {}
_packs_lock = threading.Lock()


def load_pack(name_or_dir: str | Path | None, models_dir: str | Path, *,
              providers: Sequence[str] | str | None = None, cache_dir: str | Path | None = None,
              require_installed: bool = True, default_manifest: str | Path | None = None,
              precision: Plan | None = None) -> ModelPack:
    """The ModelPack for `name_or_dir` (cached per process, so sessions are shared).

    Raises ModelError (exit 2) with the exact fetch/import/demo instructions when the
    pack is not installed and `require_installed`; ProviderError comes later, from
    the first `session()`, if a GPU provider asked for cannot be had.
    """
    loc = locate_pack(name_or_dir, models_dir, default_manifest=default_manifest)
    if require_installed:
        missing = missing_files(loc)
        if missing:
            raise not_installed_error(loc, missing)
    names = tuple(prov.resolve_providers(providers))
    key = (str(loc.root), names, str(cache_dir or ""), precision or Plan())
    with _packs_lock:
        pack = _packs.get(key)
        if pack is None or pack.manifest != loc.manifest:
            pack = _packs[key] = ModelPack(loc, providers=list(names), cache_dir=cache_dir, precision=precision)
            log.info("model pack %s from %s%s", loc.name, loc.root, " (DEMO stand-ins)" if loc.is_demo else "")
    return pack


def clear_pack_cache() -> None:
    """Forget every cached ModelPack and its sessions (tests; after `models fetch`)."""
    with _packs_lock:
        _packs.clear()

"""Models as data: manifest, packs (default / demo / directory), install, and the one session factory.

The CLI uses the plain functions re-exported here; the pipeline uses `load_pack(...)`
and then `pack.path(role)`, `pack.session(role)`, `pack.label()`.
"""

import importlib
from typing import Any

_HOME = {
    "build_demo_pack": "demo", "ensure_demo_pack": "demo", "haar_cascade_path": "demo",
    "fetch_models": "fetch", "import_models": "install",
    "ModelRow": "inventory", "list_models": "inventory", "verify_pack": "inventory",
    "Manifest": "manifest", "ModelEntry": "manifest", "TensorSpec": "manifest", "load_manifest": "manifest",
    "ModelPack": "packs", "PackLocation": "packs", "choose_pack": "packs", "clear_pack_cache": "packs",
    "load_pack": "packs", "locate_pack": "packs",
    "diagnose": "providers", "parse_providers": "providers", "resolve_providers": "providers",
    "create_session": "sessions",
}
"""Where each name re-exported here lives: imported on first use, so that importing one
module of the package (the manifest, the conventions) does not load ONNX Runtime (~0.4 s
of every `farm` command's start)."""


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'farm.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"farm.models.{_HOME[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Manifest",
    "ModelEntry",
    "ModelPack",
    "ModelRow",
    "PackLocation",
    "TensorSpec",
    "build_demo_pack",
    "choose_pack",
    "clear_pack_cache",
    "create_session",
    "diagnose",
    "ensure_demo_pack",
    "fetch_models",
    "haar_cascade_path",
    "import_models",
    "list_models",
    "load_manifest",
    "load_pack",
    "locate_pack",
    "parse_providers",
    "resolve_providers",
    "verify_pack",
]

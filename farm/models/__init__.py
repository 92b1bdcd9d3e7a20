"""Models as data: manifest, packs (default / demo / directory), install, and the one session factory.

The CLI uses the plain functions re-exported here; the pipeline uses `load_pack(...)`
and then `pack.path(role)`, `pack.session(role)`, `pack.label()`.
"""

from farm.models.demo import build_demo_pack, ensure_demo_pack, haar_cascade_path
from farm.models.fetch import fetch_models
from farm.models.install import import_models
from farm.models.inventory import ModelRow, list_models, verify_pack
from farm.models.manifest import Manifest, ModelEntry, TensorSpec, load_manifest
from farm.models.packs import ModelPack, PackLocation, choose_pack, clear_pack_cache, load_pack, locate_pack
from farm.models.providers import diagnose, parse_providers, resolve_providers
from farm.models.sessions import create_session

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

"""Installed, the project is one package: `workers`, `migrations` and `models` are folders of
the checkout that a fresh interpreter (outside the checkout) reaches only as farm.workers,
farm.migrations and farm.models.default (issue 13.4)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import importlib, json
found = {}
for name in ("workers", "migrations", "models", "farm.workers.supervisor", "farm.migrations",
             "farm.models.default", "farm.cli.main"):
    try:
        importlib.import_module(name)
        found[name] = True
    except ModuleNotFoundError:
        found[name] = False
print(json.dumps(found))
"""


def test_only_farm_is_importable_from_outside_the_checkout(tmp_path):
    import json

    out = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin"}, check=True).stdout
    found = json.loads(out)
    assert found == {"workers": False, "migrations": False, "models": False, "farm.workers.supervisor": True,
                     "farm.migrations": True, "farm.models.default": True, "farm.cli.main": True}


def test_the_default_manifest_and_migrations_are_found_through_the_package():
    from farm.models.demo import default_manifest_path
    from farm.state.db import migrations_dir

    assert default_manifest_path().read_text().strip()
    assert (migrations_dir() / "env.py").is_file() and (migrations_dir() / "script.py.mako").is_file()

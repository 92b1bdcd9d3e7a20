"""The package layout shows the architecture (issue 13.4, 13.6): `farm` is the only installed
package, every package folder is declared, the data plane never reaches into the front ends,
and no module grows past ~400 lines."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
MAX_LINES = 400

CONTROL_FRONT = ("farm.cli", "farm.api", "farm.jobs")
"""The control plane's front ends and job service."""
DATA_PLANE = ("farm.workers", "farm.media", "farm.faces", "farm.pipeline", "farm.models")
"""Worker launch, chunk runner, finalizer, the face pipeline and media: they read jobs from
farm.state and never import the front ends."""
LAUNCHERS = {"farm.cli.main": "farm.workers.supervisor"}
"""`farm worker` starts the data plane: the one front-end import of it."""


def folder_of(package: str) -> Path:
    """Where setuptools takes `package` from (its package-dir mapping, else its dotted path)."""
    mapping = PYPROJECT["package-dir"]
    parts = package.split(".")
    for n in range(len(parts), 0, -1):
        head = ".".join(parts[:n])
        if head in mapping:
            return ROOT / mapping[head] / Path(*parts[n:])
    return ROOT / Path(*parts)


def modules() -> dict[str, Path]:
    """Every installed module by dotted name."""
    found = {}
    for package in PYPROJECT["packages"]:
        for path in folder_of(package).glob("*.py"):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = path
    return found


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_farm_is_the_only_installed_top_level_package():
    assert {p.split(".")[0] for p in PYPROJECT["packages"]} == {"farm"}
    assert "find" not in PYPROJECT.get("packages", {}), "packages are listed, not found"


def test_every_package_folder_is_listed_and_every_listed_one_exists():
    listed = set(PYPROJECT["packages"])
    for package in listed:
        assert (folder_of(package) / "__init__.py").is_file(), package
    found = set()
    for package in listed:
        for init in folder_of(package).glob("*/__init__.py"):
            found.add(f"{package}.{init.parent.name}")
    assert found <= listed, f"package folders not listed in pyproject.toml: {sorted(found - listed)}"


def test_the_design_cards_folders_install_inside_farm():
    assert folder_of("farm.workers") == ROOT / "workers"
    assert folder_of("farm.migrations") == ROOT / "migrations"
    assert folder_of("farm.models.default") == ROOT / "models"
    assert (folder_of("farm.models.default") / "manifest.toml").is_file()


def test_the_data_plane_never_imports_the_front_ends():
    wrong = []
    for name, path in modules().items():
        for imported in imports_of(path):
            data_to_front = name.startswith(DATA_PLANE) and imported.startswith(CONTROL_FRONT)
            front_to_workers = (name.startswith(CONTROL_FRONT) and imported.startswith("farm.workers")
                                and not imported.startswith(LAUNCHERS.get(name, "-")))
            if data_to_front or front_to_workers:
                wrong.append(f"{name} imports {imported}")
    assert not wrong, wrong


def test_the_layout_check_sees_a_wrong_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from farm.cli.watch import job_view\n")
    assert "farm.cli.watch" in imports_of(bad)


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules (one job each, at most ~{MAX_LINES} lines): {long}"

"""The demo pack under concurrent use: readers (other processes) never find it missing while
it is rebuilt again and again, and concurrent first users on a fresh farm home build it
once and all succeed. Real processes, real files, real ONNX stand-ins."""

from __future__ import annotations

import subprocess
import sys
import time

from farm.models.demo import build_demo_pack, ensure_demo_pack
from farm.models.packs import locate_pack, missing_files

READER = r"""
import sys, time
from pathlib import Path
from farm.errors import ModelError
from farm.models.packs import locate_pack, missing_files
models, stop = Path(sys.argv[1]), Path(sys.argv[2])
reads = failures = 0
first = ""
manifest = models / "demo" / "manifest.toml"
while not stop.exists():
    for _ in range(500):              # dense sampling: a gap of microseconds is still seen
        if not manifest.is_file():
            failures += 1
            first = first or f"{manifest} missing"
    try:
        loc = locate_pack("demo", models)
        missing = missing_files(loc)
        if missing:
            raise ModelError("missing " + ", ".join(e.file for e in missing))
    except (ModelError, OSError) as exc:
        failures += 1
        first = first or str(exc)
    reads += 1
print(reads, failures, first.replace("\n", " "))
"""


def test_readers_never_see_the_pack_missing_while_it_is_rebuilt(tmp_path):
    models = tmp_path / "models"
    ensure_demo_pack(models / "demo")
    stop = tmp_path / "stop"
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(models), str(stop)], stdout=subprocess.PIPE,
                                text=True) for _ in range(3)]
    try:
        time.sleep(1.5)                       # the readers are past their imports and reading
        for _ in range(30):
            build_demo_pack(models / "demo")   # a rebuild (e.g. a new stand-in version)
    finally:
        stop.touch()
    results = [r.communicate(timeout=60)[0].split(" ", 2) for r in readers]
    assert all(int(reads) > 0 for reads, *_ in results), results
    assert [int(failures) for _, failures, *_ in results] == [0, 0, 0], results
    assert missing_files(locate_pack("demo", models)) == []
    leftovers = sorted(p.name for p in models.iterdir() if p.name not in ("demo", ".demo.lock"))
    assert len(leftovers) == 1 and (models / "demo").resolve().name == leftovers[0], leftovers


def test_concurrent_first_uses_build_the_pack_once(tmp_path):
    models = tmp_path / "models"
    code = ("import sys; from pathlib import Path; from farm.models.demo import ensure_demo_pack; "
            "ensure_demo_pack(Path(sys.argv[1]) / 'demo'); print('ok')")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(models)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    assert [o.strip() for o, _ in outs] == ["ok"] * 4
    folders = [p for p in models.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(folders) == 1, folders            # built once: one versioned folder, no leftovers
    assert (models / "demo").is_symlink() and (models / "demo").resolve() == folders[0].resolve()


def test_a_pack_folder_from_before_the_link_layout_is_taken_over(tmp_path):
    models = tmp_path / "models"
    old = models / "demo"
    old.mkdir(parents=True)
    (old / "manifest.toml").write_text("not a manifest")   # a stale real folder
    ensure_demo_pack(old)
    assert old.is_symlink() and missing_files(locate_pack("demo", models)) == []

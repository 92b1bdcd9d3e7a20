"""`farm models list|verify|fetch|import` through the real command line (farm.cli.main.main, and one
subprocess), on a directory pack of generated stand-ins; fetch downloads from a local HTTP
server on 127.0.0.1 (never the network). FARM_MODELS selecting the pack of a submit."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from farm.cli import model_commands as cli_models
from farm.cli.main import main
from farm.config import load_settings
from farm.errors import ModelError
from farm.jobs.face_prep import prepare_faces
from farm.jobs.submit import SubmitRequest
from farm.models.checks import STAMP_FILE
from farm.models.demo import build_demo_pack
from farm.models.manifest import MANIFEST_FILE, dump_manifest
from farm.models.packs import choose_pack, clear_pack_cache, load_pack
from tests import clips

ROLES = ("recognizer", "swapper", "enhancer")   # a small pack: what a Haar-detector job needs


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> SimpleNamespace:
    """Generated stand-in files (a folder to import or serve from) and their manifest."""
    folder = tmp_path_factory.mktemp("weights")
    demo = build_demo_pack(folder)
    models = tuple(demo.entry(role) for role in ROLES)   # each role's default model
    manifest = dataclasses.replace(demo, name="mine", demo=False, models=models)
    return SimpleNamespace(folder=folder, manifest=manifest)


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("FARM_HOME", str(home))
    monkeypatch.delenv("FARM_MODELS", raising=False)
    monkeypatch.delenv("FARM_MODELS_DIR", raising=False)
    monkeypatch.delenv("FARM_CONFIG", raising=False)
    clear_pack_cache()
    yield home
    clear_pack_cache()


def make_pack(root: Path, weights: SimpleNamespace, *, files: bool = True, url: str | None = None) -> Path:
    """A directory pack: manifest.toml (download addresses under `url`) and, if `files`, the files."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = weights.manifest
    models = tuple(dataclasses.replace(m, urls=(f"{url}/{m.file}",) if url else ()) for m in manifest.models)
    (root / MANIFEST_FILE).write_text(dump_manifest(dataclasses.replace(manifest, models=models)), encoding="utf-8")
    if files:
        for m in manifest.models:
            shutil.copyfile(weights.folder / m.file, root / m.file)
    return root


def farm(capsys, *args: str) -> SimpleNamespace:
    """Run `farm ARGS` in-process; (code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(list(args))
    captured = capsys.readouterr()
    return SimpleNamespace(code=info.value.code, out=captured.out, err=captured.err)


def rows(result) -> dict[str, dict]:
    return {r["file"]: r for r in json.loads(result.out)}


def corrupt(path: Path) -> None:
    """Flip one byte in the middle, keeping the size."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------- list / verify


def test_list_shows_installed_and_verified(env, tmp_path, weights, capsys, monkeypatch):
    pack = make_pack(tmp_path / "pack", weights)
    missing = weights.manifest.entry("enhancer")
    (pack / missing.file).unlink()
    listed = rows(farm(capsys, "models", "list", "--models", str(pack), "--json"))
    assert listed[missing.file]["installed"] is False and listed[missing.file]["status"] == "not installed"
    swapper = weights.manifest.entry("swapper").file
    assert listed[swapper]["installed"] is True and listed[swapper]["verified"] is None
    # after a verify, list remembers the full check without hashing again
    assert farm(capsys, "models", "verify", "--models", str(pack)).code == 0
    listed = rows(farm(capsys, "models", "list", "--models", str(pack), "--json"))
    assert listed[swapper]["verified"] is True and listed[swapper]["status"] == "verified (sha256)"
    monkeypatch.setattr(cli_models.out, "width", 200)   # the table as a wide terminal shows it
    table = farm(capsys, "models", "list", "--models", str(pack))
    assert table.code == 0 and "verified (sha256)" in table.out and "not installed" in table.out


def test_verify_fails_naming_a_corrupted_file(env, tmp_path, weights, capsys):
    pack = make_pack(tmp_path / "pack", weights)
    entry = weights.manifest.entry("swapper")
    corrupt(pack / entry.file)
    result = farm(capsys, "models", "verify", "--models", str(pack))
    assert result.code == 1
    assert f"{pack / entry.file}" in result.err and "sha256 mismatch" in result.err
    assert f"farm models fetch {entry.name} --models {pack}" in result.err
    listed = rows(farm(capsys, "models", "list", "--models", str(pack), "--json"))
    assert listed[entry.file]["verified"] is False
    # and a submit with that pack is refused, saying how to repair it
    with pytest.raises(ModelError) as info:
        load_pack(pack, tmp_path / "models", providers="cpu")
    assert entry.file in str(info.value) and f"farm models verify --models {pack}" in str(info.value)


def test_verify_exit_code_through_the_real_command(env, tmp_path, weights):
    pack = make_pack(tmp_path / "pack", weights)
    corrupt(pack / weights.manifest.entry("enhancer").file)
    proc = subprocess.run([sys.executable, "-m", "farm", "models", "verify", "--models", str(pack)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert proc.returncode == 1, proc.stderr
    assert weights.manifest.entry("enhancer").file in proc.stderr


# ---------------------------------------------------------------- import


def test_import_from_a_folder_installs_and_verifies(env, tmp_path, weights, capsys):
    pack = make_pack(tmp_path / "pack", weights, files=False)
    nested = tmp_path / "usb" / "models"
    nested.mkdir(parents=True)
    for m in weights.manifest.models:
        shutil.copyfile(weights.folder / m.file, nested / m.file)
    result = farm(capsys, "models", "import", str(tmp_path / "usb"), "--models", str(pack))
    assert result.code == 0, result.err
    for m in weights.manifest.models:
        assert (pack / m.file).read_bytes() == (weights.folder / m.file).read_bytes()
    stamps = json.loads((pack / STAMP_FILE).read_text())
    assert all(stamps[m.file]["ok"] for m in weights.manifest.models)
    assert load_pack(pack, tmp_path / "models", providers="cpu").session("swapper") is not None


def test_import_refuses_a_file_with_a_bad_hash(env, tmp_path, weights, capsys):
    pack = make_pack(tmp_path / "pack", weights, files=False)
    src = tmp_path / "src"
    src.mkdir()
    for m in weights.manifest.models:
        shutil.copyfile(weights.folder / m.file, src / m.file)
    bad = weights.manifest.entry("recognizer")
    corrupt(src / bad.file)
    result = farm(capsys, "models", "import", str(src), "--models", str(pack))
    assert result.code == 2
    assert bad.name in result.err and "sha256 mismatch" in result.err
    assert not (pack / bad.file).exists(), "a file that failed its check was installed"
    assert not any((pack / ".partial").glob("*")), "a partial copy was left behind"
    # the good ones were installed
    assert (pack / weights.manifest.entry("swapper").file).is_file()


def test_the_demo_pack_cannot_be_imported_or_fetched(env, tmp_path, capsys):
    for cmd in (["import", str(tmp_path)], ["fetch"]):
        result = farm(capsys, "models", *cmd, "--models", "demo")
        assert result.code == 2 and "demo pack is generated" in result.err


# ---------------------------------------------------------------- fetch (local HTTP only)


class _Files(BaseHTTPRequestHandler):
    """Serves files of `root` with HTTP Range support; records each request's Range header."""

    root: Path = Path()
    ranges: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        asked = self.headers.get("Range")
        self.ranges.append(asked)
        start = int(asked.split("=")[1].split("-")[0]) if asked else 0
        self.send_response(206 if asked else 200)
        if asked:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = type("Files", (_Files,), {"root": root, "ranges": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(root=root, url=f"http://127.0.0.1:{httpd.server_address[1]}", handler=handler)
    httpd.shutdown()
    httpd.server_close()


def test_fetch_downloads_verifies_and_resumes(env, tmp_path, weights, server, capsys):
    for m in weights.manifest.models:
        shutil.copyfile(weights.folder / m.file, server.root / m.file)
    pack = make_pack(tmp_path / "pack", weights, files=False, url=server.url)
    # a download cut short earlier: its first half is already there
    swapper = weights.manifest.entry("swapper")
    part = pack / ".partial" / f"{swapper.file}.part"
    part.parent.mkdir(parents=True)
    whole = (weights.folder / swapper.file).read_bytes()
    part.write_bytes(whole[: len(whole) // 2])
    result = farm(capsys, "models", "fetch", "--models", str(pack))
    assert result.code == 0, result.err
    for m in weights.manifest.models:
        assert (pack / m.file).read_bytes() == (weights.folder / m.file).read_bytes()
    assert f"bytes={len(whole) // 2}-" in server.handler.ranges, "the partial download was not resumed"
    listed = rows(farm(capsys, "models", "list", "--models", str(pack), "--json"))
    assert all(r["installed"] and r["verified"] for r in listed.values())


def test_fetch_refuses_a_download_with_a_bad_hash(env, tmp_path, weights, server, capsys):
    for m in weights.manifest.models:
        shutil.copyfile(weights.folder / m.file, server.root / m.file)
    bad = weights.manifest.entry("enhancer")
    corrupt(server.root / bad.file)
    pack = make_pack(tmp_path / "pack", weights, files=False, url=server.url)
    result = farm(capsys, "models", "fetch", "--models", str(pack))
    assert result.code == 2
    assert bad.name in result.err and "sha256 mismatch" in result.err
    assert not (pack / bad.file).exists()
    assert (pack / weights.manifest.entry("swapper").file).is_file()


# ---------------------------------------------------------------- FARM_MODELS


def test_farm_models_selects_the_pack(env, tmp_path, weights, monkeypatch, capsys):
    pack = make_pack(tmp_path / "pack", weights)
    assert choose_pack(None, {"FARM_MODELS": "demo"}) == "demo"
    assert choose_pack("default", {"FARM_MODELS": "demo"}) == "default"   # --models wins
    assert choose_pack(None, {}) == "default"
    monkeypatch.setenv("FARM_MODELS", str(pack))
    # `farm models list` without --models lists the pack FARM_MODELS names
    listed = rows(farm(capsys, "models", "list", "--json"))
    assert set(listed) == {m.file for m in weights.manifest.models}
    # and a submit without --models uses it
    settings = load_settings()
    assert settings.models == str(pack)
    video = clips.make_clip(tmp_path / "v.mp4", seconds=0.2)
    face = clips.make_face_image(tmp_path / "face.jpg")
    prep = prepare_faces(SubmitRequest(video=video, sources=[face]), settings)
    assert prep.label["pack"] == str(pack.resolve()) and prep.label["pack_ref"] == str(pack)
    monkeypatch.setenv("FARM_MODELS", "demo")
    prep = prepare_faces(SubmitRequest(video=video, sources=[face]), load_settings())
    assert prep.label["pack"] == "demo" and prep.label["demo"] is True


def test_models_dir_holds_the_named_packs(env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FARM_MODELS_DIR", str(tmp_path / "elsewhere"))
    default = rows(farm(capsys, "models", "list", "--models", "default", "--json"))
    assert default and not any(r["installed"] for r in default.values())
    demo = rows(farm(capsys, "models", "list", "--models", "demo", "--json"))   # generated on first use
    assert demo and all(r["installed"] for r in demo.values())
    assert (tmp_path / "elsewhere" / "demo" / MANIFEST_FILE).is_file()

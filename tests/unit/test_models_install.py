"""fetch (HTTP with resume), import, verify, list, and the refusals of a pack that is not installed."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from onnx import TensorProto, helper

from farm.errors import ModelError
from farm.models.fetch import fetch_models
from farm.models.install import PARTIAL_DIR, import_models
from farm.models.inventory import list_models, verify_pack
from farm.models.manifest import MANIFEST_FILE
from farm.models.packs import clear_pack_cache, load_pack, locate_pack


def tiny_onnx(input_name: str = "x") -> bytes:
    node = helper.make_node("Identity", [input_name], ["y"])
    graph = helper.make_graph([node], "tiny", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              doc_string="padding " * 40)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString(deterministic=True)


class Server:
    """127.0.0.1 file server that honours Range and records what it was asked."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.ranges: list[str | None] = []
        self.honour_range = True
        files, ranges, outer = self.files, self.ranges, self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                data = files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                wanted = self.headers.get("Range")
                ranges.append(wanted)
                start = int(wanted.split("=")[1].split("-")[0]) if wanted and outer.honour_range else 0
                if start >= len(data) and wanted:
                    self.send_response(416)
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:])

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def write_pack(folder: Path, url: str, data: bytes, *, sha: str | None = None, input_name: str = "x",
               optional_extra: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest() if sha is None else sha
    note = '' if digest else 'sha256_note = "none published"\n'
    text = f'''[pack]
name = "testpack"
[[model]]
name = "tiny"
role = "swapper"
file = "tiny.onnx"
urls = ["{url}/tiny.onnx"]
sha256 = "{digest}"
{note}size = {len(data)}
[[model.inputs]]
name = "{input_name}"
shape = [1, 4]
dtype = "float32"
[[model.outputs]]
name = "y"
shape = [1, "n"]
dtype = "float32"
'''
    if optional_extra:
        text += '''[[model]]
name = "extra"
role = "enhancer"
file = "extra.onnx"
optional = true
urls = []
sha256 = ""
sha256_note = "test"
size = 0
size_note = "test"
[[model.inputs]]
name = "x"
shape = [1, 4]
dtype = "float32"
[[model.outputs]]
name = "y"
shape = [1, 4]
dtype = "float32"
'''
    (folder / MANIFEST_FILE).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(autouse=True)
def _fresh_packs():
    clear_pack_cache()
    yield
    clear_pack_cache()


def test_fetch_downloads_verifies_and_installs(server, tmp_path):
    data = tiny_onnx()
    server.files["tiny.onnx"] = data
    loc = locate_pack(write_pack(tmp_path / "pack", server.url, data), tmp_path / "models")
    rows = fetch_models(loc, progress=False)
    assert [(r.name, r.verified) for r in rows] == [("tiny", True)]
    assert (loc.root / "tiny.onnx").read_bytes() == data
    assert list_models(loc)[0].verified is True
    assert fetch_models(loc, progress=False)[0].status == "already installed"
    assert len(server.ranges) == 1


def test_fetch_resumes_a_partial_download_with_a_range_request(server, tmp_path):
    data = tiny_onnx()
    server.files["tiny.onnx"] = data
    loc = locate_pack(write_pack(tmp_path / "pack", server.url, data), tmp_path / "models")
    part = loc.root / PARTIAL_DIR / "tiny.onnx.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:100])
    fetch_models(loc, progress=True)
    assert server.ranges == ["bytes=100-"]
    assert (loc.root / "tiny.onnx").read_bytes() == data and not part.exists()


def test_fetch_restarts_when_the_server_ignores_range(server, tmp_path):
    data = tiny_onnx()
    server.files["tiny.onnx"] = data
    server.honour_range = False
    loc = locate_pack(write_pack(tmp_path / "pack", server.url, data), tmp_path / "models")
    part = loc.root / PARTIAL_DIR / "tiny.onnx.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:100])
    fetch_models(loc, progress=False)
    assert (loc.root / "tiny.onnx").read_bytes() == data


def test_sha256_mismatch_installs_nothing(server, tmp_path):
    data = tiny_onnx()
    server.files["tiny.onnx"] = data[:-1] + bytes([data[-1] ^ 1])
    loc = locate_pack(write_pack(tmp_path / "pack", server.url, data), tmp_path / "models")
    with pytest.raises(ModelError, match="sha256 mismatch.*nothing was installed"):
        fetch_models(loc, progress=False)
    assert not (loc.root / "tiny.onnx").exists()
    assert not list((loc.root / PARTIAL_DIR).iterdir())


def test_unreachable_address_is_reported(tmp_path):
    data = tiny_onnx()
    loc = locate_pack(write_pack(tmp_path / "pack", "http://127.0.0.1:9", data), tmp_path / "models")
    with pytest.raises(ModelError, match="every address failed"):
        fetch_models(loc, progress=False, timeout_s=2)


def test_without_a_sha256_the_signature_is_checked_with_a_warning(server, tmp_path, caplog):
    data = tiny_onnx()
    server.files["tiny.onnx"] = data
    loc = locate_pack(write_pack(tmp_path / "ok", server.url, data, sha=""), tmp_path / "models")
    row = fetch_models(loc, progress=False)[0]
    assert row.verified and "signature only" in row.status and "no published sha256" in caplog.text
    bad = locate_pack(write_pack(tmp_path / "bad", server.url, data, sha="", input_name="target"), tmp_path / "m2")
    with pytest.raises(ModelError, match="should be named 'target'"):
        fetch_models(bad, progress=False)
    assert not (bad.root / "tiny.onnx").exists()


def test_import_copies_from_a_folder_and_verifies(tmp_path):
    data = tiny_onnx()
    src = tmp_path / "usb" / "nested"
    src.mkdir(parents=True)
    (src / "tiny.onnx").write_bytes(data)
    loc = locate_pack(write_pack(tmp_path / "pack", "http://unused", data, optional_extra=True), tmp_path / "models")
    rows = import_models(tmp_path / "usb", loc)
    assert rows[0].verified and rows[0].status.startswith("imported")
    assert rows[1].status == "not in source folder (optional)"
    assert (loc.root / "tiny.onnx").read_bytes() == data


def test_import_of_a_corrupt_file_installs_nothing(tmp_path):
    data = tiny_onnx()
    (tmp_path / "usb").mkdir()
    (tmp_path / "usb" / "tiny.onnx").write_bytes(b"x" * len(data))
    loc = locate_pack(write_pack(tmp_path / "pack", "http://unused", data), tmp_path / "models")
    with pytest.raises(ModelError, match="import incomplete"):
        import_models(tmp_path / "usb", loc)
    assert not (loc.root / "tiny.onnx").exists()


def test_verify_finds_a_corrupted_install_and_the_pack_is_then_refused(tmp_path):
    data = tiny_onnx()
    (tmp_path / "usb").mkdir()
    (tmp_path / "usb" / "tiny.onnx").write_bytes(data)
    folder = write_pack(tmp_path / "pack", "http://unused", data)
    loc = locate_pack(folder, tmp_path / "models")
    import_models(tmp_path / "usb", loc)
    assert load_pack(folder, tmp_path / "models", providers="cpu").session("swapper") is not None
    (folder / "tiny.onnx").write_bytes(data[:-1] + b"\0")
    row = verify_pack(loc)[0]
    assert row.verified is False and "sha256 mismatch" in row.status
    clear_pack_cache()
    with pytest.raises(ModelError, match="not installed"):
        load_pack(folder, tmp_path / "models", providers="cpu")


def test_default_pack_not_installed_says_how_to_get_it(tmp_path):
    with pytest.raises(ModelError) as info:
        load_pack("default", tmp_path / "models", providers="cpu")
    assert info.value.exit_code == 2
    text = str(info.value)
    for words in ("farm models fetch", "farm models import DIR", "--models demo", "FARM_MODELS=demo", "inswapper_128.onnx"):
        assert words in text
    rows = list_models(locate_pack("default", tmp_path / "models"))
    assert {r.name for r in rows} >= {"det_10g", "inswapper_128", "gfpgan_1.4"} and not any(r.installed for r in rows)


def test_demo_pack_needs_no_download_and_says_so(tmp_path):
    pack = load_pack("demo", tmp_path / "models", providers="cpu")
    assert pack.is_demo and pack.detector == "haar"
    assert pack.label()["demo"] is True and "NOT real weights" in pack.label_text()
    assert set(pack.label()["models"]) >= {"detector", "recognizer", "swapper", "enhancer"}
    assert load_pack("demo", tmp_path / "models", providers="cpu") is pack
    with pytest.raises(ModelError, match="generated"):
        fetch_models(pack.location, progress=False)


def test_unknown_pack_is_refused(tmp_path):
    with pytest.raises(ModelError, match="unknown model pack"):
        locate_pack("nonsense", tmp_path)

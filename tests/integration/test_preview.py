"""`farm preview` and GET /preview (issue 14.5): one frame through a job's stages, without a
job, as a PNG of the original and the result side by side.

Real CLI (farm.cli.main.main, in this process), real FastAPI app (TestClient) over SQLite,
the demo pack on ONNX Runtime's CPU provider, real clips of the astronaut's face (ffmpeg),
and a real job (submit, the worker's run_chunk, finalize) to compare with; the broker
calls are recorded, not sent.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import av
import cv2
import farm.workers.chunk_runner
import numpy as np
import pytest
from farm.workers.context import WorkerContext
from farm.workers.finalize import run_finalize
from fastapi.testclient import TestClient

import farm.cli.main as cli
import farm.jobs.submit
from farm.api.app import create_app
from farm.cli import preview_command
from farm.config import load_settings
from farm.jobs.preview_sheet import draw_faces
from farm.jobs.submit import SubmitRequest, submit
from farm.models.packs import clear_pack_cache
from farm.pipeline import regions
from farm.pipeline.frame import Frame
from farm.state import store
from farm.state.db import Database, upgrade_schema
from farm.state.tokens import create_token
from tests import clips

W, H = 480, 270
FACE_OPTIONS = ["--detect-max-side", "320"]


@pytest.fixture
def home(farm_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """FARM_HOME for in-process `farm` calls (CPU provider), the working folder, and the
    demo pack forgotten before and after."""
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    monkeypatch.setenv("FARM_PROVIDERS", "cpu")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(farm.jobs.submit, "enqueue_job", lambda *a, **k: 0)
    monkeypatch.setattr(farm.workers.chunk_runner, "enqueue_chunk", lambda *a, **k: None)
    monkeypatch.setattr(farm.workers.chunk_runner, "enqueue_finalize", lambda *a, **k: None)
    clear_pack_cache()
    yield farm_home
    clear_pack_cache()
    preview_command.register(cli.app)   # as at import: without the face options


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("preview-media")
    return {"video": clips.make_clip(folder / "face.mp4", width=W, height=H, seconds=1.0, moving_face=True, gop=15),
            "empty": clips.make_clip(folder / "empty.mp4", width=W, height=H, seconds=0.5),
            "source": clips.make_face_image(folder / "source.jpg")}


def run_farm(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `farm ARGS` run in this process as the console script runs it."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def source_frame(video: Path, index: int) -> np.ndarray:
    """Frame `index` of `video`, decoded here and converted by the pipeline's own conversion."""
    with av.open(str(video)) as container:
        for n, picture in enumerate(container.decode(video=0)):
            if n == index:
                frame = Frame.from_av(picture, 0)
                return regions.read_bgr(frame, (0, 0, frame.width, frame.height))
    raise AssertionError(f"{video} has no frame {index}")


def face_in(frame_bgr: np.ndarray) -> tuple[int, int, int]:
    """(x, y, side) of the astronaut's face where the clip put it, found by template matching."""
    side = round(H * 0.25)   # tests.clips: the moving face is a quarter of the height
    face = cv2.resize(clips.face_crop_rgb()[:, :, ::-1], (side, side), interpolation=cv2.INTER_AREA)
    _, score, _, (x, y) = cv2.minMaxLoc(cv2.matchTemplate(frame_bgr, face, cv2.TM_CCOEFF_NORMED))
    assert score > 0.9, score
    return x, y, side


def overlay(shape: tuple[int, ...], boxes: list[list[int]]) -> np.ndarray:
    """Where the boxes and their numbers are drawn (True), found by drawing them on black."""
    blank = np.zeros(shape, np.uint8)
    draw_faces(blank, [tuple(b) for b in boxes])
    return blank.any(axis=2)


def inside(shape: tuple[int, ...], boxes: list[list[int]]) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


def halves(png: Path | bytes, report: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = png.read_bytes() if isinstance(png, Path) else png
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    w, h = report["picture"]["half_width"], report["picture"]["picture_height"]
    return image, image[:h, :w], image[:h, w:]


def test_the_picture_is_original_and_result_side_by_side_differing_only_in_the_face_boxes(home, media, capsys):
    code, out, err = run_farm(capsys, "preview", media["video"], "--source", media["source"], "--models", "demo",
                          "--at", "0.6", "--json", *FACE_OPTIONS)
    assert code == 0, err
    report = json.loads(out)
    png = Path(report["path"])
    assert png == Path.cwd() / "face.preview.png" and png.is_file()
    assert (report["frame"], report["time_s"]) == (18, 0.6)   # 30 fps: on screen at 0.6 s; not a keyframe
    image, left, right = halves(png, report)
    # the size: two frames side by side, the panel under them
    assert (report["picture"]["half_width"], report["picture"]["picture_height"]) == (W, H)
    assert image.shape[1] == 2 * W and image.shape[0] == report["picture"]["height"] > H + 60
    panel = image[H:]
    assert (panel == (32, 32, 32)).all(axis=2).mean() > 0.6 and (panel > 200).any()   # dark, with text
    # one face (the astronaut's), boxed on both halves
    assert len(report["faces"]) == 1, report
    box = report["faces"][0]["picture_box"]
    fx, fy, side = face_in(source_frame(media["video"], 18))
    assert box == report["faces"][0]["box"] and box[0] <= fx and box[1] <= fy, (box, fx, fy)
    assert box[2] >= fx + side and box[3] >= fy + side and box[2] - box[0] < 3 * side, (box, fx, fy)
    # the halves differ only inside the face box, and they do differ there
    changed = (left != right).any(axis=2)
    assert changed.sum() > 500
    assert not (changed & ~inside(left.shape, [box])).any()
    # the left half is frame 18 as decoded (not 17 or 19: the texture pans), apart from the drawn box
    drawn = overlay(left.shape, [box])
    assert (left[~drawn] == source_frame(media["video"], 18)[~drawn]).all()
    assert not (left[~drawn] == source_frame(media["video"], 19)[~drawn]).all()
    assert not (left[~drawn] == source_frame(media["video"], 17)[~drawn]).all()
    assert report["models"]["pack"] == "demo" and report["models"]["stages"] == ["swap", "enhance"]
    assert report["options"]["detect_max_side"] == 320 and report["warning"] is None


def render_job(settings, db, video: Path, source: Path, out: Path) -> store.JobView:
    """A real face job (lossless: x264 crf 0), each chunk run as a worker runs it, then finalized."""
    req = SubmitRequest(video=video, sources=[source], models="demo", output=out, chunk_seconds=0.5, crf=0,
                        face_options={"detect_max_side": 320})
    job_id = submit(req, settings, db)
    ctx = WorkerContext(settings, app=None)
    for index in range(store.get_job(db, job_id).chunk_count):
        assert farm.workers.chunk_runner.run_chunk(ctx, job_id, index, "cpu0@test").startswith("done")
    assert run_finalize(ctx, job_id, "fin") == "done", store.get_job(db, job_id).error
    return store.get_job(db, job_id)


def test_the_result_is_the_frame_a_job_renders_with_the_same_options(home, media, capsys, tmp_path):
    settings = load_settings({"FARM_HOME": str(home), "FARM_PROVIDERS": "cpu"})
    db = Database(settings.database)
    upgrade_schema(db)
    (tmp_path / "out").mkdir()
    job = render_job(settings, db, media["video"], media["source"], tmp_path / "out" / "face.farm.mp4")
    db.dispose()
    first = job.chunks[1].first_frame   # a chunk's first frame: the demo detector scans it whole, as a preview does
    assert first > 0 and sum(c.faces_changed for c in job.chunks) > 0
    code, out, err = run_farm(capsys, "preview", media["video"], "-s", media["source"], "--models", "demo",
                          "--frame", str(first), "--json", *FACE_OPTIONS)
    assert code == 0, err
    report = json.loads(out)
    _, left, right = halves(Path(report["path"]), report)
    drawn = overlay(right.shape, [f["picture_box"] for f in report["faces"]])
    rendered = source_frame(Path(job.output_path), first)
    assert not (rendered[~drawn] == left[~drawn]).all()          # the job changed the face ...
    assert (rendered[~drawn] == right[~drawn]).all()             # ... exactly as the preview shows it


def test_bad_input_is_refused_naming_the_file_and_writes_nothing(home, media, capsys):
    video, source = media["video"], media["source"]
    cases = [
        ([Path("missing.mp4"), "-s", source], "missing.mp4: no such file"),
        ([video, "-s", source, "--frame", "30"], "--frame 30 is not a frame of"),
        ([video, "-s", source, "--frame", "1", "--at", "0.1"], "give --frame or --at, not both"),
        ([video, "-s", source, "--at", "1.5"], "--at 1.5 is not within"),
        ([video], "no source image given"),
        ([video, "-s", Path("nobody.jpg")], "nobody.jpg: no such file"),
        ([video, "-s", source, "--min-score", "2"], "--min-score must be 0..1"),
        ([video, "-s", source, "--out", "face.jpg"], "must end in .png"),
    ]
    for args, message in cases:
        code, _, err = run_farm(capsys, "preview", *args, "--models", "demo")
        assert code == 2 and message in " ".join(err.split()), (args, err)
        assert not list(Path.cwd().iterdir()), (args, list(Path.cwd().iterdir()))
    code, _, err = run_farm(capsys, "preview", video, "-s", source, "--crf", "18")   # a job-only flag: not offered
    assert code == 2 and "No such option: --crf" in err, err
    code, out, _ = run_farm(capsys, "preview", video, "-s", source, "--frame", "30", "--json")
    assert code == 2 and json.loads(out)["exit_code"] == 2
    Path("face.preview.png").write_bytes(b"mine")
    code, _, err = run_farm(capsys, "preview", video, "-s", source, "--models", "demo")
    assert code == 2 and "face.preview.png already exists" in err and "--overwrite" in err
    assert Path("face.preview.png").read_bytes() == b"mine"
    code, out, err = run_farm(capsys, "preview", video, "-s", source, "--models", "demo", "--overwrite", *FACE_OPTIONS)
    assert code == 0 and out.strip() == str(Path.cwd() / "face.preview.png"), err
    assert Path("face.preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["face.preview.png"]   # no temporary file left


def test_a_frame_without_a_face_gives_the_picture_and_a_warning(home, media, capsys, tmp_path):
    spec = tmp_path / "render.toml"
    spec.write_text(f'source = ["{media["source"]}"]\nmodels = "demo"\ncrf = 18\npriority = 7\n')
    code, out, err = run_farm(capsys, "preview", media["empty"], "--spec", spec, "--out", tmp_path / "empty.png",
                          "--json", *FACE_OPTIONS)
    assert code == 0, err
    report = json.loads(out)
    assert "warning: no face found in frame 0 of empty.mp4" in " ".join(err.split())
    assert report["faces"] == [] and report["warning"].startswith("no face found")
    assert report["ignored"] == ["crf", "priority"]   # the spec file's job-only options
    _, left, right = halves(tmp_path / "empty.png", report)
    assert (left == right).all() and (left == source_frame(media["empty"], 0)).all()


def test_get_preview_answers_the_cli_s_png_for_the_same_inputs(home, media, capsys):
    settings = load_settings({"FARM_HOME": str(home), "FARM_PROVIDERS": "cpu"})
    db = Database(settings.database)
    upgrade_schema(db)
    folder = settings.storage_dir / "in"
    folder.mkdir(parents=True, exist_ok=True)
    for key in ("video", "source"):
        shutil.copy(media[key], folder / media[key].name)
    app = create_app(settings, db)
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {create_token(db, 'ci-' + uuid.uuid4().hex[:6])}"
    query = {"path": "in/face.mp4", "source": "in/source.jpg", "models": "demo", "frame": 20, "detect_max_side": 320}
    got = client.get("/preview", params=query)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png", got.text
    assert (got.headers["x-farm-frame"], got.headers["x-farm-faces"]) == ("20", "1")
    code, out, err = run_farm(capsys, "preview", folder / "face.mp4", "-s", folder / "source.jpg", "--models", "demo",
                          "--frame", "20", "--json", *FACE_OPTIONS)
    assert code == 0, err
    report = json.loads(out)
    assert Path(report["path"]).read_bytes() == got.content
    image, left, right = halves(got.content, report)
    assert image.shape[:2] == (report["picture"]["height"], 2 * W)
    assert not ((left != right).any(axis=2) & ~inside(left.shape, [f["picture_box"] for f in report["faces"]])).any()
    # refusals in the API's usual shape; a job-only option is not a parameter
    for bad, status, message in [({**query, "crf": "18"}, 422, "unknown query parameter 'crf'"),
                                 ({**query, "frame": "30"}, 422, "frame 30 is not a frame of"),
                                 ({**query, "frame": "1", "at": "0.1"}, 422, "give frame or at, not both"),
                                 ({**query, "path": "/etc/hostname"}, 422, "outside the farm's storage"),
                                 ({**query, "pixel_boost": "200"}, 422, "pixel_boost must be one of")]:
        refused = client.get("/preview", params=bad)
        assert refused.status_code == status and message in refused.json()["detail"], refused.text
        assert set(refused.json()) == {"detail", "hint"}
    assert TestClient(app).get("/preview", params=query).status_code == 401   # a token is needed
    params = {p["name"]: p for p in app.openapi()["paths"]["/preview"]["get"]["parameters"]}
    assert params["pixel_boost"]["schema"]["enum"][:2] == ["native", "auto"] and params["path"]["required"]
    assert "crf" not in params and "image/png" in app.openapi()["paths"]["/preview"]["get"]["responses"]["200"][
        "content"]
    db.dispose()

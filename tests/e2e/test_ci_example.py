"""The CI example runs as deploy/ci/README.md says (issue 12 point 3): the README's command
line, from the repository's root, with the system's python3 and nothing but the standard
library, against a real `farm api` (uvicorn) over a real local farm (`farm up`: private
Redis + Celery workers, SQLite, real ffmpeg), with the demo pack on CPU. Only the URL and
token of the test farm, the paths of the clip and output, and `--set models=demo` (the
README's way to try it without the default pack) are the test's own."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import clips, media_checks
from tests.api_server import farm_api

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "deploy" / "ci" / "README.md"
COMMAND = "python3 deploy/ci/farm_render.py clip.mp4 --spec deploy/ci/render.toml --out out/clip.farm.mp4"


@pytest.fixture(scope="module")
def ci_env() -> Iterator[dict[str, str]]:
    """The environment a CI step gets: FARM_API_URL and FARM_API_TOKEN of a running farm."""
    with farm_api("ci", token_name="my-ci") as server:
        yield {"PATH": "/usr/bin:/bin", "FARM_API_URL": server.url, "FARM_API_TOKEN": server.token}


def readme_command(clip: Path, out: Path, *extra: str) -> list[str]:
    """The README's command line, with this test's clip and output in place of its names."""
    assert COMMAND in README.read_text(), f"{README} no longer shows: {COMMAND}"
    assert "--set models=demo" in README.read_text()
    argv = COMMAND.split()
    argv[argv.index("clip.mp4")] = str(clip)
    argv[argv.index("out/clip.farm.mp4")] = str(out)
    return [*argv, *extra]


def run(argv: list[str], env: dict[str, str], timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)


def test_the_readme_command_renders_with_the_demo_pack_and_downloads_a_frame_exact_output(ci_env, tmp_path):
    clip = clips.make_clip(tmp_path / "clip.mp4", width=160, height=90, seconds=1.0, moving_face=True)
    out = tmp_path / "out" / "clip.farm.mp4"
    proc = run(readme_command(clip, out, "--set", "models=demo"), ci_env)
    assert proc.returncode == 0, proc.stderr
    job = json.loads(proc.stdout)
    assert job["state"] == "done" and job["models"] == "demo" and job["downloaded_to"] == str(out), job
    assert job["priority"] == 6                                        # from render.toml
    media_checks.assert_same_frame_times(clip, out)
    assert media_checks.video_stream(out)["codec_name"] == "hevc"      # render.toml's codec


def test_a_refused_request_exits_2_and_says_why(ci_env, tmp_path):
    clip = clips.make_clip(tmp_path / "clip.mp4", width=160, height=90, seconds=0.5)
    out = tmp_path / "out" / "clip.farm.mp4"
    proc = run(readme_command(clip, out, "--set", "models=demo", "--set", "faces=everyone"), ci_env)
    assert proc.returncode == 2, proc.stderr
    assert "HTTP 422" in proc.stderr and "faces" in proc.stderr and "trying again" not in proc.stderr
    proc = run(readme_command(clip, out, "--set", "models=demo", "--set", "source=faces/nobody.jpg"), ci_env)
    assert proc.returncode == 2, proc.stderr
    assert "deploy/ci/faces/nobody.jpg" in proc.stderr
    proc = run(readme_command(tmp_path / "missing.mp4", out, "--set", "models=demo"), ci_env)
    assert proc.returncode == 2 and "missing.mp4" in proc.stderr, proc.stderr
    assert not out.exists() and not proc.stdout

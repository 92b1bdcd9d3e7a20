"""Eight `farm submit --models demo` at once on a fresh farm home: every one is accepted (the
demo pack is built once, under a lock; no submit sees it missing), and the local farm is
started once. Real CLI processes, real private Redis and workers, real video."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests import clips
from tests.e2e.farmcli import FARM, FarmCLI

SUBMITS = 8


def processes_with(word: str) -> list[int]:
    """Pids of live processes whose command line holds `word` (this home's only, by its path)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(word.encode() in a for a in argv):
            found.append(int(proc.name))
    return [pid for pid in found if _parent(pid) not in found]   # a started tree's root, not its children


def _parent(pid: int) -> int | None:
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_concurrent_demo_submits_on_a_fresh_home_all_succeed(farm_home, tmp_path):
    cli = FarmCLI(farm_home)
    video = clips.make_clip(tmp_path / "v.mp4", width=160, height=90, seconds=0.4, gop=12)
    face = clips.make_face_image(tmp_path / "face.jpg")
    try:
        procs = [subprocess.Popen([*FARM, "submit", str(video), "--source", str(face), "--models", "demo",
                                   "--output", str(tmp_path / f"out{i}.mp4")], env=cli.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(SUBMITS)]
        outs = [p.communicate(timeout=240) for p in procs]
        failed = [(p.returncode, err[-800:]) for p, (_, err) in zip(procs, outs) if p.returncode != 0]
        assert failed == [], failed
        ids = {out.strip() for out, _ in outs}
        assert len(ids) == SUBMITS, outs
        models = farm_home / "models"
        folders = [p for p in models.iterdir() if p.is_dir() and not p.is_symlink()]
        assert len(folders) == 1 and (models / "demo").resolve() == folders[0].resolve(), folders
        assert len(processes_with(str(farm_home / "run" / "redis.sock"))) == 1   # one private Redis
        assert len(processes_with(str(farm_home / "run" / "workers.pid"))) == 1  # one supervisor
        for job_id in ids:
            assert cli.wait_state(job_id, {"done", "failed"}, timeout_s=240)["state"] == "done", cli.logs()
    finally:
        cli.down()
        time.sleep(0.2)

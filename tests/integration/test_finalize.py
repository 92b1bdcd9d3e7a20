"""run_finalize for real on tiny clips (SQLite, real ffmpeg): the synthetic-media label is
accurate (pass-through jobs say no faces were changed) and is written and verified where the
container keeps it (AVI comment, MPEG-TS service name); a cancel that comes while the job is
being finalized means nothing is published."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from farm.config import load_settings
from farm.errors import VerifyError
from farm.media.chunk_codec import choose_encoder, transcode_chunk
from farm.media.labels import parse_ffmetadata
from farm.media.plan import plan_chunks
from farm.media.probe import probe
from farm.media.split import split_chunks
from farm.state import chunks, records, store
from farm.state.db import Database, upgrade_schema
from farm.storage import Storage
from farm.workers.finalize import output_label, output_metadata, run_finalize, verify_label
from tests import clips, media_checks


def fake_job(job_id: str = "abc123", faces: bool = False, demo: bool = False) -> SimpleNamespace:
    models = {"pack": "demo" if demo else "default", "demo": demo,
              "models": {"swapper": {"name": "inswapper_128", "sha256": "ff"}}} if faces else {}
    return SimpleNamespace(id=job_id, models=models, options={"faces": "all" if faces else "off"})


def test_the_label_says_what_the_job_did():
    passthrough = output_label(fake_job())
    assert passthrough.startswith("synthetic media made by farm") and "job abc123" in passthrough
    assert "no faces were changed" in passthrough and "altered" not in passthrough
    swapped = output_label(fake_job(faces=True))
    assert "faces altered" in swapped and "default" in swapped and "demo" not in swapped
    assert "not real face swap" in output_label(fake_job(faces=True, demo=True))
    tags = output_metadata(fake_job())
    assert tags["comment"] == passthrough and tags["farm_faces_altered"] == "0" and tags["farm_job_id"] == "abc123"
    assert output_metadata(fake_job(faces=True))["farm_faces_altered"] == "1"
    assert output_metadata(fake_job(), "avi") == {"comment": passthrough}
    ts = output_metadata(fake_job(), "mpegts")
    assert ts["service_name"] == passthrough and ts["service_provider"].startswith("farm ")


def test_ffmetadata_escapes_are_read_back():
    text = ";FFMETADATA1\nTitle=a\\=b\\;c\\#d\\\\e\ncomment=two\\\nlines\n# note\n[CHAPTER]\ntitle=chapter\n"
    assert parse_ffmetadata(text) == {"title": "a=b;c#d\\e", "comment": "two\nlines"}


@pytest.fixture
def ctx(tmp_path: Path) -> SimpleNamespace:
    settings = load_settings({"FARM_HOME": str(tmp_path / "home")})
    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    upgrade_schema(db)
    yield SimpleNamespace(db=db, settings=settings, storage=Storage(tmp_path / "storage"))
    db.dispose()


def finalizing_job(ctx: SimpleNamespace, src: Path, out: Path, job_id: str = "lbl1") -> None:
    """Record a pass-through job of `src` with one chunk, encode it, and leave it finalizing."""
    info = probe(src)
    plans = plan_chunks(info, info.video.frame_count)
    source = ctx.storage.source(job_id, src.suffix)
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(src.read_bytes())
    inputs = split_chunks(source, info, plans, ctx.storage.chunk_in(job_id, 0, ".x").parent)
    encoder = choose_encoder(info.video)
    chunk_out = ctx.storage.chunk_out(job_id, 0, inputs[0].suffix)
    chunk_out.parent.mkdir(parents=True, exist_ok=True)
    assert transcode_chunk(inputs[0], chunk_out, plans[0], encoder, lambda frame: frame) == plans[0].frame_count
    spec = store.ChunkSpec(index=0, first_frame=0, frames_planned=plans[0].frame_count, plan=records.dump(plans[0]),
                           input_path=str(inputs[0]), output_path=str(chunk_out))
    store.create_job(ctx.db, job_id=job_id, chunks=[spec], input_path=str(src), source_path=str(source),
                     output_path=str(out), options={"faces": "off"}, encoder=records.dump(encoder), models={},
                     frames_total=info.video.frame_count, fps=float(info.video.fps))
    chunks.claim_chunk(ctx.db, job_id, 0, "w1", 3, stale_after_s=120)
    assert chunks.finish_chunk(ctx.db, job_id, 0, "w1").finalize is True


def remuxed(tmp_path: Path, suffix: str) -> Path:
    mp4 = clips.make_clip(tmp_path / "clip.mp4", width=160, height=90, seconds=1.0, bframes=0, audio_tracks=1)
    out = tmp_path / f"clip{suffix}"
    audio = ["-c:a", "pcm_s16le"] if suffix == ".avi" else ["-c:a", "copy"]
    fmt = "avi" if suffix == ".avi" else "mpegts"
    subprocess.run([clips.ffmpeg_exe(), "-v", "error", "-y", "-i", str(mp4), "-c:v", "copy", *audio, "-f", fmt,
                    str(out)], check=True)
    return out


def ffprobe_tags(path: Path) -> dict[str, str]:
    """Format and program tags as Debian's ffprobe reads them."""
    raw = subprocess.run([media_checks.ffprobe_exe(), "-v", "error", "-show_entries", "format_tags:program_tags",
                          "-of", "json", str(path)], check=True, capture_output=True, text=True).stdout
    data = json.loads(raw)
    tags = dict(data.get("format", {}).get("tags") or {})
    for program in data.get("programs") or []:
        tags.update(program.get("tags") or {})
    return tags


@pytest.mark.parametrize("suffix, key", [(".avi", "comment"), (".ts", "service_name")])
def test_avi_and_mpegts_outputs_carry_a_verified_label(ctx, tmp_path, suffix, key):
    src = remuxed(tmp_path, suffix)
    out = tmp_path / f"clip.farm{suffix}"
    finalizing_job(ctx, src, out)
    assert run_finalize(ctx, "lbl1", "fin-a") == "done", store.get_job(ctx.db, "lbl1").error
    assert store.get_job(ctx.db, "lbl1").state == "done"
    label = ffprobe_tags(out).get(key, "")
    assert label.startswith("synthetic media made by farm") and "job lbl1" in label, ffprobe_tags(out)
    assert "no faces were changed" in label
    # and the check finalize runs refuses an output without it
    muxer = "avi" if suffix == ".avi" else "mpegts"
    with pytest.raises(VerifyError, match="label"):
        verify_label(src, muxer, output_metadata(fake_job("lbl1"), muxer))


def test_a_cancel_during_finalize_publishes_nothing(ctx, tmp_path, monkeypatch):
    import farm.workers.finalize as finalize

    src = clips.make_clip(tmp_path / "clip.mp4", width=160, height=90, seconds=1.0)
    out = tmp_path / "clip.farm.mp4"
    finalizing_job(ctx, src, out, job_id="race1")
    real_verify = finalize.verify_output

    def verify_then_cancel(*args, **kwargs):
        real_verify(*args, **kwargs)
        store.request_cancel(ctx.db, "race1")     # the user cancels after the checks, before publishing

    monkeypatch.setattr(finalize, "verify_output", verify_then_cancel)
    assert run_finalize(ctx, "race1", "fin-a") == "cancelled"
    job = store.get_job(ctx.db, "race1")
    assert job.state == "cancelled" and job.error is None
    assert not out.exists() and not list(tmp_path.glob(".clip.farm.mp4.*"))
    assert not ctx.storage.output("race1", ".mp4").exists()


def test_the_output_is_written_beside_its_destination_with_no_joined_copy_on_storage(ctx, tmp_path, monkeypatch):
    """A one-chunk job is remuxed straight from its chunk output into a hidden temporary beside
    the destination, renamed into place: while it is verified, the job's storage holds only the
    source and the chunk (inputs, output), never a joined copy (issue 17.4)."""
    import farm.workers.finalize as finalize

    src = clips.make_clip(tmp_path / "clip.mp4", width=160, height=90, seconds=1.0, audio_tracks=1)
    out = tmp_path / "out" / "clip.farm.mp4"
    out.parent.mkdir()
    finalizing_job(ctx, src, out, job_id="near1")
    seen: dict[str, list[str]] = {}
    real_verify = finalize.verify_output

    def look_then_verify(info, path, metadata):
        job_dir = ctx.storage.job_dir("near1")
        seen["storage"] = sorted(str(p.relative_to(job_dir)) for p in job_dir.rglob("*") if p.is_file())
        seen["beside"] = sorted(p.name for p in out.parent.iterdir())
        seen["verified"] = [str(path)]
        return real_verify(info, path, metadata)

    monkeypatch.setattr(finalize, "verify_output", look_then_verify)
    assert run_finalize(ctx, "near1", "fin-a") == "done", store.get_job(ctx.db, "near1").error
    assert seen["storage"] == ["chunks/in/00000.mp4", "chunks/out/00000.mp4", "source.mp4"], seen
    assert len(seen["beside"]) == 1 and seen["beside"][0].startswith(".clip.farm.mp4."), seen
    assert Path(seen["verified"][0]).parent == out.parent
    assert sorted(p.name for p in out.parent.iterdir()) == ["clip.farm.mp4"]
    assert media_checks.frame_count(out) == probe(src).video.frame_count

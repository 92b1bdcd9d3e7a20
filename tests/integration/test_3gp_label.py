"""A 3GP/3G2 output carries its synthetic-media label where FFmpeg's 3GP muxer keeps one: the
3GPP description box ('dscp', from the `comment` tag), with the models; finalize reads it
back itself (FFmpeg's demuxer reads no 3GPP asset box) and refuses an output without it.
Real run_finalize on a one-second clip (SQLite, real ffmpeg)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from farm.config import load_settings
from farm.errors import VerifyError
from farm.media.chunk_codec import choose_encoder, transcode_chunk
from farm.media.plan import plan_chunks
from farm.media.probe import probe
from farm.media.split import split_chunks
from farm.media.tags_3gpp import parse_udta, read_3gpp_tags
from farm.state import chunks, records, store
from farm.state.db import Database, upgrade_schema
from farm.storage import Storage
from farm.workers.finalize import output_label, output_metadata, run_finalize, verify_label
from tests import clips


@pytest.fixture
def ctx(tmp_path: Path) -> SimpleNamespace:
    settings = load_settings({"FARM_HOME": str(tmp_path / "home")})
    db = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    upgrade_schema(db)
    yield SimpleNamespace(db=db, settings=settings, storage=Storage(tmp_path / "storage"))
    db.dispose()


def clip_3gp(path: Path) -> Path:
    """One second of H.264 + AAC in 3GP (or 3G2, by the suffix), as a phone would write it."""
    subprocess.run([clips.ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
                    "testsrc2=s=176x144:r=15", "-f", "lavfi", "-i", "sine=frequency=440", "-t", "1",
                    "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", "-b:a", "32k", str(path)],
                   check=True, capture_output=True)
    return path


def finalizing_job(ctx: SimpleNamespace, src: Path, out: Path, job_id: str) -> None:
    """A pass-through job of `src` in one chunk, rendered and left finalizing."""
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


@pytest.mark.parametrize("suffix, muxer", [(".3gp", "3gp"), (".3g2", "3g2")])
def test_a_3gp_output_carries_a_verified_label_in_its_description_box(ctx, tmp_path, suffix, muxer):
    # Given a 3GP (3G2) clip, rendered as a pass-through job
    src = clip_3gp(tmp_path / f"phone{suffix}")
    out = tmp_path / f"phone.farm{suffix}"
    finalizing_job(ctx, src, out, "lbl3g")
    # When the job is finalized
    outcome = run_finalize(ctx, "lbl3g", "fin-a")
    # Then it is published, with the label and the models in the 3GPP description ('dscp')
    assert outcome == "done", store.get_job(ctx.db, "lbl3g").error
    label = read_3gpp_tags(out).get("comment", "")
    assert label.startswith("synthetic media made by farm") and "job lbl3g" in label, read_3gpp_tags(out)
    assert "no faces were changed" in label and label.endswith("; models: none")
    assert b"dscp" in out.read_bytes()
    # and the check finalize runs refuses a 3GP without it (the source)
    with pytest.raises(VerifyError, match="label"):
        verify_label(src, muxer, output_metadata(SimpleNamespace(id="lbl3g", models={}, options={}), muxer))


def test_a_face_job_s_3gp_label_names_its_models():
    job = SimpleNamespace(id="f1", options={"faces": "all"},
                          models={"pack": "default", "models": {"swapper": {"name": "inswapper_128", "sha256": "ff"}}})
    tags = output_metadata(job, "3gp")
    assert tags == {"comment": f"{output_label(job)}; models: inswapper_128 sha256:ff"}


def test_3gpp_strings_are_read_in_utf8_and_utf16():
    def box(kind: bytes, text: bytes) -> bytes:
        payload = b"\0\0\0\0" + b"\x15\xc7" + text
        return (8 + len(payload)).to_bytes(4, "big") + kind + payload
    body = box(b"dscp", "né\0".encode()) + box(b"titl", b"\xfe\xff" + "Zoë".encode("utf-16-be") + b"\0\0")
    assert parse_udta(body + b"\0\0\0\x02xx") == {"comment": "né", "title": "Zoë"}

"""Jobs written straight into the store, as submit would record them, for tests of what
reads the store (status views, metrics, follow, the one-answer rules): no video, no farm."""

from __future__ import annotations

from farm.state import store


def make_job(db, job_id: str, chunk_frames: list[int], *, input_path: str | None = None,  # noqa: ANN001
             output_path: str | None = None) -> None:
    """Job `job_id` with one chunk per entry of `chunk_frames` (its frame count), queued."""
    specs, first = [], 0
    for i, n in enumerate(chunk_frames):
        specs.append(store.ChunkSpec(i, first, n, {}, f"/in/{job_id}/{i}.mp4", f"/out/{job_id}/{i}.mp4"))
        first += n
    store.create_job(db, job_id=job_id, chunks=specs, input_path=input_path or f"/videos/{job_id}.mp4",
                     source_path="/s/source.mp4", output_path=output_path or f"/o/{job_id}.mp4",
                     frames_total=first, fps=30.0)


def hand_to_client(db, job_id: str, token: str) -> None:  # noqa: ANN001
    """The job recorded as API token `token`'s (the text create_token gave), as if that client
    had submitted it: the API shows a client its own jobs only (tests/integration/test_api_isolation.py)."""
    from sqlalchemy import update

    from farm.state.db import Job
    from farm.state.tokens import verify_token

    with db.transaction() as s:
        s.execute(update(Job).where(Job.id == job_id).values(api_token_id=verify_token(db, token).id))

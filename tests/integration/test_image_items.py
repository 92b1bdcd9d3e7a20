"""The records of an images job (farm.state.images) on SQLite and PostgreSQL: images and items
written in the job's own transaction, each image's result written with its chunk's finish,
and the item states a batch derives from them (done, failed, faceless, still to render)."""

from __future__ import annotations

from farm.state import batches, chunks, store
from farm.state import images as image_rows


def record(db, job_id: str = "imgjob000001", n: int = 4) -> list[int]:
    batches.create_batch(db, "b-0000000001", options={}, root="in", output_dir="out")
    specs = [store.ChunkSpec(index=i, first_frame=2 * i, frames_planned=2, plan={"images": 2},
                             input_path=f"in/{2 * i}.png", output_path=f"out/{2 * i}.png") for i in range(n // 2)]
    ids: list[int] = []

    def rows(session) -> None:
        ids.extend(image_rows.add_images(session, job_id, [(k // 2, f"in/{k}.png", f"out/{k}.png") for k in range(n)]))
        image_rows.add_items(session, [{"batch_id": "b-0000000001", "position": k, "input_path": f"in/{k}.png",
                                        "output_path": f"out/{k}.png", "kind": batches.IMAGE, "job_id": job_id,
                                        "image_id": ids[k], "input_sha256": f"h{k}", "options_sha256": "o"}
                                       for k in range(n)])

    store.create_job(db, job_id=job_id, chunks=specs, input_path="4 images", source_path="in/0.png",
                     output_path="out", frames_total=n, fps=0.0, encoder=dict(image_rows.IMAGES_ENCODER),
                     options={"faces": "all"}, models={"pack": "demo"}, batch_id="b-0000000001", also=rows)
    return ids


def test_each_image_is_an_item_with_its_own_result(db):
    ids = record(db)
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert image_rows.is_images_job(store.get_job(db, "imgjob000001"))
    assert [i.input for i in image_rows.of_chunk(db, "imgjob000001", 1)] == ["in/2.png", "in/3.png"]
    batch = batches.get_batch(db, "b-0000000001")
    assert [i.state for i in batch.items] == ["queued"] * 4 and batch.live == 4 and batch.frames == (0, 4)

    claim = chunks.claim_chunk(db, "imgjob000001", 0, "w", 3, stale_after_s=60)
    assert claim.outcome == "run"
    results = [image_rows.ImageResult(ids[0], image_rows.DONE, None, 2),
               image_rows.ImageResult(ids[1], image_rows.DONE, None, 0)]
    chunks.finish_chunk(db, "imgjob000001", 0, "w", also=lambda s: image_rows.record_results(s, results),
                        changed=(1, 2))
    batch = batches.get_batch(db, "b-0000000001")
    assert [i.state for i in batch.items] == ["done", "failed", "running", "running"]
    assert "no face was changed in in/1.png" in batch.items[1].failure
    assert batch.live == 2 and batch.frames == (2, 4) and batches.live_job_ids(batch) == ["imgjob000001"]

    chunks.claim_chunk(db, "imgjob000001", 1, "w", 3, stale_after_s=60)
    broken = [image_rows.ImageResult(ids[2], image_rows.FAILED, "in/2.png: cannot be decoded"),
              image_rows.ImageResult(ids[3], image_rows.DONE, None, 1)]
    assert chunks.finish_chunk(db, "imgjob000001", 1, "w", also=lambda s: image_rows.record_results(s, broken),
                               changed=(1, 1)).finalize
    batch = batches.get_batch(db, "b-0000000001")
    assert [i.state for i in batch.items] == ["done", "failed", "failed", "done"]
    assert batch.items[2].failure == "in/2.png: cannot be decoded" and batch.live == 0

    earlier = image_rows.earlier_images(db, ["out/0.png", "out/2.png", "out/9.png"])
    assert set(earlier) == {("out/0.png", "h0", "o"), ("out/2.png", "h2", "o")}
    assert earlier[("out/0.png", "h0", "o")].image_state == image_rows.DONE
    assert image_rows.made_by_farm(db, ["out/0.png", "out/2.png"]) == {"out/0.png"}

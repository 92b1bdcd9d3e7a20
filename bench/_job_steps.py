"""Where a farm job's wall time went, from its records (helper of bench_overhead.py, not a benchmark).

The job's log holds the submit's step times (`submit_steps`: probe, broker+faces, ingest,
plan+split) and the finalizer's (`finalize_steps`: check+probe, join, remux, sign, verify,
publish), written with farm.step_clock; the gaps between the job's events (created,
chunk_claimed, chunk_done, finalize_claimed, done) give the rest. Seconds throughout.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

STEP_ORDER = ("client start-up + record", "probe", "broker+faces", "start farm", "ingest", "plan+split",
              "enqueue + Celery hop", "chunks (decode, encode)", "hop to finalize", "check+probe", "join",
              "remux", "sign", "verify", "publish", "finalize other", "client sees done + exit")


def job_steps(home: Path, job_id: str, started: float, ended: float) -> dict[str, float]:
    """{step: seconds} of job `job_id` of the farm at `home`; `started`/`ended`: the client's
    start and exit (time.time())."""
    from farm.config import load_settings
    from farm.state import store
    from farm.state.db import Database
    from farm.step_clock import read_steps

    db = Database(load_settings({"FARM_HOME": str(home)}).database)
    try:
        job = store.get_job(db, job_id)
        events = store.events(db, job_id)
    finally:
        db.dispose()
    at = lambda kind: [t.replace(tzinfo=dt.timezone.utc).timestamp() for t, _c, k, _m in events if k == kind]
    notes = {k: m for _t, _c, k, m in events}
    submit = read_steps(notes.get("submit_steps", ""))
    final = read_steps(notes.get("finalize_steps", ""))
    created = job.created_at.replace(tzinfo=dt.timezone.utc).timestamp()
    claimed, done_chunks, fin, done = at("chunk_claimed"), at("chunk_done"), at("finalize_claimed"), at("done")
    steps = {"client start-up + record": created - started - sum(submit.values()), **submit,
             "enqueue + Celery hop": min(claimed) - created,
             "chunks (decode, encode)": max(done_chunks) - min(claimed),
             "hop to finalize": fin[-1] - max(done_chunks), **final}
    steps["finalize other"] = done[-1] - fin[-1] - sum(v for k, v in final.items() if k != "publish")
    steps["finalize other"] -= final.get("publish", 0.0)
    steps["client sees done + exit"] = ended - done[-1]
    return steps


def print_steps(runs: list[dict[str, float]]) -> None:
    """One line per step: each run's seconds and their median; then the fixed cost (all but the chunks)."""
    import statistics

    names = [n for n in STEP_ORDER if any(n in r for r in runs)] + sorted({n for r in runs for n in r} - set(STEP_ORDER))
    print("per step (s; each timed run, then the median):")
    for name in names:
        values = [r.get(name, 0.0) for r in runs]
        print(f"  {name:28s} " + " ".join(f"{v:7.3f}" for v in values) + f"   median {statistics.median(values):7.3f}")
    fixed = [sum(v for k, v in r.items() if k != "chunks (decode, encode)") for r in runs]
    print(f"  {'fixed cost (all but chunks)':28s} " + " ".join(f"{v:7.3f}" for v in fixed)
          + f"   median {statistics.median(fixed):7.3f}  (goal <= 0.5 s)")

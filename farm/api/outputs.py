"""Where an API client's job may write its output: nobody writes over another's files.

"A client" is an API token. The rules, checked before the job is submitted:

- never in the farm's own places (farm.jobs.output_places: `jobs/`, the engine cache, ...);
- an output the client names goes under `<storage>/outputs/` (API_OUTPUTS_DIR), or is
  an output of the same token's earlier job; the default output of an upload goes in
  the upload's own new folder `<storage>/api/<request>/`; the default output of a JSON
  request (beside the video) may not be in `<storage>/api/` either;
- a path that another token wrote, or that a job not submitted with this token writes
  (a `farm submit` job), is refused, whether the file is there yet or not;
- `overwrite` replaces only an output of this token's own earlier job;
- a default output (beside its input) under `outputs/` never goes into a folder that holds
  another token's outputs: that folder is the other client's (name an output instead).

A path a token writes is recorded (OutputClaim, one row per real path, inserted in one
transaction, so two clients racing for a new path cannot both have it). A claim made for
a request that is then refused is removed again.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, select
from sqlalchemy.exc import IntegrityError

from farm.config import Settings
from farm.errors import InputError
from farm.jobs.output_places import API_OUTPUTS_DIR, API_UPLOADS_DIR, check_output_place, is_within
from farm.state.db import Database, Job, OutputClaim
from farm.state.images import LOOKUP_BATCH


@dataclass(frozen=True)
class Claim:
    path: Path             # the real output path
    path_sha256: str
    created: bool          # made by this request (removed again if the request is refused)


def _key(path: Path) -> str:
    return hashlib.sha256(str(path).encode()).hexdigest()


def claim_output(settings: Settings, db: Database, token_id: int, output: Path, *, given: bool,
                 own_folder: Path | None, overwrite: bool) -> Claim:
    """Check the rules above for `output` and record it as this token's; InputError (HTTP 422) if refused.

    given: the client named the output (else it is the default); own_folder: this
    request's new upload folder, if any.
    """
    real = check_output_place(output, settings, api=True)
    storage = settings.storage_dir
    mine = _owner(db, real) == token_id
    in_own_folder = own_folder is not None and is_within(real, own_folder)
    if not (mine or in_own_folder):
        if is_within(real, storage / API_UPLOADS_DIR):
            raise InputError(f"output {real} is in another request's folder under {storage / API_UPLOADS_DIR}",
                             hint=f"name an output under {storage / API_OUTPUTS_DIR}/")
        if given and not is_within(real, storage / API_OUTPUTS_DIR):
            raise InputError(f"output {real}: an output named over the API goes under {storage / API_OUTPUTS_DIR}/",
                             hint=f"e.g. \"output\": \"{API_OUTPUTS_DIR}/<project>/{real.name}\" "
                                  "(or leave it out: the default is beside the input)")
        others = not given and is_within(real, storage / API_OUTPUTS_DIR) and claimants_in(db, real.parent, direct=True)
        if others and others != {token_id}:
            raise InputError(f"output {real} (beside its input) would go into {real.parent}, which holds another API "
                             "client's outputs", hint=f"name an output of your own: \"output\": "
                                                     f"\"{API_OUTPUTS_DIR}/<project>/...\" (a batch: an output folder)")
    return _claim(db, token_id, real, overwrite)


def claimants(db: Database, paths: Iterable[Path]) -> dict[Path, int]:
    """The token that claimed each of `paths` (real paths) that one claimed."""
    keys = {_key(p): p for p in paths}
    found: dict[Path, int] = {}
    with db.transaction() as s:
        todo = list(keys)
        for at in range(0, len(todo), LOOKUP_BATCH):
            rows = s.execute(select(OutputClaim.path_sha256, OutputClaim.token_id)
                             .where(OutputClaim.path_sha256.in_(todo[at:at + LOOKUP_BATCH])))
            found.update((keys[key], token) for key, token in rows)
    return found


def claimants_in(db: Database, folder: Path, *, direct: bool = False) -> set[int]:
    """The tokens that claimed a path inside real folder `folder` (`direct`: in it, not in a sub-folder)."""
    with db.transaction() as s:
        return set(s.execute(select(OutputClaim.token_id).where(_inside(folder, direct)).distinct()).scalars())


def _inside(folder: Path, direct: bool) -> Any:
    prefix = re.sub(r"[\\%_]", r"\\\g<0>", str(folder).rstrip(os.sep) + os.sep)   # LIKE's wildcards taken literally
    inside = OutputClaim.path.like(prefix + "%", escape="\\")
    return and_(inside, ~OutputClaim.path.like(prefix + "%" + os.sep + "%", escape="\\")) if direct else inside


def _owner(db: Database, real: Path) -> int | None:
    with db.transaction() as s:
        row = s.get(OutputClaim, _key(real))
        return row.token_id if row is not None else None


def _claim(db: Database, token_id: int, real: Path, overwrite: bool) -> Claim:
    key = _key(real)
    try:
        with db.transaction() as s:
            row = s.get(OutputClaim, key, with_for_update=True)
            if row is not None and row.token_id != token_id:
                raise InputError(f"output {real} belongs to another API client's job; it is never written over",
                                 hint="choose another output")
            if row is None:
                others = s.execute(select(Job.id).where(Job.output_path == str(real)).limit(1)).scalar()
                if others is not None:
                    raise InputError(f"output {real} is the output of job {others}, not submitted with this token",
                                     hint="choose another output")
                if real.exists() and overwrite:
                    raise InputError(f"output {real} exists and is not an output of this token's jobs; "
                                     "overwrite over the API replaces only those", hint="choose another output")
                s.add(OutputClaim(path_sha256=key, path=str(real), token_id=token_id))
                return Claim(real, key, created=True)
            return Claim(real, key, created=False)
    except IntegrityError:   # another request claimed the same new path first
        if _owner(db, real) == token_id:
            return Claim(real, key, created=False)
        raise InputError(f"output {real} was just taken by another API client's request",
                         hint="choose another output") from None


def record_job(db: Database, claim: Claim, token_id: int, job_id: str) -> None:
    """Note the job that writes the claimed path (the latest one); the claim is made again if
    a racing request of the same token removed it."""
    with db.transaction() as s:
        row = s.get(OutputClaim, claim.path_sha256, with_for_update=True)
        if row is None:
            s.add(OutputClaim(path_sha256=claim.path_sha256, path=str(claim.path), token_id=token_id, job_id=job_id))
        else:
            row.job_id = job_id


def release(db: Database, claim: Claim) -> None:
    """Remove a claim this request made, when its job was not submitted."""
    if claim.created:
        with db.transaction() as s:
            s.execute(delete(OutputClaim).where(OutputClaim.path_sha256 == claim.path_sha256,
                                                OutputClaim.job_id.is_(None)))

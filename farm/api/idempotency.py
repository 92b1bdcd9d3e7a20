"""Idempotency keys: a CI retry of the same POST /jobs gets the same job, not a second render.

A key is scoped to the token that sent it and bound to the sha256 of the request. The
first request reserves the key (a row with no job yet) in one transaction, so of two
requests racing with one key exactly one submits; the other waits for the job id. The
same key with a different request is a conflict (HTTP 409). A submit that fails
releases its key, so a corrected request may use it again. Keys are kept for
KEY_TTL_S.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from farm.errors import FarmError, InputError
from farm.state.db import Database, IdempotencyKey, utcnow

KEY_TTL_S = 24 * 3600
"""How long a key is remembered, in seconds."""

STALE_RESERVATION_S = 3600
"""A reservation with no job after this many seconds (its server died) may be taken over."""

WAIT_FOR_JOB_S = 30.0
"""How long a request waits for a racing request with the same key to record its job, in seconds."""

MAX_KEY_CHARS = 200


class KeyConflict(FarmError):
    """The key was used for another request, or the request using it has not finished (HTTP 409)."""


@dataclass(frozen=True)
class Reservation:
    key: str               # as stored: "<token id>:<client key>"
    job_id: str | None     # set: the request was made before; reply with this job


def check_key(key: str) -> str:
    if not (1 <= len(key) <= MAX_KEY_CHARS) or not key.isascii() or not key.isprintable():
        raise InputError(f"the Idempotency-Key header must be 1-{MAX_KEY_CHARS} printable ASCII characters")
    return key


def reserve(db: Database, token_id: int, key: str, request_sha256: str,
            wait_s: float = WAIT_FOR_JOB_S, poll_s: float = 0.2) -> Reservation:
    """Reserve `key` for this request, or return the job an identical earlier request made."""
    stored = f"{token_id}:{check_key(key)}"
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with db.transaction() as s:
                now = utcnow()
                s.execute(delete(IdempotencyKey).where(
                    IdempotencyKey.created_at < now - dt.timedelta(seconds=KEY_TTL_S)))
                row = s.get(IdempotencyKey, stored, with_for_update=True)
                if row is None:
                    s.add(IdempotencyKey(key=stored, token_id=token_id, request_sha256=request_sha256))
                    return Reservation(stored, None)
                if row.request_sha256 != request_sha256:
                    raise KeyConflict(f"Idempotency-Key {key!r} was used for a different request",
                                      hint="use a new key for a new request")
                if row.job_id is not None:
                    return Reservation(stored, row.job_id)
                if (now - row.created_at).total_seconds() > STALE_RESERVATION_S:
                    row.created_at = now   # its server is gone: take it over
                    return Reservation(stored, None)
        except IntegrityError:
            continue   # another request inserted the key first: read it again
        if time.monotonic() >= deadline:
            raise KeyConflict(f"a request with Idempotency-Key {key!r} is still being submitted",
                              hint="try again in a little while")
        time.sleep(poll_s)


def complete(db: Database, reservation: Reservation, job_id: str) -> None:
    with db.transaction() as s:
        row = s.get(IdempotencyKey, reservation.key, with_for_update=True)
        if row is not None:
            row.job_id = job_id


def release(db: Database, reservation: Reservation) -> None:
    with db.transaction() as s:
        s.execute(delete(IdempotencyKey).where(IdempotencyKey.key == reservation.key,
                                               IdempotencyKey.job_id.is_(None)))

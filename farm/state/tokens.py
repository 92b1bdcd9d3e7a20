"""Bearer tokens of the HTTP API: created once, stored only as a sha256, compared in constant time.

A token is `secrets.token_urlsafe(32)` (256 bits of randomness). The database keeps its
sha256 (hex) and a name; the token itself is shown once, by `farm tokens create`, and
never written anywhere by the farm (not to the database, not to a log).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from farm.errors import InputError
from farm.state.db import ApiToken, Database, utcnow

TOKEN_BYTES = 32
"""Random bytes in a new token (its text is about 43 characters)."""

LAST_USED_RESOLUTION_S = 60.0
"""`last_used_at` is rewritten at most this often per token, in seconds (fewer writes)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,99}$")


@dataclass(frozen=True)
class TokenView:
    """What may be shown about a token: never the token, never its hash."""

    id: int
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _view(row: ApiToken) -> TokenView:
    return TokenView(row.id, row.name, row.created_at, row.last_used_at, row.revoked_at)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise InputError(f"token name {name!r} is invalid",
                         hint="1-100 characters: letters, digits and . _ @ : - (starting with a letter or digit)")
    return name


def create_token(db: Database, name: str) -> str:
    """Make a token called `name`; returns the token text (the only time it exists in clear)."""
    check_name(name)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        with db.transaction() as s:
            if s.execute(select(ApiToken.id).where(ApiToken.name == name)).first() is not None:
                raise InputError(f"a token named {name!r} already exists",
                                 hint="choose another name, or `farm tokens list`")
            s.add(ApiToken(name=name, token_sha256=token_sha256(token)))
    except IntegrityError:  # created by someone else meanwhile
        raise InputError(f"a token named {name!r} already exists") from None
    return token


def list_tokens(db: Database) -> list[TokenView]:
    with db.transaction() as s:
        return [_view(r) for r in s.execute(select(ApiToken).order_by(ApiToken.id)).scalars()]


def revoke_token(db: Database, name: str) -> TokenView:
    """Revoke the token called `name` (revoking twice keeps the first time)."""
    with db.transaction() as s:
        row = s.execute(select(ApiToken).where(ApiToken.name == name).with_for_update()).scalar_one_or_none()
        if row is None:
            raise InputError(f"no token named {name!r}", hint="`farm tokens list` shows the tokens")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return _view(row)


def verify_token(db: Database, token: str) -> TokenView | None:
    """The active token whose sha256 matches `token`, or None (unknown or revoked).

    Every stored hash is compared with `hmac.compare_digest`, without stopping at the
    first match, so the time taken does not depend on which token (if any) matches.
    """
    if not token:
        return None
    digest = token_sha256(token)
    with db.transaction() as s:
        found: int | None = None
        for row_id, stored in s.execute(select(ApiToken.id, ApiToken.token_sha256)).all():
            if hmac.compare_digest(stored, digest):
                found = row_id
        if found is None:
            return None
        row = s.get(ApiToken, found)
        if row.revoked_at is not None:
            return None
        now = utcnow()
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() >= LAST_USED_RESOLUTION_S:
            row.last_used_at = now
        return _view(row)

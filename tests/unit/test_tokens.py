"""API tokens on a real database (SQLite and PostgreSQL): only hashes stored, revocation, last use."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from farm.errors import InputError
from farm.state import tokens
from farm.state.db import ApiToken


def test_a_created_token_verifies_and_only_its_hash_is_stored(db):
    token = tokens.create_token(db, "ci")
    assert len(token) >= 40
    with db.transaction() as s:
        row = s.execute(select(ApiToken)).scalar_one()
        assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
        assert token not in (row.name, row.token_sha256)
        assert row.last_used_at is None
    view = tokens.verify_token(db, token)
    assert view is not None and view.name == "ci" and view.active
    assert view.last_used_at is not None


def test_unknown_empty_and_near_miss_tokens_are_refused(db):
    token = tokens.create_token(db, "ci")
    assert tokens.verify_token(db, "") is None
    assert tokens.verify_token(db, "nope") is None
    assert tokens.verify_token(db, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert tokens.verify_token(db, hashlib.sha256(token.encode()).hexdigest()) is None  # the hash is no token


def test_a_revoked_token_is_refused_and_listed_as_revoked(db):
    token = tokens.create_token(db, "old")
    other = tokens.create_token(db, "new")
    tokens.revoke_token(db, "old")
    tokens.revoke_token(db, "old")  # twice is fine
    assert tokens.verify_token(db, token) is None
    assert tokens.verify_token(db, other).name == "new"
    listed = {t.name: t for t in tokens.list_tokens(db)}
    assert not listed["old"].active and listed["new"].active


def test_names_are_unique_and_checked(db):
    tokens.create_token(db, "ci")
    with pytest.raises(InputError, match="already exists"):
        tokens.create_token(db, "ci")
    for bad in ("", "-x", "a b", "x" * 200, "name\n"):
        with pytest.raises(InputError, match="token name"):
            tokens.create_token(db, bad)
    with pytest.raises(InputError, match="no token named"):
        tokens.revoke_token(db, "missing")

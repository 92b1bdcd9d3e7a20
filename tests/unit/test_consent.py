"""Consent references and the require_consent setting (TOML bool, FARM_REQUIRE_CONSENT)."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.config import load_settings
from farm.errors import ConfigError, InputError
from farm.jobs.spec import check_options, submit_request
from farm.jobs.submit import CONSENT_MAX_CHARS, check_consent


def test_require_consent_from_the_file_and_the_environment(tmp_path):
    (tmp_path / "farm.toml").write_text("require_consent = true\n")
    assert load_settings({"FARM_HOME": str(tmp_path)}).require_consent is True
    assert load_settings({"FARM_HOME": str(tmp_path), "FARM_REQUIRE_CONSENT": "0"}).require_consent is False
    with pytest.raises(ConfigError, match="FARM_REQUIRE_CONSENT = 'maybe' is invalid: require_consent must be true or false"):
        load_settings({"FARM_HOME": str(tmp_path), "FARM_REQUIRE_CONSENT": "maybe"})


def test_missing_consent_is_refused_only_when_required(tmp_path):
    strict = load_settings({"FARM_HOME": str(tmp_path), "FARM_REQUIRE_CONSENT": "yes"})
    relaxed = load_settings({"FARM_HOME": str(tmp_path)})
    check_consent(None, relaxed)
    with pytest.raises(InputError, match="requires a consent reference") as refused:
        check_consent("  ", strict)
    assert refused.value.exit_code == 2 and "--consent" in refused.value.hint
    check_consent("ticket LEGAL-88", strict)


def test_consent_must_be_a_short_printable_reference(tmp_path):
    relaxed = load_settings({"FARM_HOME": str(tmp_path)})
    for bad in ("line one\nline two", "x" * (CONSENT_MAX_CHARS + 1)):
        with pytest.raises(InputError, match="printable characters"):
            check_consent(bad, relaxed)


def test_consent_is_a_spec_and_form_option():
    options = check_options({"consent": "sha256:" + "0" * 64, "passthrough": "true"}, "the form", text=True)
    assert submit_request(Path("a.mp4"), options).consent == "sha256:" + "0" * 64

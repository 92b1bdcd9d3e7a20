"""Float settings refuse nan and inf, and every refused setting names where it came from:
the environment variable or the key in the config file (never a CLI option it did not
come from)."""

from __future__ import annotations

import pytest

from farm.config import load_settings
from farm.errors import ConfigError


@pytest.mark.parametrize("var", ["FARM_CHUNK_SECONDS", "FARM_STALE_HEARTBEAT_S", "FARM_REAP_INTERVAL_S"])
@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "NaN"])
def test_a_non_finite_float_in_the_environment_is_refused_naming_the_variable(tmp_path, var, raw):
    with pytest.raises(ConfigError) as caught:
        load_settings({"FARM_HOME": str(tmp_path), var: raw})
    message = str(caught.value)
    assert var in message and "finite" in message and "--" not in message, message


@pytest.mark.parametrize("line", ["chunk_seconds = nan", "chunk_seconds = inf", "stale_heartbeat_s = -inf"])
def test_a_non_finite_float_in_the_config_file_is_refused_naming_the_file_and_key(tmp_path, line):
    (tmp_path / "farm.toml").write_text(f"[farm]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"FARM_HOME": str(tmp_path)})
    message = str(caught.value)
    key = line.split()[0]
    assert f"{key} in {tmp_path / 'farm.toml'}" in message and "finite" in message, message


def test_a_chunk_length_out_of_range_names_its_variable(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings({"FARM_HOME": str(tmp_path), "FARM_CHUNK_SECONDS": "10000"})
    message = str(caught.value)
    assert "FARM_CHUNK_SECONDS" in message and "3600" in message and "--chunk-seconds" not in message, message


def test_a_chunk_length_out_of_range_in_the_file_names_the_file(tmp_path):
    (tmp_path / "farm.toml").write_text("chunk_seconds = 0.01\n")
    with pytest.raises(ConfigError, match=r"chunk_seconds in .*farm\.toml = 0\.01"):
        load_settings({"FARM_HOME": str(tmp_path)})


@pytest.mark.parametrize("raw", ["0", "-2"])
def test_too_few_attempts_names_the_variable(tmp_path, raw):
    with pytest.raises(ConfigError, match=f"FARM_MAX_ATTEMPTS = {raw} is invalid: max_attempts must be at least 1"):
        load_settings({"FARM_HOME": str(tmp_path), "FARM_MAX_ATTEMPTS": raw})


def test_a_fraction_for_a_whole_number_is_refused(tmp_path):
    (tmp_path / "farm.toml").write_text("job_window = 2.5\n")
    with pytest.raises(ConfigError, match="job_window in .* must be a whole number"):
        load_settings({"FARM_HOME": str(tmp_path)})


def test_finite_values_still_load(tmp_path):
    s = load_settings({"FARM_HOME": str(tmp_path), "FARM_CHUNK_SECONDS": "2.5", "FARM_STALE_HEARTBEAT_S": "4"})
    assert s.chunk_seconds == 2.5 and s.stale_heartbeat_s == 4.0

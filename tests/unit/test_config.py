"""Settings: defaults, TOML file, environment wins."""

import pytest

from farm.config import load_settings
from farm.errors import ConfigError


def test_embedded_defaults_live_under_home(tmp_path):
    s = load_settings({"FARM_HOME": str(tmp_path)})
    assert s.embedded_broker
    assert s.broker == f"redis+socket://{tmp_path}/run/redis.sock"
    assert s.database == f"sqlite:///{tmp_path}/farm.db"
    assert s.storage_dir == tmp_path / "storage"
    assert s.visibility_timeout_s > s.chunk_time_limit_s


def test_toml_file_then_environment_wins(tmp_path):
    (tmp_path / "farm.toml").write_text(
        '[farm]\nbroker_url = "redis://filehost:6379/0"\nchunk_seconds = 2.5\nstorage = "/mnt/farm"\n')
    s = load_settings({"FARM_HOME": str(tmp_path), "FARM_BROKER_URL": "redis://envhost:6379/1"})
    assert s.broker == "redis://envhost:6379/1"
    assert s.chunk_seconds == 2.5
    assert str(s.storage_dir) == "/mnt/farm"
    assert not s.embedded_broker


def test_unknown_setting_in_file_is_refused(tmp_path):
    (tmp_path / "farm.toml").write_text("[farm]\nbrokr_url = 'x'\n")
    with pytest.raises(ConfigError, match="unknown setting 'brokr_url'"):
        load_settings({"FARM_HOME": str(tmp_path)})


def test_bad_number_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="chunk_seconds"):
        load_settings({"FARM_HOME": str(tmp_path), "FARM_CHUNK_SECONDS": "soon"})


def test_missing_explicit_config_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"FARM_HOME": str(tmp_path), "FARM_CONFIG": str(tmp_path / "nope.toml")})

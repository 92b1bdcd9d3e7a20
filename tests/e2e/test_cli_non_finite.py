"""nan and inf never pass as numbers, and the refusal names where the value came from: the
CLI option, the environment variable or the config file's key. Real CLI; nothing stored."""

from __future__ import annotations

import pytest

from farm.errors import EXIT_REFUSED
from tests import clips
from tests.e2e.farmcli import FarmCLI


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return clips.make_clip(tmp_path_factory.mktemp("nan") / "c.mp4", width=160, height=90, seconds=0.5)


def _assert_refused(proc, home, *said: str, absent: str | None = None) -> None:
    text = proc.stdout + proc.stderr
    assert proc.returncode == EXIT_REFUSED, text
    assert "Traceback" not in text, text
    for words in said:
        assert words in text, text
    if absent:
        assert absent not in text, text
    assert not (home / "storage" / "jobs").exists() or not any((home / "storage" / "jobs").iterdir())


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_farm_chunk_seconds_nan_names_the_variable_not_the_option(farm_home, clip, value):
    cli = FarmCLI(farm_home, {"FARM_CHUNK_SECONDS": value})
    proc = cli.run("submit", str(clip), "--passthrough", timeout_s=60)
    _assert_refused(proc, farm_home, "FARM_CHUNK_SECONDS", "finite", absent="--chunk-seconds")


def test_chunk_seconds_nan_in_the_config_file_names_the_file(farm_home, clip):
    (farm_home / "farm.toml").write_text("chunk_seconds = nan\n")
    proc = FarmCLI(farm_home).run("submit", str(clip), "--passthrough", timeout_s=60)
    _assert_refused(proc, farm_home, f"chunk_seconds in {farm_home / 'farm.toml'}", "finite",
                    absent="--chunk-seconds")


@pytest.mark.parametrize("option,value", [("--chunk-seconds", "nan"), ("--chunk-seconds", "-inf"),
                                          ("--similarity", "nan"), ("--enhance-blend", "inf")])
def test_a_non_finite_float_option_is_refused_naming_the_option(farm_home, clip, option, value):
    proc = FarmCLI(farm_home).run("submit", str(clip), "--source", str(clip), option, value, timeout_s=60)
    _assert_refused(proc, farm_home, option, "not a finite number")


@pytest.mark.parametrize("value", ["nan", "0", "-1", "inf"])
def test_health_refuses_a_timeout_that_is_not_seconds_above_zero(farm_home, value):
    proc = FarmCLI(farm_home).run("health", "--timeout", value, timeout_s=60)
    assert proc.returncode == EXIT_REFUSED, proc.stdout + proc.stderr
    assert "--timeout" in proc.stderr and "seconds above 0" in proc.stderr and "Traceback" not in proc.stderr

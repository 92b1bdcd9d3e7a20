"""farm.faces.options: declared options, defaults, and refusals that name the option."""

from __future__ import annotations

import pytest

from farm.errors import InputError
from farm.faces.options import FACE_OPTIONS, validate_options


def test_defaults_fill_every_option():
    opts = validate_options({})
    assert set(opts) == set(FACE_OPTIONS)
    assert opts["faces"] == "all" and opts["enhance"] is True
    assert opts["enhance_blend"] == 0.8 and opts["similarity"] == 0.35
    assert opts["reference"] is None and opts["reference_frame"] is None


def test_values_are_converted_from_strings():
    opts = validate_options({"enhance": "no", "enhance_blend": "0.5", "detect_max_side": "960",
                             "faces": "reference", "reference_frame": 12})
    assert opts["enhance"] is False and opts["enhance_blend"] == 0.5
    assert opts["detect_max_side"] == 960 and opts["reference_frame"] == 12


def test_validated_options_validate_again_unchanged():
    opts = validate_options({"faces": "reference", "reference": "me.jpg", "similarity": 0.5})
    assert validate_options(opts) == opts


@pytest.mark.parametrize("raw,name", [
    ({"face": "all"}, "face"),
    ({"faces": "everyone"}, "faces"),
    ({"similarity": 1.5}, "similarity"),
    ({"similarity": "high"}, "similarity"),
    ({"enhance": "maybe"}, "enhance"),
    ({"enhance": 1}, "enhance"),
    ({"enhance_blend": -0.1}, "enhance_blend"),
    ({"enhance_blend": float("nan")}, "enhance_blend"),
    ({"detect_max_side": 10}, "detect_max_side"),
    ({"detect_max_side": 640.5}, "detect_max_side"),
    ({"detect_max_side": True}, "detect_max_side"),
    ({"min_score": 2}, "min_score"),
    ({"faces": "reference", "reference_frame": -1}, "reference_frame"),
    ({"faces": "reference", "reference": ""}, "reference"),
    ({"faces": "reference"}, "reference"),
    ({"reference": "me.jpg"}, "reference"),
])
def test_bad_options_are_refused_naming_the_option(raw, name):
    with pytest.raises(InputError) as info:
        validate_options(raw)
    assert name in str(info.value)
    assert info.value.exit_code == 2


def test_not_a_mapping_is_refused():
    with pytest.raises(InputError):
        validate_options(["faces"])  # type: ignore[arg-type]

"""What `farm` says (issue 12.8): help without Python type labels; options named as the user
gave them (`--source` on the command line, `source` in a spec file); a missing or broken source
image refused at once (exit 2), named, with what is wrong and what to do. Real CLI subprocesses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from tests import clips
from tests.e2e.farmcli import FarmCLI
from tests.e2e.test_submit_cli import job_rows

TYPE_LABEL = re.compile(r"<(?:bool|boolean|int|integer|float|str|text|path|file|filename|choice|list|tuple|uuid)\b"
                        r"[^>]*>|list\[|\{[A-Z_]+\}", re.IGNORECASE)
"""Typer's labels: `<bool>`, `<list[Path]>`, `<int>`, and `{VIDEO}` for a required argument."""


@pytest.fixture
def cli(farm_home: Path):
    farm = FarmCLI(farm_home, {"COLUMNS": "100"})
    yield farm
    farm.down()


def command_paths() -> list[list[str]]:
    """Every command and subcommand of `farm`, as the words that name it."""
    from farm.cli.main import app

    def walk(command, path):  # noqa: ANN001, ANN202
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(app), []))


def help_text(cli: FarmCLI, *words: str) -> str:
    proc = cli.run(*words, "--help", timeout_s=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_submit_help_shows_flags_bare_and_options_with_plain_labels(cli):
    text = help_text(cli, "submit")
    assert re.search(r"--overwrite\s+Replace an existing output file", text), text
    assert re.search(r"--source\s+-s\s+IMAGE\s+Image", text), text
    assert re.search(r"Usage: farm submit \[OPTIONS\] PATH\.\.\.", text), text


HELP_OF_EACH = """
import contextlib, io, json, sys
from farm.cli.main import main
texts = {}
for words in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main([*words, "--help"])
        except SystemExit as stop:
            code = stop.code
    texts[" ".join(words)] = [code, out.getvalue()]
print(json.dumps(texts))
"""
"""`farm WORDS --help` for many commands in one process: the console entry point (main) as
`farm` runs it, once per command (28 interpreter starts took ~20 s on 2 cores)."""


def help_texts(cli: FarmCLI, paths: list[list[str]]) -> dict[str, str]:
    proc = subprocess.run([sys.executable, "-c", HELP_OF_EACH, json.dumps(paths)], env=cli.env,
                          capture_output=True, text=True, timeout=120, check=True)
    texts = json.loads(proc.stdout)
    assert all(code in (0, None) for code, _ in texts.values()), texts
    return {words: text for words, (_, text) in texts.items()}


def test_no_help_shows_a_python_type_label(cli):
    paths = command_paths()
    assert ["submit"] in paths and ["models", "list"] in paths and ["tokens", "create"] in paths
    texts = help_texts(cli, paths)
    assert texts["submit"] == help_text(cli, "submit")   # what `farm submit --help` itself prints
    for words in paths:
        text = texts[" ".join(words)]
        assert "Usage: farm" in text, (words, text)
        assert not TYPE_LABEL.search(text), (words, TYPE_LABEL.findall(text), text)


def refused(proc: subprocess.CompletedProcess, *words: str) -> list[str]:
    """The refusal's stderr lines: exit 2, each of `words` said, and a 'what to do' line."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    assert re.search(r"^  what to do: \S", proc.stderr, re.MULTILINE), proc.stderr
    return proc.stderr.splitlines()


def test_a_missing_source_is_named_by_flag_on_the_command_line_and_by_key_in_a_spec(cli, tmp_path):
    video = clips.make_clip(tmp_path / "a.mp4", seconds=0.5)
    lines = refused(cli.run("submit", str(video)), "no source image given")
    hint = next(line for line in lines if "what to do" in line)
    assert "--source" in hint and "--passthrough" in hint, hint
    spec = tmp_path / "render.toml"
    spec.write_text("crf = 20\n")
    lines = refused(cli.run("submit", str(video), "--spec", str(spec)), "no source image given")
    hint = next(line for line in lines if "what to do" in line)
    assert "source = " in hint and "passthrough = true" in hint and str(spec) in hint, hint
    spec.write_text("priority = 12\n")
    lines = refused(cli.run("submit", str(video), "--spec", str(spec), "--passthrough"), "option priority", str(spec))
    assert "--priority" not in "\n".join(lines)
    lines = refused(cli.run("submit", str(video), "--passthrough", "--priority", "12"), "--priority must be 0..9")
    (tmp_path / "a.farm.mp4").write_bytes(b"x")
    refused(cli.run("submit", str(video), "--passthrough"), "already exists", "--overwrite", "--output")
    assert job_rows(cli.home) == 0


def test_a_missing_or_broken_source_image_is_refused_naming_it_with_what_to_do(cli, tmp_path):
    video = clips.make_clip(tmp_path / "a.mp4", seconds=0.5)
    text = tmp_path / "face.png"
    text.write_text("not a photo")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    folder = tmp_path / "faces.jpg"
    folder.mkdir()
    cases = [("nonexist.png", ["source image nonexist.png", "no such file", "--source"]),
             (str(text), [f"source image {text}", "not a readable image", "JPEG, PNG"]),
             (str(empty), [f"source image {empty}", "empty file"]),
             (str(video), [f"source image {video}", "not a readable image"]),
             (str(folder), [f"source image {folder}", "not a regular file", "folder"])]
    for source, words in cases:
        # no --models: the image is checked before any model pack is loaded
        refused(cli.run("submit", str(video), "--source", source, timeout_s=60), *words)
    spec = tmp_path / "render.toml"
    spec.write_text('source = ["gone.jpg"]\n')
    lines = refused(cli.run("submit", str(video), "--spec", str(spec)), f"source image {tmp_path / 'gone.jpg'}")
    hint = next(line for line in lines if "what to do" in line)
    assert "source in the spec file" in hint and "--source" not in hint, hint
    refused(cli.run("submit", str(video), "--source", str(clips.make_face_image(tmp_path / "ok.jpg")),
                    "--faces", "reference", "--reference", str(text)), f"reference image {text}", "not a readable image")
    assert job_rows(cli.home) == 0
    assert not list((cli.home / "storage").glob("jobs/*"))

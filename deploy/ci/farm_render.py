#!/usr/bin/env python3
"""Render one video on the farm from CI, over its HTTP API: submit, wait, download.

    FARM_API_URL=https://farm.example:8750 FARM_API_TOKEN=... \\
        python3 deploy/ci/farm_render.py clip.mp4 --spec deploy/ci/render.toml --out out/clip.farm.mp4

Standard library only (Python 3.11+), so it runs on any CI image with python3.
- Options come from a job spec file (the same TOML as `farm submit --spec`; `source` and
  `reference` images are uploaded with the video) and `--set key=value` overrides.
- The POST carries an Idempotency-Key derived from the pipeline (GitHub Actions, GitLab
  CI) and the video's name, so a retried CI job, or a POST retried after a network
  error, gets the job already submitted instead of starting a second render.
- Prints the job's JSON on stdout at the end; progress goes to stderr.
- Exit code as `farm submit --wait`: 0 done, 1 failed, 2 refused, 3 cancelled,
  4 the farm is unavailable. Every 4xx answer is final (exit 2, with the server's
  detail); only connection errors and 5xx answers are tried again (a few times).
- Before uploading, the video and images are checked against the farm's limits
  (GET /limits), which also checks the token: a file the farm would refuse for its size is
  refused here (exit 2) without sending it. urllib sends a whole body before it reads the
  answer, so a refusal of a body too big for the farm to read and drop would otherwise
  look like a reset connection, and be tried again.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from pathlib import Path

EXIT_REFUSED, EXIT_UNAVAILABLE = 2, 4
ATTEMPTS = 5
FILE_OPTIONS = ("source", "reference")


class Refused(Exception):
    """The API said no (4xx; `code`), or this script did before asking: exit 2."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class Unavailable(Exception):
    """The API cannot be reached or answers 5xx: exit 4."""


def server_detail(exc: urllib.error.HTTPError) -> str:
    """The API's error body ({"detail", "hint"}) as one line, or its raw text."""
    text = exc.read(64 * 1024).decode(errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        return text[:2000]
    if not isinstance(body, dict) or "detail" not in body:
        return text[:2000]
    return str(body["detail"]) + (f" (hint: {body['hint']})" if body.get("hint") else "")


def request(method: str, url: str, token: str, body=None, headers=None, timeout_s: float = 60):
    """urlopen; a 4xx answer raises Refused (final), a 5xx or no answer raises Unavailable."""
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Authorization": f"Bearer {token}", **(headers or {})})
    try:
        return urllib.request.urlopen(req, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        detail = server_detail(exc)
        if exc.code >= 500:
            raise Unavailable(f"{method} {url}: HTTP {exc.code}: {detail}") from None
        raise Refused(f"{method} {url}: HTTP {exc.code}: {detail}", exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        raise Unavailable(f"{method} {url}: {exc}") from None


def regular_file(path: Path, what: str) -> Path:
    """`path` if it is a regular file; Refused naming it otherwise (a FIFO would block the read)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise Refused(f"{what} {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise Refused(f"{what} {path} is not a regular file")
    return path


def multipart(fields: list[tuple[str, str]], files: list[tuple[str, Path]]):
    """(iterable body, headers): files are streamed from disk, never read into memory whole."""
    boundary = uuid.uuid4().hex
    parts: list = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, path in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode())
        parts.append(path)
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    length = sum(p.stat().st_size if isinstance(p, Path) else len(p) for p in parts)

    def body():
        for p in parts:
            if isinstance(p, Path):
                with open(p, "rb") as fh:
                    while block := fh.read(1024 * 1024):
                        yield block
            else:
                yield p

    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(length)}


def load_options(spec: Path | None, sets: list[str]) -> tuple[list[tuple[str, str]], list[tuple[str, Path]]]:
    """Form fields and files from a spec file (paths from its folder) and key=value overrides."""
    options: dict = {}
    base = Path(".")
    if spec:
        data = tomllib.loads(regular_file(spec, "spec file").read_text())
        options.update(data.get("submit", data))
        base = spec.parent
    for item in sets:
        key, _, value = item.partition("=")
        options[key.strip().replace("-", "_")] = value
    fields, files = [], []
    for key, value in options.items():
        key = key.replace("-", "_")
        if key in FILE_OPTIONS:
            for p in value if isinstance(value, list) else [value]:
                files.append((key, regular_file(base / p, f"{key} image")))
        else:
            fields.append((key, str(value).lower() if isinstance(value, bool) else str(value)))
    return fields, files


def idempotency_key(video: Path) -> str:
    """Same on a retried CI job (and a re-run of its pipeline), different per video."""
    env = os.environ
    if env.get("GITHUB_RUN_ID"):
        run = f"gh-{env.get('GITHUB_REPOSITORY', '')}-{env['GITHUB_RUN_ID']}-{env.get('GITHUB_JOB', '')}"
    elif env.get("CI_PIPELINE_ID"):
        run = f"gl-{env.get('CI_PROJECT_ID', '')}-{env['CI_PIPELINE_ID']}-{env.get('CI_JOB_NAME', '')}"
    else:
        run = f"local-{uuid.uuid4().hex}"
    return f"{run}-{video.name}"[:200]


def retried(call, first_wait_s: float = 2.0):
    """call(), tried again a few times after no answer or a 5xx, waiting first_wait_s, then
    twice as long each time (2, 4, 8, 16 s by default); a Refused (4xx) is final."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except Unavailable as exc:
            if attempt == ATTEMPTS:
                raise
            print(f"farm: {exc}; trying again ({attempt}/{ATTEMPTS})", file=sys.stderr)
            time.sleep(first_wait_s * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def check_limits(api: str, token: str, video: Path, files, length: int) -> None:
    """Refuse, before sending a byte, an upload the farm would refuse for its size."""
    try:
        with request("GET", f"{api}/limits", token) as resp:
            limits = json.load(resp)
    except Refused as exc:
        if exc.code == 404:      # a farm from before GET /limits: its own 413 has to do
            return
        raise
    most = limits["max_upload_bytes"]
    if length > most:
        raise Refused(f"{video} was not sent: the upload ({length} bytes, with {len(files)} image(s)) is over "
                      f"the limit of {most} bytes per request that the farm refuses with HTTP 413 (`farm api "
                      "--max-upload-bytes`, default FARM_MAX_INPUT_BYTES): render a smaller or shorter video, "
                      "or ask the farm's operator to raise the limit", 413)
    for key, path in files:
        size = path.stat().st_size
        if size > limits["max_image_bytes"]:
            raise Refused(f"{video} was not sent: the {key} image {path} ({size} bytes) is over the image limit "
                          f"of {limits['max_image_bytes']} bytes that the farm refuses with HTTP 413 "
                          "(FARM_MAX_IMAGE_BYTES): use a smaller image", 413)


def submit(api: str, token: str, video: Path, fields, files, key: str, retry_s: float = 2.0) -> dict:
    """POST /jobs; sent again after no answer or a 5xx (the Idempotency-Key makes it the same job)."""
    body, headers = multipart(fields, [("video", video), *files])

    def post() -> dict:
        with request("POST", f"{api}/jobs", token, body(), {**headers, "Idempotency-Key": key},
                     timeout_s=3600) as resp:
            return json.load(resp)

    retried(lambda: check_limits(api, token, video, files, int(headers["Content-Length"])), retry_s)
    try:
        return retried(post, retry_s)
    except Refused as exc:
        raise Refused(f"{video} was not submitted: {exc}", exc.code) from None


def wait(api: str, token: str, job_id: str, poll_s: float, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with request("GET", f"{api}/jobs/{job_id}", token) as resp:
                job = json.load(resp)
        except Unavailable as exc:   # a restart of the API is not the end of the job
            print(f"farm: {exc}; still waiting", file=sys.stderr)
            job = None
        if job:
            print(f"farm: job {job_id} {job['state']} {job['frames_done']}/{job['frames']} frames, "
                  f"chunks {job['chunks_done']}/{job['chunks']}", file=sys.stderr)
            if job["exit_code"] is not None:
                return job
        if time.monotonic() > deadline:
            raise Unavailable(f"job {job_id} did not end within {timeout_s:.0f} s (it goes on; cancel it if needed)")
        time.sleep(poll_s)


def download(api: str, token: str, job: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    with request("GET", api + job["output_url"], token, timeout_s=3600) as resp, open(tmp, "wb") as fh:
        while block := resp.read(1024 * 1024):
            fh.write(block)
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--spec", type=Path, help="a job spec file (TOML), as for `farm submit --spec`")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override an option")
    parser.add_argument("--out", type=Path, help="where to put the output (default: <name>.farm.<ext>)")
    parser.add_argument("--idempotency-key", help="default: from the CI pipeline and the video's name")
    parser.add_argument("--poll-s", type=float, default=5.0)
    parser.add_argument("--retry-s", type=float, default=2.0,
                        help="wait before the first retry of an unanswered request, doubled each time (s)")
    parser.add_argument("--timeout-s", type=float, default=6 * 3600)
    args = parser.parse_args(argv)
    api = os.environ.get("FARM_API_URL", "http://127.0.0.1:8750").rstrip("/")
    token = os.environ.get("FARM_API_TOKEN", "")
    if not token:
        print("farm: set FARM_API_TOKEN (a token from `farm tokens create NAME`)", file=sys.stderr)
        return EXIT_REFUSED
    try:
        regular_file(args.video, "video")
        fields, files = load_options(args.spec, args.set)
        key = args.idempotency_key or idempotency_key(args.video)
        job = submit(api, token, args.video, fields, files, key, args.retry_s)
        print(f"farm: job {job['id']} submitted", file=sys.stderr)
        job = wait(api, token, job["id"], args.poll_s, args.timeout_s)
        if job["state"] == "done":
            out = args.out or args.video.with_name(f"{args.video.stem}.farm{args.video.suffix}")
            download(api, token, job, out)
            job["downloaded_to"] = str(out)
            print(f"farm: output downloaded to {out}", file=sys.stderr)
        else:
            print(f"farm: job {job['id']} {job['state']}: {job.get('error') or ''}", file=sys.stderr)
        print(json.dumps(job))
        return int(job["exit_code"])
    except (Refused, OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"farm: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except Unavailable as exc:
        print(f"farm: unavailable: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())

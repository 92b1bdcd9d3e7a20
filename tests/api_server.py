"""A real `farm api` server for tests: a farm home of its own, a token, a uvicorn process
on a free loopback port, and everything stopped and removed afterwards."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx

from tests.e2e.farmcli import FARM, FarmCLI

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    farm: FarmCLI
    home: Path
    url: str
    token: str
    log: Path


@contextlib.contextmanager
def farm_api(name: str, env: dict[str, str] | None = None, *, local_farm: bool = True,
             max_upload_bytes: int | None = None, token_name: str = "ci") -> Iterator[Server]:
    """`farm up` (unless local_farm=False: a cluster broker in env), a token, then `farm api`
    until its /health answers; on exit the server and the farm are stopped, the home removed."""
    home = Path("/tmp") / f"farm-{name}-{uuid.uuid4().hex[:8]}"
    home.mkdir()
    farm = FarmCLI(home, env or {})
    server = None
    try:
        if local_farm:
            farm.run("up", check=True, timeout_s=120)
        token = farm.run("tokens", "create", token_name, check=True).stdout.strip()
        port, log = free_port(), home / "api.log"
        argv = [*FARM, "api", "--port", str(port)]
        if max_upload_bytes is not None:
            argv += ["--max-upload-bytes", str(max_upload_bytes)]
        with open(log, "w") as fh:
            server = subprocess.Popen(argv, env=farm.env, stdout=fh, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"farm api did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield Server(farm, home, url, token, log)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if local_farm:
            farm.down()
        shutil.rmtree(home, ignore_errors=True)

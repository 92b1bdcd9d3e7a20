"""docker-compose.yml and deploy/: validated by Debian's `docker-compose config` (no engine
needed) and checked for what the deployment promises: no clear-text secret in any compose
file, Redis with a password from the env file, AOF and noeviction, NVIDIA device
reservations on the workers, health checks, Prometheus scraping Flower."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
NODE = ROOT / "deploy" / "compose.node.yml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
SECRET_VARS = ("REDIS_PASSWORD", "POSTGRES_PASSWORD", "FLOWER_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
LONG_RUNNING = ("redis", "postgres", "flower", "api", "metrics", "worker", "prometheus", "grafana")


def compose_exe() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing (CI installs Debian's docker-compose)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    return exe


def yaml_to_data(text: str) -> dict:
    """Parse YAML with PyYAML; without it in this venv, with the interpreter that runs docker-compose."""
    try:
        import yaml

        return yaml.safe_load(text)
    except ImportError:
        exe = compose_exe()
        interpreter = Path(exe).read_text(errors="replace").splitlines()[0].removeprefix("#!").split()
        code = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
        out = subprocess.run([*interpreter, "-c", code], input=text, capture_output=True, text=True, check=True)
        return json.loads(out.stdout)


def rendered(*files: Path, env_file: Path = ENV_EXAMPLE) -> dict:
    args = [compose_exe(), "--env-file", str(env_file)]
    for f in files:
        args += ["-f", str(f)]
    proc = subprocess.run([*args, "config"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return yaml_to_data(proc.stdout)


def example_env() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def test_compose_files_validate_with_docker_compose_config():
    cfg = rendered(COMPOSE)
    assert set(LONG_RUNNING) <= set(cfg["services"])
    node = rendered(NODE)
    assert set(node["services"]) == {"worker"}


def test_no_secret_is_written_in_any_compose_file():
    env = example_env()
    for path in (COMPOSE, NODE):
        text = path.read_text()
        for var in SECRET_VARS:
            if var in env:
                assert env[var] not in text
        # every password-like key or argument takes its value from ${VAR}
        for line in text.splitlines():
            if re.search(r"(?i)(password|requirepass|secret|token|_auth\b)", line.split("#", 1)[0]):
                assert "${" in line, f"{path.name}: {line.strip()}"
        # and URLs carry no literal credentials
        for user_info in re.findall(r"://([^@/\s\"]*)@", text):
            assert re.fullmatch(r"[\w-]*:?\$\{[A-Z_]+(:\?[^}]*)?\}", user_info), user_info


def test_interpolation_refuses_to_run_without_the_env_file(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    proc = subprocess.run([compose_exe(), "--env-file", str(empty), "-f", str(COMPOSE), "config"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode != 0 and "deploy/.env" in proc.stderr


def test_redis_has_a_password_from_env_aof_and_noeviction():
    cfg = rendered(COMPOSE)
    raw = yaml_to_data(COMPOSE.read_text())["services"]["redis"]["command"]
    assert raw[raw.index("--requirepass") + 1].startswith("${REDIS_PASSWORD")
    cmd = cfg["services"]["redis"]["command"]
    assert cmd[cmd.index("--requirepass") + 1] == example_env()["REDIS_PASSWORD"]
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--maxmemory-policy") + 1] == "noeviction"
    # the health check authenticates through the environment, not argv
    assert cfg["services"]["redis"]["environment"]["REDISCLI_AUTH"] == example_env()["REDIS_PASSWORD"]
    assert "-a" not in cfg["services"]["redis"]["healthcheck"]["test"]


@pytest.mark.parametrize("path", [COMPOSE, NODE], ids=["head", "node"])
def test_workers_reserve_nvidia_gpus_and_run_one_process_per_gpu(path):
    worker = rendered(path)["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert worker["command"][:3] == ["worker", "--gpus", "all"]     # the supervisor: one process per GPU
    assert worker["build"]["dockerfile"] == "deploy/Dockerfile.worker"
    mounts = {v.split(":")[1] for v in worker["volumes"]}
    assert {"/mnt/farm", "/models"} <= mounts
    assert worker["environment"]["FARM_STORAGE"] == "/mnt/farm"


def test_every_long_running_service_has_a_health_check_and_flower_has_auth():
    services = rendered(COMPOSE)["services"]
    for name in LONG_RUNNING:
        test = services[name].get("healthcheck", {}).get("test")
        assert test and test[0] == "CMD", name                       # exec form: no shell
    flower = services["flower"]
    assert flower["command"][0] == "flower" and "--insecure" not in flower["command"]
    assert flower["environment"]["FARM_FLOWER_PASSWORD"] == example_env()["FLOWER_PASSWORD"]
    assert services["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_prometheus_scrapes_flower_and_farm_metrics():
    prom = yaml_to_data((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert {"flower:5555", "metrics:9750"} <= targets
    dash = json.loads((ROOT / "deploy" / "grafana" / "farm-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for metric in ("farm_jobs", "farm_chunk_duration_seconds_bucket", "farm_worker_fps", "farm_queue_depth"):
        assert metric in exprs


def test_dockerfiles_build_on_cuda_with_onnxruntime_gpu_tensorrt_and_ffmpeg():
    worker = (ROOT / "deploy" / "Dockerfile.worker").read_text()
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\S+-runtime-", worker, re.M)
    assert "onnxruntime-gpu==" in worker and "tensorrt-cu12==" in worker and " ffmpeg " in worker
    app = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "-slim" in app and 'ENTRYPOINT ["farm"]' in app
    for text in (worker, app):
        assert "USER farm" in text

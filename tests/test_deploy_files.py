"""The deployment files say what docs/deployment.md promises: no Docker engine runs here, so they are parsed.

docker-compose.yml: the services, their healthchecks and restart policies, a durable Redis that never evicts, the
bucket made at start, the GPU reservation. The Dockerfiles: a bot image without torch, a worker image with it, both
running as a non-root user. `.env.example` and the README's settings table: every setting the code reads.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from prometheus_client import Counter, Histogram

from imagine.settings import Settings
from tests.support.services import REPO

#: Variables .env.example documents that Settings does not read: boto3's credentials and compose's own.
NOT_SETTINGS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "POSTGRES_PASSWORD", "MINIO_ROOT_USER",
                "MINIO_ROOT_PASSWORD", "S3_BUCKET"}
LONG_RUNNING = {"postgres", "redis", "minio", "bot", "worker", "flower"}
ONE_SHOT = {"minio-bucket", "migrate"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def setting_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines if line and line[0] != "#"]


def test_compose_has_every_service_with_a_restart_policy(services: dict[str, Any]) -> None:
    assert set(services) == LONG_RUNNING | ONE_SHOT
    for name in LONG_RUNNING:
        assert services[name]["restart"] in ("unless-stopped", "always"), name
    for name in ONE_SHOT:
        assert services[name]["restart"] == "no", name
    assert services["flower"]["profiles"] == ["flower"]  # optional: only with --profile flower
    assert all("profiles" not in services[name] for name in set(services) - {"flower"})


def test_long_running_services_have_healthchecks(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING - {"flower"}:
        test = services[name]["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name, port_setting in (("bot", "BOT_METRICS_PORT"), ("worker", "WORKER_METRICS_PORT")):
        port = services[name]["environment"][port_setting]
        assert f"http://127.0.0.1:{port}/healthz" in " ".join(services[name]["healthcheck"]["test"]), name


def test_redis_is_durable_and_never_evicts(services: dict[str, Any]) -> None:
    command = services["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert command[0] == "redis-server"
    assert options["--appendonly"] == "yes" and options["--maxmemory-policy"] == "noeviction"
    assert any(volume.endswith(":/data") for volume in services["redis"]["volumes"])
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in services["postgres"]["volumes"])


def test_the_image_store_is_minio_with_its_bucket_made_at_start(services: dict[str, Any]) -> None:
    storage = urlparse(services["bot"]["environment"]["STORAGE_URL"])
    assert storage.scheme == "s3" and "endpoint_url=http://minio:9000" in storage.query
    assert storage.netloc == "${S3_BUCKET:-imagine}"
    bucket = services["minio-bucket"]
    assert bucket["environment"]["S3_BUCKET"] == storage.netloc
    assert 'mc mb --ignore-existing "store/$$S3_BUCKET"' in " ".join(bucket["command"])
    assert bucket["depends_on"] == {"minio": {"condition": "service_healthy"}}
    for name in ("bot", "worker"):
        assert services[name]["environment"]["STORAGE_URL"] == services["bot"]["environment"]["STORAGE_URL"]
        assert services[name]["depends_on"]["minio-bucket"] == {"condition": "service_completed_successfully"}


def test_migrations_run_once_before_the_bot_and_workers(services: dict[str, Any]) -> None:
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("bot", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}


def test_the_worker_reserves_nvidia_gpus_and_keeps_a_model_cache(services: dict[str, Any]) -> None:
    worker = services["worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "WORKER_DEVICES" in worker["environment"]
    hf_home = dict(re.findall(r"(\w+)=(\S+)", " ".join(
        args for op, args in dockerfile(REPO / worker["build"]["dockerfile"]) if op == "ENV")))["HF_HOME"]
    assert f"hf-cache:{hf_home}" in worker["volumes"]
    assert "deploy" not in services["bot"]  # the bot needs no GPU


def test_images_are_built_from_their_dockerfiles(services: dict[str, Any]) -> None:
    assert services["bot"]["build"]["dockerfile"] == "docker/bot.Dockerfile"
    assert services["migrate"]["image"] == services["bot"]["image"]
    assert services["worker"]["build"]["dockerfile"] == "docker/worker.Dockerfile"
    for name in ("bot", "worker"):
        for op, args in dockerfile(REPO / services[name]["build"]["dockerfile"]):
            if op == "COPY":
                *sources, _ = shlex.split(args)
                assert all((REPO / source).exists() for source in sources), args


@pytest.mark.parametrize("name", ["bot", "worker"])
def test_images_run_as_a_non_root_user(name: str) -> None:
    instructions = dockerfile(REPO / "docker" / f"{name}.Dockerfile")
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    # Nothing after the last USER switches back.
    last_user = max(i for i, (op, _) in enumerate(instructions) if op == "USER")
    assert all(op in ("EXPOSE", "ENTRYPOINT", "CMD", "ENV") for op, _ in instructions[last_user + 1:])


def test_the_bot_image_has_no_torch_and_the_worker_image_has() -> None:
    bot = " ".join(args for op, args in dockerfile(REPO / "docker/bot.Dockerfile") if op in ("RUN", "ARG"))
    worker = " ".join(args for op, args in dockerfile(REPO / "docker/worker.Dockerfile") if op in ("RUN", "ARG"))
    assert "torch" not in bot and "pip install ." in bot and "[worker]" not in bot
    assert "torch==" in worker and 'pip install ".[worker]"' in worker
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    assert not any(heavy in core for heavy in ("torch", "diffusers", "transformers", "spandrel"))
    worker_extra = " ".join(project["optional-dependencies"]["worker"]).lower()
    assert all(heavy in worker_extra for heavy in ("torch", "diffusers", "transformers"))


def test_env_example_documents_every_setting() -> None:
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    assert setting_names() - documented == set(), "settings missing from .env.example"
    assert documented - setting_names() - NOT_SETTINGS == set(), ".env.example names what nothing reads"


def test_readme_settings_table_lists_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    table = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, re.MULTILINE))
    assert setting_names() - table == set(), "settings missing from the README's table"


def test_compose_only_sets_settings_the_code_reads(services: dict[str, Any]) -> None:
    for name in ("bot", "worker", "migrate"):
        assert set(services[name]["environment"]) - setting_names() - NOT_SETTINGS == set(), name


def test_the_grafana_dashboard_plots_metrics_the_code_exports() -> None:
    import bot.metrics
    import inference.metrics

    dashboard = json.loads((REPO / "docs" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    names = {name for expr in exprs for name in re.findall(r"imagine_\w+", expr)}
    used = {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in names}
    exported = {"imagine_queue_depth"} | {
        metric._name for module in (bot.metrics, inference.metrics) for metric in vars(module).values()
        if isinstance(metric, Counter | Histogram)
    }
    assert used == exported  # every exported metric is plotted, and nothing plotted is missing

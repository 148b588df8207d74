"""The container setup, checked without Docker: the compose file parses and its commands exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from workers.cli.main import STAGES, build_parser

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _ingest_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in _compose()["services"].items() if svc.get("image") == "ingest:latest"}


def test_one_service_per_worker_kind_each_running_its_own_stage() -> None:
    services = _ingest_services()
    for stage in STAGES:
        args = build_parser().parse_args(services[stage]["command"])
        assert args.command == "worker" and args.stages == stage


def test_every_ingest_service_command_parses_with_the_cli() -> None:
    services = _ingest_services()
    assert len(services) >= len(STAGES) + 1
    for name, svc in services.items():
        command = svc["command"]
        if "--help" in command:
            command = [c for c in command if c != "--help"] + ["https://news.example/"]
        build_parser().parse_args(command)  # raises SystemExit on an unknown command or flag
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert svc["environment"]["INGEST_BROKER_URL"].startswith("redis://redis:")


def test_workers_can_be_scaled_no_fixed_names_or_host_ports() -> None:
    for name, svc in _ingest_services().items():
        assert "container_name" not in svc and "ports" not in svc, f"{name} could not be scaled"


def test_redis_persists_with_aof_and_minio_gets_its_bucket() -> None:
    services = _compose()["services"]
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    init = " ".join(services["minio-init"]["command"])
    bucket = _ingest_services()["fetch"]["environment"]["INGEST_STORAGE_URL"].split("/")[2]
    assert f"mc mb --ignore-existing local/{bucket}" in init


def test_dockerfile_installs_the_package_and_runs_the_cli() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["ingest"]' in text and "COPY schemas" in text and "USER ingest" in text


def test_readme_documents_every_setting_and_ci_runs_its_test_command() -> None:
    from dataclasses import fields

    from workers.core.settings import ENV_PREFIX, Settings

    readme = (ROOT / "README.md").read_text()
    for f in fields(Settings):
        assert f"`{ENV_PREFIX}{f.name.upper()}`" in readme, f"README lacks {f.name}"
    test_command = ".venv/bin/ruff check . && .venv/bin/mypy && .venv/bin/pytest -q"
    assert test_command in readme
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == test_command, ".ci/run must end with README's test command"
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert "./ingest crawl " in first_block and "bash .ci/run" in first_block

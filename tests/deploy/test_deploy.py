"""The container setup, checked without Docker: the compose file, the Dockerfile and every
`docker compose …` command README shows, mapped onto the argv the container would get and run
through the real CLI parser."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    DEPLOY,
    ROOT,
    exec_form,
    final_stage,
    image_env,
    image_user,
    ingest_argv,
    parse_cli,
    unknown_variables,
)
from workers.cli.main import STAGES
from workers.core.settings import Settings

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / "compose.env.example"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def _compose(*overrides: Path) -> dict[str, Any]:
    """The compose model, with override files merged over it service by service, as `-f a -f b`."""
    model = _load(COMPOSE)
    for path in overrides:
        for name, svc in _load(path).get("services", {}).items():
            model["services"].setdefault(name, {}).update(svc)
    return model


def _ingest_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in _compose()["services"].items() if svc.get("image") == "ingest:latest"}


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def _interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` (``$$`` is a literal $)."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m[1], m[2], m[3]
        value = env.get(name)
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise ValueError(f"{name}: {arg}")
        if op in (":-", "-") and (value is None or (op == ":-" and value == "")):
            return arg
        return value or ""

    return "$".join(_VAR.sub(one, part) for part in value.split("$$"))


def _container_env(service: str, env: Mapping[str, str]) -> dict[str, str]:
    svc = _compose()["services"][service]
    return {k: _interpolate(str(v), env) for k, v in svc.get("environment", {}).items()}


def _filled_example() -> dict[str, str]:
    """The example env file as an operator fills it in: every empty value set."""
    return {k: v or f"secret-{k.lower()}" for k, v in _env_file(ENV_EXAMPLE).items()}


# --- compose ------------------------------------------------------------------------------------


def test_one_service_per_worker_kind_each_running_its_own_stage() -> None:
    services = _ingest_services()
    for stage in STAGES:
        args = parse_cli(services[stage]["command"])
        assert args.command == "worker" and args.stages == stage
        # Explicit: the default follows the container's CPU quota (workers/core/cpus.py), which compose may not set.
        assert "--processes" in services[stage]["command"], stage


def test_every_ingest_service_command_parses_with_the_cli() -> None:
    services = _ingest_services()
    assert len(services) >= len(STAGES) + 2  # the stages, enqueue, the ingest tool
    for name, svc in services.items():
        full = svc.get("entrypoint") or exec_form("ENTRYPOINT")
        argv = ingest_argv([*full, *svc["command"]])
        if "--help" in argv:  # the tools' default: show help; with arguments, the arguments run
            argv = [a for a in argv if a != "--help"]
            if argv and argv[-1] == "enqueue":
                argv.append("https://news.example/")
        if argv:
            parse_cli(argv)
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert svc["environment"]["INGEST_BROKER_URL"].startswith("redis://redis:"), name


def test_run_enqueue_with_a_url_gives_ingest_enqueue_that_url() -> None:
    # `docker compose run SERVICE ARGS` replaces the service's command with ARGS and keeps its
    # entrypoint; with the image's entrypoint (`ingest`) alone, `run enqueue URL` ran `ingest URL`.
    svc = _ingest_services()["enqueue"]
    args = parse_cli(ingest_argv([*svc["entrypoint"], "https://news.example/", "--kind", "listing"]))
    assert args.command == "enqueue" and args.urls == ["https://news.example/"] and args.kind == "listing"


def test_workers_can_be_scaled_no_fixed_names_or_host_ports() -> None:
    for name, svc in _ingest_services().items():
        assert "container_name" not in svc and "ports" not in svc, f"{name} could not be scaled"


def test_each_worker_serves_metrics_on_the_port_prometheus_scrapes() -> None:
    services = _ingest_services()
    prometheus = _load(DEPLOY / "prometheus" / "prometheus.yml")
    sd = prometheus["scrape_configs"][0]["dns_sd_configs"][0]
    assert sorted(sd["names"]) == sorted(STAGES)
    for stage in STAGES:
        port = services[stage]["environment"]["INGEST_METRICS_PORT"]
        assert str(port) in [str(p) for p in services[stage]["expose"]], stage
        assert int(port) == sd["port"] == int(image_env()["INGEST_METRICS_PORT"]), stage
    for tool in ("enqueue", "ingest"):
        assert services[tool]["healthcheck"] == {"disable": True}, f"{tool} runs no metrics server to check"


def test_redis_persists_with_aof_and_minio_gets_its_bucket() -> None:
    services = _compose()["services"]
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert redis_cmd[redis_cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    assert "redis-data" in _compose()["volumes"]
    init = " ".join(services["minio-init"]["command"])
    bucket = _ingest_services()["fetch"]["environment"]["INGEST_STORAGE_URL"].split("/")[2]
    assert f"mc mb --ignore-existing local/{bucket}" in init


def test_minio_console_is_published_only_by_the_override_and_only_on_loopback() -> None:
    assert "ports" not in _compose()["services"]["minio"]
    ports = _compose(DEPLOY / "compose.console.yml")["services"]["minio"]["ports"]
    assert ports == ["127.0.0.1:9001:9001"]
    for name, svc in _compose()["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_credentials_come_from_the_env_file_with_no_defaults() -> None:
    text = COMPOSE.read_text()
    used = {m[1] for m in _VAR.finditer(text.replace("$$", ""))}
    example = _env_file(ENV_EXAMPLE)
    assert used and used <= set(example), f"not in {ENV_EXAMPLE.name}: {sorted(used - set(example))}"
    for m in _VAR.finditer(text.replace("$$", "")):
        assert m[2] == ":?", f"${{{m[1]}}} needs :? (fail when unset), not a default"
    for svc in _compose()["services"].values():
        for key, value in svc.get("environment", {}).items():
            if re.search(r"PASSWORD|SECRET|ACCESS_KEY", key):
                assert _VAR.fullmatch(str(value)), f"{key} is written into the compose file"
    # As copied, the example leaves the passwords empty: compose refuses to start.
    with pytest.raises(ValueError, match="MINIO_ROOT_PASSWORD"):
        _container_env("fetch", example)
    env = _filled_example()
    fetch, minio = _container_env("fetch", env), _container_env("minio", env)
    assert fetch["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"] == env["MINIO_ROOT_USER"]
    assert fetch["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"] == env["MINIO_ROOT_PASSWORD"]


def test_worker_environment_is_valid_settings() -> None:
    for stage in STAGES:
        env = _container_env(stage, _filled_example())
        assert not unknown_variables(list(env)), unknown_variables(list(env))
        settings = Settings.from_env(env)  # raises SettingsError on a bad value
        assert settings.broker_url.startswith("redis://redis:") and not settings.embedded


def test_images_are_pinned() -> None:
    for name, svc in _compose()["services"].items():
        image = svc.get("image", "")
        if "build" in svc:
            continue
        tag = image.rpartition(":")[2]
        assert ":" in image and tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"


def test_grafana_provisioning_points_at_the_mounted_dashboard() -> None:
    grafana = _compose()["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"] if v.startswith("./"))
    dashboard = Path(mounts["./deploy/grafana/ingest.json"])
    provider = _load(DEPLOY / "grafana" / "provisioning" / "dashboards" / "ingest.yml")["providers"][0]
    assert Path(provider["options"]["path"]) == dashboard.parent
    datasource = _load(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"].startswith("http://prometheus:")
    assert (ROOT / "deploy" / "grafana" / "ingest.json").is_file()


# --- README's docker compose commands -----------------------------------------------------------

_GLOBAL_VALUE_OPTIONS = {"-f", "--file", "-p", "--project-name", "--profile", "--env-file", "--project-directory"}
_RUN_VALUE_OPTIONS = {"-e", "--env", "-v", "--volume", "-w", "--workdir", "--name", "-u", "--user", "-l", "--label"}
_RUN_FLAGS = {"--rm", "-T", "-d", "--detach", "--no-deps", "--build", "-i", "--interactive", "--service-ports"}
_UP_FLAGS = {"-d", "--detach", "--build", "--no-deps", "--wait", "--remove-orphans", "--force-recreate", "--no-build"}
_SERVICE_COMMANDS = {"logs", "ps", "stop", "start", "restart", "build", "pull", "down", "config", "top", "kill"}


def _readme_snippets() -> Iterator[str]:
    readme = (ROOT / "README.md").read_text()
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", readme, re.S | re.M)
    for block in fenced:
        yield from block.splitlines()
    rest = re.sub(r"^```[^\n]*\n.*?^```", "", readme, flags=re.S | re.M)
    yield from re.findall(r"`([^`\n]+)`", rest)


def readme_compose_commands() -> list[list[str]]:
    """Every `docker compose …` in README (code blocks and inline code), as argv after `compose`,
    cut at the first shell operator (``<``, ``|``, ``&&``, ``;``)."""
    commands = []
    for snippet in _readme_snippets():
        if "docker compose" not in snippet:
            continue
        lexer = shlex.shlex(snippet, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
        for i in range(len(tokens) - 1):
            if tokens[i : i + 2] == ["docker", "compose"]:
                argv = []
                for tok in tokens[i + 2 :]:
                    if set(tok) <= set("();<>|&"):
                        break
                    argv.append(tok)
                commands.append(argv)
    return commands


def _check_compose_command(argv: list[str]) -> str:
    """Fails unless `docker compose ARGV` names existing services and flags and, for `run`, gives
    the container an argv the ingest CLI accepts. Returns the subcommand."""
    files: list[Path] = []
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        assert argv[i] in _GLOBAL_VALUE_OPTIONS, f"unknown compose option {argv[i]} in {argv}"
        if argv[i] in ("-f", "--file") and argv[i + 1] != "docker-compose.yml":
            files.append(ROOT / argv[i + 1])
        i += 2
    assert all(f.is_file() for f in files), files
    services = _compose(*files)["services"]
    sub, rest = argv[i], argv[i + 1 :]
    if sub == "up":
        j = 0
        while j < len(rest) and rest[j].startswith("-"):
            if rest[j] == "--scale":
                name, _, n = rest[j + 1].partition("=")
                assert name in services and n.isdigit(), rest[j + 1]
                assert "ports" not in services[name] and "container_name" not in services[name], name
                j += 2
            else:
                assert rest[j] in _UP_FLAGS, f"unknown `up` flag {rest[j]}"
                j += 1
        assert all(s in services for s in rest[j:]), rest[j:]
    elif sub == "run":
        j = 0
        while rest[j].startswith("-"):
            assert rest[j] in _RUN_FLAGS | _RUN_VALUE_OPTIONS, f"unknown `run` option {rest[j]}"
            j += 2 if rest[j] in _RUN_VALUE_OPTIONS else 1
        name, args = rest[j], rest[j + 1 :]
        svc = services[name]
        full = [*(svc.get("entrypoint") or exec_form("ENTRYPOINT")), *(args or svc.get("command") or [])]
        argv_ingest = ingest_argv(full)
        if "--help" not in argv_ingest:
            parse_cli(argv_ingest)
    elif sub in _SERVICE_COMMANDS:
        names = [a for a in rest if not a.startswith("-")]
        assert all(s in services for s in names), names
    else:
        pytest.fail(f"README uses `docker compose {sub}`, which this test does not know yet")
    return sub


def test_every_docker_compose_command_in_the_readme_works_as_written() -> None:
    commands = readme_compose_commands()
    subs = [_check_compose_command(argv) for argv in commands]
    assert len(commands) >= 8, commands
    assert "run" in subs and "up" in subs
    assert ["run", "--rm", "enqueue", "https://news.example/", "--kind", "listing"] in commands
    assert any("--scale" in argv for argv in commands)


def test_the_checker_refuses_what_compose_would_refuse() -> None:
    for bad in (["run", "--rm", "enqueue", "--no-such-flag"], ["up", "--scale", "nosuch=2"], ["run", "--rm", "nosuch"]):
        with pytest.raises((pytest.fail.Exception, AssertionError, KeyError)):
            _check_compose_command(bad)


# --- Dockerfile ---------------------------------------------------------------------------------


def test_base_image_is_an_exact_python_311_slim_tag_with_its_digest_noted() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert default and re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?", default[1]), default
    froms = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(froms) >= 2, "multi-stage: build tools stay in the build stage"
    assert all(line.split()[1] == "${PYTHON_IMAGE}" for line in froms)
    assert re.search(rf"^#.*{re.escape(default[1])}@sha256:[0-9a-f]{{64}}$", text, re.M), "no digest comment"


def test_dependencies_are_installed_from_the_pinned_constraints_wheels_only() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    installs = re.findall(r"pip (?:--python \S+ )?install ([^\n&]+)", text)
    assert installs and all("--no-cache-dir" in i for i in installs), installs
    assert any("-c deploy/constraints.txt" in i and "--no-index" in i for i in installs)
    assert any("-r deploy/constraints.txt" in i and "--only-binary=:all:" in i for i in installs)
    assert "COPY deploy/constraints.txt" in text and "pip --python /opt/ingest/bin/python check" in text


def test_final_stage_is_small_non_root_and_healthchecked() -> None:
    stage = final_stage()
    body = "\n".join(stage)
    assert not re.search(r"apt-get|apk |gcc|build-essential|pip wheel|pip install", body), "build work in the image"
    assert any(line.startswith("COPY --from=build /opt/ingest") for line in stage)
    uid, gid = image_user()
    assert uid >= 1000 and gid >= 1000
    assert [line for line in stage if line.startswith("USER ")][-1] == f"USER {uid}:{gid}"
    assert exec_form("ENTRYPOINT") == ["ingest"] and "COPY schemas" in (DEPLOY / "Dockerfile").read_text()
    assert any(line.startswith("HEALTHCHECK ") for line in stage)
    assert image_env()["INGEST_METRICS_PORT"] in {line.split()[1] for line in stage if line.startswith("EXPOSE ")}


def test_the_build_context_holds_only_what_the_image_is_built_from() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [p for p in ignore if p and not p.startswith("#")]
    assert patterns[0] == "*", "allow-list: everything else (.venv, .git, .env, out/) stays out"
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (DEPLOY / "Dockerfile").read_text(), re.M)
    for sources in copied:
        for src in sources.split():
            assert f"!{src.rstrip('/')}" in {p.rstrip("/") for p in patterns}, f"{src} is COPY'd but ignored"
            assert (ROOT / src).exists(), src


def exec_form_of(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list)
    return [str(v) for v in value]


def _healthcheck(port: str) -> int:
    line = next(line for line in final_stage() if line.startswith("HEALTHCHECK "))
    cmd = exec_form_of(line.split(" CMD ", 1)[1])
    assert cmd[0].endswith("/python") and cmd[1] == "-c"
    env = {"INGEST_METRICS_PORT": port, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", cmd[2]], env=env, capture_output=True, timeout=30).returncode


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_healthcheck_passes_on_200_fails_on_503_and_on_no_server() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = str(server.server_address[1])
    try:
        _Health.status = 200
        assert _healthcheck(port) == 0
        _Health.status = 503
        assert _healthcheck(port) != 0
    finally:
        server.shutdown()
        server.server_close()
    assert _healthcheck(port) != 0, "nothing listening must be unhealthy"
    assert _healthcheck("0") == 0, "a container without a metrics server has nothing to check"


# --- README -------------------------------------------------------------------------------------


def test_readme_documents_every_setting_and_ci_runs_its_test_command() -> None:
    from dataclasses import fields

    from workers.core.settings import ENV_PREFIX

    readme = (ROOT / "README.md").read_text()
    for f in fields(Settings):
        assert f"`{ENV_PREFIX}{f.name.upper()}`" in readme, f"README lacks {f.name}"
    test_command = ".venv/bin/ruff check . && .venv/bin/mypy && .venv/bin/pytest -q"
    assert test_command in readme
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == test_command, ".ci/run must end with README's test command"
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert "./ingest crawl " in first_block and "bash .ci/run" in first_block


def _deployment_section() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Deployment\n(.*?)(?=^## )", readme, re.S | re.M)
    assert match, "README has no '## Deployment' section"
    return match[1]


def test_readme_deployment_section_covers_compose_k8s_keda_dashboard_and_redis_urls() -> None:
    section = _deployment_section()
    for needle in ("docker compose up", "kubectl apply -k deploy/k8s", "KEDA", "deploy/grafana/ingest.json",
                   "redis://", "rediss://", "redis+sentinel://", "cp deploy/compose.env.example .env"):
        assert needle in section, needle
    assert re.search(r"redis\+sentinel://\[:password@\]host1:26379,host2:26379/mymaster/0", section)


def test_every_deploy_file_the_readme_names_exists() -> None:
    # (`kubectl exec deploy/NAME` names a Deployment, not a file)
    named = set(re.findall(r"(?<!exec )\bdeploy/[\w./-]*\w", (ROOT / "README.md").read_text()))
    assert len(named) >= 5, named
    created_by_the_operator = {"deploy/k8s/secrets.env"}
    missing = sorted(p for p in named - created_by_the_operator if not (ROOT / p).exists())
    assert not missing, missing

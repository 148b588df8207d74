"""deploy/k8s, checked without a cluster: every manifest parses, every worker's arguments go
through the real CLI parser, every variable is a setting, and each stage has its Deployment,
probes and a KEDA ScaledObject on its own Redis list."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.deploy.support import DEPLOY, image_user, ingest_argv, parse_cli, unknown_variables
from workers.cli.main import STAGES
from workers.core.settings import Settings

K8S = DEPLOY / "k8s"


def _kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return loaded


def _manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in _kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc is not None:
                docs.append(doc)
    return docs


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _manifests() if d["kind"] == kind}


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {k: v for k, v in pairs}


def _generated(kind: str) -> dict[str, Any]:
    key = "configMapGenerator" if kind == "ConfigMap" else "secretGenerator"
    generators: list[dict[str, Any]] = _kustomization()[key]
    assert len(generators) == 1
    return generators[0]


def _settings_env() -> dict[str, str]:
    return _env_file(K8S / _generated("ConfigMap")["envs"][0])


def _secrets_example() -> dict[str, str]:
    (name,) = _generated("Secret")["envs"]
    return _env_file(K8S / f"{name}.example")


def _worker(stage: str) -> dict[str, Any]:
    deployment = _by_kind("Deployment")[f"ingest-{stage}"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _quantity(value: str | int | float) -> float:
    """A Kubernetes quantity in base units (cores, bytes)."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def test_every_manifest_parses_and_the_kustomization_names_only_files_that_exist() -> None:
    kustomization = _kustomization()
    assert kustomization["namespace"] == "ingest"
    for name in kustomization["resources"]:
        assert (K8S / name).is_file(), name
    kinds = {d["kind"] for d in _manifests()}
    assert {"Namespace", "StatefulSet", "Service", "Deployment", "ScaledObject", "TriggerAuthentication"} <= kinds
    for doc in _manifests():
        assert doc["apiVersion"] and doc["metadata"]["name"], doc
    assert (K8S / _generated("ConfigMap")["envs"][0]).is_file()
    assert _generated("Secret")["options"]["disableNameSuffixHash"] is True  # KEDA names it as is
    (image,) = kustomization["images"]
    assert image["name"] == "ingest" and image["newTag"]


def test_each_stage_runs_its_worker_with_explicit_processes_threads_and_metrics_port() -> None:
    port = int(_settings_env()["INGEST_METRICS_PORT"])
    for stage in STAGES:
        container = _worker(stage)
        assert container["image"] == _kustomization()["images"][0]["name"]
        args = parse_cli(ingest_argv([*container["command"], *container["args"]]))
        assert args.command == "worker" and args.stages == stage
        # Explicit: the defaults follow the pod's CPU limit (workers/core/cpus.py), which a pod may not set.
        assert "--processes" in container["args"] and "--threads" in container["args"], stage
        assert args.metrics_port == port, stage
        (container_port,) = container["ports"]
        assert container_port == {"name": "metrics", "containerPort": port}


def test_each_stage_has_liveness_on_healthz_and_readiness_on_readyz() -> None:
    for stage in STAGES:
        container = _worker(stage)
        for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = container[probe]["httpGet"]
            assert get == {"path": path, "port": "metrics"}, (stage, probe)
        assert container["livenessProbe"]["timeoutSeconds"] < container["livenessProbe"]["periodSeconds"]


def test_resources_are_set_and_follow_the_per_page_figures() -> None:
    for stage in STAGES:
        resources = _worker(stage)["resources"]
        for what in ("cpu", "memory"):
            request, limit = _quantity(resources["requests"][what]), _quantity(resources["limits"][what])
            assert 0 < request <= limit, (stage, what)
    extract = _worker("extract")
    args = parse_cli(ingest_argv([*extract["command"], *extract["args"]]))
    resources = extract["resources"]
    # CPU-bound: one worker process, one parsing child per core, twice as many threads (a thread does
    # its message's Redis and storage work while the children parse), and all the CPU guaranteed.
    children = args.processes * args.page_processes
    assert args.processes == 1 and args.threads == 2 * args.page_processes
    assert _quantity(resources["requests"]["cpu"]) == _quantity(resources["limits"]["cpu"]) == children
    # 300-500 MB per parsing child, the worker process included.
    assert _quantity(resources["requests"]["memory"]) >= children * 300e6
    assert _quantity(resources["limits"]["memory"]) >= children * 500e6
    fetch = _worker("fetch")
    fetch_args = parse_cli(ingest_argv([*fetch["command"], *fetch["args"]]))
    # Network-bound: many threads, and less CPU than extract's one core per process.
    assert fetch_args.threads >= 16 and _quantity(fetch["resources"]["requests"]["cpu"]) < 1


def test_pods_run_as_the_images_non_root_user_on_a_read_only_filesystem() -> None:
    uid, gid = image_user()
    for stage in STAGES:
        spec = _by_kind("Deployment")[f"ingest-{stage}"]["spec"]
        pod = spec["template"]["spec"]
        assert "replicas" not in spec, "KEDA owns the replica count"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid)
        container = _worker(stage)
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], "metrics files live in /tmp"


def test_every_variable_is_a_setting_or_a_known_outside_one_and_the_settings_validate() -> None:
    settings_env, secrets = _settings_env(), _secrets_example()
    names = [*settings_env, *secrets]
    containers = [_worker(s) for s in STAGES] + [
        c for s in _by_kind("StatefulSet").values() for c in s["spec"]["template"]["spec"]["containers"]
    ]
    for container in containers:
        names += [e["name"] for e in container.get("env", [])]
        for e in container.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == _generated("Secret")["name"] and ref["key"] in secrets, e
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] == _generated("ConfigMap")["name"]
    assert not unknown_variables(names), unknown_variables(names)
    env = {**settings_env, **{k: v for k, v in secrets.items() if k.startswith("INGEST_")}}
    settings = Settings.from_env(env)  # raises SettingsError on a bad value
    assert not settings.embedded and settings.metrics_port == 9191


def test_redis_is_persistent_with_aof_and_never_evicts() -> None:
    (redis,) = _by_kind("StatefulSet").values()
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    option = {args[i]: args[i + 1] for i in range(0, len(args) - 1) if args[i].startswith("--")}
    assert option["--appendonly"] == "yes" and option["--appendfsync"] == "everysec"
    assert option["--maxmemory-policy"] == "noeviction"
    assert option["--requirepass"] == "$(REDIS_PASSWORD)"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    assert _quantity(claim["spec"]["resources"]["requests"]["storage"]) >= 4 * _quantity(
        option["--maxmemory"].replace("gb", "Gi")
    )
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == option["--dir"]
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+-alpine", container["image"])
    service = _by_kind("Service")["redis"]
    assert service["spec"]["ports"][0]["port"] == 6379
    broker = urlsplit(_secrets_example()["INGEST_BROKER_URL"])
    assert (broker.hostname, broker.port) == ("redis", 6379)


def test_each_stage_scales_with_keda_on_its_own_redis_list() -> None:
    scaled = _by_kind("ScaledObject")
    auth = _by_kind("TriggerAuthentication")
    namespace = _settings_env()["INGEST_NAMESPACE"]
    broker = urlsplit(_secrets_example()["INGEST_BROKER_URL"])
    targets = set()
    for obj in scaled.values():
        spec = obj["spec"]
        target = spec["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in _by_kind("Deployment")
        targets.add(target["name"])
        stage = target["name"].removeprefix("ingest-")
        # A stage at zero would never move its delayed messages (.DQ) back to its list.
        assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
        (trigger,) = spec["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "redis"
        assert meta["listName"] == f"{namespace}:{stage}"
        assert int(meta["listLength"]) > 0 and meta["databaseIndex"] == broker.path.strip("/")
        host, _, port = meta["address"].partition(":")
        assert host == f"{broker.hostname}.{_kustomization()['namespace']}.svc.cluster.local"
        assert int(port) == broker.port
        ref = auth[trigger["authenticationRef"]["name"]]["spec"]["secretTargetRef"]
        assert ref == [{"parameter": "password", "name": _generated("Secret")["name"], "key": "REDIS_PASSWORD"}]
    assert targets == {f"ingest-{s}" for s in STAGES}

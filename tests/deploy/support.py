"""What the deploy tests share: the repository's paths, the Dockerfile read as text, and the CLI
argument check every deployment file's commands go through."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import pytest

from workers.cli.main import build_parser
from workers.core.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"

#: Variables a deployment may set that are not ingest settings: S3 credentials and region
#: (obstore reads AWS_*), and Redis' own password (the Redis container and KEDA read it).
NON_INGEST_VARIABLES = frozenset({"REDIS_PASSWORD", "REDISCLI_AUTH"})


def setting_names() -> set[str]:
    """``INGEST_<FIELD>`` for every field of Settings."""
    return {ENV_PREFIX + f.name.upper() for f in fields(Settings)}


def unknown_variables(names: Sequence[str]) -> list[str]:
    """The names that are neither an ingest setting nor a known outside variable."""
    known = setting_names()
    return sorted(n for n in names if n not in known and n not in NON_INGEST_VARIABLES and not n.startswith("AWS_"))


def dockerfile_lines() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    out: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        out.append(pending + line)
        pending = ""
    return out


def final_stage() -> list[str]:
    """The instructions of the last stage (from its FROM on): what the image is made of."""
    lines = dockerfile_lines()
    start = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return lines[start:]


def exec_form(instruction: str) -> list[str]:
    """The JSON array of the final stage's last ``instruction`` (ENTRYPOINT, CMD)."""
    found = [line for line in final_stage() if line.upper().startswith(instruction + " ")]
    assert found, f"the final stage has no {instruction}"
    value = json.loads(found[-1].split(None, 1)[1])
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"{instruction} is not exec form"
    return [str(v) for v in value]


def image_user() -> tuple[int, int]:
    """The numeric ``uid:gid`` of the final stage's USER."""
    users = [line.split(None, 1)[1] for line in final_stage() if line.upper().startswith("USER ")]
    assert users, "the final stage has no USER"
    match = re.fullmatch(r"(\d+):(\d+)", users[-1])
    assert match, f"USER {users[-1]} is not numeric uid:gid (Kubernetes' runAsNonRoot cannot verify a name)"
    return int(match[1]), int(match[2])


def image_env() -> dict[str, str]:
    """The final stage's ENV values (``ENV A=1 B=2`` form)."""
    env: dict[str, str] = {}
    for line in final_stage():
        if line.upper().startswith("ENV "):
            for pair in line.split()[1:]:
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def parse_cli(argv: Sequence[str]) -> argparse.Namespace:
    """``ingest ARGV`` through the real parser; fails the test (not the run) on a bad argument."""
    try:
        return build_parser().parse_args(list(argv))
    except SystemExit as exc:  # argparse's way to say "bad arguments" (2) or "printed help" (0)
        pytest.fail(f"`ingest {' '.join(argv)}` does not parse (exit {exc.code})")


def ingest_argv(full: Sequence[str]) -> list[str]:
    """The arguments after ``ingest`` in a container's full command line."""
    full = list(full)
    assert full and Path(full[0]).name == "ingest", f"{full} does not run the ingest command"
    return full[1:]

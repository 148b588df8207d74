"""deploy/constraints.txt: exact pins of the package's runtime dependencies, nothing of the dev
extras, and consistent with itself wherever the installed venv can vouch for a version."""

from __future__ import annotations

import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from deploy.freeze import closure, project_requirements, render
from tests.deploy.support import DEPLOY, ROOT

CONSTRAINTS = DEPLOY / "constraints.txt"


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and name == canonicalize_name(name) and Version(version), f"not an exact pin: {line!r}"
        assert name not in pins, f"{name} pinned twice"
        pins[name] = version
    return pins


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    for req in project_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} (pyproject) has no pin: run deploy/freeze.py"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {req}"


def test_no_dev_extra_is_pinned() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dev = {canonicalize_name(Requirement(r).name) for r in pyproject["project"]["optional-dependencies"]["dev"]}
    assert dev, "pyproject has no dev extra to keep out"
    assert not dev & set(_pins()), sorted(dev & set(_pins()))


def _applies(req: Requirement, extras: set[str]) -> bool:
    return req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or {""}))


def test_pins_are_closed_under_the_installed_requirements() -> None:
    """What a pinned package requires is pinned too, at a version it accepts; checked for each
    package installed here at its pinned version (the venv's metadata is the witness)."""
    pins = _pins()
    vouched = {name for name, version in pins.items() if _installed(name) == version}
    assert len(vouched) >= len(pins) // 2, "too few pins installed here to check the closure"
    # The extras each package is asked for, from pyproject down (a fixpoint: extras bring extras).
    extras: dict[str, set[str]] = {}
    for req in project_requirements():
        extras.setdefault(canonicalize_name(req.name), set()).update(req.extras)
    changed = True
    while changed:
        changed = False
        for name in vouched:
            for raw in metadata.requires(name) or []:
                req = Requirement(raw)
                if not _applies(req, extras.get(name, set())):
                    continue
                wanted = extras.setdefault(canonicalize_name(req.name), set())
                if not set(req.extras) <= wanted:
                    wanted.update(req.extras)
                    changed = True
    for name in sorted(vouched):
        for raw in metadata.requires(name) or []:
            req = Requirement(raw)
            if not _applies(req, extras.get(name, set())):
                continue
            dep = canonicalize_name(req.name)
            assert dep in pins, f"{name}=={pins[name]} requires {req}, which is not pinned"
            assert req.specifier.contains(pins[dep], prereleases=True), f"{name} requires {req}, pinned {pins[dep]}"


def test_the_file_is_what_freeze_writes_for_its_pins() -> None:
    pins = _pins()
    assert CONSTRAINTS.read_text() == render(pins), "edit by deploy/freeze.py only"


def test_freeze_follows_the_extras_asked_for_and_only_those() -> None:
    with_http2 = closure([Requirement("httpx[http2]")])
    assert {"httpx", "h2", "hpack", "httpcore"} <= set(with_http2)
    assert "socksio" not in with_http2 and "h2" not in closure([Requirement("httpx")])
    assert with_http2["httpx"] == metadata.version("httpx")


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None

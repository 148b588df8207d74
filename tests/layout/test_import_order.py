"""The package layout stays true: imports run cli -> pipeline -> stages -> sources -> core.

Every module under ``workers/`` is parsed (no import, so nothing runs) and each ``workers.*``
import it makes, at the top or inside a function, is checked against the order.  A stage never
imports another stage: what two stages share belongs in ``core``.
"""

from __future__ import annotations

import ast
from pathlib import Path

WORKERS = Path(__file__).resolve().parents[2] / "workers"

#: Each package's layer; a module may import its own package and packages of a lower layer.
LAYERS = {"core": 0, "sources": 1, "discover": 2, "fetch": 2, "extract": 2, "sink": 2, "pipeline": 3, "cli": 4}


def _imported(tree: ast.AST, package: str, module: str) -> list[tuple[int, str]]:
    """Every ``workers.*`` module named by an import in ``tree``, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("workers.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(["workers", package, *module.split(".")][: -node.level] if module else [])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name == "workers":
                found += [(node.lineno, f"workers.{a.name}") for a in node.names]
            elif name.startswith("workers."):
                found.append((node.lineno, name))
    return found


def layer_violations(root: Path) -> list[str]:
    """``FILE:LINE: a imports b`` for each import against the layer order under ``root``."""
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if len(parts) == 1:
            if parts[0] not in {"__init__", "__main__"}:
                problems.append(f"{path}: module directly under workers/ (belongs in a package)")
            continue
        package, module = parts[0], ".".join(parts[1:])
        if package not in LAYERS:
            problems.append(f"{path}: package {package!r} has no place in the layer order")
            continue
        for line, name in _imported(ast.parse(path.read_text(), str(path)), package, module):
            target = name.split(".")[1]
            if target == package:
                continue
            if target not in LAYERS or LAYERS[target] >= LAYERS[package]:
                problems.append(f"{path}:{line}: {package} imports {name}")
    return problems


def test_every_import_runs_down_the_layers() -> None:
    assert layer_violations(WORKERS) == []


def test_packages_hold_every_module_and_say_what_they_are() -> None:
    packages = sorted(p.parent.name for p in WORKERS.glob("*/__init__.py"))
    assert packages == sorted(LAYERS)
    for name in packages:
        doc = ast.get_docstring(ast.parse((WORKERS / name / "__init__.py").read_text()))
        assert doc and len(doc) > 80, f"workers/{name}/__init__.py needs a docstring saying what it holds"


def test_a_stage_importing_another_stage_is_caught(tmp_path: Path) -> None:
    tree = tmp_path / "workers"
    for pkg, body in {
        "core": "import os\n",
        "fetch": "from workers.core import x\n\ndef f():\n    from workers.discover.pages import DISCOVERY_KINDS\n",
        "discover": "from ..core import y\nfrom . import links\n",
        "sink": "from workers import extract\n",
        "extract": "import workers.pipeline.runtime\n",
    }.items():
        (tree / pkg).mkdir(parents=True)
        (tree / pkg / "__init__.py").write_text("")
        (tree / pkg / "mod.py").write_text(body)
    (tree / "stray.py").write_text("")
    problems = layer_violations(tree)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "extract imports workers.pipeline.runtime",
        "fetch imports workers.discover.pages",
        "sink imports workers.extract",
        "module directly under workers/ (belongs in a package)",
    ]

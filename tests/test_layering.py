"""The pure core stays pure: no I/O libraries imported and no clock read in the sans-I/O packages."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Packages (or single modules) that must stay sans-I/O (DESIGN.md section 3, STYLE.md item 1); each one's
# docstring promises it. A name not in the tree yet is skipped, and checked as soon as it lands.
PURE = (
    "engine.backpack",
    "engine.nanpin",
    "engine.orders",
    "engine.market",
    "engine.risk",
    "engine.strategy_inputs",
    "engine.paper",
    "engine.sim.core",
    "engine.sim.matching",
    "engine.sim.accounts",
    "engine.sim.markets",
    "engine.sim.replay",
)
FORBIDDEN = ("trio", "httpx", "trio_websocket", "hypercorn", "asyncio", "socket")
# Calls that read a clock; pure code gets time passed in instead.
CLOCK_CALLS = {
    ("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "monotonic_ns"),
    ("time", "perf_counter"), ("time", "perf_counter_ns"), ("datetime", "now"), ("datetime", "utcnow"),
    ("datetime", "today"), ("date", "today"), ("trio", "current_time"),
}


def _source_files(dotted: str) -> list[Path]:
    base = REPO.joinpath(*dotted.split("."))
    if base.is_dir():
        return sorted(base.rglob("*.py"))
    single = base.with_suffix(".py")
    return [single] if single.is_file() else []


def _module_names(dotted: str) -> list[str]:
    names = []
    for path in _source_files(dotted):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def _present(dotted: str) -> list[Path]:
    files = _source_files(dotted)
    if not files:
        pytest.skip(f"{dotted} is not in this tree yet")
    return files


@pytest.mark.parametrize("package", PURE)
def test_pure_package_imports_no_io_library(package: str) -> None:
    """Importing every module of a pure package in a fresh interpreter loads no I/O library."""
    _present(package)
    script = (
        "import importlib, json, sys\n"
        f"for name in {_module_names(package)!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))\n"
        "print(json.dumps(bad))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    # A parent package's __init__ counts: importing engine.sim.matching runs engine/sim/__init__.py first.
    assert json.loads(result.stdout) == [], f"importing {package} (and its parent packages) loads I/O libraries"


def _imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def _clock_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if (name, node.func.attr) in CLOCK_CALLS:
                found.append(f"line {node.lineno}: {name}.{node.func.attr}()")
    return found


@pytest.mark.parametrize("package", PURE)
def test_pure_package_source_has_no_io_import_or_clock_read(package: str) -> None:
    """No source file of a pure package imports an I/O library (even lazily) or reads a clock."""
    problems = []
    for path in _present(package):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(REPO)
        problems += [f"{rel}: imports {root}" for root in sorted(_imported_roots(tree) & set(FORBIDDEN))]
        problems += [f"{rel}: reads a clock at {call}" for call in _clock_calls(tree)]
    assert problems == []


def test_scanner_catches_violations() -> None:
    """The AST checks flag a lazy trio import and a clock read (so the checks above can fail)."""
    tree = ast.parse("def f():\n    import trio\n    from httpx import Client\n    return time.monotonic()\n")
    assert _imported_roots(tree) >= {"trio", "httpx"}
    assert _clock_calls(tree) == ["line 4: time.monotonic()"]

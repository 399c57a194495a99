"""Every module under engine/ and actors/ declares ``__all__``, and every name in it exists."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _modules() -> list[str]:
    names = []
    for top in ("engine", "actors"):
        for path in sorted((REPO / top).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join(parts))
    return names


MODULES = _modules()


def test_modules_found() -> None:
    """The walk finds the package roots and known modules (so the parametrized test is not vacuous)."""
    assert {"engine", "engine.config", "engine.cli", "engine.errors"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_module_declares_all_and_every_name_exists(name: str) -> None:
    """The module has a docstring-level public surface: __all__ of unique strings that all resolve."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list | tuple), f"{name} has no __all__"
    assert all(isinstance(item, str) for item in exported)
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    missing = [item for item in exported if not hasattr(module, item)]
    assert missing == [], f"{name}.__all__ names missing attributes"

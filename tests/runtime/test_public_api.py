"""The runtime package's public surface: every exported name exists and modules declare __all__."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import engine.runtime

MODULES = ["backoff", "channels", "policy", "shutdown", "supervisor"]


@pytest.mark.parametrize("module_name", MODULES)
def test_module_all_names_exist(module_name: str) -> None:
    """Each runtime module declares __all__ and every listed name is defined."""
    module = importlib.import_module(f"engine.runtime.{module_name}")
    assert module.__doc__
    for name in module.__all__:
        assert hasattr(module, name), name


def test_package_reexports_are_the_module_objects() -> None:
    """engine.runtime re-exports each public name as the same object its module defines."""
    for name in engine.runtime.__all__:
        exported = getattr(engine.runtime, name)
        home = importlib.import_module(exported.__module__)
        assert getattr(home, name) is exported
        assert name in home.__all__


def test_pure_modules_do_not_import_trio() -> None:
    """The backoff and policy maths stay pure: they import neither trio nor httpx."""
    for module_name in ("backoff", "policy"):
        module = importlib.import_module(f"engine.runtime.{module_name}")
        tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
        assert "engine" in imported  # the walk sees the imports at all
        assert not imported & {"trio", "httpx"}, module_name

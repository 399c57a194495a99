"""The packages' public surface: every name in __all__ exists, and the re-exports are the real objects."""

from __future__ import annotations

import importlib

import pytest

MODULES = ["engine.orders", "engine.orders.fsm", "engine.orders.ids", "engine.store", "engine.store.journal",
           "engine.store.config"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    """Each name a module exports in __all__ is defined in it, and __all__ has no repeats."""
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []


@pytest.mark.parametrize(("package", "source"), [("engine.orders", "engine.orders.fsm"),
                                                 ("engine.store", "engine.store.journal")])
def test_reexports_are_identical(package: str, source: str) -> None:
    """A package re-exports its submodule's objects themselves, not copies."""
    pkg, mod = importlib.import_module(package), importlib.import_module(source)
    shared = set(pkg.__all__) & set(mod.__all__)
    assert shared
    assert all(getattr(pkg, n) is getattr(mod, n) for n in shared)

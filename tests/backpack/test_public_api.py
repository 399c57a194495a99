"""The package's public surface and its purity (no trio, httpx or clock reads in the protocol core)."""

from __future__ import annotations

import ast
import pathlib

import engine.backpack as backpack

PACKAGE = pathlib.Path(backpack.__file__).parent


def test_all_names_are_exported_and_sorted() -> None:
    """Every name in __all__ exists on the package, and __all__ is sorted without duplicates."""
    assert backpack.__all__ == sorted(set(backpack.__all__))
    for name in backpack.__all__:
        assert getattr(backpack, name) is not None


def test_entry_points_are_public() -> None:
    """The documented entry points are reachable from engine.backpack."""
    for name in (
        "decode_frame",
        "encode_frame",
        "decode_response",
        "decode_error",
        "prepare_request",
        "verify_request",
        "OrderBook",
        "WsEvent",
        "quantize_price",
        "Signer",
    ):
        assert name in backpack.__all__


def test_protocol_core_imports_no_io_or_clock() -> None:
    """No module under engine/backpack imports trio, httpx, time or socket, or calls datetime.now."""
    banned = {"trio", "httpx", "time", "socket", "asyncio"}
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                roots = set()
            assert not roots & banned, f"{path.name} imports {roots & banned}"
            if isinstance(node, ast.Attribute):
                assert node.attr not in {"now", "utcnow", "today"}, f"{path.name} reads a clock"

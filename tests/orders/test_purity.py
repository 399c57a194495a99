"""The order state machine is pure: importing it pulls in no trio, httpx or sqlite3, and no clock module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import engine.orders.fsm as fsm
import engine.orders.ids as ids

ROOT = Path(__file__).resolve().parents[2]


def test_no_io_imports() -> None:
    """A fresh interpreter importing engine.orders has not loaded trio, httpx or sqlite3."""
    code = (
        "import sys, engine.orders; "
        "bad = [m for m in ('trio', 'httpx', 'sqlite3', 'engine.store') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    assert out.stdout.strip() == ""


def test_no_clock_in_namespace() -> None:
    """Neither module binds time or datetime, so neither can read a clock."""
    for module in (fsm, ids):
        assert "time" not in vars(module)
        assert "datetime" not in vars(module)

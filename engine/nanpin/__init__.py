"""The pure nanpin strategy (no I/O, no clock reads): configuration, decide() and apply_fill()."""

from __future__ import annotations

from engine.nanpin.config import Level as Level
from engine.nanpin.config import NanpinConfig as NanpinConfig

__all__ = ["Level", "NanpinConfig"]

"""CLI subcommands: every module here registers its commands with ``engine.cli.register_command`` on import.

``engine.cli.main`` imports each module of this package before parsing, so adding a command needs no change
to ``engine/cli.py``.
"""

from __future__ import annotations

__all__: list[str] = []

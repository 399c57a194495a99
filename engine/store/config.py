"""Configuration of the journal (``[journal]`` in config.toml). Pure: declarations only, no I/O.

Invariants: every key has a default, a help text and a unit where one applies; validators raise ValueError
with a message that reads well after the key's TOML path.
"""

from __future__ import annotations

import attrs

from engine.confspec import at_least, greater_than, non_empty, setting

__all__ = ["JournalConfig"]


@attrs.frozen(kw_only=True)
class JournalConfig:
    """Where the SQLite journal lives and how its write-ahead log is maintained."""

    path: str = setting(
        "var/journal.sqlite",
        "SQLite journal file (orders, fills, strategy state); created with its directory if missing",
        check=non_empty,
    )
    checkpoint_interval_s: float = setting(
        30.0,
        "how often the journal actor copies the write-ahead log into the database, off the order path",
        unit="s",
        check=greater_than(0),
    )
    busy_timeout_ms: int = setting(
        5000,
        "how long a journal write waits for a lock held by another connection before failing",
        unit="ms",
        check=at_least(0),
    )
    journal_size_limit_bytes: int = setting(
        64 * 1024 * 1024,
        "size the write-ahead log file is truncated back to after a checkpoint resets it",
        unit="bytes",
        check=at_least(0),
    )

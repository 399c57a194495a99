"""Persistence: the SQLite journal (:mod:`.journal`) and its configuration section (:mod:`.config`)."""

from __future__ import annotations

from engine.store.config import JournalConfig as JournalConfig
from engine.store.journal import CheckpointResult as CheckpointResult
from engine.store.journal import Journal as Journal
from engine.store.journal import JournaledEvent as JournaledEvent
from engine.store.journal import JournalStatistics as JournalStatistics
from engine.store.journal import RiskEventRecord as RiskEventRecord
from engine.store.journal import StoredFill as StoredFill
from engine.store.journal import StrategyStateRecord as StrategyStateRecord

__all__ = [
    "CheckpointResult",
    "Journal",
    "JournalConfig",
    "JournalStatistics",
    "JournaledEvent",
    "RiskEventRecord",
    "StoredFill",
    "StrategyStateRecord",
]

"""Tests of the SQLite journal (engine.store)."""

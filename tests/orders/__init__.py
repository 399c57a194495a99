"""Tests of the pure order lifecycle (engine.orders)."""

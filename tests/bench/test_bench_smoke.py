"""Smoke test for ``bench/bench_feed.py``: the quick run finishes and prints its table with measured figures.

It never asserts a speed (the machines are shared); it checks that the scenarios ran and produced numbers.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bench_feed import per_tick_latencies, percentile

ROOT = Path(__file__).resolve().parents[2]


def test_per_tick_latency_counts_every_tick_until_a_newer_one_is_shown() -> None:
    """A tick's latency runs until the first delivery showing it or a newer tick, even one it skipped."""
    sent = [100, 200, 300, 400]
    deliveries = [(150, 100), (450, 400)]  # the second delivery conflated ticks 200 and 300 into 400
    assert per_tick_latencies(sent, deliveries) == [50, 250, 150, 50]


def test_percentile_is_nearest_rank() -> None:
    """p50 of 1..10 is 5 and p99 is 10 (nearest rank); an empty list gives NaN."""
    values = list(range(1, 11))
    assert percentile(values, 50) == 5
    assert percentile(values, 99) == 10
    assert percentile([], 50) != percentile([], 50)


@pytest.mark.slow
def test_quick_run_prints_a_table_with_numbers() -> None:
    """``bench_feed.py --quick`` exits 0 within its bound and prints every baseline row with a measured figure."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "bench/bench_feed.py", "--quick"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("scenario")
    assert "FAILED" not in done.stdout, done.stdout
    number = re.compile(r"\d+\.\d{3} ms / \d+\.\d{3} ms")
    for label in ("(d) floor", "(b) baseline", "(c) ccxt.pro"):
        row = next(line for line in lines if label in line)
        assert number.search(row), row
    ingest = [line for line in lines if line.startswith("2. ingest") and "frames/s" in line]
    assert len(ingest) >= 2, done.stdout
    engine = next(line for line in lines if "(a) engine" in line)
    if importlib.util.find_spec("actors.cache") is not None:
        assert number.search(engine), engine
    else:
        assert "n/a" in engine, engine

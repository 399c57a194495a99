"""Benchmark-only code for ``bench/bench_feed.py``: the tick source and the baseline consumers it is compared with.

Nothing here is imported by the engine; it exists so that the engine's market-data path can be measured against
simpler designs on the same stream, in the same run.
"""

__all__: list[str] = []

"""Feed and cache config sections: sensible defaults and precise rejection of bad values."""

from __future__ import annotations

import pytest

from engine.market.config import CacheConfig, FeedConfig


def test_defaults_are_valid() -> None:
    """Both sections construct with defaults and subscribe every candle timeframe."""
    assert FeedConfig().kline_intervals == ("1m", "5m", "15m", "1h", "4h", "1d")
    assert CacheConfig().rest_max_requests_per_min <= 2000


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"depth_levels": 7}, "must be one of 5, 10, 20, 50, 100, 500, 1000; got 7"),
    ({"kline_intervals": ["1m", "2m"]}, "got 2m"),
    ({"ticker_stall_s": 0.0}, "must be in (0.0, inf]; got 0.0"),
])
def test_feed_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    """Bad feed values raise ValueError naming the rule and the value."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[").replace("]", r"\]")):
        FeedConfig(**kwargs)  # type: ignore[arg-type]


def test_cache_respects_exchange_limits_and_ordering() -> None:
    """History polling above 30/min and a cache limit below the live limit are rejected."""
    with pytest.raises(ValueError, match="got 31"):
        CacheConfig(kline_backfill_max_per_min=31)
    with pytest.raises(ValueError, match="cache_max_age_s must be at least ws_fresh_s"):
        CacheConfig(ws_fresh_s=5.0, cache_max_age_s=1.0)

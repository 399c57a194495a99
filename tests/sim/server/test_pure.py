"""Pure pieces of the simulator server: rate limiter, time axis, stream names, config and command line."""

from __future__ import annotations

import argparse
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ConfigError
from engine.sim.cli import add_simulate_parser, build_config
from engine.sim.clock import SimClock, iso_to_us
from engine.sim.config import FaultConfig, SimConfig, parse_speed
from engine.sim.ratelimit import RateLimiter, TokenBucket
from engine.sim.routes import Connection, StreamError, Subscriptions, classify_stream

# -- rate limiter -----------------------------------------------------------------------------------------


def test_limiter_allows_exactly_the_budget_then_refuses() -> None:
    """A fresh client gets exactly per_minute requests at one instant, then 429."""
    limiter = RateLimiter(per_minute=5, history_per_minute=2)
    results = [limiter.allow("k", history=False, now_s=0.0) for _ in range(7)]
    assert results == [True] * 5 + [False] * 2
    assert limiter.statistics().limited == 2


def test_history_limit_is_stricter_and_also_counts_globally() -> None:
    """History requests stop at their own budget and consume the general budget too."""
    limiter = RateLimiter(per_minute=10, history_per_minute=3)
    assert [limiter.allow("k", history=True, now_s=0.0) for _ in range(4)] == [True, True, True, False]
    assert sum(limiter.allow("k", history=False, now_s=0.0) for _ in range(10)) == 7
    assert limiter.statistics().limited_history == 1


def test_limiter_refills_over_a_minute() -> None:
    """After a full minute the bucket is full again; after a partial one it holds a proportional share."""
    limiter = RateLimiter(per_minute=60, history_per_minute=30)
    assert all(limiter.allow("k", history=False, now_s=0.0) for _ in range(60))
    assert not limiter.allow("k", history=False, now_s=0.5)
    assert limiter.allow("k", history=False, now_s=1.0)
    assert sum(limiter.allow("k", history=False, now_s=61.0) for _ in range(100)) == 60


def test_clients_are_independent() -> None:
    """One client's exhaustion does not limit another."""
    limiter = RateLimiter(per_minute=1, history_per_minute=1)
    assert limiter.allow("a", history=False, now_s=0.0)
    assert not limiter.allow("a", history=False, now_s=0.0)
    assert limiter.allow("b", history=False, now_s=0.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5, allow_nan=False), st.booleans()), max_size=80))
def test_allowed_never_exceeds_budget_plus_refill(steps: list[tuple[float, bool]]) -> None:
    """Over any request sequence, allowed requests <= capacity + refill over the elapsed time."""
    limiter = RateLimiter(per_minute=20, history_per_minute=5)
    now = 0.0
    allowed = allowed_history = 0
    for dt, history in steps:
        now += dt
        if limiter.allow("k", history=history, now_s=now):
            allowed += 1
            allowed_history += history
    assert allowed <= 20 + now * 20 / 60 + 1e-9
    assert allowed_history <= 5 + now * 5 / 60 + 1e-9


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), max_size=40))
def test_bucket_stays_within_bounds(times: list[float]) -> None:
    """A token bucket never holds more than capacity nor less than zero tokens."""
    bucket = TokenBucket.full(3.0, 60.0, 0.0)
    now = 0.0
    for dt in times:
        now += dt
        if bucket.available(now) >= 1:
            bucket.take(now)
        assert 0.0 <= bucket.tokens <= 3.0


def test_limiter_forgets_least_recent_clients() -> None:
    """The number of tracked clients stays bounded."""
    limiter = RateLimiter(per_minute=1, history_per_minute=1, max_clients=10)
    for i in range(50):
        limiter.allow(f"ip{i}", history=False, now_s=0.0)
    assert limiter.statistics().tracked_clients <= 10


# -- time axis --------------------------------------------------------------------------------------------


class _Clocks:
    def __init__(self) -> None:
        self.wall_us = 1_700_000_000_000_000
        self.mono = 100.0

    def wall(self) -> int:
        return self.wall_us

    def elapsed(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall_us += int(seconds * 1_000_000)


def test_restamped_start_is_now_and_runs_at_speed() -> None:
    """By default the historical start is re-stamped to the host's now and market time runs speed x faster."""
    clocks = _Clocks()
    start = iso_to_us("2021-05-18T00:00:00")
    clock = SimClock(start_historical_us=start, speed=10, keep_historical_time=False, wall_us=clocks.wall,
                     elapsed_s=clocks.elapsed)
    assert clock.market_now_us() == clocks.wall_us
    assert clock.time_shift_us % 60_000_000 == 0
    assert 0 <= clocks.wall_us - (start + clock.time_shift_us) < 60_000_000
    clocks.advance(2.0)
    assert clock.market_now_us() == clock.market_origin_us + 20_000_000
    assert clock.host_now_ms() == clocks.wall_us // 1000
    assert clock.host_now_ms(250) == clocks.wall_us // 1000 + 250


def test_historical_time_is_kept_on_request() -> None:
    """keep_historical_time emits original timestamps (no shift)."""
    clocks = _Clocks()
    start = iso_to_us("2021-05-18")
    clock = SimClock(start_historical_us=start, speed=1, keep_historical_time=True, wall_us=clocks.wall,
                     elapsed_s=clocks.elapsed)
    assert clock.time_shift_us == 0
    clocks.advance(1.5)
    assert clock.market_now_us() == start + 1_500_000
    assert clock.elapsed_for_market_us(start + 3_000_000) == pytest.approx(103.0)


def test_unbounded_speed_is_driven_by_the_stepper() -> None:
    """With speed inf market time moves only when the stepper advances it, and never backwards."""
    clocks = _Clocks()
    clock = SimClock(start_historical_us=0, speed=math.inf, keep_historical_time=True, wall_us=clocks.wall,
                     elapsed_s=clocks.elapsed)
    assert clock.unbounded
    clocks.advance(100)
    assert clock.market_now_us() == 0
    assert clock.advance_unbounded(1_000_000) == 1_000_000
    assert clock.market_now_us() == 1_000_000


def test_iso_to_us_is_utc() -> None:
    """Naive ISO strings are read as UTC."""
    assert iso_to_us("1970-01-02") == 86_400_000_000
    assert iso_to_us("1970-01-01T00:00:01.5") == 1_500_000


# -- stream names and subscriptions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "private", "window"),
    [
        ("depth.BTC_USDC_PERP", False, None),
        ("depth.200ms.BTC_USDC_PERP", False, "200ms"),
        ("depth.1000ms.AAPL.US_USDC_PERP", False, "1000ms"),
        ("bookTicker.NOPE_USDC", False, None),
        ("kline.1m.BTC_USDC_PERP", False, None),
        ("kline.1month.BTC_USDC_PERP", False, None),
        ("trade.BTC_USDC", False, None),
        ("ticker.BTC_USDC", False, None),
        ("markPrice.BTC_USDC_PERP", False, None),
        ("openInterest.BTC_USDC_PERP", False, None),
        ("liquidation", False, None),
        ("account.orderUpdate", True, None),
        ("account.orderUpdate.BTC_USDC_PERP", True, None),
        ("account.positionUpdate", True, None),
        ("account.balanceUpdate", True, None),
    ],
)
def test_valid_stream_names(name: str, private: bool, window: str | None) -> None:
    """Stream names the exchange accepts classify as public/private with their depth window."""
    assert classify_stream(name) == (private, window)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("nope.BTC_USDC_PERP", 4006),
        ("depth", 4006),
        ("kline.7m.BTC_USDC", 4006),
        ("kline.1m", 4006),
        ("account.nope", 4006),
        ("account.balanceUpdate.BTC_USDC", 4006),
        ("depth.100ms.BTC_USDC_PERP", 4008),
        ("depth.5ms.X", 4008),
    ],
)
def test_invalid_stream_names(name: str, code: int) -> None:
    """Invalid stream types answer 4006 and bad depth windows 4008."""
    with pytest.raises(StreamError) as info:
        classify_stream(name)
    assert info.value.code == code
    assert info.value.frame()["error"]["code"] == code


async def test_subscriptions_do_not_duplicate_and_private_keys_are_per_account() -> None:
    """Subscribing twice keeps one membership; private keys include the account."""
    subs = Subscriptions()
    conn = Connection(1, 4)
    assert subs.add(conn, "trade.X", None)
    assert not subs.add(conn, "trade.X", None)
    assert subs.members("trade.X") == {conn}
    subs.add(conn, "account.orderUpdate", "KEY")
    assert subs.members("account.orderUpdate") is None
    assert subs.members(Subscriptions.key("account.orderUpdate", "KEY")) == {conn}
    subs.remove_all(conn)
    assert not subs.has("trade.X")


async def test_outbox_overflow_marks_connection_closed() -> None:
    """A full outbox refuses the frame and closes the connection with 1008; nothing more is queued."""
    conn = Connection(1, 2)
    assert conn.push("a")
    assert conn.push("b")
    assert not conn.push("c")
    assert conn.closed
    assert conn.close_code == 1008
    assert conn.push("d")  # closed: silently ignored, never grows
    assert conn.backlog() == 2


# -- config and command line ------------------------------------------------------------------------------


def test_speed_parsing() -> None:
    """'max' means unbounded; other values must be positive numbers."""
    assert parse_speed("max") == math.inf
    assert parse_speed("60") == 60.0
    with pytest.raises(ValueError, match="must be > 0"):
        parse_speed("0")


def test_config_rejects_bad_values() -> None:
    """Validators reject out-of-range values with a readable message."""
    with pytest.raises(ValueError, match=r"must be in \[0, 65535\]"):
        SimConfig(port=70000)
    with pytest.raises(ValueError, match="ISO-8601"):
        SimConfig(start="yesterday")
    with pytest.raises(ValueError, match=r"must be in \[0.0, 1.0\]"):
        FaultConfig(rest_5xx_rate=2.0)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_simulate_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["simulate", *argv])


def test_cli_builds_config_with_faults() -> None:
    """Command-line flags and --fault NAME=VALUE land in the SimConfig."""
    cfg = build_config(_parse(["--port", "0", "--speed", "max", "--start", "2021-05-19",
                               "--fault", "rest_5xx_rate=0.25", "--fault", "latency_ms=5",
                               "--fault", "stalled_streams=trade.X,ticker.X"]))
    assert cfg.speed == math.inf
    assert cfg.start == "2021-05-19"
    assert cfg.host == "127.0.0.1"
    assert cfg.faults.rest_5xx_rate == 0.25
    assert cfg.faults.latency_ms == 5
    assert cfg.faults.stalled_streams == ["trade.X", "ticker.X"]


def test_cli_reports_every_problem() -> None:
    """Bad flags are all reported at once as a ConfigError."""
    with pytest.raises(ConfigError) as info:
        build_config(_parse(["--speed", "-1", "--fault", "nope=1", "--fault", "latency_ms=x"]))
    assert len(info.value.problems) == 3

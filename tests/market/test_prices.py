"""Price priority: fresh WebSocket > cached WebSocket > REST fallback > typed Stale, never an invented number."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.market.prices import Price, PriceBoard, PriceLimits, Stale

LIMITS = PriceLimits(ws_fresh_s=3.0, cache_max_age_s=10.0, rest_max_age_s=8.0)

arrival = st.tuples(
    st.sampled_from(["ws", "rest"]),
    st.floats(min_value=0.0, max_value=20.0, allow_nan=False),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2),
)


def _board(arrivals: list[tuple[str, float, Decimal]]) -> tuple[PriceBoard, dict[str, tuple[float, Decimal]]]:
    board = PriceBoard(LIMITS)
    t = 0.0
    latest: dict[str, tuple[float, Decimal]] = {}
    for source, gap, value in arrivals:
        t += gap
        assert board.record("BTC_USDC", "last", value=value, source=source, recv_s=t)  # type: ignore[arg-type]
        latest[source] = (t, value)
    return board, latest


@settings(max_examples=200, deadline=None)
@given(st.lists(arrival, max_size=12), st.floats(min_value=0.0, max_value=60.0, allow_nan=False))
def test_quote_follows_priority_and_never_invents(arrivals: list[tuple[str, float, Decimal]], wait: float) -> None:
    """A quote is the newest value of the best source inside its limit; otherwise Stale, which has no value."""
    board, latest = _board(arrivals)
    now = sum(a[1] for a in arrivals) + wait
    quote = board.quote("BTC_USDC", "last", now)
    ws = latest.get("ws")
    rest = latest.get("rest")
    if ws is not None and now - ws[0] <= LIMITS.cache_max_age_s:
        assert quote == Price(value=ws[1], source="ws", age_s=now - ws[0],
                              cached=now - ws[0] > LIMITS.ws_fresh_s, exchange_ms=None)
    elif rest is not None and now - rest[0] <= LIMITS.rest_max_age_s:
        assert quote == Price(value=rest[1], source="rest", age_s=now - rest[0], cached=False, exchange_ms=None)
    else:
        assert isinstance(quote, Stale)
        assert not hasattr(quote, "value")


def test_nothing_received_is_stale_without_age() -> None:
    """A market never heard from is Stale with no age, not zero."""
    quote = PriceBoard(LIMITS).quote("BTC_USDC", "mark", 100.0)
    assert quote == Stale(reason="no mark price received for BTC_USDC", age_s=None)


def test_source_switches_to_rest_and_back() -> None:
    """When WebSocket goes quiet the REST value is used, and a fresh WebSocket value takes over again."""
    board = PriceBoard(LIMITS)
    board.record("M", "last", value=Decimal("100"), source="ws", recv_s=0.0)
    board.record("M", "last", value=Decimal("101"), source="rest", recv_s=11.0)
    q = board.quote("M", "last", 11.5)
    assert isinstance(q, Price)
    assert (q.source, q.value) == ("rest", Decimal("101"))
    board.record("M", "last", value=Decimal("102"), source="ws", recv_s=12.0)
    q = board.quote("M", "last", 12.0)
    assert isinstance(q, Price)
    assert (q.source, q.value, q.cached) == ("ws", Decimal("102"), False)
    stale = board.quote("M", "last", 40.0)
    assert isinstance(stale, Stale)
    assert stale.age_s == pytest.approx(28.0)


def test_late_frame_cannot_roll_price_back() -> None:
    """A frame with an older exchange time than the held value is ignored."""
    board = PriceBoard(LIMITS)
    assert board.record("M", "mid", value=Decimal("10"), source="ws", recv_s=1.0, exchange_ms=2000)
    assert not board.record("M", "mid", value=Decimal("9"), source="ws", recv_s=1.1, exchange_ms=1000)
    q = board.quote("M", "mid", 1.2)
    assert isinstance(q, Price)
    assert q.value == Decimal("10")


@pytest.mark.parametrize("bad", [Decimal("0"), Decimal("-1"), Decimal("NaN"), Decimal("Infinity")])
def test_non_positive_or_non_finite_values_are_refused(bad: Decimal) -> None:
    """Zero, negative, NaN and infinite prices are never recorded, so never quoted."""
    board = PriceBoard(LIMITS)
    assert not board.record("M", "last", value=bad, source="ws", recv_s=0.0)
    assert isinstance(board.quote("M", "last", 0.0), Stale)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["last", "mid", "mark"]),
                          st.sampled_from(["ws", "rest"]), st.integers(-5, 100), st.floats(0, 50)), max_size=20),
       st.floats(0, 100))
def test_quotes_equals_quote_per_kind(records: list[tuple[str, str, str, int, float]], now: float) -> None:
    """quotes() gives exactly quote() for last, mid and mark, for seen and never-seen kinds alike."""
    board = PriceBoard(PriceLimits(ws_fresh_s=2.0, cache_max_age_s=10.0, rest_max_age_s=5.0))
    for market, kind, source, value, recv in records:
        board.record(market, kind, value=Decimal(value), source=source, recv_s=recv)  # type: ignore[arg-type]
    for market in ("A", "B", "C"):
        assert board.quotes(market, now) == tuple(board.quote(market, k, now) for k in ("last", "mid", "mark"))
        for q in board.quotes(market, now):
            assert isinstance(q, Price) or not hasattr(q, "value")

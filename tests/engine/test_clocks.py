"""Exchange time runs ahead of the host clock in a fast replay; price ages must still be real ages."""

from __future__ import annotations

from decimal import Decimal

from engine.nanpin import NanpinConfig, StrategyState, decide
from engine.strategy_inputs import decision_input
from tests.nanpin.scenarios import NOW, PERP_RULES, example_bars
from tests.strategy.builders import book, candles_of, snapshot, state_of, view_of

NOW_MS = int(NOW.timestamp() * 1000)
SPOT = NanpinConfig()
REPLAY_SPEED = 2000


def _inputs(view_age_s: float | None) -> tuple[int, int]:
    """(age in ms the decision sees, market ms the view is behind) for a view published 10 ms ago at 2000x."""
    state = state_of("BTC_USDC", candles=candles_of(example_bars()), book_summary=book(Decimal("98000")))
    behind_ms = 10 * REPLAY_SPEED  # 10 ms of host time is 20 s of exchange time at 2000x
    view = view_of(state, as_of_ms=NOW_MS - behind_ms)
    inp = decision_input(SPOT, view, snapshot(), PERP_RULES, now_ms=NOW_MS, view_age_s=view_age_s)
    assert inp.price is not None
    return NOW_MS - int(inp.price.ts.timestamp() * 1000), behind_ms


def test_fast_replay_price_age_is_its_real_age() -> None:
    """A 10 ms old view at 2000x is 0.51 s old to the strategy (book age + view age), not 20 s: no PRICE_STALE."""
    age_ms, _ = _inputs(view_age_s=0.010)
    assert age_ms == 510
    decision = decide(decision_input(SPOT, view_of(state_of(
        "BTC_USDC", candles=candles_of(example_bars()), book_summary=book(Decimal("98000"))),
        as_of_ms=NOW_MS - 10 * REPLAY_SPEED), snapshot(), PERP_RULES, now_ms=NOW_MS, view_age_s=0.010),
        StrategyState(), SPOT)
    assert "PRICE_STALE" not in decision.codes("BLOCK")


def test_without_view_age_the_exchange_time_gap_counts() -> None:
    """Without the view's host age the observation is dated by the view's exchange time (the old behaviour)."""
    age_ms, behind_ms = _inputs(view_age_s=None)
    assert age_ms == behind_ms + 500

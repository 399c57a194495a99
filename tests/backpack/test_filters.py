"""Market filters: tick/step quantisation properties and order checks."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.backpack.events import Side
from engine.backpack.filters import (
    ceil_to_tick,
    check_order,
    floor_to_tick,
    is_on_grid,
    quantize_order,
    quantize_price,
    quantize_quantity,
)
from engine.backpack.responses import MarketFilters
from engine.errors import InvariantViolation

D = Decimal

BTC_PERP = MarketFilters(
    tick_size=D("0.1"),
    min_price=D("0.1"),
    max_price=D("1000000"),
    step_size=D("0.00001"),
    min_quantity=D("0.00001"),
    max_quantity=None,
    max_multiplier=D("1.25"),
    min_multiplier=D("0.75"),
)

values = st.decimals(
    min_value=D("0.00000001"), max_value=D("10000000"), allow_nan=False, allow_infinity=False, places=10
)
increments = st.sampled_from(
    [D("0.1"), D("0.01"), D("0.5"), D("0.00001"), D("1"), D("25"), D("0.3"), D("0.0025")]
)


@settings(max_examples=200)
@given(value=values, inc=increments)
def test_floor_and_ceil_bracket_the_value_on_the_grid(value: Decimal, inc: Decimal) -> None:
    """floor <= value <= ceil, both on the grid, less than one increment away, and idempotent."""
    lo = floor_to_tick(value, inc)
    hi = ceil_to_tick(value, inc)
    assert lo <= value <= hi
    assert value - lo < inc
    assert hi - value < inc
    assert is_on_grid(lo, inc)
    assert is_on_grid(hi, inc)
    assert floor_to_tick(lo, inc) == lo
    assert ceil_to_tick(hi, inc) == hi
    assert (lo == hi) == is_on_grid(value, inc)


@settings(max_examples=200)
@given(value=values, inc=increments)
def test_quantity_never_exceeds_the_request(value: Decimal, inc: Decimal) -> None:
    """Quantised quantities are on the step grid, never larger than requested, and idempotent."""
    q = quantize_quantity(value, inc)
    assert q <= value
    assert is_on_grid(q, inc)
    assert quantize_quantity(q, inc) == q


@settings(max_examples=200)
@given(value=values, inc=increments)
def test_prices_move_toward_the_passive_side(value: Decimal, inc: Decimal) -> None:
    """A bid is never raised and an ask never lowered by quantisation."""
    assert quantize_price(value, inc, Side.BID) <= value
    assert quantize_price(value, inc, Side.ASK) >= value


def test_near_integer_quotient_does_not_round_up() -> None:
    """A value a hair below a tick boundary floors below it (no 28-digit rounding)."""
    value = D("1234.49999999999999999999999999999999")
    assert floor_to_tick(value, D("0.1")) == D("1234.4")
    assert ceil_to_tick(value, D("0.1")) == D("1234.5")


def test_results_carry_the_grid_decimals() -> None:
    """The quantised text has the tick's decimals, e.g. 65000.1 and 0.00150."""
    assert str(quantize_price(D("65000.17"), D("0.1"), Side.BID)) == "65000.1"
    assert str(quantize_price(D("65000.11"), D("0.1"), Side.ASK)) == "65000.2"
    assert str(quantize_quantity(D("0.0015"), D("0.00001"))) == "0.00150"


def test_nonpositive_increment_is_a_bug() -> None:
    """A zero tick is an invariant violation, not a silent division error."""
    with pytest.raises(InvariantViolation):
        floor_to_tick(D("1"), D("0"))


def test_quantized_order_passes_the_checks() -> None:
    """An order quantised by quantize_order within bounds passes check_order."""
    price, qty = quantize_order(BTC_PERP, Side.BID, D("65000.17"), D("0.0015123"))
    assert (price, qty) == (D("65000.1"), D("0.00151"))
    assert check_order(BTC_PERP, price=price, quantity=qty, reference_price=D("65000")) == []
    assert check_order(BTC_PERP, price=None, quantity=qty) == []


def test_check_order_lists_every_problem() -> None:
    """Off-grid price and quantity, bounds, band and notional are all reported together."""
    problems = check_order(
        BTC_PERP,
        price=D("90000.05"),
        quantity=D("0.000001"),
        reference_price=D("65000"),
        min_notional=D("5"),
    )
    text = "\n".join(problems)
    assert "tick size" in text
    assert "step size" in text
    assert "minimum quantity" in text
    assert "1.25 x the reference price" in text
    assert "minimum notional" in text
    assert len(problems) == 5
    assert check_order(BTC_PERP, price=D("-1"), quantity=D("0")) == [
        "price -1 must be positive",
        "quantity 0 must be positive",
    ]
    assert check_order(BTC_PERP, price=D("2000000"), quantity=D("1")) == [
        "price 2000000 is above the maximum price 1000000"
    ]
    assert check_order(BTC_PERP, price=D("10000"), quantity=D("1"), reference_price=D("65000")) == [
        "price 10000 is below 0.75 x the reference price 65000"
    ]

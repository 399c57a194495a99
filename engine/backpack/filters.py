"""Market filters: put prices on the tick grid and quantities on the step grid, and list what an order breaks.

Rule 1: all arithmetic is ``Decimal`` in a private high-precision context, so flooring never rounds up by
accident (the default 28-digit context could turn 12345.99..9 into 12346 before the floor).
Rule 2: quantising toward the passive side: a bid is floored (never pay more), an ask is ceiled (never sell
for less); quantities are always floored (never trade more than asked).
Rule 3: ``check_order`` returns every problem as a sentence; it never raises for a bad order. A non-positive
tick or step is a bug in the caller (market data is validated on decode) and raises ``InvariantViolation``.
Backpack has no minimum-notional filter; ``min_notional`` is an optional local policy.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, DivisionByZero, InvalidOperation, Overflow

from engine.backpack.events import Side
from engine.backpack.responses import MarketFilters
from engine.errors import InvariantViolation

__all__ = [
    "ceil_to_tick",
    "check_order",
    "floor_to_tick",
    "is_on_grid",
    "quantize_order",
    "quantize_price",
    "quantize_quantity",
]

_CTX = Context(prec=120, traps=[InvalidOperation, DivisionByZero, Overflow])
_ONE = Decimal(1)


def _units(value: Decimal, increment: Decimal, rounding: str) -> Decimal:
    if not increment > 0:
        raise InvariantViolation(f"increment must be positive, got {increment}")
    # quantize (not to_integral_value) so the result has exponent 0: 1.5E+2 would otherwise keep E+1.
    return _CTX.divide(value, increment).quantize(_ONE, rounding=rounding, context=_CTX)


def _times(units: Decimal, increment: Decimal) -> Decimal:
    # n * increment keeps the increment's exponent, so the text has exactly the grid's decimals.
    return _CTX.multiply(units, increment)


def floor_to_tick(value: Decimal, increment: Decimal) -> Decimal:
    """The largest multiple of ``increment`` that is <= ``value``."""
    return _times(_units(value, increment, ROUND_FLOOR), increment)


def ceil_to_tick(value: Decimal, increment: Decimal) -> Decimal:
    """The smallest multiple of ``increment`` that is >= ``value``."""
    return _times(_units(value, increment, ROUND_CEILING), increment)


def is_on_grid(value: Decimal, increment: Decimal) -> bool:
    """True when ``value`` is an exact multiple of ``increment``."""
    if not increment > 0:
        raise InvariantViolation(f"increment must be positive, got {increment}")
    return _CTX.remainder(value, increment) == 0


def quantize_price(price: Decimal, tick: Decimal, side: Side) -> Decimal:
    """Put a limit price on the tick grid toward the passive side: bids down, asks up."""
    return floor_to_tick(price, tick) if side is Side.BID else ceil_to_tick(price, tick)


def quantize_quantity(quantity: Decimal, step: Decimal) -> Decimal:
    """Floor a quantity to the step grid (never more than requested)."""
    return floor_to_tick(quantity, step)


def quantize_order(
    filters: MarketFilters, side: Side, price: Decimal | None, quantity: Decimal
) -> tuple[Decimal | None, Decimal]:
    """Price (if any) toward the passive side and quantity down, per the market's filters."""
    quantized_price = None if price is None else quantize_price(price, filters.tick_size, side)
    return quantized_price, quantize_quantity(quantity, filters.step_size)


def check_order(
    filters: MarketFilters,
    *,
    price: Decimal | None,
    quantity: Decimal,
    reference_price: Decimal | None = None,
    min_notional: Decimal | None = None,
) -> list[str]:
    """Every filter the order breaks, as sentences (empty when it passes).

    ``price`` is None for a market order. ``reference_price`` (the last active price) enables the limit-price
    band check with the market's multipliers and stands in for the price in the optional notional check.
    """
    problems: list[str] = []
    if price is not None:
        if not price > 0:
            problems.append(f"price {price} must be positive")
        else:
            if not is_on_grid(price, filters.tick_size):
                problems.append(f"price {price} is not a multiple of the tick size {filters.tick_size}")
            if filters.min_price is not None and price < filters.min_price:
                problems.append(f"price {price} is below the minimum price {filters.min_price}")
            if filters.max_price is not None and price > filters.max_price:
                problems.append(f"price {price} is above the maximum price {filters.max_price}")
            if reference_price is not None and reference_price > 0:
                if filters.max_multiplier is not None and price > reference_price * filters.max_multiplier:
                    problems.append(
                        f"price {price} is above {filters.max_multiplier} x the reference price {reference_price}"
                    )
                if filters.min_multiplier is not None and price < reference_price * filters.min_multiplier:
                    problems.append(
                        f"price {price} is below {filters.min_multiplier} x the reference price {reference_price}"
                    )
    if not quantity > 0:
        problems.append(f"quantity {quantity} must be positive")
    else:
        if not is_on_grid(quantity, filters.step_size):
            problems.append(f"quantity {quantity} is not a multiple of the step size {filters.step_size}")
        if filters.min_quantity is not None and quantity < filters.min_quantity:
            problems.append(f"quantity {quantity} is below the minimum quantity {filters.min_quantity}")
        if filters.max_quantity is not None and quantity > filters.max_quantity:
            problems.append(f"quantity {quantity} is above the maximum quantity {filters.max_quantity}")
    if min_notional is not None:
        basis = price if price is not None else reference_price
        if basis is None:
            problems.append(f"notional cannot be checked against {min_notional} without a price")
        elif basis * quantity < min_notional:
            problems.append(f"notional {basis * quantity} is below the minimum notional {min_notional}")
    return problems

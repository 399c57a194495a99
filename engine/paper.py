"""Pure paper-fill model: a limit IOC order taken against a snapshot of book levels, with a taker fee.

Owns the maths of paper trading (``engine.mode = "paper"`` on real market data). Invariants, checked by
property tests:

* a buy never fills above its limit price, a sell never below; each level gives at most its size;
* the filled quantity never exceeds the order quantity and is a multiple of ``step`` (levels are taken in
  whole steps, so a fill is always a valid exchange quantity);
* IOC: whatever does not fill now is expired, nothing ever rests;
* every fill is charged the taker fee: in the base asset for a buy (Backpack spot buys pay fees in what they
  receive), in the quote asset for a sell.

Pure: no trio, no clock, no I/O. The caller passes the levels (best first) and the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, Decimal

import attrs

from engine.errors import InvariantViolation

__all__ = ["PaperFill", "PaperResult", "book_levels", "fill_ioc"]

_ZERO = Decimal(0)


@attrs.frozen(kw_only=True)
class PaperFill:
    """One simulated trade against one level."""

    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str


@attrs.frozen(kw_only=True)
class PaperResult:
    """Outcome of one IOC: its fills (possibly none) and whether a remainder expired."""

    fills: tuple[PaperFill, ...]
    filled_qty: Decimal
    filled_quote: Decimal
    expired: bool

    @property
    def avg_price(self) -> Decimal | None:
        return self.filled_quote / self.filled_qty if self.filled_qty else None


def _floor_step(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def fill_ioc(
    *,
    buy: bool,
    qty: Decimal,
    limit_price: Decimal,
    levels: Sequence[tuple[Decimal, Decimal]],
    step: Decimal,
    taker_fee: Decimal,
    base_asset: str,
    quote_asset: str,
) -> PaperResult:
    """Take ``qty`` from ``levels`` (the opposite side, best price first) up to ``limit_price``.

    ``levels`` must be sorted best first (asks ascending for a buy, bids descending for a sell); an unsorted
    book or a non-positive step/quantity is a caller bug (InvariantViolation).
    """
    if qty <= 0 or step <= 0 or limit_price <= 0 or taker_fee < 0:
        raise InvariantViolation(f"paper fill: bad order qty={qty} step={step} limit={limit_price} fee={taker_fee}")
    prices = [p for p, _ in levels]
    if prices != sorted(prices, reverse=not buy):
        raise InvariantViolation("paper fill: levels must be sorted best price first")
    fills: list[PaperFill] = []
    remaining = _floor_step(qty, step)
    filled = _ZERO
    quote = _ZERO
    for price, size in levels:
        if remaining <= 0:
            break
        if price <= 0 or size <= 0:
            continue
        if (buy and price > limit_price) or (not buy and price < limit_price):
            break
        take = min(remaining, _floor_step(size, step))
        if take <= 0:
            continue
        notional = take * price
        fee = take * taker_fee if buy else notional * taker_fee
        fills.append(PaperFill(price=price, qty=take, fee=fee, fee_asset=base_asset if buy else quote_asset))
        remaining -= take
        filled += take
        quote += notional
    return PaperResult(fills=tuple(fills), filled_qty=filled, filled_quote=quote, expired=filled < qty)


def book_levels(
    *,
    buy: bool,
    best_bid: Decimal,
    best_ask: Decimal,
    bid_size: Decimal,
    ask_size: Decimal,
    bid_depth: Decimal,
    ask_depth: Decimal,
    depth_bps: Decimal,
) -> tuple[tuple[Decimal, Decimal], ...]:
    """Levels to walk, built from a book summary (top of book plus depth within ``depth_bps`` of the mid).

    The top level trades at its own price; the rest of the depth band is priced, conservatively, at the far
    edge of the band (``mid * (1 +- depth_bps / 10000)``), never better than the top of book.
    """
    mid = (best_bid + best_ask) / 2
    band = depth_bps / Decimal(10000)
    if buy:
        edge = max(best_ask, mid * (1 + band))
        rest = ask_depth - ask_size
        levels = [(best_ask, ask_size)]
        if rest > 0:
            levels.append((edge, rest))
    else:
        edge = min(best_bid, mid * (1 - band))
        rest = bid_depth - bid_size
        levels = [(best_bid, bid_size)]
        if rest > 0:
            levels.append((edge, rest))
    return tuple(levels)

"""Simulated accounts: balances, perpetual positions and the per-account history the REST API serves.

Owns: :class:`Balance` (available / locked; staking is not simulated so ``staked`` is always 0),
:class:`Position` (one net position per perp symbol, cross margin, USDC-settled), :class:`Account`
(balances, positions, open orders, order/fill/funding history, leverage limit, fee rates).

Invariants kept by the core that mutates these: ``available`` and ``locked`` never go negative; an order's
``locked`` amount is exactly what it still reserves; a position's ``entry`` is the volume-weighted entry of the
open quantity; realised PnL is settled into USDC at the fill (the real venue does it every 10 s).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from engine.sim.matching import Order

__all__ = ["Account", "Balance", "Position"]

ZERO = Decimal(0)


@attrs.define(kw_only=True)
class Balance:
    available: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.available + self.locked


@attrs.define(kw_only=True)
class Position:
    """Net perp position: ``qty`` > 0 long, < 0 short; ``entry`` is 0 when flat."""

    symbol: str
    position_id: int
    qty: Decimal = ZERO
    entry: Decimal = ZERO
    realized: Decimal = ZERO
    funding: Decimal = ZERO
    fees: Decimal = ZERO  # fees paid while this position was open (for the break-even price)

    def apply_fill(self, signed_qty: Decimal, price: Decimal) -> Decimal:
        """Add a fill; returns the PnL it realised (closing part)."""
        realized = ZERO
        q = self.qty
        if q == 0 or (q > 0) == (signed_qty > 0):
            new_q = q + signed_qty
            self.entry = (self.entry * abs(q) + price * abs(signed_qty)) / abs(new_q)
            self.qty = new_q
            return realized
        closing = min(abs(q), abs(signed_qty))
        direction = Decimal(1) if q > 0 else Decimal(-1)
        realized = (price - self.entry) * closing * direction
        self.realized += realized
        new_q = q + signed_qty
        if new_q == 0:
            self.qty = ZERO
            self.entry = ZERO
            self.fees = ZERO
        elif (new_q > 0) != (q > 0):
            self.qty = new_q
            self.entry = price
            self.fees = ZERO
        else:
            self.qty = new_q
        return realized


@attrs.define(kw_only=True, eq=False)
class Account:
    key: str
    user_id: int
    balances: dict[str, Balance]
    leverage_limit: Decimal = Decimal(20)
    positions: dict[str, Position] = attrs.field(factory=dict)
    open_orders: dict[str, Order] = attrs.field(factory=dict)
    orders: list[Order] = attrs.field(factory=list)
    fills: list[tuple[int, dict[str, Any]]] = attrs.field(factory=list)  # (timestamp ms, wire row)
    funding: list[dict[str, Any]] = attrs.field(factory=list)
    liquidating: bool = False

    def balance(self, asset: str) -> Balance:
        got = self.balances.get(asset)
        if got is None:
            got = self.balances[asset] = Balance()
        return got

    def position(self, symbol: str, next_id: int) -> Position:
        got = self.positions.get(symbol)
        if got is None:
            got = self.positions[symbol] = Position(symbol=symbol, position_id=next_id)
        return got

"""Sizing, caps, the liquidation model and exchange rounding (spec 3.7, 3.8, 4, 9.5, 9.13); pure Decimal.

Invariants:

* :func:`floor_to_step` never rounds up and :func:`ceil_to_step` never rounds down, so a quantity floored
  from an approved notional keeps every cap.
* The liquidation model is the spec's one-position cross-margin model: collateral without this position's
  unrealised PnL is ``C = E - Q*(P - avg)`` and ``p_liq = (Q*avg - C) / (Q*(1 - m))`` floored at 0.
* Caps are returned in the table order of spec 3.8, so "first in table order" breaks ties for the binding
  cap. A cap that does not apply (off, or not this market type) is absent.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from engine.nanpin.config import NanpinConfig

__all__ = [
    "binding_cap",
    "caps_for",
    "ceil_to_step",
    "deleverage_qty",
    "floor_to_step",
    "liq_price",
    "liq_qty_cap",
    "p_floor",
]

_ZERO = Decimal(0)


def floor_to_step(x: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is <= ``x``."""
    return (x / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_to_step(x: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of ``step`` that is >= ``x``."""
    return (x / step).to_integral_value(rounding=ROUND_CEILING) * step


def liq_price(qty: Decimal, cost: Decimal, collateral: Decimal, mmf: Decimal) -> Decimal:
    """Liquidation price of a long of ``qty`` with total entry cost ``cost`` (= Q*avg); 0 when none."""
    if qty <= 0:
        return _ZERO
    return max(_ZERO, (cost - collateral) / (qty * (1 - mmf)))


def p_floor(cfg: NanpinConfig, price: Decimal, swing_low: Decimal) -> Decimal:
    """``min(P*(1 - min_liq_distance), L*(1 - buffer_below_swing_low))``, before the exchange shift."""
    risk = cfg.risk
    return min(price * (1 - risk.min_liq_distance_frac), swing_low * (1 - risk.liq_buffer_below_swing_low_frac))


def liq_qty_cap(price: Decimal, qty: Decimal, avg: Decimal, collateral: Decimal, mmf: Decimal,
                floor: Decimal) -> Decimal | None:
    """Largest buy ``q`` at ``P`` keeping the projected liquidation price <= ``floor``; None = unbounded.

    From ``(Q*avg + q*P - C) / ((Q + q)(1 - m)) <= floor``:
    ``q * (P - floor*(1 - m)) <= floor*(1 - m)*Q - Q*avg + C``.
    """
    rhs = floor * (1 - mmf) * qty - qty * avg + collateral
    denom = price - floor * (1 - mmf)
    if denom <= 0:
        return None if rhs >= 0 else _ZERO
    return rhs / denom


def caps_for(cfg: NanpinConfig, *, price: Decimal, limit_price: Decimal, equity: Decimal, available: Decimal,
             qty: Decimal, day_start_equity: Decimal, day_bought: Decimal, imf: Decimal, fee: Decimal,
             liq_cap_qty: Decimal | None) -> list[tuple[str, Decimal]]:
    """Every applicable cap on the order notional ``N = q*P``, in spec 3.8 table order."""
    s, r = cfg.sizing, cfg.risk
    caps: list[tuple[str, Decimal]] = []
    per_order = s.max_order_equity_mult * equity
    if s.max_order_notional_usdc > 0:
        per_order = min(per_order, s.max_order_notional_usdc)
    caps.append(("per_order", per_order))
    caps.append(("daily", r.max_daily_notional_equity_mult * day_start_equity - day_bought))
    if r.max_position_notional_usdc > 0:
        caps.append(("position", r.max_position_notional_usdc - qty * price))
    if cfg.is_perp:
        caps.append(("account_leverage", r.max_account_leverage * equity - qty * price))
        caps.append(("margin", available * (1 - r.reserve_available_frac) / imf))
        if liq_cap_qty is not None:
            caps.append(("liquidation", liq_cap_qty * price))
    else:
        # Spec 9.13(e): the cash cap bounds qty * limit_price * (1 + fee), expressed here on qty * P.
        cash = available * (1 - r.reserve_available_frac)
        caps.append(("cash", cash * price / (limit_price * (1 + fee))))
    return caps


def binding_cap(notional_raw: Decimal, caps: list[tuple[str, Decimal]]) -> tuple[Decimal, str | None]:
    """``(N, name)``: the approved notional and the cap that set it (None when the raw size did)."""
    if not caps:
        return notional_raw, None
    name, lowest = caps[0]
    for cap_name, value in caps[1:]:
        if value < lowest:
            name, lowest = cap_name, value
    if lowest <= notional_raw:
        return lowest, name
    return notional_raw, None


def deleverage_qty(*, price: Decimal, qty: Decimal, equity: Decimal, mmf: Decimal, target_frac: Decimal,
                   gap: Decimal) -> Decimal:
    """Smallest reduction (unrounded) that brings the liquidation distance to ``target_frac``.

    Selling ``q`` at ``P`` moves its PnL into collateral, so the remainder ``Q'`` has
    ``p_liq = (Q'*P - E) / (Q'*(1 - m))``; requiring ``p_liq + gap <= P*(1 - target)`` gives
    ``Q' <= E / (P - (P*(1 - target) - gap)*(1 - m))``. ``gap`` is how far the exchange's estimate sits
    above the model (0 if not above), so the exchange figure makes the sale larger, never smaller.
    """
    target = price * (1 - target_frac) - gap
    denom = price - target * (1 - mmf)
    if equity <= 0:
        keep = _ZERO
    elif denom <= 0:
        keep = qty
    else:
        keep = equity / denom
    return max(_ZERO, qty - keep)

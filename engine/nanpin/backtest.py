"""Pure daily backtest of the nanpin strategy through the live ``decide`` and ``apply_fill`` (spec 7 item 9).

Owns the bar-by-bar loop and a conservative fill and account model; no I/O, no clock reads.

Loop, for each day ``t`` from ``start_index``:

1. Perp only: if day ``t``'s low reaches the model liquidation price of the position held coming into the day,
   the account is liquidated (equity set to 0, the maintenance margin being lost) and the run stops. This runs
   before the decision because a decision at the close cannot save a position liquidated during the day.
2. ``decide`` sees the closed bars ``b[0..t-1]`` (trimmed to :func:`history_window`, which cannot change
   the decision), ``P = c[t]`` and ``now`` = just before day ``t``'s close,
   so every index of spec 3.3 is what live use would see.
3. Each intent fills completely at ``P`` moved against us by ``slippage_frac``, never beyond its limit price
   (a limit IOC cannot fill worse than its limit); the taker fee is charged on the fill notional.
4. ``apply_fill`` books BUY fills; the equity point is taken at the close.

Account model: perp collateral ``cash`` (deposits, realised PnL and fees) with ``equity = cash + Q*(P - avg)``
and ``available = equity - imf*Q*P``; spot quote balance ``cash`` with ``equity = cash + Q*P`` and
``available = cash`` (spec 9.13). Known limits, reported in ``notes``: one decision a day means the daily-loss
block cannot fire (spec 9.12); funding payments are not modelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal, localcontext

import attrs

from engine.nanpin.config import NanpinConfig
from engine.nanpin.decide import DECIMAL_CONTEXT, decide, utc
from engine.nanpin.fill import apply_fill
from engine.nanpin.sizing import liq_price
from engine.nanpin.types import (
    Account,
    Bar,
    DecisionInput,
    FillReport,
    MarketRules,
    OrderIntent,
    Position,
    PriceObs,
    StrategyState,
)

__all__ = ["BacktestEntry", "BacktestResult", "EquityPoint", "history_window", "run_backtest"]

_ZERO = Decimal(0)


@attrs.frozen(kw_only=True)
class BacktestEntry:
    """One simulated fill."""

    day: date
    side: str
    level: str
    qty: Decimal
    price: Decimal
    notional: Decimal
    fee: Decimal
    entry_leverage: Decimal
    intent_id: str


@attrs.frozen(kw_only=True)
class EquityPoint:
    """Account at day ``day``'s close."""

    day: date
    close: Decimal
    equity: Decimal
    cash: Decimal
    position_qty: Decimal
    avg_entry: Decimal
    liq_price: Decimal | None


@attrs.frozen(kw_only=True)
class BacktestResult:
    """Outcome of one run; ``block_counts`` counts decisions per BLOCK/HALT code."""

    market_type: str
    initial_cash: Decimal
    final_equity: Decimal
    entries: tuple[BacktestEntry, ...]
    curve: tuple[EquityPoint, ...]
    max_drawdown_frac: Decimal
    liquidated: bool
    liquidated_on: date | None
    halted: bool
    block_counts: dict[str, int]
    final_state: StrategyState
    notes: tuple[str, ...]


def history_window(cfg: NanpinConfig) -> int:
    """Closed bars a decision can look at: passing only the last this-many gives the identical decision.

    Every indicator indexes back from ``n - 1`` and the history check needs ``min_history_bars``, so older
    bars never matter; trimming keeps the backtest linear in the number of days.
    """
    sw, sig = cfg.swing, cfg.signal
    return max(cfg.data.min_history_bars, sig.ath_lookback_bars, sw.lookback_bars_high_vol,
               sw.lookback_bars_mid_vol, sw.lookback_bars_low_vol, sig.vol_lookback_returns + 1,
               sig.momentum_lookback_bars)


def _max_drawdown(curve: Sequence[EquityPoint]) -> Decimal:
    peak = _ZERO
    worst = _ZERO
    for point in curve:
        peak = max(peak, point.equity)
        if peak > 0:
            worst = max(worst, (peak - point.equity) / peak)
    return worst


def run_backtest(bars: Sequence[Bar], cfg: NanpinConfig, *, initial_cash: Decimal, rules: MarketRules,
                 start_index: int | None = None, slippage_frac: Decimal = Decimal("0.0005"),
                 fee_frac: Decimal | None = None,
                 decision_offset: timedelta = timedelta(minutes=1)) -> BacktestResult:
    """Run the daily loop over ``bars`` (closed daily bars, ascending) and return the result record."""
    with localcontext(DECIMAL_CONTEXT):
        return _run(bars, cfg, initial_cash, rules, start_index, slippage_frac, fee_frac, decision_offset)


def _run(bars: Sequence[Bar], cfg: NanpinConfig, initial_cash: Decimal, rules: MarketRules,
         start_index: int | None, slippage_frac: Decimal, fee_frac: Decimal | None,
         decision_offset: timedelta) -> BacktestResult:
    perp = cfg.is_perp
    fee_rate = fee_frac if fee_frac is not None else cfg.sizing.taker_fee_frac
    mmf = cfg.risk.default_mmf
    imf = cfg.risk.default_imf
    start = cfg.data.min_history_bars if start_index is None else start_index
    window = history_window(cfg)
    cash = initial_cash
    qty = _ZERO
    avg = _ZERO
    state = StrategyState()
    entries: list[BacktestEntry] = []
    curve: list[EquityPoint] = []
    blocks: dict[str, int] = {}
    liquidated_on: date | None = None

    for t in range(max(start, 0), len(bars)):
        bar = bars[t]
        day = utc(bar.start).date()
        price = bar.close
        if perp and qty > 0:
            p_liq = liq_price(qty, qty * avg, cash, mmf)
            if bar.low <= p_liq:
                liquidated_on = day
                cash, qty, avg = _ZERO, _ZERO, _ZERO
                curve.append(EquityPoint(day=day, close=price, equity=_ZERO, cash=_ZERO, position_qty=_ZERO,
                                         avg_entry=_ZERO, liq_price=p_liq))
                break
        now = utc(bar.start) + timedelta(days=1) - decision_offset
        equity = cash + qty * (price - avg) if perp else cash + qty * price
        available = max(_ZERO, equity - imf * qty * price) if perp else cash
        inp = DecisionInput(
            now=now,
            bars=tuple(bars[max(0, t - window):t]),
            price=PriceObs(value=price, ts=now),
            account=Account(equity=equity, available=available),
            position=Position(qty=qty, avg_entry=avg),
            rules=rules,
        )
        decision = decide(inp, state, cfg)
        state = decision.next_state
        for code in {e.code for e in decision.events if e.kind in ("BLOCK", "HALT")}:
            blocks[code] = blocks.get(code, 0) + 1
        for intent in decision.intents:
            cash, qty, avg, entry = _fill(intent, perp, cash, qty, avg, slippage_frac, fee_rate, day)
            entries.append(entry)
            if intent.side == "BUY":
                state = apply_fill(state, FillReport(
                    intent_id=intent.intent_id, level=intent.level, swing_key=intent.swing_key,
                    filled_qty=intent.qty, avg_price=entry.price, ts=now, entry_leverage=intent.entry_leverage,
                ), cfg)
        equity = cash + qty * (price - avg) if perp else cash + qty * price
        curve.append(EquityPoint(day=day, close=price, equity=equity, cash=cash, position_qty=qty, avg_entry=avg,
                                 liq_price=liq_price(qty, qty * avg, cash, mmf) if perp and qty > 0 else None))

    notes = [
        "one decision per day: day_start_equity is the equity of that same decision, so the daily-loss "
        "block cannot fire here and was not tested (spec 9.12)",
    ]
    if perp:
        notes.append("perp profile: leverage with no sell path; liquidation is modelled from the daily low "
                     "with the default maintenance margin; funding payments are not modelled")
    else:
        notes.append("spot profile: the cash column shows how much quote is left; a long decline can leave "
                     "the account fully invested (spec 9.13 g)")
    return BacktestResult(
        market_type=cfg.market.market_type,
        initial_cash=initial_cash,
        final_equity=curve[-1].equity if curve else initial_cash,
        entries=tuple(entries),
        curve=tuple(curve),
        max_drawdown_frac=_max_drawdown(curve),
        liquidated=liquidated_on is not None,
        liquidated_on=liquidated_on,
        halted=state.halted,
        block_counts=dict(sorted(blocks.items())),
        final_state=state,
        notes=tuple(notes),
    )


def _fill(intent: OrderIntent, perp: bool, cash: Decimal, qty: Decimal, avg: Decimal, slippage: Decimal,
          fee_rate: Decimal, day: date) -> tuple[Decimal, Decimal, Decimal, BacktestEntry]:
    """Apply a full fill of ``intent`` to the account; returns ``(cash, qty, avg, entry)``."""
    p = intent.ref_price
    if intent.side == "BUY":
        px = min(intent.limit_price, p * (1 + slippage))
        notional = intent.qty * px
        fee = notional * fee_rate
        new_qty = qty + intent.qty
        avg = (qty * avg + notional) / new_qty
        qty = new_qty
        cash = cash - fee if perp else cash - notional - fee
    else:
        px = max(intent.limit_price, p * (1 - slippage))
        sold = min(intent.qty, qty)
        notional = sold * px
        fee = notional * fee_rate
        cash = cash + sold * (px - avg) - fee if perp else cash + notional - fee
        qty -= sold
        if qty == 0:
            avg = _ZERO
    entry = BacktestEntry(day=day, side=intent.side, level=intent.level, qty=intent.qty, price=px,
                          notional=notional, fee=fee, entry_leverage=intent.entry_leverage,
                          intent_id=intent.intent_id)
    return cash, qty, avg, entry

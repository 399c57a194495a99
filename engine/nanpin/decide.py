"""``decide(inp, state, cfg) -> Decision``: the nanpin decision as a total, deterministic pure function.

Owns the order of spec section 3 and 4: bookkeeping (3.1), input checks (3.2), the risk monitor (4), the
indicators (3.3), swing and ladder identity (3.4), gates (3.5), candidates and choice (3.6), sizing (3.7),
caps (3.8) and the intent (3.9), with the edge-case decisions of section 9.

Rules:

* Total: bad market data never raises; it becomes a ``BLOCK`` event. Every Decimal that is used is checked
  finite first and every division has a positive divisor. Codes beyond the spec's: ``ACCOUNT_INVALID``
  (non-finite account or position figures) and ``RULES_INVALID`` (non-positive step or tick size).
* Deterministic, no clock reads: time is ``inp.now``. A naive datetime is taken as UTC. Decimal arithmetic
  runs in a private context, so a caller's global context cannot change a result.
* At most one BUY, and only when no ``BLOCK`` or ``HALT`` event was emitted. A reduce-only SELL appears only
  with ``deleverage_on_critical`` and ``LIQ_CRITICAL``. Each (kind, code) pair appears at most once.
* ``next_state`` carries bookkeeping only (day roll, peak, legacy budget base, swing reset, halt latch,
  deleverage counter). Fills are applied by ``apply_fill``.
* The ladder identity moves only when every input check passed, so a stale or broken input can never empty
  ``filled_levels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

import attrs

from engine.nanpin.config import Level, NanpinConfig
from engine.nanpin.indicators import (
    Indicators,
    compute_indicators,
    min_bars_for_indicators,
    swing_bars,
    swing_range,
)
from engine.nanpin.levels import (
    band,
    choose,
    confluence,
    entry_leverage,
    in_window,
    level_distance,
    level_price,
    score,
)
from engine.nanpin.sizing import (
    binding_cap,
    caps_for,
    ceil_to_step,
    deleverage_qty,
    floor_to_step,
    liq_price,
    liq_qty_cap,
    p_floor,
)
from engine.nanpin.types import (
    Bar,
    Decision,
    DecisionInput,
    Diagnostics,
    LevelDiag,
    OrderIntent,
    Projection,
    RiskEvent,
    StrategyState,
    client_id_for,
)

__all__ = ["DECIMAL_CONTEXT", "INPUT_CHECK_CODES", "decide", "delever_intent_id", "intent_id_for", "utc"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_DAY = timedelta(days=1)
# Enough digits for prices near 1e6 times quantities with 1e-8 steps, with room; traps stay on because every
# operand is validated first, so a trap firing would be a bug rather than bad data.
DECIMAL_CONTEXT = Context(prec=40, rounding=ROUND_HALF_EVEN)

#: Codes of spec 3.2 (and this module's input-validity codes): a failure here freezes the ladder identity.
INPUT_CHECK_CODES = frozenset({
    "PRICE_STALE", "BARS_STALE", "BARS_INVALID", "BARS_GAP", "HISTORY_SHORT", "FG_MISSING",
    "ACCOUNT_INVALID", "POSITION_UNSUPPORTED", "RULES_INVALID",
})


def utc(ts: datetime) -> datetime:
    """``ts`` in UTC; a naive datetime is taken to be UTC already."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def intent_id_for(symbol: str, swing_key: str, level: str) -> str:
    """``nanpin:{symbol}:{swing_key}:{level}`` (spec 3.9)."""
    return f"nanpin:{symbol}:{swing_key}:{level}"


def delever_intent_id(symbol: str, day: date, n: int) -> str:
    """``nanpin:{symbol}:{UTC date}:delever:{n}`` (spec 9.5); ``n`` counts that day's deleverage intents."""
    return f"nanpin:{symbol}:{day.isoformat()}:delever:{n}"


class _Events:
    """Ordered events with at most one per (kind, code)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], RiskEvent] = {}

    def add(self, kind: str, code: str, detail: str) -> None:
        self._items.setdefault((kind, code), RiskEvent(kind=kind, code=code, detail=detail))

    def has(self, code: str) -> bool:
        return any(c == code for _, c in self._items)

    def blocking(self) -> bool:
        return any(kind in ("BLOCK", "HALT") for kind, _ in self._items)

    def codes(self) -> set[str]:
        return {code for _, code in self._items}

    def items(self) -> tuple[RiskEvent, ...]:
        return tuple(self._items.values())


def _fin(*values: Decimal | None) -> bool:
    return all(v is None or (isinstance(v, Decimal) and v.is_finite()) for v in values)


def _bar_problem(bar: Bar, now: datetime) -> str | None:
    if not _fin(bar.open, bar.high, bar.low, bar.close, bar.volume):
        return "non-finite value"
    if min(bar.open, bar.high, bar.low, bar.close) <= 0 or bar.volume < 0:
        return "non-positive price or negative volume"
    if bar.low > min(bar.open, bar.close) or bar.high < max(bar.open, bar.close):
        return "high/low do not bound open/close"
    start = utc(bar.start)
    if (start.hour, start.minute, start.second, start.microsecond) != (0, 0, 0, 0):
        return "not aligned to 00:00 UTC"
    if start + _DAY > now:
        return "not closed yet"
    return None


def _check_bars(bars: Sequence[Bar], now: datetime, cfg: NanpinConfig, ev: _Events) -> bool:
    """Spec 3.2 / 9.10 bar checks; True when the bars are usable for indicators."""
    if not bars:
        ev.add("BLOCK", "BARS_STALE", "no closed bars")
        return False
    for i, bar in enumerate(bars):
        problem = _bar_problem(bar, now)
        if problem is not None:
            ev.add("BLOCK", "BARS_INVALID", f"bar {i} ({bar.start.isoformat()}): {problem}")
            return False
    for i in range(1, len(bars)):
        if utc(bars[i].start) - utc(bars[i - 1].start) != _DAY:
            ev.add("BLOCK", "BARS_GAP", f"bars {i - 1} and {i} start {bars[i - 1].start.isoformat()} and "
                   f"{bars[i].start.isoformat()}")
            return False
    last_end = utc(bars[-1].start) + _DAY
    if last_end < now - timedelta(hours=cfg.data.max_bar_lag_h):
        ev.add("BLOCK", "BARS_STALE", f"last bar ended {last_end.isoformat()}, more than "
               f"{cfg.data.max_bar_lag_h} h before now")
    need_ind = min_bars_for_indicators(cfg.signal)
    need = max(cfg.data.min_history_bars, need_ind)
    if len(bars) < need:
        ev.add("BLOCK", "HISTORY_SHORT", f"{len(bars)} closed bars < {need} required")
    return len(bars) >= need_ind


def _fear_index(inp: DecisionInput, now: datetime, cfg: NanpinConfig, proxy: float | None,
                ev: _Events) -> tuple[float | None, str]:
    """``(fg, label)`` per ``fear_greed_source``; the external value counts only if valid and fresh."""
    source = cfg.signal.fear_greed_source
    ext = None
    obs = inp.fear_greed
    if obs is not None:
        value = obs.value
        fresh = now - utc(obs.ts) <= timedelta(hours=cfg.data.max_fear_greed_age_h)
        if isinstance(value, int | float) and 0.0 <= value <= 100.0 and fresh:
            ext = float(value)
    if source == "proxy":
        return proxy, "fear proxy"
    if source == "external":
        if ext is None:
            ev.add("BLOCK", "FG_MISSING", "external fear index missing, invalid or older than "
                   f"{cfg.data.max_fear_greed_age_h} h")
        return ext, "external fear index"
    if ext is not None:
        return ext, "external fear index"
    return proxy, "fear proxy"


def decide(inp: DecisionInput, state: StrategyState, cfg: NanpinConfig) -> Decision:
    """One decision: at most one BUY intent, events, bookkeeping and diagnostics (spec 1, 3, 4, 9)."""
    with localcontext(DECIMAL_CONTEXT):
        return _decide(inp, state, cfg)


def _decide(inp: DecisionInput, state: StrategyState, cfg: NanpinConfig) -> Decision:
    ev = _Events()
    now = utc(inp.now)
    today = now.date()
    acct, pos, rules = inp.account, inp.position, inp.rules
    risk = cfg.risk
    perp = cfg.is_perp

    acct_ok = _fin(acct.equity, acct.available, acct.imf, acct.taker_fee_frac)
    pos_ok = _fin(pos.qty, pos.avg_entry, pos.est_liq_price, pos.mmf) and pos.avg_entry >= 0
    equity = acct.equity if acct_ok else None

    # 3.1 bookkeeping
    st = state
    if st.day != today:
        st = attrs.evolve(st, day=today, day_start_equity=equity if equity is not None else _ZERO,
                          day_bought_notional=_ZERO, day_delever_count=0)
    elif st.day_start_equity == 0 and equity is not None:
        # apply_fill may roll the day forward before any decision of that day (spec 9.7); the first
        # decision of the day still sets the day's start equity.
        st = attrs.evolve(st, day_start_equity=equity)
    if equity is not None:
        st = attrs.evolve(st, peak_equity=max(st.peak_equity, equity))
        if cfg.sizing.mode == "legacy" and st.legacy_budget_base is None:
            st = attrs.evolve(st, legacy_budget_base=equity)

    # 3.2 input checks
    price: Decimal | None = None
    if inp.price is None or not _fin(inp.price.value) or inp.price.value <= 0:
        ev.add("BLOCK", "PRICE_STALE", "price missing, non-finite or <= 0")
    elif now - utc(inp.price.ts) > timedelta(seconds=cfg.data.max_price_age_s):
        ev.add("BLOCK", "PRICE_STALE", f"price observed {inp.price.ts.isoformat()}, older than "
               f"{cfg.data.max_price_age_s} s")
    else:
        price = inp.price.value
    if not acct_ok:
        ev.add("BLOCK", "ACCOUNT_INVALID", "account equity, available, imf or fee is not finite")
    if not pos_ok:
        ev.add("BLOCK", "ACCOUNT_INVALID", "position figures are not finite or avg_entry < 0")
    elif pos.qty < 0:
        ev.add("BLOCK", "POSITION_UNSUPPORTED", f"position qty {pos.qty} < 0: the strategy never shorts")
    rules_ok = (_fin(rules.step_size, rules.tick_size, rules.min_qty, rules.min_notional)
                and rules.step_size > 0 and rules.tick_size > 0)
    if not rules_ok:
        ev.add("BLOCK", "RULES_INVALID", "step and tick size must be finite and > 0")
    bars = inp.bars
    bars_usable = _check_bars(bars, now, cfg, ev)

    qty_now = pos.qty if pos_ok and pos.qty > 0 else _ZERO
    avg_now = pos.avg_entry if pos_ok else _ZERO
    mmf = max(pos.mmf if pos_ok and pos.mmf is not None else _ZERO, risk.default_mmf)
    imf = max(acct.imf if acct_ok and acct.imf is not None else _ZERO, risk.default_imf)
    diag = Diagnostics(price=price, n_bars=len(bars), mmf=mmf, imf=imf)

    # 4. risk monitor: only a valid price can trip a halt (spec 9.2)
    intents: list[OrderIntent] = []
    gap = _ZERO
    if perp and price is not None and equity is not None and pos_ok and qty_now > 0:
        collateral = equity - qty_now * (price - avg_now)
        model = liq_price(qty_now, qty_now * avg_now, collateral, mmf)
        est = pos.est_liq_price
        liq_now = est if est is not None else model
        if est is not None and est > model:
            gap = est - model
        liq_dist = (price - liq_now) / price
        diag = attrs.evolve(diag, liq_now=liq_now, liq_distance=liq_dist)
        if liq_dist < risk.liq_critical_distance_frac:
            detail = f"liquidation distance {liq_dist:.4f} < {risk.liq_critical_distance_frac} (liq {liq_now})"
            ev.add("HALT", "LIQ_CRITICAL", detail)
            if not st.halted:
                st = attrs.evolve(st, halted=True, halt_reason=f"LIQ_CRITICAL: {detail}")
            if risk.deleverage_on_critical and rules_ok:
                sell = _deleverage(cfg, st, today, price, qty_now, avg_now, equity, mmf, gap, rules.step_size,
                                   rules.tick_size)
                if sell is not None:
                    intents.append(sell)
                    st = attrs.evolve(st, day_delever_count=st.day_delever_count + 1)
        if liq_dist < risk.liq_warn_distance_frac:
            detail = f"liquidation distance {liq_dist:.4f} < {risk.liq_warn_distance_frac}"
            ev.add("BLOCK", "LIQ_WARN", detail)
            ev.add("WARN", "LIQ_WARN", detail)
    if equity is not None:
        dse = st.day_start_equity
        if dse > 0 and (dse - equity) / dse >= risk.max_daily_loss_frac:
            ev.add("BLOCK", "DAILY_LOSS", f"equity {equity} is {(dse - equity) / dse:.4f} below the day start "
                   f"{dse}")
        if equity < st.peak_equity * (1 - risk.max_equity_drawdown_frac):
            ev.add("BLOCK", "EQUITY_DRAWDOWN", f"equity {equity} < peak {st.peak_equity} x "
                   f"(1 - {risk.max_equity_drawdown_frac})")

    # 3.5 gates that need no indicators
    if state.halted:
        ev.add("BLOCK", "HALTED", f"halted: {state.halt_reason or 'no reason recorded'}")
    if risk.max_total_entries > 0 and st.entries_total >= risk.max_total_entries:
        ev.add("BLOCK", "MAX_ENTRIES", f"{st.entries_total} entries >= {risk.max_total_entries}")

    ind: Indicators | None = None
    if price is not None and bars_usable:
        ind = compute_indicators(bars, price, cfg.signal)
    fg, fg_label = _fear_index(inp, now, cfg, ind.fg_proxy if ind else None, ev)

    if ind is None or price is None:
        return Decision(intents=tuple(intents), events=ev.items(), next_state=st, diag=diag)

    # 3.3 / 3.4 diagnostics, swing and ladder identity
    n_s = swing_bars(cfg, ind.regime)
    high, low = swing_range(bars, price, n_s)
    swing_key = today.isoformat() if price >= ind.hmax else utc(bars[ind.i_ath].start).date().isoformat()
    if not (ev.codes() & INPUT_CHECK_CODES) and swing_key != st.swing_key:
        st = attrs.evolve(st, swing_key=swing_key, filled_levels=frozenset())
    filled = st.filled_levels if swing_key == st.swing_key else frozenset()
    factor = {"high": cfg.cooldown.high_vol_factor, "low": cfg.cooldown.low_vol_factor}.get(ind.regime, 1.0)
    cooldown_h = cfg.cooldown.base_hours * factor
    diag = attrs.evolve(diag, ath=ind.ath, hmax=ind.hmax, drawdown=ind.drawdown,
                        days_since_ath=ind.days_since_ath, vol_pct=ind.vol_pct, mom_pct=ind.mom_pct,
                        fg_proxy=ind.fg_proxy, fg=fg, fg_label=fg_label, regime=ind.regime,
                        cooldown_h=cooldown_h, swing_bars=n_s, swing_high=high, swing_low=low,
                        swing_key=swing_key)

    # 3.5 gates
    sig = cfg.signal
    if not ind.drawdown <= -sig.min_drawdown_frac:
        ev.add("BLOCK", "DRAWDOWN", f"drawdown {ind.drawdown:.4f} > -{sig.min_drawdown_frac}")
    if fg is not None and fg > sig.max_fear_greed:
        ev.add("BLOCK", "FEAR", f"{fg_label} {fg:.2f} > {sig.max_fear_greed}")
    if ind.days_since_ath < sig.min_days_since_ath:
        ev.add("BLOCK", "TOO_SOON_AFTER_HIGH", f"{ind.days_since_ath} days since the high < "
               f"{sig.min_days_since_ath}")
    if st.last_entry_at is not None and now - utc(st.last_entry_at) < timedelta(hours=cooldown_h):
        ev.add("BLOCK", "COOLDOWN", f"last entry {st.last_entry_at.isoformat()}, cooldown {cooldown_h} h "
               f"({ind.regime} vol)")
    clu = cfg.clusters
    if clu.enabled:
        lo_px = price * (1 - Decimal(repr(clu.defer_window_frac)))
        for c in inp.clusters:
            if (c.side == "long_liq" and _fin(c.price, c.notional_usd)
                    and c.notional_usd >= clu.defer_min_notional_usd and lo_px <= c.price < price
                    and (now - utc(c.observed_at)).total_seconds() <= cfg.data.max_cluster_age_s):
                ev.add("BLOCK", "CLUSTER_DEFER", f"{c.notional_usd} USD long-liq cluster at {c.price} "
                       f"({c.source})")
                break

    if high - low < Decimal(repr(cfg.swing.min_range_frac)) * high:
        ev.add("BLOCK", "RANGE_TOO_SMALL", f"swing range {high - low} < {cfg.swing.min_range_frac} x {high}")
        return Decision(intents=tuple(intents), events=ev.items(), next_state=st, diag=diag)

    # 3.6 candidates, leverage, score, choice (and the re-arm guard of 9.11 / 9.14)
    fg_for_lev = fg if fg is not None else ind.fg_proxy
    swing_slice = bars[max(0, len(bars) - n_s):]
    guard = timedelta(hours=cfg.cooldown.rearm_guard_h)
    level_diags: list[LevelDiag] = []
    candidates: list[tuple[Level, float]] = []
    held_by_guard = False
    leverages: dict[str, float] = {}
    for lv in cfg.enabled_levels:
        x = level_price(high, low, lv.ratio)
        dist_d = level_distance(price, x)
        dist = float(dist_d)
        ok = in_window(lv, dist_d)
        lev = entry_leverage(cfg, lv, ind.drawdown, fg_for_lev)
        leverages[lv.name] = lev
        conf = confluence(cfg.selection, clu, x, swing_slice, bars[-1].volume, inp.clusters, now,
                          cfg.data.max_cluster_age_s)
        sc = score(lv, lev, conf, dist, ind.drawdown)
        last_fill = st.level_last_fill_at.get(lv.ratio_key)
        skip = ""
        if not ok:
            skip = "out of window"
        elif lv.name in filled:
            skip = "filled in this ladder"
        elif not sc > cfg.selection.min_score:
            skip = f"score <= {cfg.selection.min_score}"
        elif guard > timedelta(0) and last_fill is not None and now - utc(last_fill) < guard:
            skip = f"re-arm guard: bought {utc(last_fill).isoformat()}"
            held_by_guard = True
        if not skip:
            candidates.append((lv, sc))
        b_lo, b_hi = band(lv, x)
        level_diags.append(LevelDiag(name=lv.name, ratio=lv.ratio, price=x, band_lo=b_lo, band_hi=b_hi,
                                     dist=dist, in_window=ok, leverage=lev, confluence=conf, score=sc,
                                     skip=skip))
    chosen = choose(candidates, cfg.selection.mode)
    diag = attrs.evolve(diag, levels=tuple(level_diags), chosen_level=chosen.name if chosen else None)
    if chosen is None:
        if held_by_guard:
            ev.add("BLOCK", "REARM_GUARD", f"the only qualifying level was bought within "
                   f"{cfg.cooldown.rearm_guard_h} h under an earlier swing key")
        else:
            ev.add("BLOCK", "NO_LEVEL_IN_WINDOW", "no enabled, unfilled level in window with score > "
                   f"{cfg.selection.min_score}")
        return Decision(intents=tuple(intents), events=ev.items(), next_state=st, diag=diag)
    if equity is None or not pos_ok or pos.qty < 0 or not rules_ok:
        return Decision(intents=tuple(intents), events=ev.items(), next_state=st, diag=diag)

    # 3.7 sizing
    lev_k = Decimal(repr(leverages[chosen.name])) if perp else _ONE
    margin: Decimal | None
    if cfg.sizing.mode == "ladder":
        total_mult = sum((lv.size_mult for lv in cfg.enabled_levels), _ZERO)
        margin = equity * cfg.sizing.ladder_budget_frac / total_mult * chosen.size_mult
    else:
        budget = cfg.sizing.legacy_capital_budget
        if budget <= 0:
            budget = st.legacy_budget_base if st.legacy_budget_base is not None else equity
        remaining = budget - st.legacy_margin_deployed
        if remaining < cfg.sizing.legacy_min_remaining:
            ev.add("BLOCK", "BUDGET_EXHAUSTED", f"legacy budget remaining {remaining} < "
                   f"{cfg.sizing.legacy_min_remaining}")
            margin = None
        else:
            margin = min(remaining * cfg.sizing.legacy_slice_frac, cfg.sizing.legacy_max_slice_margin)
    if margin is None:
        return Decision(intents=tuple(intents), events=ev.items(), next_state=st, diag=diag)
    notional_raw = margin * lev_k

    # 3.8 caps
    slip = cfg.sizing.max_slippage_frac
    limit_price = ceil_to_step(price * (1 + slip), rules.tick_size)
    fee = acct.taker_fee_frac if acct.taker_fee_frac is not None else cfg.sizing.taker_fee_frac
    fee = max(fee, _ZERO)
    collateral = equity - qty_now * (price - avg_now)
    floor_px: Decimal | None = None
    liq_cap: Decimal | None = None
    if perp:
        floor_px = p_floor(cfg, price, low) - gap
        liq_cap = liq_qty_cap(price, qty_now, avg_now, collateral, mmf, floor_px)
    caps = caps_for(cfg, price=price, limit_price=limit_price, equity=equity, available=acct.available,
                    qty=qty_now, day_start_equity=st.day_start_equity, day_bought=st.day_bought_notional,
                    imf=imf, fee=fee, liq_cap_qty=liq_cap)
    approved, binding = binding_cap(notional_raw, caps)
    diag = attrs.evolve(diag, entry_leverage=lev_k, margin=margin, notional_raw=notional_raw, caps=tuple(caps),
                        binding_cap=binding, approved_notional=approved, p_floor=floor_px)
    cash_limit = acct.available * (1 - risk.reserve_available_frac)

    qty = floor_to_step(approved / price, rules.step_size) if approved > 0 else _ZERO
    # Guard the last digit: the quotient is rounded to the context precision before flooring.
    while qty > 0 and (qty * price > approved
                       or (not perp and qty * limit_price * (1 + fee) > cash_limit)):
        qty -= rules.step_size
    min_notional = max(cfg.sizing.min_order_notional_usdc, rules.min_notional)
    if qty <= 0 or qty < rules.min_qty or qty * price < min_notional:
        ev.add("BLOCK", "SIZE_BELOW_MIN", f"qty {qty} (notional {qty * price}) below the minimum "
               f"(min_qty {rules.min_qty}, min notional {min_notional}); approved {approved}, "
               f"binding cap {binding or 'none'}")
        return Decision(intents=tuple(intents), events=ev.items(), next_state=st, diag=diag)
    if ev.blocking():
        return Decision(intents=tuple(intents), events=ev.items(), next_state=st, diag=diag)

    # 3.9 intent
    new_qty = qty_now + qty
    new_cost = qty_now * avg_now + qty * price
    projected_liq: Decimal | None = None
    projected_dist: Decimal | None = None
    if perp:
        projected_liq = liq_price(new_qty, new_cost, collateral, mmf)
        projected_dist = (price - projected_liq) / price
    projected = Projection(position_qty=new_qty, avg_entry=new_cost / new_qty,
                           account_leverage=new_qty * price / equity if equity > 0 else _ZERO,
                           liq_price=projected_liq, liq_distance=projected_dist)
    intent_id = intent_id_for(cfg.market.symbol, swing_key, chosen.name)
    chosen_diag = next(d for d in level_diags if d.name == chosen.name)
    intents.append(OrderIntent(
        intent_id=intent_id,
        client_id=client_id_for(intent_id),
        symbol=cfg.market.symbol,
        side="BUY",
        reduce_only=False,
        order_type=cfg.sizing.order_type,
        qty=qty,
        limit_price=limit_price,
        ref_price=price,
        notional=qty * price,
        level=chosen.name,
        swing_key=swing_key,
        entry_leverage=lev_k,
        projected=projected,
        reason=(f"level {chosen.name} dist {chosen_diag.dist:.4f} drawdown {ind.drawdown:.4f} {fg_label} "
                f"{fg:.2f} score {chosen_diag.score:.2f} lev {lev_k:.3f} cap {binding or 'none'}"
                if fg is not None else f"level {chosen.name}"),
    ))
    return Decision(intents=tuple(intents), events=ev.items(), next_state=st, diag=diag)


def _deleverage(cfg: NanpinConfig, st: StrategyState, today: date, price: Decimal, qty: Decimal,
                avg: Decimal, equity: Decimal, mmf: Decimal, gap: Decimal, step: Decimal,
                tick: Decimal) -> OrderIntent | None:
    """The reduce-only SELL of spec 4 / 9.5, or None when no reduction is needed."""
    raw = deleverage_qty(price=price, qty=qty, equity=equity, mmf=mmf,
                         target_frac=cfg.risk.deleverage_target_distance_frac, gap=gap)
    if raw <= 0:
        return None
    q_red = min(ceil_to_step(raw, step), qty)
    rest = qty - q_red
    liq: Decimal | None = None
    dist: Decimal | None = None
    if rest > 0:
        liq = liq_price(rest, rest * avg, equity - rest * (price - avg), mmf)
        dist = (price - liq) / price
    n = st.day_delever_count + 1
    intent_id = delever_intent_id(cfg.market.symbol, today, n)
    return OrderIntent(
        intent_id=intent_id,
        client_id=client_id_for(intent_id),
        symbol=cfg.market.symbol,
        side="SELL",
        reduce_only=True,
        order_type="limit_ioc",
        qty=q_red,
        limit_price=floor_to_step(price * (1 - cfg.sizing.max_slippage_frac), tick),
        ref_price=price,
        notional=q_red * price,
        level="delever",
        swing_key=st.swing_key or "",
        entry_leverage=_ZERO,
        projected=Projection(position_qty=rest, avg_entry=avg if rest > 0 else _ZERO,
                             account_leverage=rest * price / equity if equity > 0 else _ZERO,
                             liq_price=liq, liq_distance=dist),
        reason=f"deleverage to liquidation distance {cfg.risk.deleverage_target_distance_frac}",
    )

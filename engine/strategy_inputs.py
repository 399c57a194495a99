"""Pure adapters between the engine's live records and the nanpin strategy's inputs, state blob and status.

Owns the translation ``MarketView`` + ``AccountSnapshot`` + market filters -> ``engine.nanpin.DecisionInput``,
the JSON-able journal form of ``StrategyState``, and the ``StrategyStatus`` a decision publishes. No I/O and
no clock reads: the decision time is passed in as wall-clock milliseconds.

Invariants:

* **Never invent a price** (nanpin spec 3.2, 9.13 a). The reference price is copied from a fresh record only:
  spot takes the mid of the best bid and ask from the book summary while the book is fresh, else the view's
  ``mid`` quote; perp takes the ``mark`` quote. A :class:`~engine.market.prices.Stale` status, a book that is
  not fresh or a missing record gives ``price=None``, so ``decide`` blocks with ``PRICE_STALE``. Each price is
  stamped with its own observation time (view time minus its age), so staleness is judged by ``decide``.
* **Never invent equity.** Spot equity is quote (available + locked) + ``qty x price`` (spec 9.13 d) and
  needs a price; without one (or for perp before the exchange reports ``netEquity``) the equity is NaN, which
  ``decide`` reports as ``ACCOUNT_INVALID`` and leaves out of its bookkeeping.
* **Bars are closed daily bars as the exchange gave them.** Candles whose end is after ``now`` are left out;
  misaligned candles are passed through unchanged so that ``decide`` reports ``BARS_INVALID`` rather than the
  adapter repairing them silently.
* **The state blob round-trips exactly:** ``state_from_blob(state_to_blob(s)) == s`` (Decimals as strings,
  datetimes and dates as ISO text, frozensets as sorted lists); a malformed blob raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.backpack.responses import MarketFilters
from engine.events import AccountSnapshot, LevelBand, StrategyStatus
from engine.market.candles import Candle
from engine.market.clusters import Cluster
from engine.market.prices import Price
from engine.market.view import MarketState, MarketView
from engine.nanpin import (
    Account,
    Bar,
    Decision,
    DecisionInput,
    LiqCluster,
    MarketRules,
    NanpinConfig,
    Position,
    PriceObs,
    StrategyState,
)
from engine.nanpin.backtest import history_window

__all__ = [
    "CLUSTER_SOURCE",
    "DAY_MS",
    "STATE_SCHEMA",
    "account_inputs",
    "bars_from_candles",
    "clusters_from_view",
    "decision_input",
    "market_rules",
    "ms_to_datetime",
    "reference_price",
    "state_from_blob",
    "state_to_blob",
    "strategy_status",
]

DAY_MS = 86_400_000
#: Version of the blob layout written by :func:`state_to_blob`.
STATE_SCHEMA = 1
#: ``LiqCluster.source`` of clusters built from the exchange's own liquidation stream.
CLUSTER_SOURCE = "backpack-liquidations"

_ZERO = Decimal(0)
_NAN = Decimal("NaN")


def ms_to_datetime(ms: int) -> datetime:
    """Timezone-aware UTC datetime of wall-clock milliseconds."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


# --------------------------------------------------------------------------------------------------------
# Market data


def bars_from_candles(candles: Sequence[Candle], now_ms: int, *, limit: int | None = None) -> tuple[Bar, ...]:
    """Closed daily candles (oldest first) as nanpin Bars; candles not closed at ``now_ms`` are left out.

    ``limit`` keeps only the newest bars (the strategy never looks further back than its history window).
    """
    bars = tuple(
        Bar(start=ms_to_datetime(c.start_ms), open=c.open, high=c.high, low=c.low, close=c.close,
            volume=c.volume)
        for c in candles
        if c.end_ms <= now_ms
    )
    if limit is not None and len(bars) > limit:
        bars = bars[len(bars) - limit:]
    return bars


def _obs(value: Decimal, age_s: float, as_of_ms: int) -> PriceObs:
    return PriceObs(value=value, ts=ms_to_datetime(as_of_ms - round(age_s * 1000)))


def reference_price(state: MarketState, view_as_of_ms: int, *, perp: bool) -> PriceObs | None:
    """The strategy's price (spec 9.13 a): perp mark, spot book mid; None when no fresh record exists."""
    if perp:
        mark = state.mark
        return _obs(mark.value, mark.age_s, view_as_of_ms) if isinstance(mark, Price) else None
    book = state.book
    if book is not None and book.fresh and book.best_bid > 0 and book.best_ask >= book.best_bid:
        return _obs((book.best_bid + book.best_ask) / 2, book.age_s, view_as_of_ms)
    mid = state.mid
    return _obs(mid.value, mid.age_s, view_as_of_ms) if isinstance(mid, Price) else None


def clusters_from_view(state: MarketState, cfg: NanpinConfig) -> tuple[LiqCluster, ...]:
    """Liquidation clusters as nanpin inputs, one per side with notional; empty when clusters are disabled."""
    if not cfg.clusters.enabled:
        return ()
    out: list[LiqCluster] = []
    for cluster in state.clusters:
        out.extend(_cluster_sides(cluster))
    return tuple(out)


def _cluster_sides(cluster: Cluster) -> list[LiqCluster]:
    seen = ms_to_datetime(cluster.last_ms)
    sides = (("long_liq", cluster.longs_liquidated), ("short_liq", cluster.shorts_liquidated))
    return [LiqCluster(price=cluster.mid, notional_usd=notional, side=side, observed_at=seen,
                       source=CLUSTER_SOURCE)
            for side, notional in sides if notional > 0]


def market_rules(filters: MarketFilters) -> MarketRules:
    """Exchange filters as strategy rules; Backpack has no minimum notional, so it is 0."""
    return MarketRules(step_size=filters.step_size, tick_size=filters.tick_size,
                       min_qty=filters.min_quantity if filters.min_quantity is not None else filters.step_size,
                       min_notional=_ZERO)


# --------------------------------------------------------------------------------------------------------
# Account


def account_inputs(snapshot: AccountSnapshot, price: PriceObs | None, *, perp: bool) -> tuple[Account, Position]:
    """Account and position of a snapshot (spot: spec 9.13 b-d; perp: the exchange's figures).

    Equity that cannot be known without inventing a number is NaN (see the module docstring).
    """
    position = Position(qty=snapshot.position_qty, avg_entry=snapshot.avg_entry,
                        est_liq_price=snapshot.est_liq_price, mmf=snapshot.mmf)
    if perp:
        equity = snapshot.equity if snapshot.equity is not None else _NAN
        return Account(equity=equity, available=snapshot.quote_available, imf=snapshot.imf), position
    quote = snapshot.quote_available + snapshot.quote_locked
    if snapshot.position_qty == 0:
        equity = quote
    elif price is not None:
        equity = quote + snapshot.position_qty * price.value
    else:
        equity = _NAN
    return Account(equity=equity, available=snapshot.quote_available, imf=snapshot.imf), position


def decision_input(cfg: NanpinConfig, view: MarketView, snapshot: AccountSnapshot, rules: MarketRules, *,
                   now_ms: int, view_age_s: float | None = None) -> DecisionInput:
    """Everything one decision sees, built from the latest view and account snapshot.

    A view without the configured market gives no bars and no price, so ``decide`` blocks on them.
    ``view_age_s`` is how long ago (host seconds) the view was published; when given, the price observation
    is dated ``now_ms`` minus its real age. ``now_ms`` is exchange time, which runs ahead of the host clock
    when the simulator replays fast, so dating it from ``view.as_of_ms`` would age the price by the replay
    speed (at 2000x a 10 ms old view would look 20 s old and block every entry as PRICE_STALE).
    """
    perp = cfg.is_perp
    try:
        state: MarketState | None = view.market(cfg.market.symbol)
    except KeyError:
        state = None
    if state is None:
        bars: tuple[Bar, ...] = ()
        price = None
        clusters: tuple[LiqCluster, ...] = ()
    else:
        bars = bars_from_candles(state.closed_candles("1d"), now_ms, limit=history_window(cfg))
        anchor_ms = view.as_of_ms if view_age_s is None else now_ms - round(max(0.0, view_age_s) * 1000)
        price = reference_price(state, anchor_ms, perp=perp)
        clusters = clusters_from_view(state, cfg)
    account, position = account_inputs(snapshot, price, perp=perp)
    return DecisionInput(now=ms_to_datetime(now_ms), bars=bars, price=price, account=account,
                         position=position, rules=rules, clusters=clusters)


# --------------------------------------------------------------------------------------------------------
# Status


def strategy_status(decision: Decision, state: StrategyState, symbol: str, now_ms: int) -> StrategyStatus:
    """The status record of one decision; ``state`` is the state after it (and after any fills)."""
    price = decision.diag.price
    levels = tuple(
        LevelBand(name=lv.name, price=lv.price, band_lo=lv.band_lo, band_hi=lv.band_hi,
                  filled=lv.name in state.filled_levels)
        for lv in decision.diag.levels
    )
    next_level: LevelBand | None = None
    if price is not None:
        # The nearest unfilled level whose band lies at or below the price: where the next buy would be.
        below = [lb for lb in levels if not lb.filled and lb.band_lo <= price]
        next_level = max(below, key=lambda lb: lb.price) if below else None
    blocks = tuple(sorted(decision.codes("BLOCK") | decision.codes("HALT")))
    return StrategyStatus(symbol=symbol, decided_at_ms=now_ms, price=price, swing_key=state.swing_key,
                          levels=levels, next_level=next_level, blocks=blocks,
                          entries_total=state.entries_total, halted=state.halted)


# --------------------------------------------------------------------------------------------------------
# Persisted state


def _dec_text(value: Decimal) -> str:
    return str(value)


def _dt_text(value: datetime) -> str:
    return value.isoformat()


def state_to_blob(state: StrategyState) -> dict[str, Any]:
    """The JSON-able form of a StrategyState (see :func:`state_from_blob` for the inverse)."""
    return {
        "schema": STATE_SCHEMA,
        "swing_key": state.swing_key,
        "filled_levels": sorted(state.filled_levels),
        "last_entry_at": None if state.last_entry_at is None else _dt_text(state.last_entry_at),
        "level_last_fill_at": {k: _dt_text(v) for k, v in sorted(state.level_last_fill_at.items())},
        "entries_total": state.entries_total,
        "legacy_margin_deployed": _dec_text(state.legacy_margin_deployed),
        "legacy_budget_base": None if state.legacy_budget_base is None else _dec_text(state.legacy_budget_base),
        "day": None if state.day is None else state.day.isoformat(),
        "day_start_equity": _dec_text(state.day_start_equity),
        "day_bought_notional": _dec_text(state.day_bought_notional),
        "peak_equity": _dec_text(state.peak_equity),
        "halted": state.halted,
        "halt_reason": state.halt_reason,
        "day_delever_count": state.day_delever_count,
        "recent_fill_intents": list(state.recent_fill_intents),
    }


def _get(blob: Mapping[str, Any], key: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    if key not in blob:
        raise ValueError(f"strategy state: missing key {key!r}")
    value = blob[key]
    if value is None and optional:
        return None
    # bool is an int subclass: an int field must not accept true/false.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"strategy state: {key} must be {getattr(kind, '__name__', kind)}; got {value!r}")
    return value


def _parse_dec(text: str, key: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"strategy state: {key} is not a decimal; got {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"strategy state: {key} must be finite; got {text!r}")
    return value


def _dec(blob: Mapping[str, Any], key: str) -> Decimal:
    return _parse_dec(_get(blob, key, str), key)


def _opt_dec(blob: Mapping[str, Any], key: str) -> Decimal | None:
    text = _get(blob, key, str, optional=True)
    return None if text is None else _parse_dec(text, key)


def _dt(text: str, key: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"strategy state: {key} is not an ISO datetime; got {text!r}") from None


def _str_list(blob: Mapping[str, Any], key: str) -> list[str]:
    items = _get(blob, key, list)
    if not all(isinstance(x, str) for x in items):
        raise ValueError(f"strategy state: {key} must be a list of strings; got {items!r}")
    return list(items)


def state_from_blob(blob: Mapping[str, Any]) -> StrategyState:
    """Rebuild a StrategyState from :func:`state_to_blob`'s output; ValueError names the first bad key."""
    schema = _get(blob, "schema", int)
    if schema != STATE_SCHEMA:
        raise ValueError(f"strategy state: schema must be {STATE_SCHEMA}; got {schema}")
    last_entry = _get(blob, "last_entry_at", str, optional=True)
    stamps = _get(blob, "level_last_fill_at", dict)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in stamps.items()):
        raise ValueError(f"strategy state: level_last_fill_at must map strings to strings; got {stamps!r}")
    day = _get(blob, "day", str, optional=True)
    try:
        day_value = None if day is None else date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"strategy state: day is not an ISO date; got {day!r}") from None
    return StrategyState(
        swing_key=_get(blob, "swing_key", str, optional=True),
        filled_levels=frozenset(_str_list(blob, "filled_levels")),
        last_entry_at=None if last_entry is None else _dt(last_entry, "last_entry_at"),
        level_last_fill_at={k: _dt(v, f"level_last_fill_at[{k}]") for k, v in stamps.items()},
        entries_total=_get(blob, "entries_total", int),
        legacy_margin_deployed=_dec(blob, "legacy_margin_deployed"),
        legacy_budget_base=_opt_dec(blob, "legacy_budget_base"),
        day=day_value,
        day_start_equity=_dec(blob, "day_start_equity"),
        day_bought_notional=_dec(blob, "day_bought_notional"),
        peak_equity=_dec(blob, "peak_equity"),
        halted=_get(blob, "halted", bool),
        halt_reason=_get(blob, "halt_reason", str, optional=True),
        day_delever_count=_get(blob, "day_delever_count", int),
        recent_fill_intents=tuple(_str_list(blob, "recent_fill_intents")),
    )

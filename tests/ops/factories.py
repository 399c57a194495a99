"""Builders of the engine's published records (market view, account, risk, strategy) for the ops tests."""

from __future__ import annotations

from decimal import Decimal

from engine.events import AccountSnapshot, LevelBand, RiskState, StrategyStatus
from engine.market.prices import Price, Quote, Source, Stale
from engine.market.quality import QualityStats, StreamStats
from engine.market.view import MarketState, MarketView

SYMBOL = "BTC_USDC_PERP"


def price(value: str, *, source: Source = "ws", age_s: float = 0.4, cached: bool = False) -> Price:
    return Price(value=Decimal(value), source=source, age_s=age_s, cached=cached,
                 exchange_ms=1_700_000_000_000)


def stale(reason: str = "no ws data for 12.0s", age_s: float | None = 12.0) -> Stale:
    return Stale(reason=reason, age_s=age_s)


def stream(name: str, *, messages: int = 10, errors: tuple[tuple[str, int], ...] = (), gaps: int = 0,
           resyncs: int = 0, is_stale: bool = False) -> StreamStats:
    return StreamStats(stream=name, messages=messages, decode_errors=errors, gaps=gaps, resyncs=resyncs,
                       out_of_order=0, latency_ms_p50=None, latency_ms_p99=None, latency_ms_max=None,
                       stale=is_stale, stale_time_s=0.0, last_message_age_s=0.1)


def view(last: Quote, *, mid: Quote | None = None, mark: Quote | None = None, as_of_s: float = 0.0,
         symbol: str = SYMBOL, streams: tuple[StreamStats, ...] = (), reconnects: int = 0) -> MarketView:
    state = MarketState(symbol=symbol, last=last, mid=mid if mid is not None else last,
                        mark=mark if mark is not None else stale("no mark price yet", None), book=None,
                        funding=None, candles=(), clusters=(), burst=None)
    quality = QualityStats(as_of_s=as_of_s, uptime_s=as_of_s, connected=True, reconnects=reconnects,
                           streams=streams)
    return MarketView(version=1, as_of_ms=1_700_000_000_000, as_of_s=as_of_s, markets=(state,),
                      quality=quality)


def account(*, qty: str = "0.010", avg: str = "96000.5", equity: str | None = "10012.3",
            open_orders: int = 1) -> AccountSnapshot:
    return AccountSnapshot(symbol=SYMBOL, quote_available=Decimal("9000"), quote_locked=Decimal("100"),
                           position_qty=Decimal(qty), avg_entry=Decimal(avg), est_liq_price=None, mmf=None,
                           imf=None, equity=None if equity is None else Decimal(equity),
                           open_orders=open_orders, reconciled=True, as_of_ms=1_700_000_000_000)


def risk(*, halted: bool = False, kill: bool = False, reason: str | None = None,
         blocks: tuple[tuple[str, int], ...] = (), as_of_ms: int = 1_700_000_000_000) -> RiskState:
    return RiskState(halted=halted, halt_reason=reason, kill_switch=kill, peak_equity=Decimal("10100"),
                     equity=Decimal("10012.3"), drawdown_frac=Decimal("0.0086"), blocks=blocks, approvals=3,
                     as_of_ms=as_of_ms)


LEVEL = LevelBand(name="L2", price=Decimal("95000"), band_lo=Decimal("94500"), band_hi=Decimal("95500"),
                  filled=False)


def strategy(*, next_level: LevelBand | None = LEVEL) -> StrategyStatus:
    return StrategyStatus(symbol=SYMBOL, decided_at_ms=1_700_000_000_000, price=Decimal("97123.5"),
                          swing_key="s1", levels=(LEVEL,), next_level=next_level, blocks=(), entries_total=2,
                          halted=False)

"""Builders of market views and account snapshots for the strategy tests (real records, no fakes)."""

from __future__ import annotations

from decimal import Decimal

from engine.events import AccountSnapshot
from engine.market.candles import Candle
from engine.market.prices import Price, Quote, Stale
from engine.market.quality import QualityStats
from engine.market.view import BookSummary, MarketState, MarketView
from engine.nanpin import Bar
from engine.strategy_inputs import DAY_MS

__all__ = ["book", "candles_of", "snapshot", "state_of", "view_of"]


def candles_of(bars: tuple[Bar, ...]) -> tuple[Candle, ...]:
    """Daily candles carrying exactly the given bars."""
    out = []
    for bar in bars:
        start = int(bar.start.timestamp() * 1000)
        out.append(Candle(interval="1d", start_ms=start, end_ms=start + DAY_MS, open=bar.open, high=bar.high,
                          low=bar.low, close=bar.close, volume=bar.volume, trades=1, final=True, event_ms=0))
    return tuple(out)


def book(mid: Decimal, *, fresh: bool = True, age_s: float = 0.5, half_spread: Decimal = Decimal("0.5")) -> BookSummary:
    return BookSummary(best_bid=mid - half_spread, best_ask=mid + half_spread, bid_size=Decimal(1),
                       ask_size=Decimal(1), spread_bps=Decimal(1), imbalance=Decimal(0), bid_depth=Decimal(1),
                       ask_depth=Decimal(1), depth_bps=Decimal(10), update_id=1, source="ws", age_s=age_s,
                       fresh=fresh)


def state_of(symbol: str, *, candles: tuple[Candle, ...] = (), mid: Quote | None = None,
             mark: Quote | None = None, book_summary: BookSummary | None = None) -> MarketState:
    stale = Stale(reason="never seen", age_s=None)
    return MarketState(symbol=symbol, last=stale, mid=mid if mid is not None else stale,
                       mark=mark if mark is not None else stale, book=book_summary, funding=None,
                       candles=(("1d", candles),), clusters=(), burst=None)


def view_of(*states: MarketState, version: int = 1, as_of_ms: int = 0, as_of_s: float = 0.0) -> MarketView:
    return MarketView(version=version, as_of_ms=as_of_ms, as_of_s=as_of_s, markets=states,
                      quality=QualityStats(as_of_s=0.0, uptime_s=0.0, connected=True, reconnects=0, streams=()))


def price(value: Decimal | str, age_s: float = 0.2) -> Price:
    return Price(value=Decimal(value), source="ws", age_s=age_s, cached=False, exchange_ms=None)


def snapshot(symbol: str = "BTC_USDC", *, quote: Decimal | int = 10000, qty: Decimal | str = "0",
             avg: Decimal | int = 0, reconciled: bool = True, as_of_ms: int = 0,
             equity: Decimal | None = None) -> AccountSnapshot:
    return AccountSnapshot(symbol=symbol, quote_available=Decimal(quote), quote_locked=Decimal(0),
                           position_qty=Decimal(qty), avg_entry=Decimal(avg), est_liq_price=None, mmf=None,
                           imf=None, equity=equity, open_orders=0, reconciled=reconciled, as_of_ms=as_of_ms)

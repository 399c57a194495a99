"""The MarketView the cache publishes to the strategy: a frozen, self-contained picture of the market.

Pure records only. Invariants: every price in a view is either a :class:`~engine.market.prices.Price` (with
its source and age) or a :class:`~engine.market.prices.Stale` status; candles are closed bars only, oldest
first, as tuples; nothing in a view is mutable, so a strategy may keep one as long as it likes.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from engine.market.candles import Candle
from engine.market.clusters import Burst, Cluster
from engine.market.prices import Price, Quote, Stale
from engine.market.quality import QualityStats

__all__ = ["BookSummary", "Funding", "MarketState", "MarketView"]


@attrs.frozen(kw_only=True)
class BookSummary:
    """Top of the local order book and the analysis the strategy and risk use."""

    best_bid: Decimal
    best_ask: Decimal
    bid_size: Decimal
    ask_size: Decimal
    spread_bps: Decimal
    imbalance: Decimal | None  # (bid - ask) / (bid + ask) of the size within depth_bps; None when both are 0
    bid_depth: Decimal  # base quantity within depth_bps of the mid
    ask_depth: Decimal
    depth_bps: Decimal
    update_id: int
    source: str  # "ws" (local book from snapshot + deltas), "bookTicker" or "rest" (snapshot poll)
    age_s: float
    fresh: bool


@attrs.frozen(kw_only=True)
class Funding:
    mark_price: Decimal
    index_price: Decimal | None
    funding_rate: Decimal | None  # fraction per interval
    next_funding_ms: int | None
    source: str
    age_s: float


@attrs.frozen(kw_only=True)
class MarketState:
    symbol: str
    last: Quote  # last trade price
    mid: Quote  # book mid
    mark: Quote  # mark price
    book: BookSummary | None
    funding: Funding | None
    candles: tuple[tuple[str, tuple[Candle, ...]], ...]  # (interval, closed candles oldest first)
    clusters: tuple[Cluster, ...]  # heaviest first
    burst: Burst | None

    @property
    def price(self) -> Quote:
        """The price to act on: last trade price, else book mid (both obey the freshness rule)."""
        if isinstance(self.last, Price):
            return self.last
        if isinstance(self.mid, Price):
            return self.mid
        return self.last

    def closed_candles(self, interval: str) -> tuple[Candle, ...]:
        for name, bars in self.candles:
            if name == interval:
                return bars
        return ()


@attrs.frozen(kw_only=True)
class MarketView:
    version: int  # increases with every published view
    as_of_ms: int  # wall clock at publication
    as_of_s: float  # monotonic clock at publication (ages are relative to it)
    markets: tuple[MarketState, ...]
    quality: QualityStats

    def market(self, symbol: str) -> MarketState:
        for state in self.markets:
            if state.symbol == symbol:
                return state
        raise KeyError(symbol)

    @property
    def stale(self) -> bool:
        """True when any market has no usable price."""
        return any(isinstance(m.price, Stale) for m in self.markets)

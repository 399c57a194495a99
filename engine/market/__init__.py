"""The real-time data layer's pure core: config sections, price priority, candles, liquidation clusters,
data-quality statistics and the MarketView record. No trio, no httpx, no clock reads."""

from engine.market.config import CacheConfig as CacheConfig
from engine.market.config import FeedConfig as FeedConfig
from engine.market.prices import Price as Price
from engine.market.prices import PriceBoard as PriceBoard
from engine.market.prices import Stale as Stale
from engine.market.view import MarketState as MarketState
from engine.market.view import MarketView as MarketView

__all__ = ["CacheConfig", "FeedConfig", "MarketState", "MarketView", "Price", "PriceBoard", "Stale"]

"""Market specifications of the simulated exchange and the decimal text rules of the wire.

Owns: the two simulated markets (``BTC_USDC`` spot, ``BTC_USDC_PERP`` perpetual) with the filters of
``backpack-protocol.md`` section 3.2, their ``/api/v1/markets`` rows, the assets list, and the helpers that
render decimals as the wire does (REST unpadded, WebSocket padded to tick/step).

Invariants: every price the simulator quotes is an integer number of ticks; every quantity an integer number
of steps. Prices travel inside the core as ``int`` tick counts and quantities as ``int`` step counts where speed
matters; money (balances, fees, PnL) is ``Decimal``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

__all__ = [
    "BTC_USDC",
    "BTC_USDC_PERP",
    "DEFAULT_MARKETS",
    "MarketSpec",
    "assets_rows",
    "fixed",
    "plain",
    "padded",
]


def plain(value: Decimal) -> str:
    """REST rendering: no exponent, no trailing zeros (``"86700"``, ``"0.0015"``)."""
    if not value:
        return "0"
    text = format(value.normalize(), "f")
    return text


def padded(value: Decimal, places: int) -> str:
    """WebSocket rendering: exactly ``places`` decimals (``"86700.0"``, ``"0.00000"``)."""
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def fixed(units: int, places: int) -> str:
    """Text of ``units * 10**-places`` with exactly ``places`` decimals (fast path for tick/step counts)."""
    if places == 0:
        return str(units)
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def _places(unit: Decimal) -> int:
    return max(0, -int(unit.as_tuple().exponent))


@attrs.frozen(kw_only=True)
class MarketSpec:
    """Static description of one market; ``row()`` is its ``/api/v1/market`` JSON."""

    symbol: str
    base: str
    quote: str
    kind: str  # "SPOT" | "PERP"
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    min_price: Decimal
    max_price: Decimal | None
    max_multiplier: Decimal
    min_multiplier: Decimal
    max_impact_multiplier: Decimal
    min_impact_multiplier: Decimal
    imf_base: Decimal = Decimal(0)
    imf_factor: Decimal = Decimal(0)
    mmf_base: Decimal = Decimal(0)
    mmf_factor: Decimal = Decimal(0)
    open_interest_limit: Decimal = Decimal(0)
    created_at: str = "2025-01-21T06:34:54.691858"
    price_places: int = attrs.field(init=False, default=attrs.Factory(lambda s: _places(s.tick), takes_self=True))
    qty_places: int = attrs.field(init=False, default=attrs.Factory(lambda s: _places(s.step), takes_self=True))
    # wire text of n ticks is n scaled by 10**-price_places times this integer factor
    _tick_units: int = attrs.field(init=False, default=attrs.Factory(
        lambda s: int(s.tick.scaleb(_places(s.tick))), takes_self=True))
    _step_units: int = attrs.field(init=False, default=attrs.Factory(
        lambda s: int(s.step.scaleb(_places(s.step))), takes_self=True))

    @property
    def is_perp(self) -> bool:
        return self.kind == "PERP"

    def price_of(self, ticks: int) -> Decimal:
        """Decimal price of an integer tick count."""
        return self.tick * ticks

    def qty_of(self, steps: int) -> Decimal:
        return self.step * steps

    def wire_price(self, ticks: int) -> str:
        """Padded WebSocket text of a tick count."""
        return fixed(ticks * self._tick_units, self.price_places)

    def rest_price(self, ticks: int) -> str:
        """Unpadded REST text of a tick count (``"86700"``, ``"86700.5"``)."""
        text = fixed(ticks * self._tick_units, self.price_places)
        return text.rstrip("0").rstrip(".") if "." in text else text

    def wire_qty(self, steps: int) -> str:
        return fixed(steps * self._step_units, self.qty_places)

    def imf(self, notional: Decimal) -> Decimal:
        """Initial margin fraction for a position of this notional: ``max(base, factor * sqrt(notional))``."""
        return max(self.imf_base, self.imf_factor * abs(notional).sqrt())

    def mmf(self, notional: Decimal) -> Decimal:
        return max(self.mmf_base, self.mmf_factor * abs(notional).sqrt())

    def row(self) -> dict[str, Any]:
        price: dict[str, Any] = {
            "minPrice": plain(self.min_price),
            "maxPrice": None if self.max_price is None else plain(self.max_price),
            "tickSize": plain(self.tick),
            "maxMultiplier": plain(self.max_multiplier),
            "minMultiplier": plain(self.min_multiplier),
            "maxImpactMultiplier": plain(self.max_impact_multiplier),
            "minImpactMultiplier": plain(self.min_impact_multiplier),
        }
        if self.is_perp:
            price |= {
                "meanMarkPriceBand": {"maxMultiplier": "1.1", "minMultiplier": "0.9"},
                "meanPremiumBand": {"tolerancePct": "0.05"},
                "borrowEntryFeeMaxMultiplier": None,
                "borrowEntryFeeMinMultiplier": None,
            }
        else:
            price |= {
                "borrowEntryFeeMaxMultiplier": "1.01",
                "borrowEntryFeeMinMultiplier": "0.99",
                "discoveryBoundBand": None,
                "maxPriceUpdateMultiplier": "1.0025",
                "minPriceUpdateMultiplier": "0.9975",
                "meanMarkPriceBand": {"maxMultiplier": "1.03", "minMultiplier": "0.97"},
                "meanPremiumBand": None,
            }
        row: dict[str, Any] = {
            "symbol": self.symbol,
            "baseSymbol": self.base,
            "quoteSymbol": self.quote,
            "marketType": self.kind,
            "rwaMarketType": None,
            "orderBookState": "Open",
            "visible": True,
            "createdAt": self.created_at,
            "positionLimitWeight": None,
            "filters": {
                "price": price,
                "quantity": {"minQuantity": plain(self.min_qty), "maxQuantity": None, "stepSize": plain(self.step)},
            },
        }
        if self.is_perp:
            row |= {
                "imfFunction": {"type": "sqrt", "base": plain(self.imf_base), "factor": plain(self.imf_factor)},
                "mmfFunction": {"type": "sqrt", "base": plain(self.mmf_base), "factor": plain(self.mmf_factor)},
                "fundingInterval": 3600000,
                "fundingRateUpperBound": "100",
                "fundingRateLowerBound": "-100",
                "openInterestLimit": plain(self.open_interest_limit),
            }
        else:
            row |= {
                "imfFunction": None,
                "mmfFunction": None,
                "fundingInterval": 28800000,
                "fundingRateUpperBound": None,
                "fundingRateLowerBound": None,
                "openInterestLimit": "0",
            }
        return row


BTC_USDC = MarketSpec(
    symbol="BTC_USDC",
    base="BTC",
    quote="USDC",
    kind="SPOT",
    tick=Decimal("0.1"),
    step=Decimal("0.00001"),
    min_qty=Decimal("0.00001"),
    min_price=Decimal("0.1"),
    max_price=None,
    max_multiplier=Decimal("2"),
    min_multiplier=Decimal("0.25"),
    max_impact_multiplier=Decimal("1.01"),
    min_impact_multiplier=Decimal("0.99"),
)

BTC_USDC_PERP = MarketSpec(
    symbol="BTC_USDC_PERP",
    base="BTC",
    quote="USDC",
    kind="PERP",
    tick=Decimal("0.1"),
    step=Decimal("0.00001"),
    min_qty=Decimal("0.00001"),
    min_price=Decimal("0.1"),
    max_price=Decimal("1000000"),
    max_multiplier=Decimal("1.25"),
    min_multiplier=Decimal("0.75"),
    max_impact_multiplier=Decimal("1.03"),
    min_impact_multiplier=Decimal("0.97"),
    imf_base=Decimal("0.01333333"),
    imf_factor=Decimal("0.00002494"),
    mmf_base=Decimal("0.00666667"),
    mmf_factor=Decimal("0.00001496"),
    open_interest_limit=Decimal("4000"),
)

DEFAULT_MARKETS: tuple[MarketSpec, ...] = (BTC_USDC, BTC_USDC_PERP)


def assets_rows(symbols: list[str]) -> list[dict[str, Any]]:
    """``/api/v1/assets`` rows (one Solana/Bitcoin token each, so ccxt sees active currencies)."""
    names = {"BTC": ("Bitcoin", "bitcoin", "Bitcoin"), "USDC": ("USD Coin", "usd-coin", "Solana")}
    rows: list[dict[str, Any]] = []
    for sym in symbols:
        display, gecko, chain = names.get(sym, (sym, None, "Solana"))
        rows.append({
            "symbol": sym,
            "displayName": display,
            "coingeckoId": gecko,
            "tokens": [{
                "blockchain": chain,
                "contractAddress": None,
                "depositEnabled": True,
                "displayName": display,
                "maximumWithdrawal": None,
                "minimumDeposit": "0",
                "minimumWithdrawal": "0",
                "withdrawEnabled": True,
                "withdrawalFee": "0",
            }],
        })
    return rows

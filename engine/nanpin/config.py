"""Configuration of the nanpin strategy (``[strategy]`` in the engine's TOML; pure, no I/O).

Owns every key of ``nanpin-strategy.md`` section 2 with its default, help text, unit and validator, plus the
cross-field checks. The engine's loader builds :class:`NanpinConfig` from ``[strategy]``,
``[strategy.signal]``, ``[[strategy.levels]]`` and so on; this module only declares the classes.

Number types (one rule, applied everywhere):

* ``Decimal`` for everything that sizes or prices an order: USD amounts (``*_usdc``, ``*_usd``, the legacy
  budget keys, the round-number tolerances), the sizing and risk fractions and multipliers, and
  ``size_mult``. These meet prices and equity directly, so they must not carry binary float error.
* ``float`` for indicator parameters and thresholds (drawdown, fear proxy, volatility, windows, Fibonacci
  ratios, leverage coefficients, score, cooldown factors). Indicator arithmetic is float; whatever of it
  reaches sizing is converted with ``Decimal(repr(x))`` (spec 9.4).
* ``int`` for counts of bars, returns, days and entries.

Invariants enforced at construction (``ValueError`` with a message that reads well after ``<toml path>: ``):
every ``*_frac`` key is in [0, 1]; ``default_mmf`` in [0, 1); ``default_imf`` in (0, 1]; level windows lie
inside (-1, 0) with lo < hi; ``size_mult > 0``; level ratios strictly increase inside (0, 1); level names are
unique and at least one level is enabled; ``liq_critical_distance_frac < liq_warn_distance_frac``;
``vol_low_pct <= vol_high_pct``. These reject the original bot's percent numbers (``-18``, ``-3.0``) where
fractions are expected (spec section 7, item 8).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from engine.confspec import at_least, greater_than, in_range, non_empty, one_of, setting

__all__ = [
    "ClustersConfig",
    "CooldownConfig",
    "DataConfig",
    "LeverageConfig",
    "Level",
    "MarketConfig",
    "NanpinConfig",
    "RiskConfig",
    "SelectionConfig",
    "SignalConfig",
    "SizingConfig",
    "SwingConfig",
    "default_levels",
]

_FRAC = in_range(0, 1)
_NONNEG = at_least(0)
_POS = greater_than(0)


def _window_check(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
    """A level window is a (lo, hi) pair of fractions strictly inside (-1, 0) with lo < hi."""
    if not isinstance(value, tuple) or len(value) != 2:
        raise ValueError(f"must be a pair [lo, hi]; got {value!r}")
    lo, hi = value
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, int | float) or not -1 < v < 0:
            raise ValueError(f"must lie inside (-1, 0) as fractions (e.g. -0.03, not -3.0); got {list(value)}")
    if not lo < hi:
        raise ValueError(f"must have lo < hi; got {list(value)}")


@attrs.frozen(kw_only=True)
class MarketConfig:
    """The one market used for candles, price, position and orders."""

    symbol: str = setting("BTC_USDC", "market for candles, price, position and orders", check=non_empty)
    market_type: str = setting(
        "spot", "spot (default, no leverage) or perp (opt-in leverage; see the backtest report)",
        check=one_of(("spot", "perp")),
    )


@attrs.frozen(kw_only=True)
class DataConfig:
    """Input freshness and history requirements (spec 3.2)."""

    min_history_bars: int = setting(80, "closed daily bars required before any entry", unit="bars", check=at_least(1))
    max_price_age_s: float = setting(15.0, "price older than this blocks entries", unit="s", check=_POS)
    max_bar_lag_h: float = setting(36.0, "last closed bar must end within this", unit="h", check=_POS)
    max_fear_greed_age_h: float = setting(36.0, "external fear index older than this is ignored", unit="h",
                                          check=_POS)
    max_cluster_age_s: float = setting(900.0, "liquidation clusters older than this are ignored", unit="s",
                                       check=_POS)


@attrs.frozen(kw_only=True)
class SignalConfig:
    """Drawdown gate, fear proxy and volatility regime (spec 3.3, 3.5)."""

    ath_lookback_bars: int = setting(60, "bars in the drawdown reference high", unit="bars", check=at_least(1))
    min_drawdown_frac: float = setting(0.18, "entries need drawdown <= -this (0.18 = 18 %)", unit="fraction",
                                       check=_FRAC)
    min_days_since_ath: int = setting(7, "entries need the high at least this many bars ago", unit="bars",
                                      check=_NONNEG)
    fear_greed_source: str = setting("proxy", "proxy | external | external_else_proxy",
                                     check=one_of(("proxy", "external", "external_else_proxy")))
    max_fear_greed: float = setting(35.0, "entries need fear index <= this", unit="0-100",
                                    check=in_range(0, 100))
    fg_proxy_center: float = setting(50.0, "fear proxy value at zero drawdown, momentum and vol excess",
                                     unit="0-100", check=in_range(0, 100))
    fg_proxy_w_drawdown: float = setting(0.7, "fear proxy weight per drawdown percent point", check=_NONNEG)
    fg_proxy_w_momentum: float = setting(0.4, "fear proxy weight per momentum percent point", check=_NONNEG)
    fg_proxy_w_vol: float = setting(0.3, "fear proxy weight per annualised vol percent point above center",
                                    check=_NONNEG)
    fg_proxy_vol_center_pct: float = setting(40.0, "annualised vol the fear proxy treats as neutral",
                                             unit="percent", check=_NONNEG)
    vol_lookback_returns: int = setting(10, "daily returns in the volatility estimate", unit="returns",
                                        check=at_least(2))
    vol_annualization_days: int = setting(365, "days per year for annualising volatility", unit="days",
                                          check=at_least(1))
    momentum_lookback_bars: int = setting(3, "momentum compares P with the close this many bars back",
                                          unit="bars", check=at_least(1))
    vol_high_pct: float = setting(70.0, "annualised vol above this is the high regime", unit="percent",
                                  check=_NONNEG)
    vol_low_pct: float = setting(30.0, "annualised vol below this is the low regime", unit="percent",
                                 check=_NONNEG)

    def __attrs_post_init__(self) -> None:
        if self.vol_low_pct > self.vol_high_pct:
            raise ValueError(
                f"vol_low_pct must be <= vol_high_pct; got {self.vol_low_pct} > {self.vol_high_pct}")


@attrs.frozen(kw_only=True)
class SwingConfig:
    """Swing window per volatility regime (spec 3.4)."""

    lookback_bars_high_vol: int = setting(45, "swing window in the high-vol regime", unit="bars",
                                          check=at_least(1))
    lookback_bars_mid_vol: int = setting(60, "swing window in the mid-vol regime", unit="bars",
                                         check=at_least(1))
    lookback_bars_low_vol: int = setting(75, "swing window in the low-vol regime", unit="bars",
                                         check=at_least(1))
    min_range_frac: float = setting(0.10, "no levels unless (H - L) >= this x H", unit="fraction", check=_FRAC)


@attrs.frozen(kw_only=True)
class Level:
    """One Fibonacci level of the ladder; ``window`` is the band of distance below the level price."""

    name: str = setting("", "level label used in intent ids and filled_levels, e.g. 61.8", check=non_empty)
    ratio: float = setting(0.0, "retracement ratio of the swing range", unit="fraction",
                           check=in_range(0, 1, lo_open=True, hi_open=True))
    size_mult: Decimal = setting(Decimal(1), "share of the ladder budget (ladder sizing) and score weight",
                                 check=_POS)
    lev_mult: float = setting(1.0, "multiplier on the base entry leverage", check=_POS)
    window: tuple[float, float] = setting((-0.03, -0.005), "[lo, hi] distance of P below the level price",
                                          unit="fraction", check=_window_check)
    enabled: bool = setting(True, "false removes the level from candidates and from the ladder budget")

    @property
    def ratio_key(self) -> str:
        """The ratio as written in ``[[levels]]`` (spec 9.15), the key of ``level_last_fill_at``."""
        return repr(self.ratio)


def default_levels() -> tuple[Level, ...]:
    """The original's Goldilocks table (spec section 2)."""
    table = (
        ("23.6", 0.236, 2, 0.8, (-0.030, -0.005)),
        ("38.2", 0.382, 3, 1.0, (-0.050, -0.010)),
        ("50.0", 0.500, 5, 1.2, (-0.070, -0.015)),
        ("61.8", 0.618, 8, 1.5, (-0.100, -0.020)),
        ("78.6", 0.786, 13, 1.8, (-0.150, -0.030)),
    )
    return tuple(
        Level(name=name, ratio=ratio, size_mult=Decimal(size), lev_mult=lev, window=window, enabled=True)
        for name, ratio, size, lev, window in table
    )


@attrs.frozen(kw_only=True)
class SelectionConfig:
    """Candidate scoring and choice (spec 3.6)."""

    mode: str = setting("score", "score (highest score) | deepest (largest ratio)",
                        check=one_of(("score", "deepest")))
    min_score: float = setting(8.0, "candidates need score > this", check=_NONNEG)
    confluence_enabled: bool = setting(True, "multiply the score by the confluence factor")
    confluence_touch_band_frac: float = setting(0.03, "a bar touches a level within +-this", unit="fraction",
                                                check=_FRAC)
    confluence_touch_weight: float = setting(0.10, "added per touching bar when more than one touches",
                                             check=_NONNEG)
    confluence_round_2500_tol: Decimal = setting(Decimal(125), "level within this of a 2 500 multiple",
                                                 unit="USD", check=_NONNEG)
    confluence_round_2500_bonus: float = setting(0.15, "bonus near a 2 500 multiple", check=_NONNEG)
    confluence_round_1000_tol: Decimal = setting(Decimal(100), "level within this of a 1 000 multiple",
                                                 unit="USD", check=_NONNEG)
    confluence_round_1000_bonus: float = setting(0.10, "bonus near a 1 000 multiple", check=_NONNEG)
    confluence_volume_ratio: float = setting(1.1, "last bar volume above this x mean gets a bonus",
                                             check=_NONNEG)
    confluence_volume_bonus: float = setting(0.10, "bonus for a high-volume last bar", check=_NONNEG)
    confluence_cap: float = setting(2.0, "upper bound of the confluence factor", check=at_least(1))


@attrs.frozen(kw_only=True)
class CooldownConfig:
    """Time between entries (spec 3.5) and the re-arm guard (spec 9.11)."""

    base_hours: float = setting(48.0, "cooldown after an entry in the mid-vol regime", unit="h", check=_NONNEG)
    high_vol_factor: float = setting(0.5, "cooldown factor in the high-vol regime", check=_NONNEG)
    low_vol_factor: float = setting(1.5, "cooldown factor in the low-vol regime", check=_NONNEG)
    rearm_guard_h: float = setting(168.0, "a level ratio is not re-bought under a new swing key within this "
                                   "(0 disables)", unit="h", check=_NONNEG)


@attrs.frozen(kw_only=True)
class LeverageConfig:
    """Entry leverage formula (perp only; spec 3.6)."""

    base: float = setting(3.0, "base entry leverage", unit="x", check=_POS)
    drawdown_coef: float = setting(0.6, "added leverage per 10 drawdown percent points", check=_NONNEG)
    fear_coef: float = setting(0.4, "added leverage per 10 fear points below max_fear_greed", check=_NONNEG)
    max_entry_leverage: float = setting(18.0, "upper bound of the entry leverage", unit="x", check=_POS)


@attrs.frozen(kw_only=True)
class SizingConfig:
    """How much to buy before the caps (spec 3.7) and how to send it (spec 3.9)."""

    mode: str = setting("ladder", "ladder | legacy (the original's Goldilocks arithmetic)",
                        check=one_of(("ladder", "legacy")))
    ladder_budget_frac: Decimal = setting(Decimal("0.50"), "margin for the full ladder as a fraction of equity",
                                          unit="fraction", check=_FRAC)
    legacy_capital_budget: Decimal = setting(Decimal(0), "legacy: budget (0 = equity at the first decision)",
                                             unit="USDC", check=_NONNEG)
    legacy_slice_frac: Decimal = setting(Decimal("0.20"), "legacy: slice of the remaining budget per entry",
                                         unit="fraction", check=_FRAC)
    legacy_max_slice_margin: Decimal = setting(Decimal(12000), "legacy: largest margin per entry", unit="USDC",
                                               check=_NONNEG)
    legacy_min_remaining: Decimal = setting(Decimal(500), "legacy: stop when less budget than this remains",
                                            unit="USDC", check=_NONNEG)
    max_order_notional_usdc: Decimal = setting(Decimal(10000), "per-order notional cap (0 = off)", unit="USDC",
                                               check=_NONNEG)
    max_order_equity_mult: Decimal = setting(Decimal("1.0"), "per-order notional <= this x equity", unit="x",
                                             check=_NONNEG)
    min_order_notional_usdc: Decimal = setting(Decimal(10), "smaller orders are not sent", unit="USDC",
                                               check=_NONNEG)
    order_type: str = setting("limit_ioc", "limit_ioc | market", check=one_of(("limit_ioc", "market")))
    max_slippage_frac: Decimal = setting(Decimal("0.005"), "limit price = P x (1 + this)", unit="fraction",
                                         check=_FRAC)
    taker_fee_frac: Decimal = setting(Decimal("0.001"), "taker fee for the spot cash cap (0.0005 for perp); "
                                      "an exchange-reported rate wins", unit="fraction", check=_FRAC)


@attrs.frozen(kw_only=True)
class RiskConfig:
    """Account-level caps (spec 3.8) and the risk monitor (spec 4)."""

    max_account_leverage: Decimal = setting(Decimal("3.0"), "(Q + q) x P / equity after the buy", unit="x",
                                            check=_POS)
    min_liq_distance_frac: Decimal = setting(Decimal("0.30"), "projected liq price <= P x (1 - this)",
                                             unit="fraction", check=_FRAC)
    liq_buffer_below_swing_low_frac: Decimal = setting(Decimal("0.15"), "projected liq <= swing low x "
                                                       "(1 - this)", unit="fraction", check=_FRAC)
    default_mmf: Decimal = setting(Decimal("0.01"), "maintenance margin fraction when the exchange gives none; "
                                   "the higher one wins", unit="fraction", check=in_range(0, 1, hi_open=True))
    default_imf: Decimal = setting(Decimal("0.10"), "initial margin fraction when the exchange gives none",
                                   unit="fraction", check=in_range(0, 1, lo_open=True))
    reserve_available_frac: Decimal = setting(Decimal("0.20"), "keep this share of available margin or cash "
                                              "unused", unit="fraction", check=_FRAC)
    max_daily_notional_equity_mult: Decimal = setting(Decimal("1.0"), "UTC-day buys <= this x day start equity",
                                                      unit="x", check=_NONNEG)
    max_position_notional_usdc: Decimal = setting(Decimal(0), "position notional cap (0 = off)", unit="USDC",
                                                  check=_NONNEG)
    max_total_entries: int = setting(0, "lifetime entry cap (0 = unlimited)", unit="entries", check=_NONNEG)
    max_daily_loss_frac: Decimal = setting(Decimal("0.10"), "block entries for the rest of the UTC day after "
                                           "this loss", unit="fraction", check=_FRAC)
    max_equity_drawdown_frac: Decimal = setting(Decimal("0.50"), "block entries while equity < peak x "
                                                "(1 - this)", unit="fraction", check=_FRAC)
    liq_warn_distance_frac: Decimal = setting(Decimal("0.25"), "liq distance below this blocks entries",
                                              unit="fraction", check=_FRAC)
    liq_critical_distance_frac: Decimal = setting(Decimal("0.15"), "liq distance below this halts (latched)",
                                                  unit="fraction", check=_FRAC)
    deleverage_on_critical: bool = setting(False, "on a critical liq distance, sell reduce-only (the only "
                                           "sell path)")
    deleverage_target_distance_frac: Decimal = setting(Decimal("0.25"), "deleverage until the liq distance is "
                                                       "at least this", unit="fraction", check=_FRAC)

    def __attrs_post_init__(self) -> None:
        if not self.liq_critical_distance_frac < self.liq_warn_distance_frac:
            raise ValueError(
                "liq_critical_distance_frac must be < liq_warn_distance_frac; got "
                f"{self.liq_critical_distance_frac} >= {self.liq_warn_distance_frac}")


@attrs.frozen(kw_only=True)
class ClustersConfig:
    """Optional liquidation-cluster input (spec 3.5, 3.6)."""

    enabled: bool = setting(False, "use liquidation clusters for confluence and deferral")
    min_notional_usd: Decimal = setting(Decimal(1000000), "clusters smaller than this add no confluence",
                                        unit="USD", check=_NONNEG)
    level_tolerance_frac: float = setting(0.01, "a long-liq cluster within +-this of a level adds confluence",
                                          unit="fraction", check=_FRAC)
    confluence_bonus: float = setting(0.25, "confluence added by a matching cluster", check=_NONNEG)
    defer_window_frac: float = setting(0.03, "a big long-liq cluster within this below P defers the entry",
                                       unit="fraction", check=_FRAC)
    defer_min_notional_usd: Decimal = setting(Decimal(5000000), "cluster size that defers an entry",
                                              unit="USD", check=_NONNEG)


@attrs.frozen(kw_only=True)
class NanpinConfig:
    """The whole strategy configuration (``[strategy]``)."""

    market: MarketConfig = setting(None, "instrument", factory=MarketConfig)
    data: DataConfig = setting(None, "input freshness", factory=DataConfig)
    signal: SignalConfig = setting(None, "entry signal", factory=SignalConfig)
    swing: SwingConfig = setting(None, "swing window", factory=SwingConfig)
    levels: tuple[Level, ...] = setting(None, "Fibonacci ladder, ratios strictly increasing",
                                        factory=default_levels)
    selection: SelectionConfig = setting(None, "level choice", factory=SelectionConfig)
    cooldown: CooldownConfig = setting(None, "time between entries", factory=CooldownConfig)
    leverage: LeverageConfig = setting(None, "entry leverage (perp)", factory=LeverageConfig)
    sizing: SizingConfig = setting(None, "order size", factory=SizingConfig)
    risk: RiskConfig = setting(None, "account caps and risk monitor", factory=RiskConfig)
    clusters: ClustersConfig = setting(None, "liquidation clusters", factory=ClustersConfig)

    def __attrs_post_init__(self) -> None:
        levels = self.levels
        if not isinstance(levels, tuple) or not levels:
            raise ValueError("levels must be a non-empty list of [[levels]] tables")
        names = [lv.name for lv in levels]
        if len(set(names)) != len(names):
            raise ValueError(f"levels: names must be unique; got {names}")
        ratios = [lv.ratio for lv in levels]
        if any(not a < b for a, b in zip(ratios, ratios[1:], strict=False)):
            raise ValueError(f"levels: ratios must be strictly increasing; got {ratios}")
        if not any(lv.enabled for lv in levels):
            raise ValueError("levels: at least one level must be enabled")

    @property
    def is_perp(self) -> bool:
        """True in the opt-in leveraged perp profile."""
        return self.market.market_type == "perp"

    @property
    def enabled_levels(self) -> tuple[Level, ...]:
        """Enabled levels in ratio order."""
        return tuple(lv for lv in self.levels if lv.enabled)

"""Fibonacci levels, entry bands, entry leverage, confluence, score and choice (spec 3.4, 3.6); pure.

Invariants: for ``L <= H`` and ratios strictly increasing in (0, 1), level prices strictly decrease and lie in
[L, H]. The window test compares the exact Decimal distance with the window ends converted by
``Decimal(repr(x))``, so a band edge such as 95 763.60 for the 61.8 level of spec 6.1 is inside.
The leverage and score constants ``/10`` and ``/50`` are the spec's, not configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from engine.nanpin.config import ClustersConfig, Level, NanpinConfig, SelectionConfig
from engine.nanpin.types import Bar, LiqCluster

__all__ = [
    "band",
    "choose",
    "confluence",
    "entry_leverage",
    "in_window",
    "level_distance",
    "level_price",
    "score",
]


def level_price(high: Decimal, low: Decimal, ratio: float) -> Decimal:
    """``X = H - (H - L) * ratio``."""
    return high - (high - low) * Decimal(repr(ratio))


def level_distance(price: Decimal, level_px: Decimal) -> Decimal:
    """``dist = (P - X) / X`` (negative when P is below the level)."""
    return (price - level_px) / level_px


def in_window(level: Level, dist: Decimal) -> bool:
    """``window_lo <= dist <= window_hi`` (inclusive)."""
    lo, hi = level.window
    return Decimal(repr(lo)) <= dist <= Decimal(repr(hi))


def band(level: Level, level_px: Decimal) -> tuple[Decimal, Decimal]:
    """Price band in which the level is in window: ``X*(1+lo) .. X*(1+hi)``."""
    lo, hi = level.window
    return level_px * (1 + Decimal(repr(lo))), level_px * (1 + Decimal(repr(hi)))


def entry_leverage(cfg: NanpinConfig, level: Level, drawdown: float, fg: float) -> float:
    """Perp: ``min(max, (base + pct|dd|*coef/10 + max(0, max_fg - fg)*coef/10) * lev_mult)``; spot: 1."""
    if not cfg.is_perp:
        return 1.0
    lev = cfg.leverage
    base = (lev.base + 100.0 * abs(drawdown) * lev.drawdown_coef / 10.0
            + max(0.0, cfg.signal.max_fear_greed - fg) * lev.fear_coef / 10.0)
    return min(lev.max_entry_leverage, base * level.lev_mult)


def _fresh_long_liq(clusters: Sequence[LiqCluster], now: datetime, max_age_s: float,
                    min_notional: Decimal) -> list[LiqCluster]:
    out = []
    for c in clusters:
        if c.side != "long_liq" or not c.price.is_finite() or not c.notional_usd.is_finite():
            continue
        if c.price <= 0 or c.notional_usd < min_notional:
            continue
        observed = c.observed_at if c.observed_at.tzinfo is not None else c.observed_at.replace(tzinfo=now.tzinfo)
        if (now - observed).total_seconds() > max_age_s:
            continue
        out.append(c)
    return out


def confluence(sel: SelectionConfig, clu: ClustersConfig, level_px: Decimal, swing: Sequence[Bar],
               last_volume: Decimal, clusters: Sequence[LiqCluster], now: datetime,
               max_cluster_age_s: float) -> float:
    """Confluence factor of one level over the swing bars, capped (spec 3.6); 1.0 when disabled."""
    if not sel.confluence_enabled:
        return 1.0
    conf = 1.0
    x = float(level_px)
    up = x * (1.0 + sel.confluence_touch_band_frac)
    down = x * (1.0 - sel.confluence_touch_band_frac)
    touches = sum(1 for bar in swing if float(bar.low) <= up and float(bar.high) >= down)
    if touches > 1:
        conf += sel.confluence_touch_weight * touches
    r2500 = level_px % 2500
    r1000 = level_px % 1000
    if r2500 < sel.confluence_round_2500_tol or r2500 > 2500 - sel.confluence_round_2500_tol:
        conf += sel.confluence_round_2500_bonus
    elif r1000 < sel.confluence_round_1000_tol or r1000 > 1000 - sel.confluence_round_1000_tol:
        conf += sel.confluence_round_1000_bonus
    if swing:
        mean_volume = sum(float(bar.volume) for bar in swing) / len(swing)
        if float(last_volume) > sel.confluence_volume_ratio * mean_volume:
            conf += sel.confluence_volume_bonus
    if clu.enabled:
        tol = Decimal(repr(clu.level_tolerance_frac))
        for c in _fresh_long_liq(clusters, now, max_cluster_age_s, clu.min_notional_usd):
            if abs(c.price - level_px) <= level_px * tol:
                conf += clu.confluence_bonus
                break
    return min(conf, sel.confluence_cap)


def score(level: Level, leverage: float, conf: float, dist: float, drawdown: float) -> float:
    """``size_mult * lev * conf * pct|dist| * (1 + pct|dd|/50)``."""
    return (float(level.size_mult) * leverage * conf * 100.0 * abs(dist)
            * (1.0 + 100.0 * abs(drawdown) / 50.0))


def choose(candidates: Sequence[tuple[Level, float]], mode: str) -> Level | None:
    """Highest score (ties to the larger ratio), or the largest ratio in ``deepest`` mode."""
    if not candidates:
        return None
    if mode == "deepest":
        return max(candidates, key=lambda c: c[0].ratio)[0]
    return max(candidates, key=lambda c: (c[1], c[0].ratio))[0]

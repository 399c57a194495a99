"""Daily indicators of the nanpin signal (spec 3.3, 3.4): pure functions of closed bars and the price P.

Owns the drawdown reference ("ATH", a 60-bar high), days since that high, annualised volatility, momentum,
the fear proxy, the volatility regime and the swing range. Callers pass bars that already passed the input
checks (finite, positive, ascending, gap-free, at least :func:`min_bars_for_indicators` of them); these
functions then never divide by zero.

Indicator arithmetic is ``float`` (the spec allows it) except where a value is itself a price; results that
later size an order are converted by the caller with ``Decimal(repr(x))`` (spec 9.4).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from decimal import Decimal

import attrs

from engine.nanpin.config import NanpinConfig, SignalConfig
from engine.nanpin.types import Bar

__all__ = [
    "Indicators",
    "compute_indicators",
    "fear_proxy",
    "min_bars_for_indicators",
    "regime_of",
    "swing_bars",
    "swing_range",
]


@attrs.frozen(kw_only=True)
class Indicators:
    """The indicator values of one decision."""

    hmax: Decimal
    i_ath: int
    ath: Decimal
    drawdown: float
    days_since_ath: int
    vol_pct: float
    mom_pct: float
    fg_proxy: float
    regime: str


def min_bars_for_indicators(sig: SignalConfig) -> int:
    """Closed bars needed to compute every indicator: the volatility returns need one extra close."""
    return max(sig.vol_lookback_returns + 1, sig.momentum_lookback_bars, 1)


def fear_proxy(sig: SignalConfig, drawdown: float, mom_pct: float, vol_pct: float) -> float:
    """``clamp(center + w_dd*pct(drawdown) + w_mom*mom - w_vol*(vol - vol_center), 0, 100)``."""
    raw = (sig.fg_proxy_center + sig.fg_proxy_w_drawdown * 100.0 * drawdown + sig.fg_proxy_w_momentum * mom_pct
           - sig.fg_proxy_w_vol * (vol_pct - sig.fg_proxy_vol_center_pct))
    return min(100.0, max(0.0, raw))


def regime_of(sig: SignalConfig, vol_pct: float) -> str:
    """``high`` above vol_high_pct, ``low`` below vol_low_pct, else ``mid``."""
    if vol_pct > sig.vol_high_pct:
        return "high"
    if vol_pct < sig.vol_low_pct:
        return "low"
    return "mid"


def compute_indicators(bars: Sequence[Bar], price: Decimal, sig: SignalConfig) -> Indicators:
    """Indicators of spec 3.3 from closed bars ``b[0..n-1]`` and the current price ``P``."""
    n = len(bars)
    a_start = max(0, n - sig.ath_lookback_bars)
    hmax = max(bar.high for bar in bars[a_start:])
    # The latest bar printing the high, so that a re-test of the high restarts the count.
    i_ath = max(i for i in range(a_start, n) if bars[i].high == hmax)
    ath = max(hmax, price)
    drawdown = float((price - ath) / ath)
    days_since_ath = 0 if price >= hmax else n - i_ath

    k = sig.vol_lookback_returns
    closes = [float(bar.close) for bar in bars[n - k - 1:]]
    returns = [closes[i] / closes[i - 1] - 1.0 for i in range(1, len(closes))]
    vol_pct = statistics.stdev(returns) * math.sqrt(sig.vol_annualization_days) * 100.0

    ref = bars[n - sig.momentum_lookback_bars].close
    mom_pct = float((price / ref - 1) * 100)

    return Indicators(
        hmax=hmax,
        i_ath=i_ath,
        ath=ath,
        drawdown=drawdown,
        days_since_ath=days_since_ath,
        vol_pct=vol_pct,
        mom_pct=mom_pct,
        fg_proxy=fear_proxy(sig, drawdown, mom_pct, vol_pct),
        regime=regime_of(sig, vol_pct),
    )


def swing_bars(cfg: NanpinConfig, regime: str) -> int:
    """Swing window length ``N_s`` for a volatility regime."""
    sw = cfg.swing
    return {"high": sw.lookback_bars_high_vol, "low": sw.lookback_bars_low_vol}.get(regime,
                                                                                   sw.lookback_bars_mid_vol)


def swing_range(bars: Sequence[Bar], price: Decimal, n_s: int) -> tuple[Decimal, Decimal]:
    """``(H, L)`` over the last ``n_s`` closed bars, both including ``P`` so that ``L <= P <= H``."""
    window = bars[max(0, len(bars) - n_s):]
    high = max(max(bar.high for bar in window), price)
    low = min(min(bar.low for bar in window), price)
    return high, low

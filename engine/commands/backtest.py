"""``python -m engine backtest``: the nanpin strategy over a daily candle file, with a terminal summary and an
HTML report.

Owns the command's arguments and its edge I/O (reading the candle file and the config, writing the report).
The simulation is ``engine.nanpin.run_backtest`` (the live ``decide``/``apply_fill``); the figures and charts
are ``engine.backtest.report``. Invariants: the strategy configuration comes from the config file (or the
built-in defaults) with only ``--profile`` changing the market; bars before ``--start`` are history only (so
the first decision in range already sees ``min_history_bars``), bars after ``--end`` are never read by
``decide``; a bad argument exits 2 with a one-line reason.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import attrs

from engine.backtest.data import default_daily_path, load_daily_bars
from engine.backtest.report import render_html, render_text, summarize
from engine.cli import register_command
from engine.config import resolve_config
from engine.errors import ConfigError
from engine.nanpin import MarketRules, NanpinConfig, run_backtest
from engine.nanpin.config import MarketConfig, SizingConfig
from engine.sim.markets import DEFAULT_MARKETS

__all__ = ["PERP_TAKER_FEE", "apply_profile", "backtest_arguments", "market_rules_for", "run_backtest_command"]

#: Taker fee of the perp profile (nanpin spec 9.15), used when the config keeps the spot default.
PERP_TAKER_FEE = Decimal("0.0005")
_PROFILE_SYMBOL = {"spot": "BTC_USDC", "perp": "BTC_USDC_PERP"}


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD; got {text!r}") from None


def _cash(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
    return value


def backtest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="FILE", default=None,
                        help="daily candle file open_time_ms,open,high,low,close,volume (.csv or .csv.gz); "
                             "default: the bundled Binance BTC/USDT daily candles in data/")
    parser.add_argument("--profile", choices=("spot", "perp"), default=None,
                        help="spot (BTC_USDC, no leverage) or perp (BTC_USDC_PERP, leveraged, can be liquidated); "
                             "default: the market in the configuration")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="engine config whose [strategy] is used (default: ./config.toml, else built-in)")
    parser.add_argument("--start", type=_date, default=None, metavar="DATE",
                        help="first decision day (earlier bars are history); default: as soon as "
                             "min_history_bars exist")
    parser.add_argument("--end", type=_date, default=None, metavar="DATE", help="last day (inclusive)")
    parser.add_argument("--cash", type=_cash, default=Decimal(10000), metavar="N",
                        help="initial quote balance in USDC (default 10000)")
    parser.add_argument("--report", metavar="DIR", default="reports",
                        help="directory for the HTML report (default: ./reports)")


def apply_profile(cfg: NanpinConfig, profile: str | None) -> NanpinConfig:
    """The strategy config with ``--profile`` applied: the market and, for perp, the perp taker fee."""
    if profile is None:
        return cfg
    cfg = attrs.evolve(cfg, market=MarketConfig(symbol=_PROFILE_SYMBOL[profile], market_type=profile))
    if profile == "perp" and cfg.sizing.taker_fee_frac == SizingConfig().taker_fee_frac:
        cfg = attrs.evolve(cfg, sizing=attrs.evolve(cfg.sizing, taker_fee_frac=PERP_TAKER_FEE))
    return cfg


def market_rules_for(symbol: str) -> MarketRules:
    """The market filters Backpack lists for ``symbol`` (as the simulator serves them)."""
    for spec in DEFAULT_MARKETS:
        if spec.symbol == symbol:
            return MarketRules(step_size=spec.step, tick_size=spec.tick, min_qty=spec.min_qty)
    known = ", ".join(s.symbol for s in DEFAULT_MARKETS)
    raise ConfigError(f"strategy.market.symbol: backtest knows the filters of {known}; got {symbol!r}")


def run_backtest_command(args: argparse.Namespace) -> int:
    engine_cfg, config_source = resolve_config(args.config)
    cfg = apply_profile(engine_cfg.strategy, args.profile)
    path = Path(args.data) if args.data is not None else default_daily_path()
    bars = load_daily_bars(path)
    if args.end is not None:
        bars = tuple(b for b in bars if b.start.date() <= args.end)
    start_index = cfg.data.min_history_bars
    if args.start is not None:
        start_index = max(start_index, next((i for i, b in enumerate(bars) if b.start.date() >= args.start),
                                            len(bars)))
    if start_index >= len(bars):
        print(f"error: no day to decide on: {path.name} has {len(bars)} bar(s) in range and the strategy needs "
              f"{cfg.data.min_history_bars} bars of history before the first decision", file=sys.stderr)
        return 2
    result = run_backtest(bars, cfg, initial_cash=args.cash, rules=market_rules_for(cfg.market.symbol),
                          start_index=start_index)
    summary = summarize(result, symbol=cfg.market.symbol, min_order_notional=cfg.sizing.min_order_notional_usdc,
                        reserve_frac=cfg.risk.reserve_available_frac)
    source = f"{path.name} (daily candles as USDC prices)"
    report_dir = Path(args.report)
    report_path = report_dir / f"backtest-{cfg.market.market_type}-{summary.first_day}-{summary.last_day}.html"
    page = render_html(result, summary, source=source, config_source=config_source,
                       risk_warn=cfg.risk.liq_warn_distance_frac if cfg.is_perp else None,
                       risk_critical=cfg.risk.liq_critical_distance_frac if cfg.is_perp else None)
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        report_path.write_text(page, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write the report to {report_path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render_text(result, summary, source=source, report_path=str(report_path)))
    return 0


register_command("backtest", backtest_arguments, run_backtest_command,
                 help="backtest the nanpin strategy on daily candles; terminal summary and an HTML report")

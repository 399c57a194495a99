"""Backtest tooling around the pure ``engine.nanpin.run_backtest``: candle files in, reports out.

``engine.backtest.data`` reads the bundled daily candle format; ``engine.backtest.report`` turns a
``BacktestResult`` into a terminal summary and a self-contained HTML report with inline SVG charts. The
simulation itself (decide, fills, liquidation) is ``engine.nanpin.backtest``; nothing here changes a figure.
"""

from __future__ import annotations

from engine.backtest.data import default_daily_path as default_daily_path
from engine.backtest.data import load_daily_bars as load_daily_bars
from engine.backtest.report import Summary as Summary
from engine.backtest.report import render_html as render_html
from engine.backtest.report import render_text as render_text
from engine.backtest.report import summarize as summarize

__all__ = ["Summary", "default_daily_path", "load_daily_bars", "render_html", "render_text", "summarize"]

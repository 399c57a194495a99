"""The backtest command over the bundled real daily candles: summary, HTML report, errors, loader checks."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
import xml.dom.minidom
from decimal import Decimal
from pathlib import Path

import pytest

from engine.backtest import default_daily_path, load_daily_bars, render_html, render_text, summarize
from engine.cli import main
from engine.commands.backtest import market_rules_for
from engine.errors import ConfigError
from engine.nanpin import NanpinConfig, run_backtest
from engine.nanpin.backtest import history_window

REPO = Path(__file__).resolve().parents[2]
RULES_ARGS = ("--start", "2018-01-01", "--end", "2018-04-30")


def _run(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["backtest", "--report", str(tmp_path / "out"), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", page, re.S)


def test_bundled_daily_file_loads_contiguous_midnight_bars() -> None:
    """The bundled file gives 3078 contiguous daily bars at 00:00 UTC, first 2017-08-17, last 2026-01-19."""
    bars = load_daily_bars(default_daily_path())
    assert len(bars) == 3078
    assert bars[0].start.date().isoformat() == "2017-08-17"
    assert bars[-1].start.date().isoformat() == "2026-01-19"
    assert bars[0].close == Decimal("4285.08")
    assert all(b.start.hour == 0 and b.start.minute == 0 for b in bars)


def test_spot_command_prints_summary_and_writes_html(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A short spot run exits 0, prints every summary section and writes one HTML file with valid SVG charts."""
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, tmp_path, *RULES_ARGS)
    assert code == 0, err
    for needle in ("nanpin backtest: spot BTC_USDC", "period: 2018-01-01 .. 2018-04-30", "final equity:",
                   "max drawdown:", "liquidation:     no", "lowest cash:", "fully invested:", "entries:",
                   "decisions blocked, per code:", "9.12", "9.13 g"):
        assert needle in out
    entry_rows = re.findall(r"^  (2018-\d\d-\d\d)  BUY ", out, re.M)
    assert entry_rows
    assert all("2018-01-01" <= d <= "2018-04-30" for d in entry_rows)
    (report,) = (tmp_path / "out").glob("*.html")
    assert report.name == "backtest-spot-2018-01-01-2018-04-30.html"
    assert f"report: {report}" in out
    page = report.read_text(encoding="utf-8")
    svgs = _svgs(page)
    assert len(svgs) == 2  # price with entries and ladder; equity and cash
    for svg in svgs:
        xml.dom.minidom.parseString(svg)
    assert page.count("<tr><td class=\"l\">2018-") == len(entry_rows)
    assert "cash" in svgs[1]
    assert "liquidation" not in svgs[0]


def test_perp_report_makes_liquidation_risk_visible(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The perp profile through early 2018 is liquidated; the summary and the report say so prominently."""
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, tmp_path, "--profile", "perp", "--end", "2018-03-31")
    assert code == 0, err
    assert "LEVERAGED PERP PROFILE" in out
    assert "LIQUIDATED on 2018-02-05" in out
    assert "funding payments are not modelled" in out
    (report,) = (tmp_path / "out").glob("*.html")
    page = report.read_text(encoding="utf-8")
    assert '<div class="danger">' in page
    assert "LIQUIDATED on 2018-02-05" in page
    svgs = _svgs(page)
    assert len(svgs) == 3
    assert "model liquidation price" in svgs[0]
    assert "Distance from close to the model liquidation price" in svgs[2]


def test_command_figures_match_the_pure_backtest(tmp_path: Path) -> None:
    """The summary is derived from run_backtest's own records: cash low, buy and hold, entry totals."""
    bars = load_daily_bars(default_daily_path())[:260]
    cfg = NanpinConfig()
    result = run_backtest(bars, cfg, initial_cash=Decimal(10000), rules=market_rules_for("BTC_USDC"))
    s = summarize(result, symbol="BTC_USDC", min_order_notional=Decimal(10), reserve_frac=Decimal("0.2"))
    low = min(result.curve, key=lambda p: p.cash)
    assert s.cash_low == low.cash
    assert s.buy_hold_equity == Decimal(10000) / result.curve[0].close * result.curve[-1].close
    assert s.bought_notional == sum(e.notional for e in result.entries)
    assert s.days == len(result.curve) == 260 - cfg.data.min_history_bars
    assert s.max_drawdown_frac == result.max_drawdown_frac
    text = render_text(result, s, source="test")
    assert f"{len(result.entries)} (bought" in text
    assert "<script" not in render_html(result, s, source="<b>x</b>", config_source="defaults")
    assert "&lt;b&gt;x&lt;/b&gt;" in render_html(result, s, source="<b>x</b>", config_source="defaults")
    assert history_window(cfg) <= 260


@pytest.mark.parametrize(("args", "message"), [
    (("--cash", "-5"), "must be > 0"),
    (("--start", "2030-01-01"), "no day to decide on"),
    (("--start", "yesterday"), "must be a date"),
])
def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              args: tuple[str, ...], message: str) -> None:
    """Bad input exits 2 with the reason on stderr and writes no report."""
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, tmp_path, *args)
    assert code == 2
    assert message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("rows", "message"), [
    ("open_time_ms,open,high,low,close,volume\n86400000,1,2,1,1,5\n259200000,1,2,1,1,5\n", "does not follow"),
    ("open_time_ms,open,high,low,close,volume\n86400001,1,2,1,1,5\n", "not a 00:00 UTC"),
    ("time,o,h,l,c,v\n86400000,1,2,1,1,5\n", "must start with the header"),
    ("open_time_ms,open,high,low,close,volume\n86400000,1,x,1,1,5\n", "not a number"),
    ("open_time_ms,open,high,low,close,volume\n", "holds no bars"),
])
def test_bad_candle_files_are_rejected(tmp_path: Path, rows: str, message: str) -> None:
    """Gaps, misaligned times, wrong headers, garbage and empty files raise ConfigError; nothing is filled."""
    path = tmp_path / "bars.csv.gz"
    path.write_bytes(gzip.compress(rows.encode()))
    with pytest.raises(ConfigError, match=message):
        load_daily_bars(path)


def test_real_subprocess_entry_point(tmp_path: Path) -> None:
    """`python -m engine backtest` works as a real process from any directory with an explicit --data."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "engine", "backtest", "--data", str(default_daily_path()), "--start", "2018-03-01",
         "--end", "2018-03-31", "--report", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "final equity:" in result.stdout
    assert len(list(tmp_path.glob("backtest-spot-2018-03-01-2018-03-31.html"))) == 1

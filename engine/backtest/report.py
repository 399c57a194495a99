"""Backtest reports: a terminal summary and one self-contained HTML file with inline SVG charts (pure).

Owns the figures derived from an ``engine.nanpin.BacktestResult`` (return, buy-and-hold reference, drawdown
dates, the cash low point, the closest approach to liquidation) and their presentation. Invariants:

* Every figure is computed from the result's own records (entries, daily equity curve, block counts, notes);
  nothing is re-simulated or estimated here.
* The charts are SVG written by this module: no plotting dependency, no external file, script or font, so
  the HTML opens offline exactly as written. Text is HTML-escaped.
* A perp report always states the liquidation risk (nanpin spec section 0): a banner at the top, the model
  liquidation price on the price chart and a distance-to-liquidation chart, whether or not this range was
  liquidated. The notes of the result (daily-loss block untested, funding not modelled) are printed verbatim.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import attrs

from engine.nanpin import BacktestResult
from engine.nanpin.backtest import EquityPoint

__all__ = ["Summary", "render_html", "render_text", "summarize"]

_ZERO = Decimal(0)


@attrs.frozen(kw_only=True)
class Summary:
    """Figures derived from one backtest result (``None`` where the run has no data for them)."""

    symbol: str
    market_type: str
    first_day: date | None
    last_day: date | None
    days: int
    initial_cash: Decimal
    final_equity: Decimal
    return_frac: Decimal
    buy_hold_equity: Decimal | None  # initial cash in the asset at the first close, valued at the last
    max_drawdown_frac: Decimal
    drawdown_peak_day: date | None
    drawdown_trough_day: date | None
    cash_low: Decimal
    cash_low_day: date | None
    cash_low_share: Decimal  # cash / equity on the cash-low day
    days_fully_invested: int  # days whose usable cash (after the reserve) was below the smallest order
    bought_notional: Decimal
    fees: Decimal
    min_liq_distance_frac: Decimal | None  # perp: closest (close - liq) / close
    min_liq_distance_day: date | None


def _drawdown_dates(curve: Sequence[EquityPoint]) -> tuple[date | None, date | None]:
    peak_eq, peak_day = _ZERO, None
    worst, worst_peak, worst_day = _ZERO, None, None
    for point in curve:
        if point.equity > peak_eq:
            peak_eq, peak_day = point.equity, point.day
        if peak_eq > 0 and (peak_eq - point.equity) / peak_eq > worst:
            worst, worst_peak, worst_day = (peak_eq - point.equity) / peak_eq, peak_day, point.day
    return worst_peak, worst_day


def summarize(result: BacktestResult, *, symbol: str, min_order_notional: Decimal,
              reserve_frac: Decimal = _ZERO) -> Summary:
    """Derive the report figures.

    A day counts as fully invested when ``cash x (1 - reserve_frac) < min_order_notional``: no order could be
    sent from that cash (spot; for perp the cash column is collateral and the figure is informational).
    """
    curve = result.curve
    first = curve[0] if curve else None
    last = curve[-1] if curve else None
    buy_hold = None
    if first is not None and last is not None and first.close > 0:
        buy_hold = result.initial_cash / first.close * last.close
    low = min(curve, key=lambda p: (p.cash, p.day)) if curve else None
    peak_day, trough_day = _drawdown_dates(curve)
    liq_points = [(p, (p.close - p.liq_price) / p.close) for p in curve if p.liq_price is not None and p.close > 0]
    closest = min(liq_points, key=lambda item: item[1]) if liq_points else None
    buys = [e for e in result.entries if e.side == "BUY"]
    return Summary(
        symbol=symbol,
        market_type=result.market_type,
        first_day=first.day if first else None,
        last_day=last.day if last else None,
        days=len(curve),
        initial_cash=result.initial_cash,
        final_equity=result.final_equity,
        return_frac=(result.final_equity / result.initial_cash - 1) if result.initial_cash > 0 else _ZERO,
        buy_hold_equity=buy_hold,
        max_drawdown_frac=result.max_drawdown_frac,
        drawdown_peak_day=peak_day,
        drawdown_trough_day=trough_day,
        cash_low=low.cash if low else result.initial_cash,
        cash_low_day=low.day if low else None,
        cash_low_share=(low.cash / low.equity) if low and low.equity > 0 else _ZERO,
        days_fully_invested=sum(1 for p in curve if p.cash * (1 - reserve_frac) < min_order_notional),
        bought_notional=sum((e.notional for e in buys), _ZERO),
        fees=sum((e.fee for e in result.entries), _ZERO),
        min_liq_distance_frac=closest[1] if closest else None,
        min_liq_distance_day=closest[0].day if closest else None,
    )


# --------------------------------------------------------------------------------------------------------
# Text


def _money(x: Decimal) -> str:
    return f"{x:,.2f}"


def _pct(x: Decimal) -> str:
    return f"{x * 100:+.2f} %"


def _pct_plain(x: Decimal) -> str:
    return f"{x * 100:.2f} %"


def _day(d: date | None) -> str:
    return d.isoformat() if d is not None else "-"


def _risk_lines(result: BacktestResult, s: Summary) -> list[str]:
    if result.market_type != "perp":
        return []
    lines = ["LEVERAGED PERP PROFILE: nothing ever sells and the caps apply only at entry; a deep enough crash "
             "liquidates the account (nanpin spec section 0)."]
    if result.liquidated:
        lines.append(f"LIQUIDATED on {_day(result.liquidated_on)}: equity went to 0 and the run stopped.")
    elif s.min_liq_distance_frac is not None:
        lines.append(f"Not liquidated in this range; closest distance to the model liquidation price "
                     f"{_pct_plain(s.min_liq_distance_frac)} on {_day(s.min_liq_distance_day)}.")
    else:
        lines.append("Not liquidated in this range (no position was ever held).")
    return lines


def render_text(result: BacktestResult, s: Summary, *, source: str, report_path: str | None = None) -> str:
    """The terminal summary."""
    out = [f"nanpin backtest: {s.market_type} {s.symbol} on {source}",
           f"period: {_day(s.first_day)} .. {_day(s.last_day)} ({s.days} daily decisions)",
           *_risk_lines(result, s),
           f"initial cash:    {_money(s.initial_cash)} USDC",
           f"final equity:    {_money(s.final_equity)} USDC ({_pct(s.return_frac)})"]
    if s.buy_hold_equity is not None:
        out.append(f"buy and hold:    {_money(s.buy_hold_equity)} USDC "
                   f"({_pct(s.buy_hold_equity / s.initial_cash - 1) if s.initial_cash > 0 else '-'}), for reference")
    out += [f"max drawdown:    {_pct_plain(s.max_drawdown_frac)} (peak {_day(s.drawdown_peak_day)}, "
            f"trough {_day(s.drawdown_trough_day)})",
            f"liquidation:     {'YES on ' + _day(result.liquidated_on) if result.liquidated else 'no'}",
            f"halted:          {'yes' if result.halted else 'no'}",
            f"lowest cash:     {_money(s.cash_low)} USDC on {_day(s.cash_low_day)} "
            f"({_pct_plain(s.cash_low_share)} of equity)"]
    if s.market_type != "perp":
        out.append(f"fully invested:  {s.days_fully_invested} of {s.days} day(s) had too little cash "
                   "(after the reserve) for the smallest order")
    out += [f"entries:         {len(result.entries)} (bought {_money(s.bought_notional)} USDC, fees "
            f"{_money(s.fees)} USDC)"]
    if result.entries:
        out.append(f"  {'date':<10}  {'side':<4}  {'level':>5}  {'price':>12}  {'qty':>10}  {'notional':>11}  "
                   f"{'lev':>5}")
        for e in result.entries:
            out.append(f"  {e.day.isoformat():<10}  {e.side:<4}  {e.level:>5}  {_money(e.price):>12}  "
                       f"{e.qty:>10}  {_money(e.notional):>11}  {e.entry_leverage:>5.2f}")
    out.append("decisions blocked, per code:")
    if result.block_counts:
        width = max(len(code) for code in result.block_counts)
        out += [f"  {code:<{width}}  {count}" for code, count in
                sorted(result.block_counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    else:
        out.append("  none")
    out.append("notes:")
    out += [f"  - {note}" for note in result.notes]
    if report_path is not None:
        out.append(f"report: {report_path}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------------
# SVG charts

_W, _H = 1000, 320
_L, _R, _T, _B = 70, 20, 34, 28  # plot margins


@attrs.frozen(kw_only=True)
class _Series:
    label: str
    color: str
    values: tuple[float | None, ...]
    dashed: bool = False
    area: bool = False
    width: float = 1.4


@attrs.frozen(kw_only=True)
class _Marker:
    index: int
    value: float
    color: str
    title: str


@attrs.frozen(kw_only=True)
class _Segment:
    start: int
    end: int
    value: float
    color: str
    title: str


@attrs.frozen(kw_only=True)
class _HLine:
    value: float
    color: str
    label: str


def _nice_ticks(lo: float, hi: float, *, log: bool) -> list[float]:
    if log:
        ticks = []
        for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
            for m in (1, 2, 5):
                v = m * 10.0 ** k
                if lo <= v <= hi:
                    ticks.append(v)
        if len(ticks) >= 3:
            return ticks
        # A narrow range on a log axis: linear ticks still label it usefully.
        return [v for v in _nice_ticks(lo, hi, log=False) if v > 0]
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _fmt_tick(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v / 1000:,.0f}k" if v % 1000 == 0 else f"{v / 1000:,.1f}k"
    return f"{v:g}"


_MIN_LABEL_GAP = 40.0  # px between two x-axis labels


def _chart(title: str, days: Sequence[date], series: Sequence[_Series], *, log: bool = False,
           markers: Sequence[_Marker] = (), segments: Sequence[_Segment] = (), hlines: Sequence[_HLine] = (),
           y_suffix: str = "") -> str:
    n = len(days)
    values = [v for s in series for v in s.values if v is not None]
    values += [m.value for m in markers] + [g.value for g in segments] + [h.value for h in hlines]
    if log:
        values = [v for v in values if v > 0]
    if n == 0 or not values:
        return f"<p>{html.escape(title)}: no data.</p>"
    lo, hi = min(values), max(values)
    if any(s.area for s in series) and not log:
        lo = min(lo, 0.0)
    if hi == lo:
        hi, lo = hi + 1, lo - 1
    if log:
        lo, hi = lo / 1.05, hi * 1.05
    else:
        pad = (hi - lo) * 0.04
        lo, hi = (lo - pad if lo != 0 else lo), hi + pad
    fy_lo, fy_hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
    pw, ph = _W - _L - _R, _H - _T - _B

    def x(i: float) -> float:
        return _L + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        f = math.log10(v) if log else v
        return _T + ph * (1 - (f - fy_lo) / (fy_hi - fy_lo))

    parts = [f'<svg viewBox="0 0 {_W} {_H}" width="100%" role="img" aria-label="{html.escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">',
             f'<text x="{_L}" y="16" font-size="14" font-weight="bold">{html.escape(title)}</text>',
             f'<rect x="{_L}" y="{_T}" width="{pw}" height="{ph}" fill="#fcfcfc" stroke="#ccc"/>']
    for tv in _nice_ticks(lo, hi, log=log):
        ty = y(tv)
        parts.append(f'<line x1="{_L}" x2="{_L + pw}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#eee"/>'
                     f'<text x="{_L - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="#555">'
                     f'{_fmt_tick(tv)}{y_suffix}</text>')
    span_days = (days[-1] - days[0]).days
    ticks = [i for i, d in enumerate(days) if ((d.month == 1 and d.day == 1) if span_days > 540 else d.day == 1)]
    # The start gets a label too, unless the first regular tick is so close that the two would overlap.
    if not ticks or x(ticks[0]) - x(0) > _MIN_LABEL_GAP:
        ticks.insert(0, 0)
    for i in ticks:
        label = days[i].isoformat()[:4] if span_days > 540 else days[i].isoformat()[:7]
        parts.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{_T}" y2="{_T + ph}" stroke="#f0f0f0"/>'
                     f'<text x="{x(i):.1f}" y="{_H - 10}" text-anchor="middle" fill="#555">{label}</text>')
    for h in hlines:
        parts.append(f'<line x1="{_L}" x2="{_L + pw}" y1="{y(h.value):.1f}" y2="{y(h.value):.1f}" '
                     f'stroke="{h.color}" stroke-dasharray="6 4"/><text x="{_L + pw - 4}" y="{y(h.value) - 4:.1f}" '
                     f'text-anchor="end" fill="{h.color}">{html.escape(h.label)}</text>')
    for s in series:
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None or (log and v <= 0):
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        for run in runs:
            if not run:
                continue
            if s.area:
                base = y(max(lo, 0.0)) if not log else _T + ph
                first_x, last_x = run[0].split(",")[0], run[-1].split(",")[0]
                parts.append(f'<polygon points="{first_x},{base:.1f} {" ".join(run)} {last_x},{base:.1f}" '
                             f'fill="{s.color}" fill-opacity="0.18" stroke="none"/>')
            parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{s.color}" '
                         f'stroke-width="{s.width}"{dash}/>')
    for g in segments:
        parts.append(f'<line x1="{x(g.start):.1f}" x2="{x(g.end):.1f}" y1="{y(g.value):.1f}" y2="{y(g.value):.1f}" '
                     f'stroke="{g.color}" stroke-width="1" stroke-dasharray="3 2"><title>{html.escape(g.title)}'
                     f'</title></line>')
    for m in markers:
        mx, my = x(m.index), y(m.value)
        parts.append(f'<path d="M{mx:.1f},{my + 2:.1f} l-5,9 h10 z" fill="{m.color}" stroke="#fff" '
                     f'stroke-width="0.5"><title>{html.escape(m.title)}</title></path>')
    # The legend starts after the title (about 8.5 px per character of the bold 14 px title).
    lx = _L + int(8.5 * len(title)) + 24
    for s in series:
        parts.append(f'<line x1="{lx}" x2="{lx + 18}" y1="12" y2="12" stroke="{s.color}" stroke-width="2"'
                     f'{" stroke-dasharray=" + chr(34) + "5 3" + chr(34) if s.dashed else ""}/>'
                     f'<text x="{lx + 22}" y="16">{html.escape(s.label)}</text>')
        lx += 30 + 7 * len(s.label)
    if markers:
        parts.append(f'<path d="M{lx + 9},7 l-5,9 h10 z" fill="{markers[0].color}"/>'
                     f'<text x="{lx + 18}" y="16">entries</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _charts(result: BacktestResult, risk_warn: Decimal | None, risk_critical: Decimal | None) -> list[str]:
    curve = result.curve
    days = [p.day for p in curve]
    index = {d: i for i, d in enumerate(days)}
    perp = result.market_type == "perp"
    price_series = [_Series(label="close", color="#1f4e99", values=tuple(float(p.close) for p in curve))]
    price_series.append(_Series(label="average entry", color="#e08a00", dashed=True,
                                values=tuple(float(p.avg_entry) if p.position_qty > 0 else None for p in curve)))
    if perp:
        price_series.append(_Series(label="model liquidation price", color="#c62828", width=1.8,
                                    values=tuple(float(p.liq_price) if p.liq_price is not None else None
                                                 for p in curve)))
    markers = [_Marker(index=index[e.day], value=float(e.price), color="#2e7d32" if e.side == "BUY" else "#c62828",
                       title=f"{e.day} {e.side} level {e.level}: {e.qty} @ {e.price:,.2f} "
                             f"({e.notional:,.2f} USDC, leverage {e.entry_leverage:.2f})")
               for e in result.entries if e.day in index]
    # The ladder: each filled rung (its fill price) drawn from its fill until that swing's ladder is replaced.
    swings: dict[str, list[int]] = {}
    for e in result.entries:
        if e.side == "BUY" and e.day in index:
            swings.setdefault(e.intent_id.rsplit(":", 1)[0], []).append(index[e.day])
    keys = sorted(swings, key=lambda k: min(swings[k]))
    segments = []
    for pos, key in enumerate(keys):
        end = min(swings[keys[pos + 1]]) if pos + 1 < len(keys) else len(days) - 1
        for e in result.entries:
            if e.side == "BUY" and e.intent_id.rsplit(":", 1)[0] == key and e.day in index:
                segments.append(_Segment(start=index[e.day], end=max(end, index[e.day]), value=float(e.price),
                                         color="#2e7d32", title=f"ladder {key.rsplit(':', 1)[-1]}, level {e.level}"))
    charts = [_chart("Price (log scale) with entries and the filled ladder", days, price_series, log=True,
                     markers=markers, segments=segments)]
    equity = [_Series(label="strategy equity", color="#1f4e99", values=tuple(float(p.equity) for p in curve))]
    if curve and curve[0].close > 0:
        units = result.initial_cash / curve[0].close
        equity.append(_Series(label="buy and hold", color="#888", dashed=True,
                              values=tuple(float(units * p.close) for p in curve)))
    equity.append(_Series(label="cash", color="#2e7d32", area=True, values=tuple(float(p.cash) for p in curve)))
    charts.append(_chart("Equity and cash over time (USDC)", days, equity))
    if perp:
        dist = tuple(float((p.close - p.liq_price) / p.close * 100) if p.liq_price is not None and p.close > 0
                     else None for p in curve)
        hlines = []
        if risk_warn is not None:
            hlines.append(_HLine(value=float(risk_warn * 100), color="#e08a00", label="warn: entries blocked"))
        if risk_critical is not None:
            hlines.append(_HLine(value=float(risk_critical * 100), color="#c62828", label="critical: halt"))
        charts.append(_chart("Distance from close to the model liquidation price (%)", days,
                             [_Series(label="distance to liquidation", color="#c62828", values=dist)],
                             hlines=hlines, y_suffix=" %"))
    return charts


_CSS = """
body{font-family:sans-serif;max-width:1060px;margin:1.5em auto;color:#222;padding:0 1em}
h1{font-size:1.4em} h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;font-size:0.9em} td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:right}
th{background:#f4f4f4} td.l,th.l{text-align:left}
.danger{background:#fdecea;border:2px solid #c62828;padding:0.8em 1em;color:#8e1b1b}
.note{background:#fff8e1;border-left:4px solid #e0a800;padding:0.5em 1em}
"""


def render_html(result: BacktestResult, s: Summary, *, source: str, config_source: str,
                risk_warn: Decimal | None = None, risk_critical: Decimal | None = None) -> str:
    """One self-contained HTML page: figures, risk banner (perp), charts, entries, block counts, notes."""
    esc = html.escape
    title = f"nanpin backtest: {s.market_type} {s.symbol}, {_day(s.first_day)} .. {_day(s.last_day)}"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>{esc(title)}</h1>",
           f"<p>Data: {esc(source)}. Strategy configuration: {esc(config_source)}.</p>"]
    risk = _risk_lines(result, s)
    if risk:
        out.append('<div class="danger"><strong>' + esc(risk[0]) + "</strong><br>" + "<br>".join(
            esc(line) for line in risk[1:]) + "</div>")
    rows = [("initial cash", f"{_money(s.initial_cash)} USDC"),
            ("final equity", f"{_money(s.final_equity)} USDC ({_pct(s.return_frac)})")]
    if s.buy_hold_equity is not None and s.initial_cash > 0:
        rows.append(("buy and hold (reference)",
                     f"{_money(s.buy_hold_equity)} USDC ({_pct(s.buy_hold_equity / s.initial_cash - 1)})"))
    rows += [("max drawdown", f"{_pct_plain(s.max_drawdown_frac)} (peak {_day(s.drawdown_peak_day)}, trough "
                              f"{_day(s.drawdown_trough_day)})"),
             ("liquidation", f"YES on {_day(result.liquidated_on)}" if result.liquidated else "no"),
             ("halted", "yes" if result.halted else "no"),
             ("lowest cash", f"{_money(s.cash_low)} USDC on {_day(s.cash_low_day)} "
                             f"({_pct_plain(s.cash_low_share)} of equity)"),
             ("days fully invested (cash after the reserve below the smallest order)",
              f"{s.days_fully_invested} of {s.days}"),
             ("entries", f"{len(result.entries)} (bought {_money(s.bought_notional)} USDC, fees {_money(s.fees)})"),
             ("daily decisions", str(s.days))]
    if s.min_liq_distance_frac is not None:
        rows.append(("closest distance to liquidation",
                     f"{_pct_plain(s.min_liq_distance_frac)} on {_day(s.min_liq_distance_day)}"))
    out.append("<table>" + "".join(f'<tr><td class="l">{esc(k)}</td><td class="l">{esc(v)}</td></tr>'
                                   for k, v in rows) + "</table>")
    out.append('<div class="note"><strong>Read with care:</strong><ul>'
               + "".join(f"<li>{esc(n)}</li>" for n in result.notes) + "</ul></div>")
    out.append("<h2>Charts</h2>")
    out += _charts(result, risk_warn, risk_critical)
    out.append("<h2>Entries</h2>")
    if result.entries:
        out.append('<table><tr><th class="l">date</th><th class="l">side</th><th>level</th><th>price</th>'
                   "<th>qty</th><th>notional</th><th>fee</th><th>leverage</th></tr>")
        for e in result.entries:
            out.append(f'<tr><td class="l">{e.day}</td><td class="l">{e.side}</td><td>{esc(e.level)}</td>'
                       f"<td>{_money(e.price)}</td><td>{e.qty}</td><td>{_money(e.notional)}</td>"
                       f"<td>{_money(e.fee)}</td><td>{e.entry_leverage:.2f}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>No entries in this range.</p>")
    out.append("<h2>Decisions blocked, per code</h2>")
    if result.block_counts:
        out.append('<table><tr><th class="l">code</th><th>decisions</th></tr>' + "".join(
            f'<tr><td class="l">{esc(code)}</td><td>{count}</td></tr>'
            for code, count in sorted(result.block_counts.items(), key=lambda kv: (-kv[1], kv[0]))) + "</table>")
    else:
        out.append("<p>None.</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"

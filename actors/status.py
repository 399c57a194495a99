"""The status actor: one concise status line in the log on a fixed schedule, or a live table on a terminal.

Owns only presentation. It reads the engine's ``LatestValue`` holders (market view, account, risk,
strategy) and the supervisor's statistics without ever waiting on them, and consumes its own "notices"
subscription (``engine.notices``); it sends nothing anywhere, so it cannot slow the trading path.

Rules:

* Never a number for a stale price: a :class:`~engine.market.prices.Stale` quote is shown as ``STALE`` with
  its reason (and how long ago a value was last seen), never with a value.
* Ages are honest: a price's age is its age when the view was published plus the time since then.
* Plain mode logs one line every ``interval_s`` via ``logging.getLogger("engine.status")`` on a real
  schedule (``trio.sleep_until``; a late wake-up skips missed slots rather than bursting), and every notice
  as its own line as it arrives. Live mode (a ``rich`` table) redraws at most every ``refresh_s``.
* The formatting functions (:func:`format_status_line`, :func:`format_quote`, :func:`format_notice`,
  :func:`build_status_table`) are pure: every input, including the current time, is passed in.
"""

from __future__ import annotations

import logging
import math
import sys
from collections import deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Final, NoReturn, TypeVar

import attrs
import trio
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from engine.config import StatusConfig
from engine.events import AccountSnapshot, LevelBand, RiskState, StrategyStatus
from engine.market.prices import Price, Quote, Stale
from engine.market.view import MarketView
from engine.notices import Notice, Severity
from engine.runtime import LatestValue, SupervisorStatistics

__all__ = [
    "StatusSnapshot",
    "build_status_table",
    "format_level",
    "format_notice",
    "format_quote",
    "format_risk",
    "format_status_line",
    "run_status",
    "take_snapshot",
]

log = logging.getLogger("engine.status")

T = TypeVar("T")

_NA: Final = "n/a"
_LOG_LEVELS: Final = {
    Severity.INFO: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.CRITICAL: logging.CRITICAL,
}


@attrs.frozen(kw_only=True)
class StatusSnapshot:
    """Everything one status line shows, read at one instant (``now_s`` on the trio clock)."""

    symbol: str
    now_s: float
    view: MarketView | None
    account: AccountSnapshot | None
    risk: RiskState | None
    strategy: StrategyStatus | None
    restarts: int | None  # total actor restarts, None without supervisor statistics


def _num(value: Decimal) -> str:
    # Fixed-point, never scientific notation: "0.00001000" rather than "1.000E-5".
    return format(value, "f")


def _round(value: Decimal, places: int) -> Decimal:
    # Display only: averages and equities carry up to 28 digits, which says nothing a reader can use.
    return value.quantize(Decimal(1).scaleb(-places)).normalize() if value.is_finite() else value


def _age(seconds: float) -> str:
    return f"{seconds:.1f}s"


def format_quote(quote: Quote, *, elapsed_s: float = 0.0) -> str:
    """A price with its source and age, e.g. ``97123.5 (ws, 0.4s)``; a stale quote is ``STALE (...)``.

    ``elapsed_s`` is the time since the quote's view was published, added to its age.
    """
    elapsed = max(0.0, elapsed_s)
    match quote:
        case Price():
            source = f"{quote.source} cached" if quote.cached else quote.source
            return f"{_num(quote.value)} ({source}, {_age(quote.age_s + elapsed)})"
        case Stale():
            seen = "never seen" if quote.age_s is None else f"last seen {_age(quote.age_s + elapsed)} ago"
            return f"STALE ({quote.reason}; {seen})"
        case _:
            raise TypeError(f"not a quote: {quote!r}")


def format_level(level: LevelBand | None) -> str:
    """The next ladder level and its buy band, e.g. ``L2 95000 [94500, 95500]``."""
    if level is None:
        return "none"
    price, lo, hi = (_num(_round(v, 2)) for v in (level.price, level.band_lo, level.band_hi))
    return f"{level.name} {price} [{lo}, {hi}]"


def format_risk(risk: RiskState | None) -> str:
    """``ok``, ``HALTED (reason)`` or ``KILL SWITCH (reason)``; the kill switch wins over a halt."""
    if risk is None:
        return _NA
    reason = risk.halt_reason or "no reason given"
    if risk.kill_switch:
        return f"KILL SWITCH ({reason})"
    if risk.halted:
        return f"HALTED ({reason})"
    return "ok"


def _price_text(snap: StatusSnapshot) -> str:
    if snap.view is None:
        return "n/a (no market view yet)"
    try:
        state = snap.view.market(snap.symbol)
    except KeyError:
        return f"n/a ({snap.symbol} not in the market view)"
    return format_quote(state.price, elapsed_s=snap.now_s - snap.view.as_of_s)


def _position_text(account: AccountSnapshot | None) -> str:
    if account is None:
        return _NA
    if account.position_qty == 0:
        return "flat"
    return f"{_num(_round(account.position_qty, 8))} @ {_num(_round(account.avg_entry, 2))}"


def _equity_text(account: AccountSnapshot | None) -> str:
    if account is None or account.equity is None:
        return _NA
    return _num(_round(account.equity, 2))


def _next_level_text(strategy: StrategyStatus | None) -> str:
    return _NA if strategy is None else format_level(strategy.next_level)


def format_status_line(snap: StatusSnapshot) -> str:
    """One line: market, price (source, age) or STALE, next level, position, equity, risk, restarts."""
    restarts = _NA if snap.restarts is None else str(snap.restarts)
    return (
        f"{snap.symbol} price {_price_text(snap)}"
        f" | next {_next_level_text(snap.strategy)}"
        f" | pos {_position_text(snap.account)}"
        f" | equity {_equity_text(snap.account)}"
        f" | risk {format_risk(snap.risk)}"
        f" | restarts {restarts}"
    )


def format_notice(notice: Notice) -> str:
    """A notice as one line, e.g. ``fill: bought 0.01 at 95000`` (``[critical]`` marks severity)."""
    mark = "" if notice.severity is Severity.INFO else f"[{notice.severity.value}] "
    return f"{mark}{notice.kind}: {notice.text}"


def build_status_table(snap: StatusSnapshot, recent: Iterable[Notice] = ()) -> Table:
    """The live view: the same fields as the status line, one per row, then the latest notices.

    Cells are ``rich.text.Text`` (never markup strings), so brackets in reasons or bands print as written.
    """
    table = Table(title=f"nanpin engine - {snap.symbol}", show_header=False, expand=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    price = _price_text(snap)
    risk = format_risk(snap.risk)
    rows = [
        ("price", Text(price, style="red" if price.startswith("STALE") else "")),
        ("next level", Text(_next_level_text(snap.strategy))),
        ("position", Text(_position_text(snap.account))),
        ("equity", Text(_equity_text(snap.account))),
        ("risk", Text(risk, style="" if risk in ("ok", _NA) else "bold red")),
        ("restarts", Text(_NA if snap.restarts is None else str(snap.restarts))),
    ]
    rows += [("notice", Text(format_notice(notice))) for notice in recent]
    for name, value in rows:
        table.add_row(Text(name), value)
    return table


def _latest(holder: LatestValue[T]) -> T | None:
    try:
        return holder.get_nowait()[1]
    except trio.WouldBlock:
        return None


def take_snapshot(
    *,
    symbol: str,
    market: LatestValue[MarketView],
    account: LatestValue[AccountSnapshot],
    risk: LatestValue[RiskState],
    strategy: LatestValue[StrategyStatus],
    supervisor_stats: Callable[[], SupervisorStatistics] | None,
) -> StatusSnapshot:
    """Read every holder now, without waiting (a holder that has no value yet reads as None)."""
    restarts = None
    if supervisor_stats is not None:
        restarts = sum(actor.restarts for actor in supervisor_stats().actors)
    return StatusSnapshot(
        symbol=symbol,
        now_s=trio.current_time(),
        view=_latest(market),
        account=_latest(account),
        risk=_latest(risk),
        strategy=_latest(strategy),
        restarts=restarts,
    )


def _next_slot(next_at: float, interval_s: float, now: float) -> float:
    """The first slot of the schedule ``next_at + k * interval_s`` that is still in the future."""
    next_at += interval_s
    if next_at <= now:
        next_at += math.floor((now - next_at) / interval_s + 1) * interval_s
    return next_at


async def _log_notices(notices: trio.MemoryReceiveChannel[Notice], recent: deque[Notice] | None) -> None:
    async for notice in notices:
        if recent is not None:
            recent.append(notice)
        else:
            log.log(_LOG_LEVELS[notice.severity], "%s", format_notice(notice))


async def run_status(
    cfg: StatusConfig,
    *,
    market: LatestValue[MarketView],
    account: LatestValue[AccountSnapshot],
    risk: LatestValue[RiskState],
    strategy: LatestValue[StrategyStatus],
    supervisor_stats: Callable[[], SupervisorStatistics] | None,
    notices: trio.MemoryReceiveChannel[Notice],
    symbol: str,
    console: Console | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Show the engine's status until cancelled (see the module docstring for the two modes).

    ``console`` is where the live table is drawn (default: a rich Console on stdout); it is only used in
    live mode, which ``cfg.display = "auto"`` picks when stdout is a terminal.
    """

    def snapshot() -> StatusSnapshot:
        return take_snapshot(symbol=symbol, market=market, account=account, risk=risk, strategy=strategy,
                             supervisor_stats=supervisor_stats)

    live_mode = cfg.display == "live" or (cfg.display == "auto" and sys.stdout.isatty())
    async with notices, trio.open_nursery() as nursery:
        if not live_mode:
            nursery.start_soon(_log_notices, notices, None)
            task_status.started()
            next_at = trio.current_time() + cfg.interval_s
            while True:
                await trio.sleep_until(next_at)
                log.info("%s", format_status_line(snapshot()))
                next_at = _next_slot(next_at, cfg.interval_s, trio.current_time())
        recent: deque[Notice] = deque(maxlen=cfg.recent_notices)
        nursery.start_soon(_log_notices, notices, recent)
        live = Live(build_status_table(snapshot(), recent), console=console or Console(), auto_refresh=False)
        live.start()
        try:
            task_status.started()
            next_at = trio.current_time() + cfg.refresh_s
            while True:
                await trio.sleep_until(next_at)
                live.update(build_status_table(snapshot(), recent), refresh=True)
                next_at = _next_slot(next_at, cfg.refresh_s, trio.current_time())
        finally:
            # Restores the terminal's cursor; synchronous, so it needs no shielding.
            live.stop()

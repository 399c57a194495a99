"""Real candle history for the simulator: loading, tick quantisation, and kline aggregation.

Owns: :class:`CandleSeries` (one candle file, prices as integer ticks of the market tick), the loader for the
bundled gzip CSV files (``data/``), the kline interval table of ``backpack-protocol.md`` section 3.5, bucket
arithmetic on the wire time axis, and :func:`aggregate` which turns bars into REST kline rows.

Invariants: series are strictly ascending in open time; every bar satisfies ``low <= open, close <= high``
(rounding to the tick is monotone, so the source's consistency survives it); aggregation never invents a
bar: a bucket appears only if at least one source bar falls into it.
"""

from __future__ import annotations

import bisect
import csv
import gzip
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import attrs

__all__ = [
    "DATA_DIR",
    "DEFAULT_DAILY_FILE",
    "DEFAULT_MINUTE_FILE",
    "INTERVALS_MS",
    "Bar",
    "CandleSeries",
    "aggregate",
    "bucket_end_ms",
    "bucket_start_ms",
    "fmt_datetime_ms",
    "fmt_kline_time",
    "load_candles",
]

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
DEFAULT_MINUTE_FILE = DATA_DIR / "btcusdt_binance_spot_1m_2021-04-20_2021-05-20.csv.gz"
DEFAULT_DAILY_FILE = DATA_DIR / "btcusdt_binance_spot_1d_2017-08-17_2026-01-19.csv.gz"

_MIN = 60_000
_DAY = 86_400_000
INTERVALS_MS: dict[str, int] = {
    "1s": 1000, "1m": _MIN, "3m": 3 * _MIN, "5m": 5 * _MIN, "15m": 15 * _MIN, "30m": 30 * _MIN,
    "1h": 60 * _MIN, "2h": 120 * _MIN, "4h": 240 * _MIN, "6h": 360 * _MIN, "8h": 480 * _MIN,
    "12h": 720 * _MIN, "1d": _DAY, "3d": 3 * _DAY, "1w": 7 * _DAY, "1month": 30 * _DAY,
}
# Unix day 0 was a Thursday; weeks start on Monday (1970-01-05).
_WEEK_OFFSET_MS = 4 * _DAY


@attrs.frozen(kw_only=True)
class CandleSeries:
    """One candle file: parallel columns, prices in integer ticks, volume in base units."""

    interval_ms: int
    times: list[int]
    opens: list[int]
    highs: list[int]
    lows: list[int]
    closes: list[int]
    volumes: list[Decimal]
    source: str = ""

    def __len__(self) -> int:
        return len(self.times)

    def index_at_or_before(self, t_ms: int) -> int:
        """Index of the last bar opening at or before ``t_ms`` (-1 if none)."""
        return bisect.bisect_right(self.times, t_ms) - 1

    def index_from(self, t_ms: int) -> int:
        """Index of the first bar opening at or after ``t_ms``."""
        return bisect.bisect_left(self.times, t_ms)


def _ticks(text: str, tick: Decimal) -> int:
    return int((Decimal(text) / tick).to_integral_value(ROUND_HALF_EVEN))


def load_candles(path: Path | str, *, tick: Decimal = Decimal("0.1")) -> CandleSeries:
    """Read a ``open_time_ms,open,high,low,close,volume`` gzip CSV; prices rounded to ``tick``."""
    p = Path(path)
    times: list[int] = []
    cols: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
    vols: list[Decimal] = []
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if header[:6] != ["open_time_ms", "open", "high", "low", "close", "volume"]:
            raise ValueError(f"{p.name}: unexpected header {header!r}")
        for row in reader:
            t = int(row[0])
            if times and t <= times[-1]:
                raise ValueError(f"{p.name}: timestamps not strictly ascending at {t}")
            times.append(t)
            for col, text in zip(cols, row[1:5], strict=True):
                col.append(_ticks(text, tick))
            vols.append(Decimal(row[5]))
    if len(times) < 2:
        raise ValueError(f"{p.name}: need at least two candles")
    interval = min(b - a for a, b in zip(times, times[1:], strict=False))
    return CandleSeries(interval_ms=interval, times=times, opens=cols[0], highs=cols[1], lows=cols[2],
                        closes=cols[3], volumes=vols, source=p.name)


@attrs.frozen(kw_only=True)
class Bar:
    """One bar on the wire axis, ready to aggregate (prices in ticks)."""

    start_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: Decimal
    quote_volume: Decimal
    trades: int


def bucket_start_ms(t_ms: int, interval: str) -> int:
    """Start of the kline bucket of ``interval`` holding wire time ``t_ms``."""
    if interval == "1month":
        d = datetime.fromtimestamp(t_ms // 1000, UTC)
        return int(datetime(d.year, d.month, 1, tzinfo=UTC).timestamp()) * 1000
    size = INTERVALS_MS[interval]
    if interval == "1w":
        return (t_ms - _WEEK_OFFSET_MS) // size * size + _WEEK_OFFSET_MS
    return t_ms // size * size


def bucket_end_ms(start_ms: int, interval: str) -> int:
    if interval == "1month":
        d = datetime.fromtimestamp(start_ms // 1000, UTC)
        y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return int(datetime(y, m, 1, tzinfo=UTC).timestamp()) * 1000
    return start_ms + INTERVALS_MS[interval]


def fmt_kline_time(t_ms: int) -> str:
    """REST kline ``start``/``end``: ``YYYY-MM-DD HH:MM:SS`` UTC."""
    return datetime.fromtimestamp(t_ms // 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_datetime_ms(t_ms: int) -> str:
    """History timestamps: naive UTC ISO with milliseconds (``2026-09-01T17:54:04.094``)."""
    d = datetime.fromtimestamp(t_ms // 1000, UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{t_ms % 1000:03d}"


def _fmt_price(ticks: int, tick: Decimal) -> str:
    value = tick * ticks
    return format(value.normalize(), "f") if value else "0"


def aggregate(bars: Iterable[Bar], interval: str, tick: Decimal) -> Iterator[dict[str, Any]]:
    """Group ascending bars into kline rows of ``interval`` (REST shape of section 3.5)."""
    cur: list[Any] | None = None  # [start, o, h, l, c, v, qv, n]
    for bar in bars:
        start = bucket_start_ms(bar.start_ms, interval)
        if cur is not None and cur[0] == start:
            cur[2] = max(cur[2], bar.high)
            cur[3] = min(cur[3], bar.low)
            cur[4] = bar.close
            cur[5] += bar.volume
            cur[6] += bar.quote_volume
            cur[7] += bar.trades
            continue
        if cur is not None:
            yield _row(cur, interval, tick)
        cur = [start, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.quote_volume, bar.trades]
    if cur is not None:
        yield _row(cur, interval, tick)


def _row(cur: list[Any], interval: str, tick: Decimal) -> dict[str, Any]:
    start = cur[0]
    qv: Decimal = cur[6]
    return {
        "start": fmt_kline_time(start),
        "end": fmt_kline_time(bucket_end_ms(start, interval)),
        "open": _fmt_price(cur[1], tick),
        "high": _fmt_price(cur[2], tick),
        "low": _fmt_price(cur[3], tick),
        "close": _fmt_price(cur[4], tick),
        "volume": format(cur[5].normalize(), "f") if cur[5] else "0",
        "quoteVolume": format(qv.quantize(Decimal("0.0001")).normalize(), "f") if qv else "0",
        "trades": str(cur[7]),
    }

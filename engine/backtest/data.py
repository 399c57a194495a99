"""Reading daily candle files for backtests (the bundled ``data/`` format); no network, no clock.

Owns the CSV format ``open_time_ms,open,high,low,close,volume`` (gzip when the name ends in ``.gz``), rows
ascending by bar open time in UTC milliseconds. Invariants: every returned bar starts at 00:00 UTC and is
exactly one day after the previous one; prices are the file's text as Decimal (never rounded or filled).
A file that breaks any of this raises :class:`~engine.errors.ConfigError` naming the file and the row.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from engine.errors import ConfigError
from engine.nanpin import Bar

__all__ = ["DEFAULT_DAILY_FILE", "HEADER", "default_daily_path", "load_daily_bars"]

HEADER = ("open_time_ms", "open", "high", "low", "close", "volume")
#: The bundled daily candles (provenance in data/README.md).
DEFAULT_DAILY_FILE = "btcusdt_binance_spot_1d_2017-08-17_2026-01-19.csv.gz"
_DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def default_daily_path() -> Path:
    """``data/<DEFAULT_DAILY_FILE>`` of the source tree this package lives in."""
    return Path(__file__).resolve().parents[2] / "data" / DEFAULT_DAILY_FILE


def _rows(path: Path) -> Iterator[list[str]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--data: cannot read {path}: {exc.strerror or exc}") from exc
    try:
        text = gzip.decompress(raw).decode("utf-8") if path.suffix == ".gz" else raw.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--data: {path} is not a readable candle file: {exc}") from exc
    yield from csv.reader(io.StringIO(text))


def load_daily_bars(path: str | Path) -> tuple[Bar, ...]:
    """All bars of a daily candle file, checked as the module docstring says."""
    file = Path(path)
    rows = _rows(file)
    header = next(rows, None)
    if header is None or tuple(h.strip() for h in header) != HEADER:
        raise ConfigError(f"--data: {file} must start with the header {','.join(HEADER)}; got {header}")
    bars: list[Bar] = []
    prev_ms: int | None = None
    for line_no, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != len(HEADER):
            raise ConfigError(f"--data: {file} line {line_no}: expected {len(HEADER)} fields; got {len(row)}")
        try:
            start_ms = int(row[0])
            o, h, lo, c, v = (Decimal(x) for x in row[1:])
        except (ValueError, InvalidOperation) as exc:
            raise ConfigError(f"--data: {file} line {line_no}: not a number ({exc})") from exc
        if start_ms % _DAY_MS:
            raise ConfigError(f"--data: {file} line {line_no}: {start_ms} is not a 00:00 UTC daily open time")
        if prev_ms is not None and start_ms != prev_ms + _DAY_MS:
            raise ConfigError(f"--data: {file} line {line_no}: bar {start_ms} does not follow {prev_ms} by one "
                              "day (gaps are not filled)")
        prev_ms = start_ms
        bars.append(Bar(start=_EPOCH + timedelta(milliseconds=start_ms), open=o, high=h, low=lo, close=c,
                        volume=v))
    if not bars:
        raise ConfigError(f"--data: {file} holds no bars")
    return tuple(bars)

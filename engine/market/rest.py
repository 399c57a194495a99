"""Pure decoding of the public REST bodies the data layer polls (protocol sections 3.3-3.7).

Owns: ``/api/v1/depth`` snapshots, ``/api/v1/ticker``, ``/api/v1/markPrices``, ``/api/v1/klines`` rows, and the
error body. Every decoder takes the parsed JSON value and raises ``RemoteProtocolError`` naming the endpoint
and field on anything malformed; decimals are parsed from strings only (the wire never sends floats).

Invariants: depth levels are returned best first (the wire lists both sides ascending, so bids are reversed);
kline bars with null OHLC are reported as empty buckets, never given a price.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from engine.backpack.events import Levels
from engine.errors import RemoteProtocolError

__all__ = [
    "DepthSnapshot",
    "KlineRow",
    "MarkPriceRow",
    "decode_depth",
    "decode_klines",
    "decode_mark_prices",
    "decode_ticker_last",
]


@attrs.frozen(kw_only=True)
class DepthSnapshot:
    symbol: str
    last_update_id: int
    bids: Levels  # best (highest) first
    asks: Levels  # best (lowest) first
    timestamp_us: int | None


@attrs.frozen(kw_only=True)
class MarkPriceRow:
    symbol: str
    mark_price: Decimal
    index_price: Decimal | None
    funding_rate: Decimal | None
    next_funding_ms: int | None


@attrs.frozen(kw_only=True)
class KlineRow:
    start_ms: int
    end_ms: int
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    volume: Decimal
    trades: int


def _dec(value: Any, where: str) -> Decimal:
    if not isinstance(value, str):
        raise RemoteProtocolError(f"{where}: expected a decimal string, got {value!r:.60}")
    try:
        out = Decimal(value)
    except InvalidOperation:
        raise RemoteProtocolError(f"{where}: not a decimal: {value!r:.60}") from None
    if not out.is_finite():
        raise RemoteProtocolError(f"{where}: not finite: {value!r:.60}")
    return out


def _opt_dec(value: Any, where: str) -> Decimal | None:
    return None if value is None else _dec(value, where)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise RemoteProtocolError(f"{where}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise RemoteProtocolError(f"{where}: expected an integer, got {value!r:.60}")


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RemoteProtocolError(f"{where}: expected an object, got {value!r:.60}")
    return value


def _levels(value: Any, where: str) -> list[tuple[Decimal, Decimal]]:
    if not isinstance(value, list):
        raise RemoteProtocolError(f"{where}: expected a list of levels")
    out = []
    for i, level in enumerate(value):
        if not isinstance(level, list) or len(level) != 2:
            raise RemoteProtocolError(f"{where}[{i}]: expected [price, size]")
        out.append((_dec(level[0], f"{where}[{i}].price"), _dec(level[1], f"{where}[{i}].size")))
    return out


def decode_depth(body: Any, symbol: str) -> DepthSnapshot:
    d = _obj(body, "depth")
    bids = _levels(d.get("bids"), "depth.bids")
    asks = _levels(d.get("asks"), "depth.asks")
    ts = d.get("timestamp")
    return DepthSnapshot(
        symbol=symbol,
        last_update_id=_int(d.get("lastUpdateId"), "depth.lastUpdateId"),
        bids=tuple(sorted(bids, key=lambda lv: lv[0], reverse=True)),
        asks=tuple(sorted(asks, key=lambda lv: lv[0])),
        timestamp_us=None if ts is None else _int(ts, "depth.timestamp"),
    )


def decode_ticker_last(body: Any) -> Decimal:
    return _dec(_obj(body, "ticker").get("lastPrice"), "ticker.lastPrice")


def decode_mark_prices(body: Any) -> tuple[MarkPriceRow, ...]:
    if not isinstance(body, list):
        raise RemoteProtocolError("markPrices: expected an array")
    rows = []
    for i, item in enumerate(body):
        d = _obj(item, f"markPrices[{i}]")
        nxt = d.get("nextFundingTimestamp")
        sym = d.get("symbol")
        if not isinstance(sym, str):
            raise RemoteProtocolError(f"markPrices[{i}].symbol: expected a string")
        rows.append(MarkPriceRow(
            symbol=sym,
            mark_price=_dec(d.get("markPrice"), f"markPrices[{i}].markPrice"),
            index_price=_opt_dec(d.get("indexPrice"), f"markPrices[{i}].indexPrice"),
            funding_rate=_opt_dec(d.get("fundingRate"), f"markPrices[{i}].fundingRate"),
            next_funding_ms=None if nxt is None else _int(nxt, f"markPrices[{i}].nextFundingTimestamp"),
        ))
    return tuple(rows)


def _utc_ms(value: Any, where: str) -> int:
    if not isinstance(value, str):
        raise RemoteProtocolError(f"{where}: expected a datetime string")
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T"))
    except ValueError:
        raise RemoteProtocolError(f"{where}: not a datetime: {value!r:.60}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def decode_klines(body: Any) -> tuple[KlineRow, ...]:
    if not isinstance(body, list):
        raise RemoteProtocolError("klines: expected an array")
    rows = []
    for i, item in enumerate(body):
        d = _obj(item, f"klines[{i}]")
        w = f"klines[{i}]"
        trades = d.get("trades", "0")
        rows.append(KlineRow(
            start_ms=_utc_ms(d.get("start"), f"{w}.start"),
            end_ms=_utc_ms(d.get("end"), f"{w}.end"),
            open=_opt_dec(d.get("open"), f"{w}.open"),
            high=_opt_dec(d.get("high"), f"{w}.high"),
            low=_opt_dec(d.get("low"), f"{w}.low"),
            close=_opt_dec(d.get("close"), f"{w}.close"),
            volume=_dec(d.get("volume", "0"), f"{w}.volume"),
            trades=_int(trades, f"{w}.trades"),
        ))
    return tuple(rows)

"""Decode and encode Backpack WebSocket frames (section 5) to and from ``engine.backpack.events``.

Rule 1: ``decode_frame`` is total: it returns a ``WsEvent`` or raises ``RemoteProtocolError`` whose message names
the stream and the field. No other exception escapes (JSON, decimal, unicode and recursion failures are
translated here, at this one boundary).
Rule 2: times become integer microseconds (``E``/``T`` are µs, ``markPrice.n`` is ms, kline ``t``/``T`` are
naive UTC ISO strings); integers are accepted bare or quoted; decimals must be JSON strings holding a finite
number; unknown extra fields are ignored.
Rule 3: ``encode_frame`` produces the wire dict (decimals rendered as plain text, padding kept) so that
``decode_frame(json.dumps(encode_frame(e))) == e`` for every event; the simulator reuses it.

JSON is parsed with msgspec. For plain (untyped) parsing msgspec and orjson measured alike here (0.2-0.4x
``json.loads`` each, see ``bench/bench_decode.py``); msgspec wins because it can also validate a frame's
structure straight into typed structs in C, which the depth fast path below uses (orjson cannot). Decoded
decimal texts are cached (bounded) because prices and sizes repeat on a live feed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar

import msgspec

from engine.backpack.events import (
    DEPTH_WINDOWS_MS,
    KLINE_INTERVALS,
    BalanceUpdate,
    BookTicker,
    Depth,
    Kline,
    Levels,
    Liquidation,
    MarkPrice,
    OpenInterest,
    OrderEventKind,
    OrderStatus,
    OrderType,
    OrderUpdate,
    PositionEventKind,
    PositionUpdate,
    Side,
    Ticker,
    TimeInForce,
    Trade,
    WsError,
    WsEvent,
)
from engine.errors import RemoteProtocolError

__all__ = [
    "MISSING",
    "FieldError",
    "decode_frame",
    "encode_frame",
    "parse_json",
]

_decoder = msgspec.json.Decoder()

# Decimals further than this many orders of magnitude from 1 are not prices or sizes; rejecting them here
# keeps later quantize/arithmetic from hitting context limits on hostile input.
_MAX_ADJUSTED = 40
_MAX_INT = 2**63 - 1
_MISSING: Any = object()
#: Sentinel for "key absent" shared with the REST decoders (distinct from JSON null).
MISSING: Any = _MISSING
_E = TypeVar("_E")


class FieldError(Exception):
    """Internal: one field failed validation. Turned into ``RemoteProtocolError`` with its location."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def parse_json(raw: str | bytes, what: str) -> Any:
    """Parse JSON text, translating every parser failure into ``RemoteProtocolError``."""
    try:
        return _decoder.decode(raw)
    except (ValueError, TypeError, RecursionError) as exc:
        raise RemoteProtocolError(f"{what}: not valid JSON: {exc}") from exc


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- field readers (raise FieldError; kept small and branch-light because they run per field) -------------


# Validated decimal texts -> Decimal. Prices and sizes repeat heavily on a live feed (the same levels and
# round sizes over and over), and a dict hit is several times cheaper than Decimal(text) plus its range
# checks. Only strings that passed validation are stored, so a hit needs no further checking; Decimal is
# immutable, so sharing instances is safe. Bounded by clearing: worst case is a cold cache, never growth.
_DECIMAL_CACHE_MAX = 1 << 16


class _BadDecimal(Exception):
    """Internal: a text that is not an acceptable decimal; the caller re-decodes slowly for the message."""


class _DecimalCache(dict[str, Decimal]):
    """``cache[text]`` returns the validated Decimal, computing and storing it on a miss."""

    def __missing__(self, key: str) -> Decimal:
        if key.__class__ is str:
            try:
                result = Decimal(key)
            except InvalidOperation:
                raise _BadDecimal from None
            if result.is_finite() and -_MAX_ADJUSTED < result.adjusted() < _MAX_ADJUSTED:
                if len(self) >= _DECIMAL_CACHE_MAX:
                    self.clear()
                self[key] = result
                return result
        raise _BadDecimal


_DECIMAL_CACHE = _DecimalCache()


def _decimal_slow(value: Any, field: str) -> Decimal:
    if value.__class__ is str:
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise FieldError(field, f"not a decimal: {_show(value)}") from None
        if result.is_finite() and -_MAX_ADJUSTED < result.adjusted() < _MAX_ADJUSTED:
            if len(_DECIMAL_CACHE) >= _DECIMAL_CACHE_MAX:
                _DECIMAL_CACHE.clear()
            _DECIMAL_CACHE[value] = result
            return result
        raise FieldError(field, f"decimal out of range: {_show(value)}")
    if value is _MISSING:
        raise FieldError(field, "missing")
    raise FieldError(field, f"expected a decimal string, got {_show(value)}")


def _level_decimal(value: Any, field: str, i: int, j: int) -> Decimal:
    """Cache miss inside a level list: the location text is only built if the value is bad."""
    if value.__class__ is str:
        try:
            result = Decimal(value)
        except InvalidOperation:
            pass
        else:
            if result.is_finite() and -_MAX_ADJUSTED < result.adjusted() < _MAX_ADJUSTED:
                if len(_DECIMAL_CACHE) >= _DECIMAL_CACHE_MAX:
                    _DECIMAL_CACHE.clear()
                _DECIMAL_CACHE[value] = result
                return result
    return _decimal_slow(value, f"{field}[{i}][{j}]")


def to_decimal(value: Any, field: str) -> Decimal:
    """A finite decimal from a JSON string (bare numbers, NaN, infinities and huge exponents are refused)."""
    try:
        # Only str keys are ever stored, so an int/float/bool can never hit; lists and dicts raise TypeError.
        result = _DECIMAL_CACHE.get(value)
    except TypeError:
        result = None
    if result is not None:
        return result
    return _decimal_slow(value, field)


def to_opt_decimal(value: Any, field: str) -> Decimal | None:
    if value is None or value is _MISSING:
        return None
    return to_decimal(value, field)


def to_int(value: Any, field: str) -> int:
    """A non-negative integer from a JSON integer or a quoted integer."""
    cls = value.__class__
    if cls is int:
        if 0 <= value <= _MAX_INT:
            return int(value)
        raise FieldError(field, f"integer out of range: {_show(value)}")
    if cls is str and 0 < len(value) <= 19 and value.isascii() and value.isdigit():
        parsed = int(value)
        if parsed <= _MAX_INT:
            return parsed
        raise FieldError(field, f"integer out of range: {_show(value)}")
    if value is _MISSING:
        raise FieldError(field, "missing")
    raise FieldError(field, f"expected an integer, got {_show(value)}")


def to_opt_int(value: Any, field: str) -> int | None:
    if value is None or value is _MISSING:
        return None
    return to_int(value, field)


def to_str(value: Any, field: str) -> str:
    if value.__class__ is str:
        return str(value)
    if value is _MISSING:
        raise FieldError(field, "missing")
    raise FieldError(field, f"expected a string, got {_show(value)}")


def to_opt_str(value: Any, field: str) -> str | None:
    if value is None or value is _MISSING:
        return None
    return to_str(value, field)


def to_id(value: Any, field: str) -> str:
    """An identifier the wire sends as a string or a number (order, position, strategy ids)."""
    if value.__class__ is int and value >= 0:
        return str(value)
    return to_str(value, field)


def to_opt_id(value: Any, field: str) -> str | None:
    if value is None or value is _MISSING:
        return None
    return to_id(value, field)


def to_bool(value: Any, field: str) -> bool:
    if value is True or value is False:
        return bool(value)
    if value is _MISSING:
        raise FieldError(field, "missing")
    raise FieldError(field, f"expected a boolean, got {_show(value)}")


def to_opt_bool(value: Any, field: str) -> bool | None:
    if value is None or value is _MISSING:
        return None
    return to_bool(value, field)


def to_naive_utc(value: Any, field: str) -> datetime:
    """A naive ISO-8601 UTC timestamp (``T`` or space separated) as an aware UTC datetime."""
    text = to_str(value, field)
    if not 10 <= len(text) <= 40:
        raise FieldError(field, f"not a timestamp: {_show(text)}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise FieldError(field, f"not a timestamp: {_show(text)}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise FieldError(field, f"timestamp out of range: {_show(text)}") from None


def to_enum(enum_cls: Callable[[Any], _E], value: Any, field: str) -> _E:
    try:
        return enum_cls(value)
    except (ValueError, TypeError):
        raise FieldError(field, f"unknown value {_show(value)}") from None


def _levels(value: Any, field: str) -> Levels:
    """Depth levels ``[[price, size], ...]``; the hot loop of depth decoding, so field names are built lazily."""
    if value.__class__ is not list:
        if value is _MISSING:
            raise FieldError(field, "missing")
        raise FieldError(field, f"expected a list of [price, size], got {_show(value)}")
    get = _DECIMAL_CACHE.get
    out: list[tuple[Decimal, Decimal]] = []
    append = out.append
    i = 0
    try:
        for level in value:
            if level.__class__ is not list or len(level) != 2:
                raise FieldError(f"{field}[{i}]", f"expected [price, size], got {_show(level)}")
            price, size = level
            p = get(price)
            if p is None:
                p = _level_decimal(price, field, i, 0)
            q = get(size)
            if q is None:
                q = _level_decimal(size, field, i, 1)
            append((p, q))
            i += 1
    except TypeError:
        raise FieldError(f"{field}[{i}]", "expected decimal strings") from None
    return tuple(out)


def _us_from_ms(value: int | None) -> int | None:
    return None if value is None else value * 1000


def _expect_event(data: dict[str, Any], name: str) -> None:
    e = data.get("e", _MISSING)
    if e != name:
        raise FieldError("e", f"expected {name!r}, got {_show(e) if e is not _MISSING else 'nothing'}")


def _symbol(data: dict[str, Any], expected: str | None) -> str:
    symbol = to_str(data.get("s", _MISSING), "s")
    if expected is not None and symbol != expected:
        raise FieldError("s", f"symbol {symbol!r} does not match the stream's {expected!r}")
    return symbol


# --- per-stream decoders: (stream, rest of the stream name after the type, payload) -> event ---------------


def _decode_ticker(stream: str, rest: str, d: dict[str, Any]) -> Ticker:
    g = d.get
    if g("e") != "ticker":
        _expect_event(d, "ticker")
    symbol = g("s")
    if symbol != rest:
        symbol = _symbol(d, rest)
    return Ticker(
        stream=stream,
        symbol=symbol,
        event_time_us=_fast_int(d, "E"),
        first_price=to_decimal(g("o", _MISSING), "o"),
        last_price=to_decimal(g("c", _MISSING), "c"),
        high=to_decimal(g("h", _MISSING), "h"),
        low=to_decimal(g("l", _MISSING), "l"),
        base_volume=to_decimal(g("v", _MISSING), "v"),
        quote_volume=to_decimal(g("V", _MISSING), "V"),
        trades=_fast_int(d, "n"),
    )


def _fast_int(d: dict[str, Any], key: str) -> int:
    value = d.get(key, _MISSING)
    if value.__class__ is int and 0 <= value <= _MAX_INT:
        return int(value)
    return to_int(value, key)


def _decode_book_ticker(stream: str, rest: str, d: dict[str, Any]) -> BookTicker:
    g = d.get
    if g("e") != "bookTicker":
        _expect_event(d, "bookTicker")
    symbol = g("s")
    if symbol != rest:
        symbol = _symbol(d, rest)
    a, sa, b, sb = g("a"), g("A"), g("b"), g("B")
    return BookTicker(
        stream=stream,
        symbol=symbol,
        event_time_us=_fast_int(d, "E"),
        engine_time_us=_fast_int(d, "T"),
        update_id=_fast_int(d, "u"),
        ask_price=None if a is None else to_decimal(a, "a"),
        ask_size=None if sa is None else to_decimal(sa, "A"),
        bid_price=None if b is None else to_decimal(b, "b"),
        bid_size=None if sb is None else to_decimal(sb, "B"),
    )


def _depth_window(rest: str) -> tuple[int | None, str]:
    """Split ``[<window>ms.]<symbol>`` into the window (None for real time) and the symbol."""
    head, dot, tail = rest.partition(".")
    if dot and head.endswith("ms") and not head[:1].isalpha():
        # depth.<window>.<symbol>; a symbol never ends in "ms" before a dot, windows never start with a letter.
        digits = head[:-2]
        if not (digits.isascii() and digits.isdigit()) or int(digits) not in DEPTH_WINDOWS_MS:
            raise FieldError("stream", f"unknown depth window {head!r}")
        return int(digits), tail
    return None, rest


def _decode_depth(stream: str, rest: str, d: dict[str, Any]) -> Depth:
    window_ms, rest = _depth_window(rest)
    g = d.get
    if g("e") != "depth":
        _expect_event(d, "depth")
    symbol = g("s")
    if symbol != rest:
        symbol = _symbol(d, rest)
    first = _fast_int(d, "U")
    last = _fast_int(d, "u")
    if first > last:
        raise FieldError("U", f"first update id {first} is after the last {last}")
    return Depth(
        stream=stream,
        symbol=symbol,
        window_ms=window_ms,
        event_time_us=_fast_int(d, "E"),
        engine_time_us=_fast_int(d, "T"),
        first_update_id=first,
        last_update_id=last,
        bids=_levels(g("b", _MISSING), "b"),
        asks=_levels(g("a", _MISSING), "a"),
    )


def _decode_trade(stream: str, rest: str, d: dict[str, Any]) -> Trade:
    _expect_event(d, "trade")
    g = d.get
    return Trade(
        stream=stream,
        symbol=_symbol(d, rest),
        event_time_us=to_int(g("E", _MISSING), "E"),
        engine_time_us=to_int(g("T", _MISSING), "T"),
        trade_id=to_int(g("t", _MISSING), "t"),
        price=to_decimal(g("p", _MISSING), "p"),
        quantity=to_decimal(g("q", _MISSING), "q"),
        buyer_order_id=to_id(g("b", _MISSING), "b"),
        seller_order_id=to_id(g("a", _MISSING), "a"),
        buyer_is_maker=to_bool(g("m", _MISSING), "m"),
    )


def _decode_kline(stream: str, rest: str, d: dict[str, Any]) -> Kline:
    interval, dot, symbol = rest.partition(".")
    if not dot or interval not in KLINE_INTERVALS:
        raise FieldError("stream", f"unknown kline interval {interval!r}")
    _expect_event(d, "kline")
    g = d.get
    return Kline(
        stream=stream,
        symbol=_symbol(d, symbol),
        interval=interval,
        event_time_us=to_int(g("E", _MISSING), "E"),
        start=to_naive_utc(g("t", _MISSING), "t"),
        end=to_naive_utc(g("T", _MISSING), "T"),
        open=to_opt_decimal(g("o"), "o"),
        high=to_opt_decimal(g("h"), "h"),
        low=to_opt_decimal(g("l"), "l"),
        close=to_opt_decimal(g("c"), "c"),
        volume=to_decimal(g("v", _MISSING), "v"),
        trades=to_int(g("n", _MISSING), "n"),
        closed=to_bool(g("X", _MISSING), "X"),
    )


def _decode_mark_price(stream: str, rest: str, d: dict[str, Any]) -> MarkPrice:
    _expect_event(d, "markPrice")
    g = d.get
    return MarkPrice(
        stream=stream,
        symbol=_symbol(d, rest),
        event_time_us=to_int(g("E", _MISSING), "E"),
        engine_time_us=to_opt_int(g("T"), "T"),
        mark_price=to_decimal(g("p", _MISSING), "p"),
        index_price=to_opt_decimal(g("i"), "i"),
        funding_rate=to_opt_decimal(g("f"), "f"),
        next_funding_time_us=_us_from_ms(to_opt_int(g("n"), "n")),
    )


def _decode_open_interest(stream: str, rest: str, d: dict[str, Any]) -> OpenInterest:
    _expect_event(d, "openInterest")
    g = d.get
    return OpenInterest(
        stream=stream,
        symbol=_symbol(d, rest),
        event_time_us=to_int(g("E", _MISSING), "E"),
        engine_time_us=to_opt_int(g("T"), "T"),
        open_interest=to_decimal(g("o", _MISSING), "o"),
    )


def _decode_liquidation(stream: str, rest: str, d: dict[str, Any]) -> Liquidation:
    _expect_event(d, "liquidation")
    g = d.get
    return Liquidation(
        stream=stream,
        symbol=_symbol(d, rest or None),
        event_time_us=to_int(g("E", _MISSING), "E"),
        engine_time_us=to_opt_int(g("T"), "T"),
        side=to_enum(Side, g("S", _MISSING), "S"),
        price=to_decimal(g("p", _MISSING), "p"),
        quantity=to_decimal(g("q", _MISSING), "q"),
    )


_WS_ORDER_TYPES = {"LIMIT": OrderType.LIMIT, "MARKET": OrderType.MARKET}


def _decode_order_update(stream: str, rest: str, d: dict[str, Any]) -> OrderUpdate:
    g = d.get
    kind = to_enum(OrderEventKind, g("e", _MISSING), "e")
    raw_type = g("o", _MISSING)
    order_type = _WS_ORDER_TYPES.get(raw_type) if raw_type.__class__ is str else None
    if order_type is None:
        raise FieldError("o", f"unknown order type {_show(g('o'))}")
    return OrderUpdate(
        stream=stream,
        symbol=_symbol(d, rest or None),
        kind=kind,
        event_time_us=to_int(g("E", _MISSING), "E"),
        engine_time_us=to_int(g("T", _MISSING), "T"),
        order_id=to_id(g("i", _MISSING), "i"),
        client_id=to_opt_int(g("c"), "c"),
        side=to_enum(Side, g("S", _MISSING), "S"),
        order_type=order_type,
        time_in_force=to_enum(TimeInForce, g("f", _MISSING), "f"),
        status=to_enum(OrderStatus, g("X", _MISSING), "X"),
        quantity=to_opt_decimal(g("q"), "q"),
        quote_quantity=to_opt_decimal(g("Q"), "Q"),
        price=to_opt_decimal(g("p"), "p"),
        executed_quantity=to_decimal(g("z", _MISSING), "z"),
        executed_quote_quantity=to_decimal(g("Z", _MISSING), "Z"),
        trigger_price=to_opt_decimal(g("P"), "P"),
        trigger_by=to_opt_str(g("B"), "B"),
        trigger_quantity=to_opt_str(g("Y"), "Y"),
        take_profit_trigger_price=to_opt_decimal(g("a"), "a"),
        stop_loss_trigger_price=to_opt_decimal(g("b"), "b"),
        take_profit_limit_price=to_opt_decimal(g("j"), "j"),
        stop_loss_limit_price=to_opt_decimal(g("k"), "k"),
        take_profit_trigger_by=to_opt_str(g("d"), "d"),
        stop_loss_trigger_by=to_opt_str(g("g"), "g"),
        expiry_reason=to_opt_str(g("R"), "R"),
        trade_id=to_opt_int(g("t"), "t"),
        fill_quantity=to_opt_decimal(g("l"), "l"),
        fill_price=to_opt_decimal(g("L"), "L"),
        is_maker=to_opt_bool(g("m"), "m"),
        fee=to_opt_decimal(g("n"), "n"),
        fee_symbol=to_opt_str(g("N"), "N"),
        self_trade_prevention=to_opt_str(g("V"), "V"),
        reduce_only=to_opt_bool(g("r"), "r"),
        post_only=to_opt_bool(g("y"), "y"),
        origin=to_opt_str(g("O"), "O"),
        related_order_id=to_opt_id(g("I"), "I"),
        strategy_id=to_opt_id(g("H"), "H"),
    )


def _decode_position_update(stream: str, rest: str, d: dict[str, Any]) -> PositionUpdate:
    g = d.get
    e = g("e", _MISSING)
    # The on-subscribe snapshot of current positions carries no "e" (section 5.5).
    kind = PositionEventKind.SNAPSHOT if e is _MISSING else to_enum(PositionEventKind, e, "e")
    if e == PositionEventKind.SNAPSHOT.value:
        raise FieldError("e", f"unknown value {_show(e)}")
    return PositionUpdate(
        stream=stream,
        symbol=_symbol(d, rest or None),
        kind=kind,
        event_time_us=to_opt_int(g("E"), "E"),
        engine_time_us=to_opt_int(g("T"), "T"),
        position_id=to_opt_id(g("i"), "i"),
        net_quantity=to_decimal(g("q", _MISSING), "q"),
        net_exposure_quantity=to_opt_decimal(g("Q"), "Q"),
        net_exposure_notional=to_opt_decimal(g("n"), "n"),
        break_even_price=to_opt_decimal(g("b"), "b"),
        entry_price=to_opt_decimal(g("B"), "B"),
        mark_price=to_opt_decimal(g("M"), "M"),
        imf=to_opt_decimal(g("f"), "f"),
        mmf=to_opt_decimal(g("m"), "m"),
        pnl_realized=to_opt_decimal(g("p"), "p"),
        pnl_unrealized=to_opt_decimal(g("P"), "P"),
        est_liquidation_price=to_opt_decimal(g("l"), "l"),
    )


def _decode_balance_update(stream: str, rest: str, d: dict[str, Any]) -> BalanceUpdate:
    if rest:
        raise FieldError("stream", "account.balanceUpdate takes no symbol")
    _expect_event(d, "balanceUpdate")
    g = d.get
    return BalanceUpdate(
        stream=stream,
        event_time_us=to_int(g("E", _MISSING), "E"),
        engine_time_us=to_opt_int(g("T"), "T"),
        asset=to_str(g("a", _MISSING), "a"),
        available=to_decimal(g("A", _MISSING), "A"),
        locked=to_decimal(g("L", _MISSING), "L"),
        staked=to_decimal(g("S", _MISSING), "S"),
    )


_Decoder = Callable[[str, str, dict[str, Any]], WsEvent]

_ACCOUNT_DECODERS: dict[str, _Decoder] = {
    "orderUpdate": _decode_order_update,
    "positionUpdate": _decode_position_update,
    "balanceUpdate": _decode_balance_update,
}


def _decode_account(stream: str, rest: str, d: dict[str, Any]) -> WsEvent:
    name, _, symbol = rest.partition(".")
    decoder = _ACCOUNT_DECODERS.get(name)
    if decoder is None:
        raise FieldError("stream", "unsupported private stream")
    return decoder(stream, symbol, d)


_DECODERS: dict[str, _Decoder] = {
    "ticker": _decode_ticker,
    "bookTicker": _decode_book_ticker,
    "depth": _decode_depth,
    "trade": _decode_trade,
    "kline": _decode_kline,
    "markPrice": _decode_mark_price,
    "openInterest": _decode_open_interest,
    "liquidation": _decode_liquidation,
    "account": _decode_account,
}

# Streams named "<type>.<symbol>" must carry a symbol; "liquidation" may stand alone.
_NEEDS_REST = frozenset(
    {"ticker", "bookTicker", "depth", "trade", "kline", "markPrice", "openInterest", "account"}
)


def _decode_error_frame(obj: dict[str, Any]) -> WsError:
    err = obj["error"]
    if err.__class__ is not dict:
        raise RemoteProtocolError(f"error frame: 'error' must be an object, got {_show(err)}")
    request_id = obj.get("id")
    if request_id is not None and request_id.__class__ not in (int, str):
        raise RemoteProtocolError(
            f"error frame: 'id' must be null, an integer or a string, got {_show(request_id)}"
        )
    try:
        code = err.get("code", _MISSING)
        if code.__class__ is not int or not 0 <= code <= _MAX_INT:
            raise FieldError("code", f"expected an integer, got {_show(code)}")
        return WsError(
            request_id=request_id, code=code, message=to_str(err.get("message", _MISSING), "message")
        )
    except FieldError as exc:
        raise RemoteProtocolError(f"error frame: field 'error.{exc.field}': {exc.reason}") from None


# --- typed fast path for depth frames ---------------------------------------------------------------------
#
# Depth frames are the bulk of the feed and carry the most decimals. msgspec validates their structure in C
# (ints or quoted ints, levels as [str, str] pairs, e == "depth") into structs, which is cheaper than building
# dicts and checking each level in Python. Any failure returns None and the frame is decoded again by the
# general path, which accepts and rejects exactly the same inputs and produces the precise error message.


class _WireFrame(msgspec.Struct):
    stream: str
    data: msgspec.Raw


class _WireDepth(msgspec.Struct):
    e: Literal["depth"]
    s: str
    E: int | str
    T: int | str
    U: int | str
    u: int | str
    a: list[tuple[str, str]]
    b: list[tuple[str, str]]


_frame_decoder = msgspec.json.Decoder(_WireFrame)
_depth_decoder = msgspec.json.Decoder(_WireDepth)
_DEPTH_PREFIXES = (b'{"stream":"depth.', '{"stream":"depth.')
# A connection carries a handful of depth streams; parse each name once (bounded like the decimal cache).
_DEPTH_STREAMS: dict[str, tuple[int | None, str]] = {}


def _decode_depth_typed(frame: str | bytes) -> Depth | None:
    try:
        head = _frame_decoder.decode(frame)
        stream = head.stream
        parsed = _DEPTH_STREAMS.get(stream)
        if parsed is None:
            parsed = _depth_window(stream[6:])
            if len(_DEPTH_STREAMS) >= 4096:
                _DEPTH_STREAMS.clear()
            _DEPTH_STREAMS[stream] = parsed
        window_ms, symbol = parsed
        d = _depth_decoder.decode(head.data)
        if d.s != symbol:
            return None
        first, last, event_time, engine_time = d.U, d.u, d.E, d.T
        # Plain in-range ints are the norm; anything else (quoted, negative, huge) takes the checked route.
        if first.__class__ is not int or not 0 <= first <= _MAX_INT:
            first = to_int(first, "U")
        if last.__class__ is not int or not 0 <= last <= _MAX_INT:
            last = to_int(last, "u")
        if event_time.__class__ is not int or not 0 <= event_time <= _MAX_INT:
            event_time = to_int(event_time, "E")
        if engine_time.__class__ is not int or not 0 <= engine_time <= _MAX_INT:
            engine_time = to_int(engine_time, "T")
        if first > last:
            return None
        cache = _DECIMAL_CACHE
        return Depth(
            stream=stream,
            symbol=symbol,
            window_ms=window_ms,
            event_time_us=event_time,
            engine_time_us=engine_time,
            first_update_id=first,
            last_update_id=last,
            bids=tuple([(cache[p], cache[q]) for p, q in d.b]),
            asks=tuple([(cache[p], cache[q]) for p, q in d.a]),
        )
    except (ValueError, TypeError, RecursionError, FieldError, _BadDecimal):
        # msgspec.ValidationError and DecodeError are ValueErrors.
        return None


def decode_frame(frame: str | bytes) -> WsEvent:
    """Decode one WebSocket text frame into a typed event; raises ``RemoteProtocolError`` on anything malformed."""
    if frame[:17] in _DEPTH_PREFIXES:
        event = _decode_depth_typed(frame)
        if event is not None:
            return event
    obj = parse_json(frame, "ws frame")
    if obj.__class__ is not dict:
        raise RemoteProtocolError(f"ws frame: expected a JSON object, got {_show(obj)}")
    stream = obj.get("stream", _MISSING)
    if stream is _MISSING:
        if "error" in obj:
            return _decode_error_frame(obj)
        raise RemoteProtocolError("ws frame: has neither 'stream' nor 'error'")
    if stream.__class__ is not str:
        raise RemoteProtocolError(f"ws frame: 'stream' must be a string, got {_show(stream)}")
    data = obj.get("data", _MISSING)
    if data.__class__ is not dict:
        raise RemoteProtocolError(f"{stream}: 'data' must be an object, got {_show(data)}")
    kind, dot, rest = stream.partition(".")
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise RemoteProtocolError(f"{_show(stream)}: unknown stream type")
    if (dot and not rest) or (not dot and kind in _NEEDS_REST):
        raise RemoteProtocolError(f"{_show(stream)}: stream name lacks its symbol")
    try:
        return decoder(stream, rest, data)
    except FieldError as exc:
        raise RemoteProtocolError(f"{_show(stream)}: field {exc.field!r}: {exc.reason}") from None


# --- encoding ---------------------------------------------------------------------------------------------


def _d(value: Decimal) -> str:
    return format(value, "f")


def _od(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat()


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _lv(levels: Levels) -> list[list[str]]:
    return [[format(p, "f"), format(s, "f")] for p, s in levels]


def _enc_order_update(ev: OrderUpdate) -> dict[str, Any]:
    data: dict[str, Any] = {
        "e": ev.kind.value,
        "E": ev.event_time_us,
        "T": ev.engine_time_us,
        "s": ev.symbol,
        "i": ev.order_id,
        "S": ev.side.value,
        "o": ev.order_type.value.upper(),
        "f": ev.time_in_force.value,
        "X": ev.status.value,
        "z": _d(ev.executed_quantity),
        "Z": _d(ev.executed_quote_quantity),
        # The wire sends "t": null on non-fill events.
        "t": ev.trade_id,
    }
    optional: list[tuple[str, Any]] = [
        ("c", ev.client_id),
        ("q", _od(ev.quantity)),
        ("Q", _od(ev.quote_quantity)),
        ("p", _od(ev.price)),
        ("P", _od(ev.trigger_price)),
        ("B", ev.trigger_by),
        ("Y", ev.trigger_quantity),
        ("a", _od(ev.take_profit_trigger_price)),
        ("b", _od(ev.stop_loss_trigger_price)),
        ("j", _od(ev.take_profit_limit_price)),
        ("k", _od(ev.stop_loss_limit_price)),
        ("d", ev.take_profit_trigger_by),
        ("g", ev.stop_loss_trigger_by),
        ("R", ev.expiry_reason),
        ("l", _od(ev.fill_quantity)),
        ("L", _od(ev.fill_price)),
        ("m", ev.is_maker),
        ("n", _od(ev.fee)),
        ("N", ev.fee_symbol),
        ("V", ev.self_trade_prevention),
        ("r", ev.reduce_only),
        ("y", ev.post_only),
        ("O", ev.origin),
        ("I", ev.related_order_id),
        ("H", ev.strategy_id),
    ]
    for key, value in optional:
        _put(data, key, value)
    return data


def _enc_position_update(ev: PositionUpdate) -> dict[str, Any]:
    data: dict[str, Any] = {"s": ev.symbol, "q": _d(ev.net_quantity)}
    if ev.kind is not PositionEventKind.SNAPSHOT:
        data["e"] = ev.kind.value
    optional: list[tuple[str, Any]] = [
        ("E", ev.event_time_us),
        ("T", ev.engine_time_us),
        ("i", ev.position_id),
        ("Q", _od(ev.net_exposure_quantity)),
        ("n", _od(ev.net_exposure_notional)),
        ("b", _od(ev.break_even_price)),
        ("B", _od(ev.entry_price)),
        ("M", _od(ev.mark_price)),
        ("f", _od(ev.imf)),
        ("m", _od(ev.mmf)),
        ("p", _od(ev.pnl_realized)),
        ("P", _od(ev.pnl_unrealized)),
        ("l", _od(ev.est_liquidation_price)),
    ]
    for key, value in optional:
        _put(data, key, value)
    return data


def _encode_data(event: WsEvent) -> dict[str, Any]:
    match event:
        case Ticker():
            return {
                "e": "ticker",
                "E": event.event_time_us,
                "s": event.symbol,
                "o": _d(event.first_price),
                "c": _d(event.last_price),
                "h": _d(event.high),
                "l": _d(event.low),
                "v": _d(event.base_volume),
                "V": _d(event.quote_volume),
                "n": event.trades,
            }
        case BookTicker():
            return {
                "e": "bookTicker",
                "E": event.event_time_us,
                "T": event.engine_time_us,
                "s": event.symbol,
                "u": event.update_id,
                "a": _od(event.ask_price),
                "A": _od(event.ask_size),
                "b": _od(event.bid_price),
                "B": _od(event.bid_size),
            }
        case Depth():
            return {
                "e": "depth",
                "E": event.event_time_us,
                "T": event.engine_time_us,
                "s": event.symbol,
                "U": event.first_update_id,
                "u": event.last_update_id,
                "a": _lv(event.asks),
                "b": _lv(event.bids),
            }
        case Trade():
            return {
                "e": "trade",
                "E": event.event_time_us,
                "T": event.engine_time_us,
                "s": event.symbol,
                "t": event.trade_id,
                "p": _d(event.price),
                "q": _d(event.quantity),
                "b": event.buyer_order_id,
                "a": event.seller_order_id,
                "m": event.buyer_is_maker,
            }
        case Kline():
            return {
                "e": "kline",
                "E": event.event_time_us,
                "s": event.symbol,
                "t": _iso(event.start),
                "T": _iso(event.end),
                "o": _od(event.open),
                "h": _od(event.high),
                "l": _od(event.low),
                "c": _od(event.close),
                "v": _d(event.volume),
                "n": event.trades,
                "X": event.closed,
            }
        case MarkPrice():
            data: dict[str, Any] = {"e": "markPrice", "E": event.event_time_us, "s": event.symbol}
            _put(data, "T", event.engine_time_us)
            data["p"] = _d(event.mark_price)
            _put(data, "i", _od(event.index_price))
            _put(data, "f", _od(event.funding_rate))
            if event.next_funding_time_us is not None:
                # The wire carries next funding in ms; sub-ms precision does not exist there.
                data["n"] = event.next_funding_time_us // 1000
            return data
        case OpenInterest():
            data = {"e": "openInterest", "E": event.event_time_us, "s": event.symbol}
            _put(data, "T", event.engine_time_us)
            data["o"] = _d(event.open_interest)
            return data
        case Liquidation():
            data = {"e": "liquidation", "E": event.event_time_us, "s": event.symbol}
            _put(data, "T", event.engine_time_us)
            data.update(S=event.side.value, p=_d(event.price), q=_d(event.quantity))
            return data
        case OrderUpdate():
            return _enc_order_update(event)
        case PositionUpdate():
            return _enc_position_update(event)
        case BalanceUpdate():
            data = {"e": "balanceUpdate", "E": event.event_time_us}
            _put(data, "T", event.engine_time_us)
            data.update(a=event.asset, A=_d(event.available), L=_d(event.locked), S=_d(event.staked))
            return data
        case _:
            raise TypeError(f"not a WsEvent: {event!r}")


def encode_frame(event: WsEvent) -> dict[str, Any]:
    """The wire form of an event: ``{"stream":..,"data":{..}}``, or the error frame for ``WsError``."""
    if isinstance(event, WsError):
        return {"id": event.request_id, "error": {"code": event.code, "message": event.message}}
    return {"stream": event.stream, "data": _encode_data(event)}

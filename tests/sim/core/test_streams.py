"""Public streams: depth continuity against snapshots, bookTicker ids, JSON wire types, per-second streams."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.sim.core import Emit, SimExchange

from .conftest import KEY_A, KEY_B, BookMirror, make_exchange

SYMBOLS = ("BTC_USDC", "BTC_USDC_PERP")


def _no_floats(value: Any) -> bool:
    if isinstance(value, float):
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _no_floats(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_no_floats(v) for v in value)
    return value is None or isinstance(value, str | int | bool)


def _decimal_fields_are_strings(e: Emit) -> bool:
    d = e.data
    keys = {"p", "q", "a", "A", "b", "B", "c", "o", "h", "l", "v", "V", "f", "i", "L", "n", "z", "Z", "Q", "P", "M"}
    skip = {("trade.", "b"), ("trade.", "a"), ("account.orderUpdate", "i"), ("account.positionUpdate", "i"),
            ("ticker.", "n"), ("kline.", "n"), ("account.orderUpdate", "c"), ("account.orderUpdate", "o"),
            ("account.orderUpdate", "f"), ("account.orderUpdate", "n"), ("account.positionUpdate", "b"),
            ("account.positionUpdate", "f"), ("depth.", "a"), ("depth.", "b"), ("markPrice.", "n"),
            ("account.positionUpdate", "l")}
    for k in keys & d.keys():
        if any(e.stream.startswith(s) and k == key for s, key in skip):
            continue
        if d[k] is not None and not isinstance(d[k], str):
            return False
        if isinstance(d[k], str) and d[k] not in ("Bid", "Ask") and e.stream.split(".")[0] not in ("account",):
            Decimal(d[k])
    return True


actions = st.lists(st.tuples(st.sampled_from(["step", "big", "order", "cancel"]), st.integers(0, 10**6)),
                   min_size=5, max_size=40)


def _random_order(ex: SimExchange, r: int) -> dict[str, Any]:
    sym = SYMBOLS[r % 2]
    book = ex.depth(sym, 5)
    mid = (Decimal(book["bids"][-1][0]) + Decimal(book["asks"][0][0])) / 2
    side = "Bid" if r & 2 else "Ask"
    qty = Decimal(1 + r % 3000) * Decimal("0.00001")
    kind = (r >> 2) % 5
    if kind == 0:
        return {"symbol": sym, "side": side, "orderType": "Market", "quantity": str(qty)}
    off = Decimal((r >> 5) % 400 - 200) * Decimal("0.1")
    body = {"symbol": sym, "side": side, "orderType": "Limit", "quantity": str(qty),
            "price": str((mid + off).quantize(Decimal("0.1")))}
    if kind == 2:
        body["timeInForce"] = "IOC"
    if kind == 3:
        body["postOnly"] = True
    if kind == 4:
        body["timeInForce"] = "FOK"
    return body


def _drive(ex: SimExchange, script: list[tuple[str, int]]) -> tuple[list[Emit], int]:
    from engine.sim.core import SimApiError

    now = ex.start_time_us()
    out: list[Emit] = []
    for kind, r in script:
        if kind == "step":
            now += 1 + r * 7
            out += ex.step(now)
        elif kind == "big":
            now += r * 900
            out += ex.step(now)
        elif kind == "order":
            now += 1000
            try:
                _, em = ex.execute_order(KEY_A if r & 1 else KEY_B, _random_order(ex, r), now)
            except SimApiError:
                em = ex.step(now)
            out += em
        else:
            now += 1000
            _, em = ex.cancel_all(KEY_A, {"symbol": SYMBOLS[r % 2]}, now)
            out += em
    return out, now


@settings(max_examples=15, deadline=None)
@given(actions, st.integers(0, 3))
def test_depth_frames_rebuild_the_snapshot(script: list[tuple[str, int]], seed: int) -> None:
    """Snapshot + every later depth frame (U == previous u + 1) rebuilds exactly what depth() returns."""
    ex = make_exchange(seed=seed)
    mirrors = {s: BookMirror(ex.depth(s, 1000)) for s in SYMBOLS}
    emits, _ = _drive(ex, script)
    for e in emits:
        if e.stream.startswith("depth."):
            mirrors[e.data["s"]].apply(e.data)
    for s in SYMBOLS:
        assert mirrors[s].same_as(ex.depth(s, 1000))
        snap = ex.depth(s, 1000)
        bids = [Decimal(p) for p, _ in snap["bids"]]
        asks = [Decimal(p) for p, _ in snap["asks"]]
        assert bids == sorted(bids)
        assert asks == sorted(asks)
        assert not bids or not asks or bids[-1] < asks[0]


@settings(max_examples=12, deadline=None)
@given(actions)
def test_book_ticker_shares_the_depth_update_id(script: list[tuple[str, int]]) -> None:
    """Every bookTicker carries the u of the depth frame emitted just before it and its top of book."""
    ex = make_exchange(seed=1)
    mirrors = {s: BookMirror(ex.depth(s, 1000)) for s in SYMBOLS}
    emits, _ = _drive(ex, script)
    for e in emits:
        if e.stream.startswith("depth."):
            mirrors[e.data["s"]].apply(e.data)
        elif e.stream.startswith("bookTicker."):
            m = mirrors[e.data["s"]]
            assert e.data["u"] == m.last_u
            assert Decimal(e.data["b"]) == max(m.bids)
            assert Decimal(e.data["B"]) == m.bids[max(m.bids)]
            assert Decimal(e.data["a"]) == min(m.asks)
            assert Decimal(e.data["A"]) == m.asks[min(m.asks)]


@settings(max_examples=20, deadline=None)
@given(actions)
def test_every_emit_is_json_with_decimal_strings(script: list[tuple[str, int]]) -> None:
    """Every emitted payload serialises as JSON, holds no floats, and E/T are integer microseconds."""
    ex = make_exchange(seed=2)
    emits, _ = _drive(ex, script)
    start = ex.start_time_us()
    for e in emits:
        json.dumps(e.data)
        assert _no_floats(e.data), e
        assert isinstance(e.data["E"], int)
        assert e.data["E"] >= start
        if "T" in e.data and not e.stream.startswith("kline."):
            assert isinstance(e.data["T"], int)
            assert e.data["T"] >= start
        assert _decimal_fields_are_strings(e), e


def test_depth_and_book_ticker_pad_to_tick_and_step(ex: SimExchange) -> None:
    """WS depth/bookTicker/trade decimals carry exactly the tick (1) and step (5) decimals."""
    emits = ex.step(ex.start_time_us() + 30_000_000)
    seen = 0
    for e in emits:
        if e.stream.startswith("depth."):
            for p, q in e.data["a"] + e.data["b"]:
                assert len(p.split(".")[1]) == 1
                assert len(q.split(".")[1]) == 5
                seen += 1
        if e.stream.startswith("trade."):
            assert len(e.data["p"].split(".")[1]) == 1
            assert len(e.data["q"].split(".")[1]) == 5
    assert seen > 0


def test_ticker_and_mark_price_once_per_second_and_open_interest_per_minute(ex: SimExchange) -> None:
    """Stepping in 100 ms increments yields one ticker per market and one markPrice per second, OI per 60 s."""
    now = ex.start_time_us()
    emits: list[Emit] = []
    for _ in range(1200):
        now += 100_000
        emits += ex.step(now)
    seconds = 120
    assert len([e for e in emits if e.stream == "ticker.BTC_USDC"]) == seconds
    assert len([e for e in emits if e.stream == "ticker.BTC_USDC_PERP"]) == seconds
    marks = [e.data for e in emits if e.stream == "markPrice.BTC_USDC_PERP"]
    assert len(marks) == seconds
    assert all(m["n"] % 3_600_000 == 0 and m["n"] > m["E"] // 1000 for m in marks)
    assert len([e for e in emits if e.stream == "openInterest.BTC_USDC_PERP"]) in (2, 3)


def test_trades_are_sequential_and_rest_is_newest_first(ex: SimExchange) -> None:
    """Trade ids increase by one per trade; /trades lists the newest first with ms timestamps."""
    emits = ex.step(ex.start_time_us() + 60_000_000)
    ids = [e.data["t"] for e in emits if e.stream == "trade.BTC_USDC"]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    rest = ex.trades("BTC_USDC", 5)
    assert [r["id"] for r in rest] == sorted(ids, reverse=True)[:5]
    assert all(abs(r["timestamp"] - ex.now_us() // 1000) < 120_000 for r in rest)


def test_kline_stream_agrees_with_rest_klines(ex: SimExchange) -> None:
    """The last kline frame per interval equals the still-open REST kline; a bucket close sends X=true."""
    now = ex.start_time_us()
    emits: list[Emit] = []
    for _ in range(200):
        now += 1_000_000
        emits += ex.step(now)
    last: dict[str, dict[str, Any]] = {}
    closes = []
    for e in emits:
        if e.stream.startswith("kline.") and e.data["s"] == "BTC_USDC":
            if e.data["X"]:
                closes.append(e.stream)
            else:
                last[e.stream.split(".")[1]] = e.data
    assert "kline.1m.BTC_USDC" in closes
    for interval in ("1m", "5m", "1h", "1d", "1w"):
        rest = ex.klines("BTC_USDC", interval, now // 1_000_000 - 60, None, now)[-1]
        ws = last[interval]
        assert (ws["o"], ws["h"], ws["l"], ws["c"], ws["v"]) == (
            rest["open"], rest["high"], rest["low"], rest["close"], rest["volume"])
        assert ws["t"].replace("T", " ") == rest["start"]


def test_daily_history_reaches_back_before_the_replay_without_look_ahead() -> None:
    """1d klines give 90+ real daily bars before the start, ascending, the last one built only from the past."""
    from engine.sim.core import iso_to_ms

    ex = make_exchange(seed=1, start_ms=iso_to_ms("2021-05-18T00:00:00"))
    now = ex.start_time_us() + 6 * 3_600_000_000
    ex.step(now)
    rows = ex.klines("BTC_USDC", "1d", now // 1_000_000 - 100 * 86_400, None, now)
    starts = [r["start"] for r in rows]
    assert len(rows) >= 100
    assert starts == sorted(starts)
    assert len(set(starts)) == len(starts)
    assert rows[-1]["start"] == "2021-05-18 00:00:00"
    assert rows[-1]["close"] == ex.ticker("BTC_USDC")["lastPrice"]
    assert rows[-2]["start"] == "2021-05-17 00:00:00"
    # the crash of 2021-05-19 must not leak into the still-open day
    assert Decimal(rows[-1]["low"]) > Decimal("40000")

"""Accounts and orders: balance invariants, value conservation, order lifecycles, error replies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.sim.core import Emit, SimApiError, SimExchange

from .conftest import KEY_A, KEY_B, make_exchange

SYMBOLS = ("BTC_USDC", "BTC_USDC_PERP")
ZERO = Decimal(0)


def _mid(ex: SimExchange, sym: str) -> Decimal:
    book = ex.depth(sym, 5)
    return (Decimal(book["bids"][-1][0]) + Decimal(book["asks"][0][0])) / 2


order_st = st.fixed_dictionaries({
    "sym": st.sampled_from(SYMBOLS),
    "side": st.sampled_from(["Bid", "Ask"]),
    "kind": st.sampled_from(["Market", "MarketQuote", "GTC", "IOC", "FOK", "PostOnly", "ReduceOnly"]),
    "qty": st.integers(1, 3000),
    "off": st.integers(-300, 300),
    "client": st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    "key": st.sampled_from([KEY_A, KEY_B]),
})
script_st = st.lists(st.one_of(order_st, st.integers(1, 600_000_000), st.just("cancel")), min_size=3, max_size=30)


def _body(ex: SimExchange, o: dict[str, Any]) -> dict[str, Any]:
    sym = o["sym"]
    qty = str(Decimal(o["qty"]) * Decimal("0.00001"))
    body: dict[str, Any] = {"symbol": sym, "side": o["side"]}
    if o["client"] is not None:
        body["clientId"] = o["client"]
    if o["kind"] == "Market":
        return body | {"orderType": "Market", "quantity": qty}
    if o["kind"] == "MarketQuote":
        return body | {"orderType": "Market", "quoteQuantity": str(o["qty"] // 10 + 1)}
    price = str((_mid(ex, sym) + Decimal(o["off"]) / 10).quantize(Decimal("0.1")))
    body |= {"orderType": "Limit", "quantity": qty, "price": price}
    if o["kind"] in ("IOC", "FOK"):
        body["timeInForce"] = o["kind"]
    if o["kind"] == "PostOnly":
        body["postOnly"] = True
    if o["kind"] == "ReduceOnly":
        body["reduceOnly"] = True
        body["symbol"] = "BTC_USDC_PERP"
    return body


def _run(ex: SimExchange, script: list[Any]) -> tuple[list[Emit], dict[str, dict[str, Any]]]:
    now = ex.start_time_us()
    emits: list[Emit] = []
    placed: dict[str, dict[str, Any]] = {}
    rejected: list[int] = []
    for item in script:
        now += 1000
        if isinstance(item, int):
            now += item
            emits += ex.step(now)
        elif item == "cancel":
            for sym in SYMBOLS:
                _, em = ex.cancel_all(KEY_A, {"symbol": sym}, now)
                emits += em
        else:
            body = _body(ex, item)
            try:
                row, em = ex.execute_order(item["key"], body, now)
            except SimApiError as exc:
                rejected.append(exc.status)
                emits += ex.step(now)
                continue
            emits += em
            placed[row["id"]] = {"body": body, "row": row}
            if body.get("timeInForce") in ("IOC", "FOK") or body["orderType"] == "Market":
                assert row["status"] in ("Filled", "Expired"), row
                assert all(o["id"] != row["id"] for o in ex.open_orders(item["key"], {}))
    assert set(rejected) <= {400}
    return emits, placed


def _all(fetch: Any, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = fetch(key, params | {"offset": len(rows), "limit": 1000, "sortDirection": "Asc"})
        rows += page
        if len(page) < 1000:
            return rows


def _check_ledger(ex: SimExchange, key: str) -> None:
    usdc = Decimal(10000)
    btc = ZERO
    perp_cash = ZERO
    perp_qty = ZERO
    for f in _all(ex.fill_history, key, {}):
        p, q, fee = Decimal(f["price"]), Decimal(f["quantity"]), Decimal(f["fee"])
        sign = 1 if f["side"] == "Bid" else -1
        if f["symbol"] == "BTC_USDC":
            usdc -= sign * p * q
            btc += sign * q
            if f["feeSymbol"] == "BTC":
                btc -= fee
            else:
                usdc -= fee
        else:
            assert f["feeSymbol"] == "USDC"
            perp_cash -= sign * p * q + fee
            perp_qty += sign * q
    funding = sum((Decimal(r["quantity"]) for r in _all(ex.funding_history, key, {})), ZERO)
    cap = ex.capital(key)
    got_usdc = sum((Decimal(cap.get("USDC", {}).get(k, "0")) for k in ("available", "locked")), ZERO)
    got_btc = sum((Decimal(cap.get("BTC", {}).get(k, "0")) for k in ("available", "locked")), ZERO)
    positions = ex.positions(key, "BTC_USDC_PERP")
    upnl = sum((Decimal(p["pnlUnrealized"]) for p in positions), ZERO)
    net = sum((Decimal(p["netQuantity"]) for p in positions), ZERO)
    mark = Decimal(ex.mark_prices("BTC_USDC_PERP")[0]["markPrice"])
    assert net == perp_qty
    assert got_btc == btc
    assert abs((got_usdc + upnl) - (usdc + perp_cash + perp_qty * mark + funding)) < Decimal("1e-9")


@settings(max_examples=30, deadline=None)
@given(script_st, st.integers(0, 3))
def test_random_trading_keeps_accounts_consistent(script: list[Any], seed: int) -> None:
    """No negative balances, fills within size, value conserved, IOC/FOK never rest, post-only never takes."""
    ex = make_exchange(seed=seed)
    emits, placed = _run(ex, script)
    for key in (KEY_A, KEY_B):
        for asset, b in ex.capital(key).items():
            assert Decimal(b["available"]) >= 0, (asset, b)
            assert Decimal(b["locked"]) >= 0, (asset, b)
        _check_ledger(ex, key)
        for o in ex.order_history(key, {"limit": 1000}):
            assert Decimal(o["executedQuantity"]) <= Decimal(o["quantity"])
        open_rows = ex.open_orders(key, {})
        assert all(r["timeInForce"] == "GTC" and r["orderType"] == "Limit" for r in open_rows)
        locked_usdc = sum((Decimal(r["price"]) * (Decimal(r["quantity"]) - Decimal(r["executedQuantity"]))
                           for r in open_rows if r["symbol"] == "BTC_USDC" and r["side"] == "Bid"), ZERO)
        locked_btc = sum((Decimal(r["quantity"]) - Decimal(r["executedQuantity"])
                          for r in open_rows if r["symbol"] == "BTC_USDC" and r["side"] == "Ask"), ZERO)
        cap = ex.capital(key)
        assert Decimal(cap.get("USDC", {}).get("locked", "0")) == locked_usdc
        assert Decimal(cap.get("BTC", {}).get("locked", "0")) == locked_btc
    post_only = {oid for oid, p in placed.items() if p["body"].get("postOnly")}
    for key in (KEY_A, KEY_B):
        assert not any(not f["isMaker"] for f in ex.fill_history(key, {"limit": 1000}) if f["orderId"] in post_only)
    _check_order_events(emits)


def _check_order_events(emits: list[Emit]) -> None:
    by_order: dict[str, list[dict[str, Any]]] = {}
    for e in emits:
        if e.stream == "account.orderUpdate":
            by_order.setdefault(e.data["i"], []).append(e.data)
    for events in by_order.values():
        kinds = [d["e"] for d in events]
        assert kinds[0] == "orderAccepted"
        assert kinds[0] not in kinds[1:]
        assert all(k == "orderFill" for k in kinds[1:-1])
        assert kinds.count("orderCancelled") + kinds.count("orderExpired") <= 1
        if kinds[-1] in ("orderCancelled", "orderExpired"):
            assert all(k == "orderFill" for k in kinds[1:-1])
        total = ZERO
        for d in events:
            if d["e"] == "orderFill":
                total += Decimal(d["l"])
                assert Decimal(d["z"]) == total
                assert d["X"] in ("PartiallyFilled", "Filled")
                assert isinstance(d["t"], int)
            assert Decimal(d["z"]) <= Decimal(d["q"]) or d["o"] == "MARKET"


def test_errors_match_the_exchange(ex: SimExchange) -> None:
    """Unknown symbol, too many decimals, post-only cross, not-resting order and insufficient funds replies."""
    now = ex.start_time_us() + 1000
    mid = _mid(ex, "BTC_USDC")
    cases: list[tuple[dict[str, Any], tuple[int, str, str]]] = [
        ({"symbol": "NOPE_USDC", "side": "Bid", "orderType": "Market", "quantity": "1"},
         (400, "INVALID_CLIENT_REQUEST", "Invalid market symbol")),
        ({"symbol": "BTC_USDC", "side": "Bid", "orderType": "Limit", "quantity": "0.000001", "price": "100"},
         (400, "INVALID_CLIENT_REQUEST", "Quantity decimal too long")),
        ({"symbol": "BTC_USDC", "side": "Bid", "orderType": "Limit", "quantity": "0.001", "price": str(mid) + "5"},
         (400, "INVALID_CLIENT_REQUEST", "Price decimal too long")),
        ({"symbol": "BTC_USDC", "side": "Bid", "orderType": "Limit", "quantity": "0.001",
          "price": str((mid + 50).quantize(Decimal("0.1"))), "postOnly": True},
         (400, "INVALID_ORDER", "Order would immediately match and take")),
        ({"symbol": "BTC_USDC", "side": "Bid", "orderType": "Limit", "quantity": "1",
          "price": str((mid - 50).quantize(Decimal("0.1")))}, (400, "INSUFFICIENT_FUNDS", "Insufficient funds")),
        ({"symbol": "BTC_USDC", "side": "Ask", "orderType": "Market", "quantity": "0.001"},
         (400, "INSUFFICIENT_FUNDS", "Insufficient funds")),
        ({"symbol": "BTC_USDC_PERP", "side": "Bid", "orderType": "Market", "quantity": "5"},
         (400, "INSUFFICIENT_MARGIN", "Insufficient margin")),
        ({"symbol": "BTC_USDC", "side": "Bid", "orderType": "Limit", "quantity": "0.001", "price": "1"},
         (400, "INVALID_PRICE", "Price is too far from the last active price")),
        ({"symbol": "BTC_USDC", "side": "Bid", "orderType": "Market", "quantity": "0.001", "clientId": 2**32},
         (400, "INVALID_CLIENT_REQUEST", "Invalid clientId")),
    ]
    for body, (status, code, message) in cases:
        with pytest.raises(SimApiError) as info:
            ex.execute_order(KEY_A, body, now)
        assert (info.value.status, info.value.code, info.value.message) == (status, code, message), body
    row, _ = ex.execute_order(KEY_A, {"symbol": "BTC_USDC", "side": "Bid", "orderType": "Market",
                                      "quantity": "0.001", "clientId": 9}, now)
    with pytest.raises(SimApiError) as info:
        ex.get_order(KEY_A, {"symbol": "BTC_USDC", "orderId": row["id"]})
    assert (info.value.status, info.value.code) == (404, "RESOURCE_NOT_FOUND")
    with pytest.raises(SimApiError) as info:
        ex.depth("NOPE", 5)
    assert info.value.message == "Invalid market symbol"
    with pytest.raises(SimApiError) as info:
        ex.mark_prices("NOPE")
    assert info.value.message == "Symbol not found"


def test_resting_order_lifecycle_and_queries(ex: SimExchange) -> None:
    """A resting limit is queryable by id and clientId, shows in open orders and locks funds until cancelled."""
    now = ex.start_time_us() + 1000
    price = str((_mid(ex, "BTC_USDC") - 500).quantize(Decimal("0.1")))
    row, emits = ex.execute_order(KEY_A, {"symbol": "BTC_USDC", "side": "Bid", "orderType": "Limit",
                                          "quantity": "0.01", "price": price, "clientId": 77}, now)
    assert row["status"] == "New"
    assert isinstance(row["createdAt"], int)
    assert [e.data["e"] for e in emits if e.account] == ["orderAccepted", "balanceUpdate"]
    assert ex.get_order(KEY_A, {"symbol": "BTC_USDC", "clientId": "77"})["id"] == row["id"]
    assert Decimal(ex.capital(KEY_A)["USDC"]["locked"]) == Decimal(price) * Decimal("0.01")
    assert [o["id"] for o in ex.open_orders(KEY_A, {"symbol": "BTC_USDC"})] == [row["id"]]
    cancelled, emits = ex.cancel_order(KEY_A, {"symbol": "BTC_USDC", "orderId": row["id"]}, now + 1000)
    assert cancelled["status"] == "Cancelled"
    assert [e.data["e"] for e in emits if e.account] == ["orderCancelled", "balanceUpdate"]
    assert ex.capital(KEY_A)["USDC"] == {"available": "10000", "locked": "0", "staked": "0"}
    hist = ex.order_history(KEY_A, {})
    assert hist[0]["status"] == "Cancelled"
    assert isinstance(hist[0]["createdAt"], str)


def test_resting_order_fills_when_the_path_trades_through(ex: SimExchange) -> None:
    """A bid below the market fills in full, as maker at its price, once the path trades at or below it."""
    now = ex.start_time_us() + 1000
    px = (_mid(ex, "BTC_USDC") - 30).quantize(Decimal("0.1"))
    row, _ = ex.execute_order(KEY_A, {"symbol": "BTC_USDC", "side": "Bid", "orderType": "Limit",
                                      "quantity": "0.01", "price": str(px)}, now)
    fills: list[dict[str, Any]] = []
    for _ in range(3000):
        now += 5_000_000
        fills += [e.data for e in ex.step(now) if e.stream == "account.orderUpdate" and e.data["e"] == "orderFill"]
        if fills:
            break
    assert fills
    assert fills[0]["i"] == row["id"]
    assert fills[0]["m"] is True
    assert fills[0]["X"] == "Filled"
    assert Decimal(fills[0]["L"]) == px
    hist = ex.fill_history(KEY_A, {"fillType": "User"})
    assert hist[0]["isMaker"] is True
    assert hist[0]["feeSymbol"] == "BTC"


json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=12)
                           | st.sampled_from(["BTC_USDC", "BTC_USDC_PERP", "Bid", "Ask", "Limit", "Market", "IOC",
                                              "0.001", "50000.1", "true", "1e5", "NaN", "-1", "0"]),
                           lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.text(max_size=5), children, max_size=3), max_leaves=6)
body_keys = st.sampled_from(["symbol", "side", "orderType", "quantity", "price", "quoteQuantity", "timeInForce",
                             "postOnly", "reduceOnly", "clientId", "selfTradePrevention", "triggerPrice", "orderId"])


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.dictionaries(body_keys, json_values, max_size=8), json_values))
def test_garbage_order_bodies_get_api_errors_only(body: Any) -> None:
    """Whatever JSON arrives as an order or cancel body, the core answers or raises SimApiError, never crashes."""
    ex = _GARBAGE_EX
    now = ex.now_us() + 1000
    statuses: list[int] = []
    mapping = body if isinstance(body, dict) else {}
    calls = (lambda: ex.execute_order(KEY_A, body, now), lambda: ex.cancel_order(KEY_A, body, now),
             lambda: ex.execute_orders(KEY_A, [body], now), lambda: ex.cancel_all(KEY_A, mapping, now),
             lambda: ex.get_order(KEY_A, mapping))
    for call in calls:
        try:
            call()
        except SimApiError as exc:
            statuses.append(exc.status)
    assert set(statuses) <= {400, 404}


_GARBAGE_EX = make_exchange(seed=8)

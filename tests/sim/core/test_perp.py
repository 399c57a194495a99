"""Perpetual mechanics: hourly funding, forced liquidation through the 2021-05-19 crash, crowd liquidations."""

from __future__ import annotations

from decimal import Decimal

from engine.sim.core import Emit, SimExchange, iso_to_ms, shift_for

from .conftest import KEY_A, make_exchange

PERP = "BTC_USDC_PERP"


def test_funding_settles_every_hour_on_the_hour(ex: SimExchange) -> None:
    """An open perp position pays or receives funding once per hour crossed, at rate x qty x mark."""
    now = ex.start_time_us() + 1000
    ex.execute_order(KEY_A, {"symbol": PERP, "side": "Bid", "orderType": "Market", "quantity": "0.01"}, now)
    emits = ex.step(now + 3 * 3_600_000_000 + 1000)
    rows = ex.funding_history(KEY_A, {})
    assert len(rows) == 3
    ends = [r["intervalEndTimestamp"] for r in rows]
    assert all(e.endswith(":00:00") for e in ends)
    for r in rows:
        assert (Decimal(r["quantity"]) > 0) == (Decimal(r["fundingRate"]) < 0)
    updates = [e for e in emits if e.stream == "account.balanceUpdate" and e.data["E"] % 3_600_000_000 == 0]
    assert len(updates) == 3
    pos = ex.positions(KEY_A, PERP)[0]
    assert Decimal(pos["cumulativeFundingPayment"]) == sum(Decimal(r["quantity"]) for r in rows)
    rates = ex.funding_rates(PERP, 5, 0)
    assert [r["intervalEndTimestamp"] for r in rates[1:4]] == ends


def test_high_leverage_long_is_liquidated_in_the_crash() -> None:
    """A 15x long opened before the 2021-05-19 crash is force-closed, and no balance goes negative."""
    start = iso_to_ms("2021-05-19T10:00:00")
    ex = make_exchange(seed=4, start_ms=start, time_shift_us=shift_for(start, 1_800_000_000_000_000))
    now = ex.start_time_us() + 1000
    ex.execute_order(KEY_A, {"symbol": PERP, "side": "Bid", "orderType": "Market", "quantity": "3"}, now)
    emits: list[Emit] = []
    for _ in range(24 * 6):
        now += 60_000_000
        emits += ex.step(now)
    liq = [e.data for e in emits if e.stream == "account.orderUpdate" and e.data.get("O") == "LIQUIDATION_AUTOCLOSE"]
    assert [d["e"] for d in liq] == ["orderAccepted", "orderFill"]
    assert ex.positions(KEY_A) == []
    assert all(Decimal(b["available"]) >= 0 for b in ex.capital(KEY_A).values())
    fills = ex.fill_history(KEY_A, {"fillType": "Liquidation"})
    assert len(fills) == 1
    assert fills[0]["systemOrderType"] == "LiquidatePositionOnBook"
    assert ex.fill_history(KEY_A, {"fillType": "User"})[0]["systemOrderType"] is None


def test_crowd_liquidations_cluster_in_the_crash() -> None:
    """The liquidation stream is busier in the crash hours than in a quiet day before."""
    def count(start_iso: str) -> int:
        start = iso_to_ms(start_iso)
        ex = make_exchange(seed=2, start_ms=start)
        now = ex.start_time_us()
        total = 0
        for _ in range(6 * 60):
            now += 60_000_000
            total += sum(1 for e in ex.step(now) if e.stream == "liquidation")
        return total

    quiet, crash = count("2021-05-01T00:00:00"), count("2021-05-19T10:00:00")
    assert crash > 3 * max(quiet, 1)


def test_position_snapshot_has_no_event_field(ex: SimExchange) -> None:
    """What positionUpdate sends on subscribe carries the position but no 'e'."""
    now = ex.start_time_us() + 1000
    _, emits = ex.execute_order(KEY_A, {"symbol": PERP, "side": "Ask", "orderType": "Market", "quantity": "0.002"}, now)
    opened = [e.data for e in emits if e.stream == "account.positionUpdate"]
    assert opened[0]["e"] == "positionOpened"
    snap = ex.position_snapshot_emits(KEY_A)
    assert len(snap) == 1
    assert "e" not in snap[0].data
    assert snap[0].data["q"] == "-0.002"
    _, emits = ex.execute_order(KEY_A, {"symbol": PERP, "side": "Bid", "orderType": "Market", "quantity": "0.002",
                                        "reduceOnly": True}, now + 1000)
    assert [e.data["e"] for e in emits if e.stream == "account.positionUpdate"] == ["positionClosed"]
    assert ex.position_snapshot_emits(KEY_A) == []


def test_reduce_only_never_opens_or_flips(ex: SimExchange) -> None:
    """A reduce-only order without a position expires; one larger than the position only closes it."""
    now = ex.start_time_us() + 1000
    row, _ = ex.execute_order(KEY_A, {"symbol": PERP, "side": "Bid", "orderType": "Market", "quantity": "0.01",
                                      "reduceOnly": True}, now)
    assert row["status"] == "Expired"
    assert ex.positions(KEY_A) == []
    ex.execute_order(KEY_A, {"symbol": PERP, "side": "Bid", "orderType": "Market", "quantity": "0.01"}, now)
    row, _ = ex.execute_order(KEY_A, {"symbol": PERP, "side": "Ask", "orderType": "Market", "quantity": "0.05",
                                      "reduceOnly": True}, now)
    assert row["executedQuantity"] == "0.01"
    assert ex.positions(KEY_A) == []

"""The whole engine against the embedded simulator replaying the 2021-05-19 crash (in-process, fast replay)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from engine.app import EngineProbe
from engine.backpack.responses import decode_market
from engine.nanpin import NanpinConfig, StrategyState, decide
from engine.nanpin.backtest import history_window
from engine.nanpin.types import Account, DecisionInput, Position, PriceObs
from engine.notices import Notice
from engine.strategy_inputs import bars_from_candles, clusters_from_view, market_rules, ms_to_datetime
from tests.engine.harness import engine_config, poll_until, running_engine, wait_for

SYMBOL = "BTC_USDC"


def _journal_rows(probe: EngineProbe, sql: str) -> list[tuple[object, ...]]:
    """Read the journal file through a second, read-only connection (WAL lets it see committed rows)."""
    uri = f"file:{probe.journal.path}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        return conn.execute(sql).fetchall()


def _sim_orders(probe: EngineProbe) -> list[dict[str, object]]:
    assert probe.sim is not None
    assert probe.account_key is not None
    return probe.sim.core.order_history(probe.account_key, {"limit": 1000})


def _sim_fills(probe: EngineProbe) -> list[dict[str, object]]:
    assert probe.sim is not None
    assert probe.account_key is not None
    return probe.sim.core.fill_history(probe.account_key, {"limit": 1000})


def _predicted_first_entry(probe: EngineProbe, cfg_strategy: NanpinConfig, decided_at_ms: int,
                           payload: dict[str, str]) -> tuple[str, str, Decimal, Decimal]:
    """(intent id, level, qty, limit) that ``decide`` gives for a fresh account at the entry's inputs.

    Bars are the daily candles the view held at the decision; the price is the reference price the intent's
    limit was derived from (limit = ceil(price * (1 + slippage), tick)); the account is the simulator's fresh
    10000 USDC; the state is the empty state the strategy started from.
    """
    assert probe.sim is not None
    rules = market_rules(decode_market(json.dumps(probe.sim.core.market(SYMBOL))).filters)
    _, view = probe.market.get_nowait()
    state = view.market(SYMBOL)
    bars = bars_from_candles(state.closed_candles("1d"), decided_at_ms, limit=history_window(cfg_strategy))
    limit = Decimal(payload["limit_price"])
    ref = (limit - rules.tick_size / 2) / (1 + cfg_strategy.sizing.max_slippage_frac)
    now = ms_to_datetime(decided_at_ms)
    inp = DecisionInput(now=now, bars=bars, price=PriceObs(value=ref, ts=now),
                        account=Account(equity=Decimal(10000), available=Decimal(10000)), position=Position(),
                        rules=rules, clusters=clusters_from_view(state, cfg_strategy))
    decision = decide(inp, StrategyState(), cfg_strategy)
    assert decision.buys, f"decide proposes nothing at {ref}: {[e.code for e in decision.events]}"
    intent = decision.buys[0]
    return intent.intent_id, intent.level, intent.qty, intent.limit_price


async def test_crash_replay_enters_the_ladder_exactly_once_per_fill(tmp_path: Path) -> None:
    """The replayed crash buys the level decide() predicts; every fill is journaled once and equals the sim's."""
    cfg = engine_config(tmp_path)
    with trio.fail_after(60):
        async with running_engine(cfg) as probe:
            status = await wait_for(probe.strategy, lambda s: s.entries_total >= 1)
            rows = await poll_until(lambda: _journal_rows(
                probe, "SELECT intent_id, payload FROM intents ORDER BY rowid") or None, probe.market)
            journal_fills = probe.journal.fills_since(0, symbol=SYMBOL)
            sim_fills = _sim_fills(probe)
            sim_orders = _sim_orders(probe)
            predicted = _predicted_first_entry(probe, cfg.strategy, status.decided_at_ms, json.loads(rows[0][1]))

    first_id, first_payload = rows[0][0], json.loads(str(rows[0][1]))
    # The first entry is the ladder level decide() picks from the same bars, price and fresh account.
    assert predicted[0] == first_id
    assert predicted[1] == first_payload["level"]
    assert predicted[3] == Decimal(first_payload["limit_price"])
    assert abs(predicted[2] - Decimal(first_payload["qty"])) <= Decimal("0.00002")  # one lot of price rounding
    # The strategy now reports that level filled on the same swing, and every buy filled within the limit of
    # the attempt it belongs to. (At this replay speed the first IOC may expire unfilled and the intent be sent
    # again as attempt #1 at a new limit. The post-fill decision's band is not compared: the swing low moves
    # with the crash, and the band with it.)
    band = next(lv for lv in status.levels if lv.name == first_payload["level"])
    assert band.filled
    assert status.swing_key == first_payload["swing_key"]
    limits = {int(str(o["clientId"])): Decimal(str(o["price"])) for o in sim_orders}
    ours_with_ids = [f for f in journal_fills if f.client_id is not None]
    assert ours_with_ids
    assert all(f.fill.price <= limits[int(str(f.client_id))] for f in ours_with_ids)

    # Each fill journaled exactly once, and the journal's fills are exactly the simulator's fills of the account.
    trade_ids = [f.fill.trade_id for f in journal_fills]
    assert len(trade_ids) == len(set(trade_ids))
    ours = {(f.fill.trade_id, f.fill.qty, f.fill.price, str(f.client_id)) for f in journal_fills}
    theirs = {(str(r["tradeId"]), Decimal(str(r["quantity"])), Decimal(str(r["price"])), str(r["clientId"]))
              for r in sim_fills}
    assert ours == theirs
    assert len(sim_fills) == len(journal_fills)

    # No attempt reached the exchange twice, every order there is a journaled attempt, and no intent was sent
    # again after one of its attempts filled.
    sent = Counter(int(str(o["clientId"])) for o in sim_orders)
    assert all(n == 1 for n in sent.values())
    attempts = dict(_rows_at(tmp_path))
    assert set(sent) <= set(attempts)
    filled_intents = Counter(attempts[cid] for cid in {int(str(r["clientId"])) for r in sim_fills})
    assert all(n == 1 for n in filled_intents.values())


def _rows_at(tmp_path: Path) -> list[tuple[int, str]]:
    """(client id, intent id) of every journaled attempt, read after the engine stopped."""
    path = tmp_path / "var" / "embedded-sim-journal.sqlite"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return [(int(c), str(i)) for c, i in conn.execute("SELECT client_id, intent_id FROM orders")]


async def test_kill_switch_trips_after_an_entry_loses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """With a 0.1% drawdown limit, the first loss after an entry trips the kill switch: CancelAll, alert, no entries."""
    cfg = engine_config(tmp_path, risk={"kill_switch_drawdown_frac": "0.001"})
    alerts: list[Notice] = []
    with trio.fail_after(60):
        async with running_engine(cfg) as probe:
            notices = probe.notices.subscribe("test", size=256)
            risk = await wait_for(probe.risk, lambda r: r.kill_switch)
            orders_at_trip = len(_sim_orders(probe))
            async for notice in notices:
                if notice.kind == "alert":
                    alerts.append(notice)
                    break
            cancel_all = await poll_until(lambda: next(
                (r.getMessage() for r in caplog.records
                 if r.name == "engine.orders" and r.getMessage().startswith("cancel all")), None), probe.market)
            events = probe.journal.risk_events()
            # Entries stay blocked: later proposals are refused with KILL_SWITCH and nothing more is sent.
            strategy = await wait_for(probe.strategy, lambda s: s.entries_total >= 1)
            orders_after = len(_sim_orders(probe))
    assert risk.kill_switch
    assert risk.halted
    assert risk.equity is not None
    assert risk.drawdown_frac >= Decimal("0.001")
    assert risk.equity < risk.peak_equity
    assert strategy.entries_total >= 1
    assert orders_at_trip >= 1
    assert orders_after == orders_at_trip
    assert [e.code for e in events if e.kind == "HALT"] == ["KILL_SWITCH"]
    assert alerts
    assert cancel_all.startswith(f"cancel all {SYMBOL} orders: kill switch")
    assert "kill switch tripped" in alerts[0].text

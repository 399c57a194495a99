"""The metrics actor serves the engine's series on 127.0.0.1, read from the holders at scrape time."""

from __future__ import annotations

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from actors.metrics import EngineMetrics, run_metrics
from actors.notifier import NotifierCounters
from engine.config import MetricsConfig
from engine.errors import InvariantViolation
from engine.events import AccountSnapshot, RiskState, StrategyStatus
from engine.market.view import MarketView
from engine.notices import Notice, NoticeFanout
from engine.runtime import ActorState, ActorStats, LatestValue, SupervisorStatistics
from tests.ops import factories as f


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _stats() -> SupervisorStatistics:
    return SupervisorStatistics(shutdown_reason=None, actors=(
        ActorStats(name="feed", state=ActorState.BACKOFF, restarts=4, last_error="FeedStale", started_at=1.0),
        ActorStats(name="orders", state=ActorState.RUNNING, restarts=0, last_error=None, started_at=0.0),
    ))


async def test_metrics_served_on_loopback_show_the_engine_state() -> None:
    """After the holders change, a scrape of 127.0.0.1:<port 0> shows prices, quality, risk, account, restarts."""
    market: LatestValue[MarketView] = LatestValue()
    account: LatestValue[AccountSnapshot] = LatestValue()
    risk: LatestValue[RiskState] = LatestValue()
    strategy: LatestValue[StrategyStatus] = LatestValue()
    listening: LatestValue[str] = LatestValue()
    fanout = NoticeFanout()
    rx = fanout.subscribe("metrics", size=8)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_metrics(
                MetricsConfig(enabled=True, port=0), market=market, account=account, risk=risk,
                strategy=strategy, supervisor_stats=_stats, notices=rx, listening=listening,
                task_status=task_status))
            _, url = listening.get_nowait()
            assert url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient() as client:
                empty = await client.get(url)
                assert empty.status_code == 200
                assert "engine_price{" not in empty.text  # nothing published yet: no invented series
                now = trio.current_time()
                market.set(f.view(f.price("97000", age_s=0.5), mid=f.stale("book resyncing", 3.0),
                                  as_of_s=now, reconnects=2, streams=(
                                      f.stream("depth", messages=40, errors=(("bad json", 2),), gaps=1,
                                               resyncs=1),
                                      f.stream("ticker", messages=7, is_stale=True))))
                account.set(f.account(qty="0.020", equity="10012.5"))
                risk.set(f.risk(kill=True, reason="drawdown", blocks=(("STALE_PRICE", 5), ("MAX_OPEN", 1))))
                strategy.set(f.strategy())
                fanout.publish(Notice(kind="order", text="placed", at_ms=1, code="NEW"))
                fanout.publish(Notice(kind="order", text="filled", at_ms=2, code="FILLED"))
                fanout.publish(Notice(kind="fill", text="bought", at_ms=3))
                # The actor counts notices as its own task runs; wait for it event-wise, not by sleeping.
                await trio.testing.wait_all_tasks_blocked()
                response = await client.get(url)
                missing = await client.get(url.replace("/metrics", "/nope"))
            nursery.cancel_scope.cancel(reason="test done")
    assert response.status_code == 200
    assert missing.status_code == 404
    s = _samples(response.text)
    btc = f.SYMBOL
    assert s[("engine_price", (("kind", "last"), ("market", btc), ("source", "ws")))] == 97000.0
    age = s[("engine_price_age_seconds", (("kind", "last"), ("market", btc), ("source", "ws")))]
    assert 0.5 <= age < 10.0
    assert s[("engine_price_stale", (("kind", "last"), ("market", btc)))] == 0.0
    assert s[("engine_price_stale", (("kind", "mid"), ("market", btc)))] == 1.0
    assert not any(name == "engine_price" and ("kind", "mid") in labels for name, labels in s)
    assert s[("engine_feed_messages_total", (("stream", "depth"),))] == 40
    assert s[("engine_feed_decode_errors_total", (("reason", "bad json"), ("stream", "depth")))] == 2
    assert s[("engine_feed_gaps_total", (("stream", "depth"),))] == 1
    assert s[("engine_feed_resyncs_total", (("stream", "depth"),))] == 1
    assert s[("engine_feed_reconnects_total", ())] == 2
    assert s[("engine_feed_stream_stale", (("stream", "ticker"),))] == 1.0
    assert s[("engine_actor_restarts_total", (("actor", "feed"),))] == 4
    assert s[("engine_actor_running", (("actor", "feed"),))] == 0.0
    assert s[("engine_actor_running", (("actor", "orders"),))] == 1.0
    assert s[("engine_orders_total", (("status", "NEW"),))] == 1
    assert s[("engine_orders_total", (("status", "FILLED"),))] == 1
    assert s[("engine_fills_total", ())] == 1
    assert s[("engine_risk_blocks_total", (("code", "STALE_PRICE"),))] == 5
    assert s[("engine_kill_switch", ())] == 1.0
    assert s[("engine_equity", (("market", btc),))] == 10012.5
    assert s[("engine_position_qty", (("market", btc),))] == 0.02
    assert s[("engine_strategy_entries_total", (("market", btc),))] == 2


def test_registries_are_independent() -> None:
    """Two EngineMetrics never share series (no global registry), so parallel engines and tests are safe."""
    first, second = EngineMetrics(now_s=lambda: 0.0), EngineMetrics(now_s=lambda: 0.0)
    first.observe(Notice(kind="fill", text="bought", at_ms=1))
    assert first.registry.get_sample_value("engine_fills_total") == 1.0
    assert second.registry.get_sample_value("engine_fills_total") == 0.0


def test_equity_absent_until_known_and_age_grows_between_views() -> None:
    """No equity series while equity is None; a price's age includes the time since its view was published."""
    now = [100.0]
    market: LatestValue[MarketView] = LatestValue()
    account: LatestValue[AccountSnapshot] = LatestValue()
    metrics = EngineMetrics(market=market, account=account, now_s=lambda: now[0])
    market.set(f.view(f.price("1.0", age_s=1.0), as_of_s=100.0))
    account.set(f.account(equity=None))
    labels = {"market": f.SYMBOL, "kind": "last", "source": "ws"}
    assert metrics.registry.get_sample_value("engine_price_age_seconds", labels) == 1.0
    now[0] = 130.0
    assert metrics.registry.get_sample_value("engine_price_age_seconds", labels) == 31.0
    assert metrics.registry.get_sample_value("engine_equity", {"market": f.SYMBOL}) is None
    assert metrics.registry.get_sample_value("engine_position_qty", {"market": f.SYMBOL}) == 0.01


async def test_disabled_metrics_refuse_to_start() -> None:
    """Starting the actor with enabled = false is a wiring bug, reported as such."""
    fanout = NoticeFanout()
    with pytest.raises(InvariantViolation, match="enabled = false"):
        await run_metrics(MetricsConfig(), market=LatestValue(), account=LatestValue(), risk=LatestValue(),
                          strategy=LatestValue(), supervisor_stats=None, notices=fanout.subscribe("m"))


def test_side_channel_losses_and_webhook_outcomes_are_exported() -> None:
    """Notices dropped per consumer and webhook sent/failed/retries/dropped appear as counters."""
    fanout = NoticeFanout()
    fanout.subscribe("status", size=1)
    fanout.publish(Notice(kind="info", text="a", at_ms=1))
    fanout.publish(Notice(kind="info", text="b", at_ms=2))
    counters = NotifierCounters(sent=4, failed=1, retries=3, dropped=2)
    metrics = EngineMetrics(notice_stats=fanout.statistics, notifier_stats=counters.statistics,
                            now_s=lambda: 0.0)
    value = metrics.registry.get_sample_value
    assert value("engine_notices_dropped_total", {"consumer": "status"}) == 1.0
    assert [value(f"engine_webhook_{n}_total") for n in ("sent", "failed", "retries", "dropped")] == [
        4.0, 1.0, 3.0, 2.0]

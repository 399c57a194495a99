"""The metrics actor: Prometheus series for the engine, served over HTTP on 127.0.0.1 only.

Owns one dedicated :class:`prometheus_client.CollectorRegistry` per :class:`EngineMetrics` (no global
registry, so several engines or tests can run in one process) and the HTTP server that exposes it
(``prometheus_client.make_asgi_app`` under ``hypercorn.trio.serve``).

Rules:

* State is read at scrape time, never copied on a timer: a collector reads the ``LatestValue`` holders
  (market view, account, risk, strategy) and the supervisor's statistics with ``get_nowait`` when
  Prometheus asks, so every series is as current as the holders and nothing polls. Ages add the time since
  the view was published, so a price that stopped updating shows a growing age.
* A stale price exports no price value (only ``engine_price_stale 1``): never a number for a stale price.
* Counters derived from notices (orders by status, fills, notices by kind) are updated by the actor from its
  own "notices" subscription; everything else mirrors counts the engine already keeps (feed quality,
  restarts, risk blocks), exported as counters because they only grow.
* The server binds 127.0.0.1 only; a port of 0 picks a free port, reported through ``listening``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Final, NoReturn, TypeVar

import hypercorn.config
import hypercorn.trio
import trio
from prometheus_client import CollectorRegistry, Counter, make_asgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from actors.notifier import NotifierStatistics
from engine.config import MetricsConfig
from engine.errors import InvariantViolation
from engine.events import AccountSnapshot, RiskState, StrategyStatus
from engine.market.prices import PRICE_KINDS, Price
from engine.market.view import MarketView
from engine.notices import Notice, NoticeStatistics
from engine.runtime import ActorState, LatestValue, SupervisorStatistics

__all__ = ["METRICS_HOST", "EngineMetrics", "run_metrics", "serve_metrics"]

log = logging.getLogger("engine.metrics")

METRICS_HOST: Final = "127.0.0.1"

T = TypeVar("T")

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _latest(holder: LatestValue[T] | None) -> T | None:
    if holder is None:
        return None
    try:
        return holder.get_nowait()[1]
    except trio.WouldBlock:
        return None


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _counter(name: str, doc: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=list(labels))


class _StateCollector:
    """Reads the engine's holders at scrape time (see the module rules)."""

    def __init__(
        self,
        *,
        market: LatestValue[MarketView] | None,
        account: LatestValue[AccountSnapshot] | None,
        risk: LatestValue[RiskState] | None,
        strategy: LatestValue[StrategyStatus] | None,
        supervisor_stats: Callable[[], SupervisorStatistics] | None,
        notice_stats: Callable[[], NoticeStatistics] | None,
        notifier_stats: Callable[[], NotifierStatistics] | None,
        now_s: Callable[[], float],
    ) -> None:
        self._notice_stats = notice_stats
        self._notifier_stats = notifier_stats
        self._market = market
        self._account = account
        self._risk = risk
        self._strategy = strategy
        self._supervisor_stats = supervisor_stats
        self._now_s = now_s

    def collect(self) -> Iterable[Metric]:
        metrics: list[Metric] = []
        view = _latest(self._market)
        if view is not None:
            metrics += self._market_metrics(view)
        account = _latest(self._account)
        if account is not None:
            metrics += self._account_metrics(account)
        risk = _latest(self._risk)
        if risk is not None:
            metrics += self._risk_metrics(risk)
        strategy = _latest(self._strategy)
        if strategy is not None:
            metrics += self._strategy_metrics(strategy)
        if self._supervisor_stats is not None:
            metrics += self._supervisor_metrics(self._supervisor_stats())
        if self._notice_stats is not None:
            dropped = _counter("engine_notices_dropped_total",
                               "notices a side consumer lost because it was full or stopped", ["consumer"])
            for consumer, count in self._notice_stats().dropped:
                dropped.add_metric([consumer], count)
            metrics.append(dropped)
        if self._notifier_stats is not None:
            metrics += self._notifier_metrics(self._notifier_stats())
        return metrics

    @staticmethod
    def _notifier_metrics(stats: NotifierStatistics) -> list[Metric]:
        found: list[Metric] = []
        for name, value, doc in (
            ("sent", stats.sent, "webhook deliveries answered with 2xx"),
            ("failed", stats.failed, "webhook deliveries given up on"),
            ("retries", stats.retries, "repeated webhook POSTs"),
            ("dropped", stats.dropped, "alerts dropped because the notifier queue was full"),
        ):
            family = _counter(f"engine_webhook_{name}_total", doc)
            family.add_metric([], value)
            found.append(family)
        return found

    def _market_metrics(self, view: MarketView) -> list[Metric]:
        elapsed = max(0.0, self._now_s() - view.as_of_s)
        view_age = _gauge("engine_market_view_age_seconds", "time since the cache published its last view")
        view_age.add_metric([], elapsed)
        price = _gauge("engine_price", "usable price (absent while stale)", ["market", "kind", "source"])
        age = _gauge("engine_price_age_seconds", "age of the usable price, or of the last value seen while stale",
                     ["market", "kind", "source"])
        stale = _gauge("engine_price_stale", "1 when the price is stale (no usable value)", ["market", "kind"])
        for state in view.markets:
            for kind in PRICE_KINDS:
                quote = getattr(state, kind)
                if isinstance(quote, Price):
                    labels = [state.symbol, kind, quote.source]
                    price.add_metric(labels, float(quote.value))
                    age.add_metric(labels, quote.age_s + elapsed)
                    stale.add_metric([state.symbol, kind], 0.0)
                else:
                    if quote.age_s is not None:
                        age.add_metric([state.symbol, kind, "none"], quote.age_s + elapsed)
                    stale.add_metric([state.symbol, kind], 1.0)
        quality = view.quality
        connected = _gauge("engine_feed_connected", "1 while the market feed is connected")
        connected.add_metric([], 1.0 if quality.connected else 0.0)
        reconnects = _counter("engine_feed_reconnects_total", "market feed reconnects")
        reconnects.add_metric([], quality.reconnects)
        messages = _counter("engine_feed_messages_total", "feed messages received", ["stream"])
        errors = _counter("engine_feed_decode_errors_total", "feed messages that failed to decode",
                          ["stream", "reason"])
        gaps = _counter("engine_feed_gaps_total", "sequence gaps detected", ["stream"])
        resyncs = _counter("engine_feed_resyncs_total", "resnapshots after a gap or bad data", ["stream"])
        out_of_order = _counter("engine_feed_out_of_order_total", "messages older than one already seen",
                                ["stream"])
        stream_stale = _gauge("engine_feed_stream_stale", "1 while the stream is past its freshness limit",
                              ["stream"])
        for stream in quality.streams:
            messages.add_metric([stream.stream], stream.messages)
            for reason, count in stream.decode_errors:
                errors.add_metric([stream.stream, reason], count)
            gaps.add_metric([stream.stream], stream.gaps)
            resyncs.add_metric([stream.stream], stream.resyncs)
            out_of_order.add_metric([stream.stream], stream.out_of_order)
            stream_stale.add_metric([stream.stream], 1.0 if stream.stale else 0.0)
        return [view_age, price, age, stale, connected, reconnects, messages, errors, gaps, resyncs,
                out_of_order, stream_stale]

    @staticmethod
    def _account_metrics(account: AccountSnapshot) -> list[Metric]:
        labels = ["market"]
        position = _gauge("engine_position_qty", "strategy position quantity (base asset)", labels)
        position.add_metric([account.symbol], float(account.position_qty))
        entry = _gauge("engine_position_avg_entry", "average entry price of the position", labels)
        entry.add_metric([account.symbol], float(account.avg_entry))
        open_orders = _gauge("engine_open_orders", "orders resting on the book", labels)
        open_orders.add_metric([account.symbol], account.open_orders)
        available = _gauge("engine_quote_available", "quote currency available", labels)
        available.add_metric([account.symbol], float(account.quote_available))
        found: list[Metric] = [position, entry, open_orders, available]
        if account.equity is not None:
            # No equity series at all until a price is known: never an invented number.
            equity = _gauge("engine_equity", "mark-to-market account equity", labels)
            equity.add_metric([account.symbol], float(account.equity))
            found.append(equity)
        return found

    @staticmethod
    def _risk_metrics(risk: RiskState) -> list[Metric]:
        kill = _gauge("engine_kill_switch", "1 once the kill switch tripped")
        kill.add_metric([], 1.0 if risk.kill_switch else 0.0)
        halted = _gauge("engine_risk_halted", "1 while risk refuses new entries (halt or kill switch)")
        halted.add_metric([], 1.0 if risk.halted or risk.kill_switch else 0.0)
        drawdown = _gauge("engine_drawdown_ratio", "drawdown of equity from its peak (fraction)")
        drawdown.add_metric([], float(risk.drawdown_frac))
        blocks = _counter("engine_risk_blocks_total", "orders blocked by risk, by reason code", ["code"])
        for code, count in risk.blocks:
            blocks.add_metric([code], count)
        approvals = _counter("engine_risk_approvals_total", "orders approved by risk")
        approvals.add_metric([], risk.approvals)
        return [kill, halted, drawdown, blocks, approvals]

    @staticmethod
    def _strategy_metrics(strategy: StrategyStatus) -> list[Metric]:
        entries = _counter("engine_strategy_entries_total", "entries the strategy has made", ["market"])
        entries.add_metric([strategy.symbol], strategy.entries_total)
        return [entries]

    @staticmethod
    def _supervisor_metrics(stats: SupervisorStatistics) -> list[Metric]:
        restarts = _counter("engine_actor_restarts_total", "actor restarts by the supervisor", ["actor"])
        up = _gauge("engine_actor_running", "1 while the actor is running and ready", ["actor"])
        for actor in stats.actors:
            restarts.add_metric([actor.name], actor.restarts)
            up.add_metric([actor.name], 1.0 if actor.state is ActorState.RUNNING else 0.0)
        return [restarts, up]


class EngineMetrics:
    """The engine's Prometheus series in a registry of their own (``registry``)."""

    def __init__(
        self,
        *,
        market: LatestValue[MarketView] | None = None,
        account: LatestValue[AccountSnapshot] | None = None,
        risk: LatestValue[RiskState] | None = None,
        strategy: LatestValue[StrategyStatus] | None = None,
        supervisor_stats: Callable[[], SupervisorStatistics] | None = None,
        notice_stats: Callable[[], NoticeStatistics] | None = None,
        notifier_stats: Callable[[], NotifierStatistics] | None = None,
        now_s: Callable[[], float] = trio.current_time,
    ) -> None:
        self.registry = CollectorRegistry()
        self._orders = Counter("engine_orders", "order notices by order status", ["status"],
                               registry=self.registry)
        self._fills = Counter("engine_fills", "fill notices", registry=self.registry)
        self._notices = Counter("engine_notices", "notices by kind", ["kind"], registry=self.registry)
        self.registry.register(_StateCollector(market=market, account=account, risk=risk, strategy=strategy,
                                               supervisor_stats=supervisor_stats, notice_stats=notice_stats,
                                               notifier_stats=notifier_stats, now_s=now_s))

    def observe(self, notice: Notice) -> None:
        """Count one notice (orders by ``code``, the order status; fills; every notice by kind)."""
        self._notices.labels(notice.kind).inc()
        if notice.kind == "order":
            self._orders.labels(notice.code or "unknown").inc()
        elif notice.kind == "fill":
            self._fills.inc()


def _asgi_app(registry: CollectorRegistry) -> Callable[[_Scope, _Receive, _Send], Awaitable[None]]:
    """prometheus_client's app on ``/metrics`` (and ``/``), plus the lifespan protocol hypercorn speaks."""
    metrics_app = make_asgi_app(registry)

    async def app(scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope.get("path") in ("/", "/metrics"):
            await metrics_app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "http.response.body", "body": b"not found; metrics are at /metrics\n"})

    return app


async def serve_metrics(
    registry: CollectorRegistry,
    *,
    port: int,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve ``registry`` on http://127.0.0.1:<port>/metrics until cancelled; started with the URL."""
    config = hypercorn.config.Config()
    config.bind = [f"{METRICS_HOST}:{port}"]
    config.graceful_timeout = 0.5
    config.errorlog = logging.getLogger("engine.metrics.hypercorn")
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(hypercorn.trio.serve, _asgi_app(registry), config)
        url = f"{binds[0]}/metrics"
        task_status.started(url)
        await trio.sleep_forever()
    raise AssertionError("unreachable")


async def run_metrics(
    cfg: MetricsConfig,
    *,
    market: LatestValue[MarketView],
    account: LatestValue[AccountSnapshot],
    risk: LatestValue[RiskState],
    strategy: LatestValue[StrategyStatus],
    supervisor_stats: Callable[[], SupervisorStatistics] | None,
    notices: trio.MemoryReceiveChannel[Notice],
    notice_stats: Callable[[], NoticeStatistics] | None = None,
    notifier_stats: Callable[[], NotifierStatistics] | None = None,
    listening: LatestValue[str] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve the engine's metrics until cancelled; the wiring starts it only when ``cfg.enabled``.

    The URL actually served (useful with ``port = 0``) is logged and, when given, set on ``listening``.
    ``notice_stats`` (``NoticeFanout.statistics``) and ``notifier_stats`` (``NotifierCounters.statistics``)
    add the side channels' own losses and webhook outcomes.
    """
    if not cfg.enabled:
        raise InvariantViolation("run_metrics started although [metrics] enabled = false")
    metrics = EngineMetrics(market=market, account=account, risk=risk, strategy=strategy,
                            supervisor_stats=supervisor_stats, notice_stats=notice_stats,
                            notifier_stats=notifier_stats)
    async with notices, trio.open_nursery() as nursery:
        url: str = await nursery.start(functools.partial(serve_metrics, metrics.registry, port=cfg.port))
        log.info("metrics served at %s", url)
        if listening is not None:
            listening.set(url)
        task_status.started()
        async for notice in notices:
            metrics.observe(notice)
        # Every publisher is gone (the fan-out closed); keep serving what the holders say.
        await trio.sleep_forever()
    raise AssertionError("unreachable")

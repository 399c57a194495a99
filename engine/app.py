"""Wiring: one ``EngineConfig`` in, the supervised actor graph running against an exchange.

Rule 1: this is the only module that knows every actor. Actors know their own config section and the channel
ends and latest-value holders handed to them; nothing else is shared.
Rule 2: where orders go is decided here, once, before anything connects (:func:`trading_venue`):

* ``exchange = "simulator"``: orders go to the simulated exchange (embedded, or external via URLs). Nothing
  there is real money, so this is paper trading against a full exchange.
* ``exchange = "backpack"``, ``mode = "paper"``: real market data; orders are filled locally against the live
  book by the paper broker and never leave the process.
* ``exchange = "backpack"``, ``mode = "live"``: real orders, only with keys in the environment *and* the
  explicit ``--live`` flag; refused otherwise with a message that says what is missing.

Rule 3: two clocks. Signatures, journal rows and request windows use the host wall clock (``wall_ms``); market
logic (closed bars, the strategy's "now") uses the exchange's time axis (``market_ms``), which runs ahead of
the host clock when the simulator replays faster than real time. Ages and timeouts use trio's clock.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import attrs
import httpx
import trio

from actors.brokers import Broker, ExchangeBroker, PaperBroker
from actors.cache import run_cache
from actors.feed import run_feed
from actors.journal import run_journal
from actors.metrics import run_metrics
from actors.notifier import run_notifier
from actors.orders import run_orders
from actors.risk import run_risk
from actors.status import run_status
from actors.strategy import run_strategy
from engine.backpack.events import BalanceUpdate, OrderUpdate, PositionUpdate, WsError
from engine.backpack.signing import Signer
from engine.config import ApiCredentials, EngineConfig
from engine.errors import ConfigError, FatalError
from engine.events import (
    AccountEvent,
    AccountSnapshot,
    Control,
    FillNotice,
    OrderCommand,
    Proposal,
    RiskState,
    StrategyStatus,
)
from engine.market.feed_events import FeedEvent, FeedStatus, Received
from engine.market.view import MarketView
from engine.notices import Notice, NoticeFanout, NoticeKind, Severity
from engine.orders.fsm import OrderRecord, Status
from engine.rest import RestClient
from engine.runtime import ActorSpec, LatestValue, RestartPolicy, Supervisor, SupervisorStatistics
from engine.sim.server import SimHandle, serve_simulator
from engine.store.journal import Journal
from engine.strategy_inputs import market_rules

__all__ = ["EngineProbe", "Venue", "run_engine", "trading_venue", "wall_clock_ms"]

log = logging.getLogger("engine.app")

_NOTICE_MEMORY = 1024  # attempts remembered for de-duplicating notices


def wall_clock_ms() -> int:
    """Host wall clock in integer milliseconds: the one place the engine reads it (injected everywhere)."""
    return time.time_ns() // 1_000_000


@attrs.frozen(kw_only=True)
class Venue:
    """Where market data comes from and where orders go, decided once before connecting."""

    kind: str  # "simulator" | "paper" | "live"
    embedded: bool
    rest_url: str
    ws_url: str
    private_streams: bool


def trading_venue(cfg: EngineConfig, *, live_flag: bool, credentials: ApiCredentials | None) -> Venue:
    """Decide the venue, or refuse with a message that says exactly what is missing.

    Live trading needs all three of ``mode = "live"``, the ``--live`` flag and API keys; any one alone is
    refused, so a stray flag or a copied config can never send a real order.
    """
    engine = cfg.engine
    endpoints = engine.endpoints()
    rest_url, ws_url = endpoints if endpoints is not None else ("", "")
    if engine.mode == "live" or live_flag:
        missing = []
        if engine.mode != "live":
            missing.append('engine.mode = "live" in the configuration')
        if not live_flag:
            missing.append("the --live command-line flag")
        if engine.exchange != "backpack":
            missing.append('engine.exchange = "backpack"')
        if credentials is None:
            missing.append(f"API keys in the environment ({engine.api_key_env}, {engine.api_secret_env})")
        if missing:
            raise ConfigError([f"live trading refused: it needs {item}" for item in missing])
        return Venue(kind="live", embedded=False, rest_url=rest_url, ws_url=ws_url, private_streams=True)
    if engine.exchange == "backpack":
        return Venue(kind="paper", embedded=False, rest_url=rest_url, ws_url=ws_url, private_streams=False)
    return Venue(kind="simulator", embedded=endpoints is None, rest_url=rest_url, ws_url=ws_url,
                 private_streams=True)


def _clone(value: Any) -> Any:
    if isinstance(value, (trio.MemorySendChannel, trio.MemoryReceiveChannel)):
        return value.clone()
    return value


def _actor(name: str, fn: Callable[..., Awaitable[Any]], policy: RestartPolicy, *,
           depends_on: tuple[str, ...] = (), **kwargs: Any) -> ActorSpec:
    """An actor spec whose every attempt gets fresh clones of its channel ends.

    Actors close the ends they own with ``async with``; the wiring keeps the originals open for the whole run,
    so a restarted attempt never starts with a closed channel (the supervisor's restart-safe wiring rule).
    """

    async def run(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        await fn(task_status=task_status, **{key: _clone(value) for key, value in kwargs.items()})

    return ActorSpec(name=name, run=run, policy=policy, depends_on=depends_on)


class MarketClock:
    """The exchange's time axis, as observed from its own timestamps.

    ``now_ms()`` is the latest exchange event time seen plus the trio-clock time since it arrived, never
    behind what was already returned. Before any event it falls back to the host wall clock.
    """

    def __init__(self, wall_ms: Callable[[], int]) -> None:
        self._wall_ms = wall_ms
        self._seen_ms: int | None = None
        self._seen_at = 0.0
        self._last = 0

    def observe_us(self, exchange_us: int) -> None:
        ms = exchange_us // 1000
        if self._seen_ms is None or ms >= self._seen_ms:
            self._seen_ms = ms
            self._seen_at = trio.current_time()

    def now_ms(self) -> int:
        if self._seen_ms is None:
            value = self._wall_ms()
        else:
            value = self._seen_ms + int((trio.current_time() - self._seen_at) * 1000)
        self._last = max(self._last, value)
        return self._last


class _Connects:
    """Counts feed connections across relay restarts; every one after the first is a reconnect."""

    def __init__(self, reconnects: LatestValue[int]) -> None:
        self.seen = 0
        self.reconnects = reconnects

    def connected(self) -> None:
        self.seen += 1
        if self.seen > 1:
            self.reconnects.set(self.seen - 1)


async def _relay_feed(
    *,
    feed_in: trio.MemoryReceiveChannel[FeedEvent],
    cache_out: trio.MemorySendChannel[FeedEvent],
    clock: MarketClock,
    connects: _Connects,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Pass market events to the cache, noting exchange time and reconnects on the way (no copies, no queue)."""
    task_status.started()
    async with feed_in, cache_out:
        async for event in feed_in:
            if isinstance(event, Received) and not isinstance(event.event, WsError):
                if event.event.event_time_us is not None:
                    clock.observe_us(event.event.event_time_us)
            elif isinstance(event, FeedStatus) and event.state == "connected":
                connects.connected()
            await cache_out.send(event)
    raise FatalError("the feed relay's input closed")


async def _relay_account(
    *,
    feed_in: trio.MemoryReceiveChannel[FeedEvent],
    orders_out: trio.MemorySendChannel[AccountEvent],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Unwrap private account events for the orders actor (bounded: backpressure, never dropped)."""
    task_status.started()
    async with feed_in, orders_out:
        async for event in feed_in:
            if isinstance(event, Received):
                inner = event.event
                if isinstance(inner, OrderUpdate | PositionUpdate | BalanceUpdate):
                    await orders_out.send(inner)
    raise FatalError("the account relay's input closed")


async def _relay_alerts(
    *,
    alerts: trio.MemoryReceiveChannel[str],
    fanout: NoticeFanout,
    wall_ms: Callable[[], int],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    task_status.started()
    async with alerts:
        async for text in alerts:
            fanout.publish(Notice(kind="alert", text=text, at_ms=wall_ms(), severity=Severity.CRITICAL))
    raise FatalError("the alert relay's input closed")


def _order_notice(fanout: NoticeFanout, wall_ms: Callable[[], int]) -> Callable[[OrderRecord], None]:
    """One notice per visible change of an attempt: a new status, or more filled (not every journal row).

    An attempt the exchange reports FILLED before its fills have been applied is announced once the fills
    are in, so a reader never sees "FILLED: filled 0".
    """
    seen: dict[int, tuple[Status, Decimal]] = {}

    def publish(order: OrderRecord) -> None:
        if order.status is Status.FILLED and order.filled_qty < order.qty:
            return
        key = (order.status, order.filled_qty)
        previous = seen.get(order.client_id)
        if previous == key:
            return
        seen[order.client_id] = key
        if len(seen) > _NOTICE_MEMORY:
            del seen[next(iter(seen))]
        filled_more = previous is None and order.filled_qty > 0 or (
            previous is not None and order.filled_qty > previous[1])
        kind: NoticeKind = "fill" if filled_more else "order"
        avg = order.avg_price
        text = (f"{order.side.value} {order.qty} {order.symbol} limit {order.limit_price} "
                f"cid={order.client_id} {order.status.value}: filled {order.filled_qty}"
                + (f" avg {avg:.2f}" if avg is not None else ""))
        fanout.publish(Notice(kind=kind, text=text, at_ms=wall_ms(), code=order.status.value))

    return publish


def _cache_intervals(feed_intervals: Sequence[str]) -> tuple[str, ...]:
    """The feed's intervals, with daily bars first and always present.

    The strategy decides on daily bars, so the cache keeps them even if no daily stream is subscribed (REST
    backfill fills them) and backfills them before the finer intervals: the first decision then comes in
    about a second instead of after five other backfills.
    """
    return ("1d", *(interval for interval in feed_intervals if interval != "1d"))


class _ViewSink:
    """Lets the cache's latest-value sender feed the shared MarketView holder that several actors read."""

    def __init__(self, holder: LatestValue[MarketView]) -> None:
        self._holder = holder

    def send_nowait(self, view: MarketView) -> None:
        self._holder.set(view)


@attrs.frozen(kw_only=True)
class _Holders:
    market: LatestValue[MarketView] = attrs.field(factory=LatestValue)
    account: LatestValue[AccountSnapshot] = attrs.field(factory=LatestValue)
    risk: LatestValue[RiskState] = attrs.field(factory=LatestValue)
    strategy: LatestValue[StrategyStatus] = attrs.field(factory=LatestValue)
    reconnects: LatestValue[int] = attrs.field(factory=LatestValue)


@attrs.frozen(kw_only=True)
class EngineProbe:
    """Read-only handles on one running engine, for tests and embedding programs (observe, never trade).

    ``sim`` is the embedded simulator (None otherwise): its fault switches let a test stall or drop the feed.
    ``account_key`` is the base64 public key the engine signs with (None without a signer).
    """

    venue: Venue
    sim: SimHandle | None
    account_key: str | None
    journal: Journal
    market: LatestValue[MarketView]
    account: LatestValue[AccountSnapshot]
    risk: LatestValue[RiskState]
    strategy: LatestValue[StrategyStatus]
    notices: NoticeFanout


async def _build_broker(venue: Venue, cfg: EngineConfig, *, rest: RestClient, journal: Journal,
                        market: LatestValue[MarketView], wall_ms: Callable[[], int]) -> Broker:
    if venue.kind == "paper":
        filters = await ExchangeBroker(rest, kind="market-data").filters(cfg.strategy.market.symbol)
        return PaperBroker(market=market, journal=journal, filters=filters,
                           taker_fee=cfg.strategy.sizing.taker_fee_frac,
                           initial_quote=cfg.orders.paper_initial_usdc, now_ms=wall_ms)
    return ExchangeBroker(rest, kind=venue.kind)


def _journal_path(cfg: EngineConfig, venue: Venue) -> Path:
    """The embedded simulator starts from nothing every run, so its journal does too (a separate file)."""
    if venue.embedded:
        path = Path(cfg.engine.state_dir) / "embedded-sim-journal.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return path
    return Path(cfg.journal.path)


async def run_engine(
    cfg: EngineConfig,
    *,
    live_flag: bool = False,
    credentials: ApiCredentials | None = None,
    webhook_urls: tuple[str, ...] = (),
    wall_ms: Callable[[], int] = wall_clock_ms,
    rng: random.Random | None = None,
    observe: Callable[[EngineProbe], None] | None = None,
    task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED,
) -> SupervisorStatistics:
    """Run the whole engine until cancelled or a fatal error; returns the supervisor's final statistics.

    ``observe`` is called once with an :class:`EngineProbe` after the actor graph is wired and before any actor
    starts, so an observer subscribed there misses nothing.
    """
    venue = trading_venue(cfg, live_flag=live_flag, credentials=credentials)
    symbol = cfg.strategy.market.symbol
    market_type = cfg.strategy.market.market_type
    # The embedded simulator must outlive the actors' shutdown cleanup (cancelling resting orders talks to
    # it), so it runs under a shielded scope that is cancelled only after the actors have stopped.
    sim_scope = trio.CancelScope(shield=True)

    async def serve(*, task_status: trio.TaskStatus[SimHandle] = trio.TASK_STATUS_IGNORED) -> None:
        with sim_scope:
            await serve_simulator(cfg.sim, task_status=task_status)

    async with trio.open_nursery() as nursery:
        rest_url, ws_url = venue.rest_url, venue.ws_url
        sim: SimHandle | None = None
        if venue.embedded:
            sim = await nursery.start(serve)
            rest_url, ws_url = sim.rest_url, sim.ws_url
        signer: Signer | None = None
        if credentials is not None and venue.kind != "paper":
            signer = Signer(credentials.api_secret)
        elif venue.kind == "simulator":
            # Any valid key is a funded account on the simulator; a fresh one per run needs no setup.
            signer, _secret = Signer.generate()
        log.info("venue %s: REST %s, WebSocket %s, market %s (%s)%s", venue.kind, rest_url, ws_url, symbol,
                 market_type, f", account {signer.public_key_b64}" if signer else "")
        path = _journal_path(cfg, venue)
        path.parent.mkdir(parents=True, exist_ok=True)
        journal = Journal.open(path, now_ms=wall_ms)
        try:
            async with httpx.AsyncClient(base_url=rest_url, timeout=10.0) as http:
                rest = RestClient(http, signer=signer, now_ms=wall_ms)
                stats = await _run_actors(cfg, venue=venue, symbol=symbol, market_type=market_type, rest=rest,
                                          http=http, ws_url=ws_url, signer=signer, journal=journal,
                                          webhook_urls=webhook_urls, wall_ms=wall_ms, rng=rng,
                                          sim=sim, observe=observe, task_status=task_status)
        finally:
            journal.close()
            sim_scope.cancel(reason="engine stopped")
        nursery.cancel_scope.cancel(reason="engine stopped")
    return stats


async def _run_actors(
    cfg: EngineConfig,
    *,
    venue: Venue,
    symbol: str,
    market_type: str,
    rest: RestClient,
    http: httpx.AsyncClient,
    ws_url: str,
    signer: Signer | None,
    journal: Journal,
    webhook_urls: tuple[str, ...],
    wall_ms: Callable[[], int],
    rng: random.Random | None,
    sim: SimHandle | None,
    observe: Callable[[EngineProbe], None] | None,
    task_status: trio.TaskStatus[Supervisor],
) -> SupervisorStatistics:
    holders = _Holders()
    clock = MarketClock(wall_ms)
    fanout = NoticeFanout()
    broker = await _build_broker(venue, cfg, rest=rest, journal=journal, market=holders.market, wall_ms=wall_ms)
    rules = market_rules(await broker.filters(symbol))

    feed_tx, relay_rx = trio.open_memory_channel[FeedEvent](256)
    relay_tx, cache_rx = trio.open_memory_channel[FeedEvent](256)
    acct_feed_tx, acct_relay_rx = trio.open_memory_channel[FeedEvent](256)
    acct_tx, acct_rx = trio.open_memory_channel[AccountEvent](256)
    proposal_tx, proposal_rx = trio.open_memory_channel[Proposal](8)
    command_tx, command_rx = trio.open_memory_channel[OrderCommand](8)
    fill_tx, fill_rx = trio.open_memory_channel[FillNotice](64)
    control_tx, control_rx = trio.open_memory_channel[Control](8)
    alert_tx, alert_rx = trio.open_memory_channel[str](64)
    status_notices = fanout.subscribe("status")

    policy = cfg.supervisor.to_policy()
    price_age_ms = int(cfg.strategy.data.max_price_age_s * 1000)
    # A limit price may sit above the reference price by the slippage allowance; risk's sanity band is wider
    # so it only catches absurd prices, never the strategy's own allowance.
    price_band = max(Decimal("0.02"), cfg.strategy.sizing.max_slippage_frac * 4)
    specs = [
        _actor("feed", run_feed, policy, cfg=cfg.feed, ws_url=ws_url, rest=http, symbols=(symbol,),
               out=feed_tx, account_out=acct_feed_tx if venue.private_streams else None,
               signer=signer if venue.private_streams else None, now_ms=wall_ms),
        _actor("feed-relay", _relay_feed, policy, feed_in=relay_rx, cache_out=relay_tx, clock=clock,
               connects=_Connects(holders.reconnects)),
        _actor("account-relay", _relay_account, policy, feed_in=acct_relay_rx, orders_out=acct_tx),
        _actor("cache", run_cache, policy, cfg=cfg.cache, inbox=cache_rx, view_out=_ViewSink(holders.market), rest=http,
               symbols=(symbol,), now_ms=clock.now_ms, intervals=_cache_intervals(cfg.feed.kline_intervals)),
        _actor("orders", run_orders, policy, cfg=cfg.orders, commands=command_rx, account_events=acct_rx,
               fills_out=fill_tx, account=holders.account, broker=broker, journal=journal, symbol=symbol,
               market_type=market_type, now_ms=wall_ms, market=holders.market, reconnects=holders.reconnects,
               notices=_order_notice(fanout, wall_ms)),
        _actor("risk", run_risk, policy, depends_on=("orders",), cfg=cfg.risk, proposals=proposal_rx,
               control=control_rx, commands=command_tx, market=holders.market, account=holders.account,
               risk_state=holders.risk, journal=journal, alerts=alert_tx, now_ms=wall_ms,
               price_band_frac=price_band, max_price_age_ms=price_age_ms),
        _actor("strategy", run_strategy, policy, depends_on=("risk",), cfg=cfg.strategy, market=holders.market,
               account=holders.account, fills=fill_rx, proposals=proposal_tx, status=holders.strategy,
               journal=journal, now_ms=clock.now_ms, rules=rules),
        _actor("alerts", _relay_alerts, policy, alerts=alert_rx, fanout=fanout, wall_ms=wall_ms),
        _actor("journal", run_journal, policy, cfg=cfg.journal, journal=journal,
               shutdown_grace_s=cfg.supervisor.shutdown_grace_s),
    ]
    # Side actors read the supervisor's statistics, and the supervisor is built from their specs: a cell
    # breaks the cycle.
    cell: list[Supervisor] = []

    def supervisor_stats() -> SupervisorStatistics:
        return cell[0].statistics()

    specs.append(_actor("status", run_status, policy, cfg=cfg.status, market=holders.market,
                        account=holders.account, risk=holders.risk, strategy=holders.strategy,
                        supervisor_stats=supervisor_stats, notices=status_notices, symbol=symbol))
    if cfg.metrics.enabled:
        specs.append(_actor("metrics", run_metrics, policy, cfg=cfg.metrics, market=holders.market,
                            account=holders.account, risk=holders.risk, strategy=holders.strategy,
                            supervisor_stats=supervisor_stats, notices=fanout.subscribe("metrics"),
                            notice_stats=fanout.statistics))
    if webhook_urls:
        specs.append(_actor("notifier", run_notifier, policy, cfg=cfg.notifier, urls=webhook_urls,
                            notices=fanout.subscribe("notifier"), risk=holders.risk))
    if observe is not None:
        observe(EngineProbe(venue=venue, sim=sim, account_key=signer.public_key_b64 if signer else None,
                            journal=journal, market=holders.market, account=holders.account, risk=holders.risk,
                            strategy=holders.strategy, notices=fanout))
    supervisor = Supervisor(specs, rng=rng)
    cell.append(supervisor)
    log.info("starting %d actors: %s", len(specs), ", ".join(spec.name for spec in specs))
    return await supervisor.run(task_status=task_status)


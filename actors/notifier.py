"""The notifier actor: webhook alerts (JSON POSTs) for the events an operator must hear about.

Owns the webhook deliveries: one ``httpx.AsyncClient`` (transport injectable for tests), a bounded queue of
alerts waiting to be sent, and the delivery counters (:class:`NotifierCounters`).

What is sent: every transition of the published ``RiskState`` into a halt or the kill switch (and back to
normal), derived here so that no publisher has to remember to announce it, plus every notice whose kind is in
``[notifier] kinds`` (by default ``alert`` and ``restart``, which is where the wiring reports a
restart-intensity stop; add ``fill`` to be told about fills).

Rules:

* Never blocks the trading path: notices arrive on this actor's own fan-out subscription and go into a bounded
  queue with ``send_nowait``; when the queue is full the alert is dropped and counted, never waited for.
* Each POST has a timeout (a cancel scope at the call site). A network error, a timeout, 429 or 5xx is
  retried at most ``max_retries`` times, the first retry at once and later ones after a capped doubling
  backoff; any other 4xx is not retried. An alert that still fails is counted in ``failed`` and logged once.
* Webhook URLs may carry tokens: they are never logged (deliveries are named ``webhook #<n>``), and URLs read
  from the environment by :func:`resolve_webhook_urls` are registered with the log mask.
* On shutdown, alerts still queued or in flight get one more attempt each, under a shielded, bounded scope
  (``shutdown_grace_s``), so the kill switch alert that triggered the shutdown still goes out.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final, NoReturn

import attrs
import httpx
import trio

from engine.config import NotifierConfig
from engine.errors import ConfigError
from engine.events import RiskState
from engine.logsetup import add_secret
from engine.notices import Notice, Severity
from engine.runtime import Backoff, LatestValue, cleanup_scope

__all__ = [
    "NotifierCounters",
    "NotifierStatistics",
    "alert_payload",
    "resolve_webhook_urls",
    "risk_alerts",
    "run_notifier",
]

log = logging.getLogger("engine.notifier")

# Closing the HTTP client after the shutdown drain: its own short bound, so it cannot be starved by the drain.
_CLOSE_GRACE_S: Final = 0.5


@attrs.frozen(kw_only=True)
class NotifierStatistics:
    queued: int  # alerts accepted into the queue
    sent: int  # deliveries (alert x webhook) that got a 2xx
    failed: int  # deliveries given up on (retries exhausted, a non-retryable status, or shutdown)
    retries: int  # repeated POSTs
    dropped: int  # alerts refused because the queue was full


@attrs.define
class NotifierCounters:
    """The notifier's counters; pass one to :func:`run_notifier` to read them from outside the actor."""

    queued: int = 0
    sent: int = 0
    failed: int = 0
    retries: int = 0
    dropped: int = 0
    _settled: trio.lowlevel.ParkingLot = attrs.field(factory=trio.lowlevel.ParkingLot, init=False, repr=False,
                                                     eq=False)

    def statistics(self) -> NotifierStatistics:
        return NotifierStatistics(queued=self.queued, sent=self.sent, failed=self.failed, retries=self.retries,
                                  dropped=self.dropped)

    def settle(self, *, sent: int = 0, failed: int = 0) -> None:
        """Record decided deliveries (wakes :meth:`wait_settled`)."""
        self.sent += sent
        self.failed += failed
        self._settled.unpark_all()

    async def wait_settled(self, deliveries: int) -> None:
        """Wait until at least ``deliveries`` deliveries were decided (sent or failed)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while self.sent + self.failed < deliveries:
            await self._settled.park()
        await trio.lowlevel.cancel_shielded_checkpoint()


def resolve_webhook_urls(cfg: NotifierConfig, environ: Mapping[str, str]) -> tuple[str, ...]:
    """The webhook URLs to use: ``cfg.urls`` plus the value of every variable named in ``cfg.url_env``.

    Called once at the CLI edge (actors never read the environment). Values from the environment are
    registered with the log mask. Raises ConfigError listing every unset or malformed variable (by name,
    never by value). Returns ``()`` when the notifier is disabled.
    """
    if not cfg.enabled:
        return ()
    urls = list(cfg.urls)
    problems = []
    for name in cfg.url_env:
        value = environ.get(name, "").strip()
        if not value:
            problems.append(f"notifier.url_env: environment variable {name} is not set")
            continue
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in ("http", "https") or not rest:
            problems.append(f"notifier.url_env: environment variable {name} does not hold an http(s) URL")
            continue
        add_secret(value)
        urls.append(value)
    if problems:
        raise ConfigError(problems)
    return tuple(urls)


def alert_payload(notice: Notice) -> dict[str, Any]:
    """The JSON body of one alert; ``text`` is a one-line summary (what chat webhooks display)."""
    return {
        "text": f"[{notice.severity.value.upper()}] {notice.kind}: {notice.text}",
        "kind": notice.kind,
        "severity": notice.severity.value,
        "message": notice.text,
        "code": notice.code,
        "at_ms": notice.at_ms,
        "source": "backpack-nanpin-engine",
    }


def risk_alerts(previous: RiskState | None, current: RiskState) -> list[Notice]:
    """Alerts for the change from ``previous`` (None = nothing seen yet, i.e. normal) to ``current``."""
    was_killed = previous is not None and previous.kill_switch
    was_halted = previous is not None and (previous.halted or previous.kill_switch)
    halted = current.halted or current.kill_switch
    reason = current.halt_reason or "no reason given"
    if current.kill_switch and not was_killed:
        return [Notice(kind="risk", severity=Severity.CRITICAL, code="kill_switch", at_ms=current.as_of_ms,
                       text=f"kill switch tripped ({reason}); drawdown {current.drawdown_frac}")]
    if halted and not was_halted:
        return [Notice(kind="risk", severity=Severity.WARNING, code="halt", at_ms=current.as_of_ms,
                       text=f"trading halted ({reason})")]
    if was_halted and not halted:
        return [Notice(kind="risk", severity=Severity.INFO, code="resume", at_ms=current.as_of_ms,
                       text="trading resumed")]
    return []


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class _Deliveries:
    """Delivery of queued alerts to every webhook, with the bookkeeping the shutdown drain needs."""

    def __init__(self, cfg: NotifierConfig, urls: Sequence[str], client: httpx.AsyncClient,
                 counters: NotifierCounters) -> None:
        self._cfg = cfg
        self._urls = tuple(urls)
        self._client = client
        self._counters = counters
        self._backoff = Backoff(initial_s=cfg.backoff_initial_s, max_s=cfg.backoff_max_s)
        # Deliveries started but not finished, so a shutdown can give them their last attempt.
        self._in_flight: dict[int, tuple[int, dict[str, Any]]] = {}
        self._ids = itertools.count()

    async def _post_once(self, index: int, payload: dict[str, Any]) -> tuple[bool, bool, str]:
        """One POST: (delivered, worth retrying, what happened)."""
        with trio.move_on_after(self._cfg.timeout_s) as scope:
            try:
                response = await self._client.post(self._urls[index], json=payload)
            except httpx.HTTPError as exc:
                # The one boundary where httpx errors are handled: every one is a failed, retryable attempt.
                return False, True, type(exc).__name__
        if scope.cancelled_caught:
            return False, True, f"no answer within {self._cfg.timeout_s}s"
        if response.is_success:
            return True, False, str(response.status_code)
        return False, _retryable(response.status_code), f"HTTP {response.status_code}"

    async def deliver(self, index: int, payload: dict[str, Any]) -> None:
        """Deliver one alert to webhook ``index``, with retries; counts the outcome."""
        key = next(self._ids)
        # Removed only when the delivery is decided: if cancelled midway, the shutdown drain retries it.
        self._in_flight[key] = (index, payload)
        outcome = ""
        for attempt in range(self._cfg.max_retries + 1):
            if attempt:
                self._counters.retries += 1
                await trio.sleep(self._backoff.upper(attempt - 1))
            delivered, retry, outcome = await self._post_once(index, payload)
            if delivered:
                del self._in_flight[key]
                self._counters.settle(sent=1)
                return
            log.debug("webhook #%d attempt %d failed: %s", index, attempt + 1, outcome)
            if not retry:
                break
        del self._in_flight[key]
        self._counters.settle(failed=1)
        log.warning("webhook #%d: gave up on an alert (kind %s) after %d attempt(s): %s", index,
                    payload["kind"], attempt + 1, outcome)

    async def deliver_all(self, alert: Notice) -> None:
        payload = alert_payload(alert)
        async with trio.open_nursery() as nursery:
            for index in range(len(self._urls)):
                nursery.start_soon(self.deliver, index, payload)

    async def drain(self, queue: trio.MemoryReceiveChannel[Notice]) -> None:
        """At shutdown: one last attempt for every unfinished delivery and every queued alert."""
        last: list[tuple[int, dict[str, Any]]] = list(self._in_flight.values())
        self._in_flight.clear()
        while True:
            try:
                alert = queue.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            payload = alert_payload(alert)
            last.extend((index, payload) for index in range(len(self._urls)))
        handled = 0
        try:
            for index, payload in last:
                delivered, _retry, outcome = await self._post_once(index, payload)
                handled += 1
                if delivered:
                    self._counters.settle(sent=1)
                else:
                    self._counters.settle(failed=1)
                    log.warning("webhook #%d: an alert (kind %s) failed at shutdown: %s", index, payload["kind"],
                                outcome)
        finally:
            # The grace period ran out (the enclosing scope cancelled us): what is left is lost, and counted.
            if handled < len(last):
                self._counters.settle(failed=len(last) - handled)
                log.warning("notifier: shutdown grace ran out with %d alert deliveries unsent",
                            len(last) - handled)


async def run_notifier(
    cfg: NotifierConfig,
    *,
    urls: Sequence[str],
    notices: trio.MemoryReceiveChannel[Notice],
    risk: LatestValue[RiskState] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    counters: NotifierCounters | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Send webhook alerts until cancelled (see the module docstring for what and how).

    ``urls`` come from :func:`resolve_webhook_urls`; ``transport`` replaces httpx's network transport
    (tests); ``counters`` receives the delivery counts.
    """
    if not urls:
        raise ConfigError(["notifier: no webhook URL to send to (set urls or url_env)"])
    counters = counters if counters is not None else NotifierCounters()
    client = httpx.AsyncClient(transport=transport, timeout=cfg.timeout_s)
    deliveries = _Deliveries(cfg, urls, client, counters)
    queue_in, queue_out = trio.open_memory_channel[Notice](cfg.queue_size)
    kinds = frozenset(cfg.kinds)

    def offer(alert: Notice) -> None:
        try:
            queue_in.send_nowait(alert)
        except trio.WouldBlock:
            counters.dropped += 1
            log.warning("notifier queue full (%d): dropped an alert (kind %s)", cfg.queue_size, alert.kind)
        else:
            counters.queued += 1

    async def send_queued() -> None:
        async for alert in queue_out:
            await deliveries.deliver_all(alert)

    async def watch_risk(holder: LatestValue[RiskState]) -> None:
        seen, previous = 0, None
        while True:
            seen, current = await holder.wait_changed(seen)
            for alert in risk_alerts(previous, current):
                offer(alert)
            previous = current

    try:
        async with notices, trio.open_nursery() as nursery:
            nursery.start_soon(send_queued)
            if risk is not None:
                nursery.start_soon(watch_risk, risk)
            task_status.started()
            async for notice in notices:
                if notice.kind in kinds:
                    offer(notice)
            # The fan-out closed: keep sending what is queued and what risk reports.
            await trio.sleep_forever()
        raise AssertionError("unreachable")
    finally:
        with cleanup_scope(cfg.shutdown_grace_s):
            await deliveries.drain(queue_out)
        with cleanup_scope(_CLOSE_GRACE_S):
            await client.aclose()

"""The notifier: webhook POSTs with bounded retries, counted failures and drops, risk transitions as alerts."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import hypercorn.config
import hypercorn.trio
import pytest
import trio
import trio.testing

import engine.logsetup as logsetup
from actors.notifier import NotifierCounters, alert_payload, resolve_webhook_urls, risk_alerts, run_notifier
from engine.config import NotifierConfig
from engine.errors import ConfigError
from engine.events import RiskState
from engine.logsetup import MASK
from engine.notices import Notice, NoticeFanout, Severity
from engine.runtime import LatestValue
from tests.ops import factories as f

URL = "http://hooks.invalid/alert"  # never contacted: every test here uses a MockTransport or loopback
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def _cfg(**overrides: Any) -> NotifierConfig:
    values: dict[str, Any] = {"enabled": True, "urls": (URL,), "max_retries": 3, "backoff_initial_s": 1.0,
                              "backoff_max_s": 8.0, "timeout_s": 2.0}
    values.update(overrides)
    return NotifierConfig(**values)


class Hook:
    """A webhook endpoint at the httpx transport boundary: answers with scripted statuses, records times."""

    def __init__(self, statuses: list[int], *, default: int = 200) -> None:
        self.statuses = list(statuses)
        self.default = default
        self.calls: list[tuple[float, dict[str, Any]]] = []
        self.release = trio.Event()
        self.hold = False

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((trio.current_time(), json.loads(request.content)))
        if self.hold:
            await self.release.wait()
        status = self.statuses.pop(0) if self.statuses else self.default
        return httpx.Response(status, json={})


async def _run(cfg: NotifierConfig, hook: Hook, steps: Callable[[NoticeFanout, LatestValue[RiskState]],
                                                                 Awaitable[None]]) -> NotifierCounters:
    fanout = NoticeFanout()
    rx = fanout.subscribe("notifier", size=16)
    risk: LatestValue[RiskState] = LatestValue()
    counters = NotifierCounters()
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_notifier(
                cfg, urls=cfg.urls, notices=rx, risk=risk, transport=httpx.MockTransport(hook),
                counters=counters, task_status=task_status))
            await steps(fanout, risk)
            nursery.cancel_scope.cancel(reason="test done")
    return counters


def _alert(text: str = "restart intensity exceeded: feed", kind: str = "alert") -> Notice:
    return Notice(kind=kind, text=text, at_ms=1_700_000_000_000, severity=Severity.CRITICAL)  # type: ignore[arg-type]


async def test_retries_on_500_then_delivers(autojump_clock: trio.testing.MockClock) -> None:
    """Two 500s then 200: first retry immediate, second after backoff_initial_s; one sent, two retries."""
    hook = Hook([500, 503, 200])

    async def steps(fanout: NoticeFanout, _risk: LatestValue[RiskState]) -> None:
        fanout.publish(_alert())
        await trio.sleep(30)

    start = trio.current_time()
    counters = await _run(_cfg(), hook, steps)
    assert [round(t - start, 6) for t, _ in hook.calls] == [0.0, 0.0, 1.0]
    assert counters.statistics().sent == 1
    assert counters.statistics().retries == 2
    assert counters.statistics().failed == 0
    assert hook.calls[0][1] == alert_payload(_alert())


async def test_gives_up_after_max_retries_and_counts(autojump_clock: trio.testing.MockClock,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Always 500: 1 + max_retries attempts with capped doubling waits, then one counted, logged failure."""
    hook = Hook([], default=500)

    async def steps(fanout: NoticeFanout, _risk: LatestValue[RiskState]) -> None:
        fanout.publish(_alert())
        await trio.sleep(60)

    start = trio.current_time()
    counters = await _run(_cfg(max_retries=4, backoff_max_s=3.0), hook, steps)
    assert [round(t - start, 6) for t, _ in hook.calls] == [0.0, 0.0, 1.0, 3.0, 6.0]
    stats = counters.statistics()
    assert (stats.sent, stats.failed, stats.retries) == (0, 1, 4)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "webhook #0: gave up on an alert (kind alert) after 5 attempt(s): HTTP 500"]
    assert URL not in caplog.text


async def test_client_error_is_not_retried(autojump_clock: trio.testing.MockClock) -> None:
    """A 400 means the request itself is wrong: one attempt, counted as failed."""
    hook = Hook([400])

    async def steps(fanout: NoticeFanout, _risk: LatestValue[RiskState]) -> None:
        fanout.publish(_alert())
        await trio.sleep(30)

    counters = await _run(_cfg(), hook, steps)
    assert len(hook.calls) == 1
    assert counters.statistics().failed == 1


async def test_timeout_counts_as_a_retryable_failure(autojump_clock: trio.testing.MockClock) -> None:
    """A webhook that never answers is cut at timeout_s per attempt and retried, then given up."""
    hook = Hook([])
    hook.hold = True  # never released

    async def steps(fanout: NoticeFanout, _risk: LatestValue[RiskState]) -> None:
        fanout.publish(_alert())
        await trio.sleep(30)

    start = trio.current_time()
    counters = await _run(_cfg(max_retries=1, timeout_s=2.0), hook, steps)
    assert [round(t - start, 6) for t, _ in hook.calls[:2]] == [0.0, 2.0]
    assert len(hook.calls) == 2
    assert (counters.statistics().failed, counters.statistics().retries) == (1, 1)


async def test_risk_transitions_and_kind_filter(autojump_clock: trio.testing.MockClock) -> None:
    """Kill switch and resume become alerts; fills are forwarded only when 'fill' is in kinds."""
    hook = Hook([])

    async def steps(fanout: NoticeFanout, risk: LatestValue[RiskState]) -> None:
        risk.set(f.risk())
        await trio.sleep(1)
        fanout.publish(Notice(kind="fill", text="bought 0.01", at_ms=5))
        risk.set(f.risk(halted=True, kill=True, reason="drawdown 0.61", as_of_ms=7))
        await trio.sleep(1)
        risk.set(f.risk(kill=True, halted=True, reason="drawdown 0.61", as_of_ms=8))  # no change: no alert
        await trio.sleep(1)

    await _run(_cfg(), hook, steps)
    assert [(p["kind"], p["severity"], p["code"]) for _, p in hook.calls] == [("risk", "critical", "kill_switch")]
    assert hook.calls[0][1]["at_ms"] == 7
    assert "drawdown 0.61" in hook.calls[0][1]["text"]

    fills = Hook([])

    async def fill_steps(fanout: NoticeFanout, _risk: LatestValue[RiskState]) -> None:
        fanout.publish(Notice(kind="fill", text="bought 0.01", at_ms=5))
        fanout.publish(Notice(kind="order", text="placed", at_ms=6))
        await trio.sleep(1)

    await _run(_cfg(kinds=("fill",)), fills, fill_steps)
    assert [p["message"] for _, p in fills.calls] == ["bought 0.01"]


def test_risk_alerts_pure_transitions() -> None:
    """Halt then resume produce warning then info; an unchanged state produces nothing."""
    ok, halted = f.risk(), f.risk(halted=True, reason="operator")
    assert risk_alerts(None, ok) == []
    assert [(n.code, n.severity) for n in risk_alerts(ok, halted)] == [("halt", Severity.WARNING)]
    assert risk_alerts(halted, halted) == []
    assert [(n.code, n.severity) for n in risk_alerts(halted, ok)] == [("resume", Severity.INFO)]
    assert [n.code for n in risk_alerts(None, f.risk(kill=True))] == ["kill_switch"]


async def test_full_queue_drops_and_counts_and_shutdown_drains(autojump_clock: trio.testing.MockClock) -> None:
    """With the webhook stuck, alerts beyond queue_size are dropped and counted; shutdown still sends the rest."""
    hook = Hook([])
    hook.hold = True

    async def steps(fanout: NoticeFanout, _risk: LatestValue[RiskState]) -> None:
        for n in range(4):
            fanout.publish(_alert(f"alert {n}"))
        await trio.testing.wait_all_tasks_blocked()
        hook.hold = False  # answer normally from now on: the drain at shutdown delivers what is pending
        hook.release.set()

    counters = await _run(_cfg(queue_size=2, timeout_s=100.0), hook, steps)
    stats = counters.statistics()
    # alert 0 in flight, 1 and 2 queued, 3 dropped; the publisher was never blocked.
    assert (stats.queued, stats.dropped) == (3, 1)
    assert [p["message"] for _, p in hook.calls] == ["alert 0", "alert 1", "alert 2"]
    assert (stats.sent, stats.failed) == (3, 0)


async def test_in_flight_alert_gets_a_last_attempt_bounded_by_grace(autojump_clock: trio.testing.MockClock) -> None:
    """An alert cut off mid-POST by shutdown is posted once more; a hook that never answers costs only the grace."""
    hook = Hook([])
    hook.hold = True  # never released
    ended: list[float] = []

    async def steps(fanout: NoticeFanout, _risk: LatestValue[RiskState]) -> None:
        fanout.publish(_alert("kill switch"))
        await trio.sleep(1)  # the POST is in flight (timeout_s is 100)
        ended.append(trio.current_time())

    start = trio.current_time()
    counters = await _run(_cfg(timeout_s=100.0, shutdown_grace_s=2.0), hook, steps)
    # The first try, then the drain's last attempt at shutdown.
    assert [round(t - start, 6) for t, _ in hook.calls] == [0.0, 1.0]
    assert trio.current_time() - ended[0] == pytest.approx(2.0)
    assert counters.statistics().failed == 1


async def test_shutdown_drain_sends_queued_alerts(autojump_clock: trio.testing.MockClock) -> None:
    """An alert published just before shutdown is still delivered, within shutdown_grace_s."""
    hook = Hook([])

    async def steps(fanout: NoticeFanout, _risk: LatestValue[RiskState]) -> None:
        fanout.publish(_alert("kill switch"))
        # No checkpoint between publish and cancel: the alert is still queued when shutdown starts.

    counters = await _run(_cfg(), hook, steps)
    assert [p["message"] for _, p in hook.calls] == ["kill switch"]
    assert counters.statistics().sent == 1


def test_resolve_urls_from_environment_names_only() -> None:
    """url_env names are read from the given mapping, masked in logs, and every missing one is reported."""
    cfg = NotifierConfig(enabled=True, urls=("http://127.0.0.1:9/a",), url_env=("HOOK_A", "HOOK_B", "HOOK_C"))
    secret_url = "https://hooks.example.invalid/T000/B000/secret-token-123"
    with pytest.raises(ConfigError) as excinfo:
        resolve_webhook_urls(cfg, {"HOOK_A": secret_url, "HOOK_C": "not a url"})
    assert excinfo.value.problems == [
        "notifier.url_env: environment variable HOOK_B is not set",
        "notifier.url_env: environment variable HOOK_C does not hold an http(s) URL",
    ]
    urls = resolve_webhook_urls(cfg, {"HOOK_A": secret_url, "HOOK_B": "http://127.0.0.1:9/b",
                                      "HOOK_C": "http://127.0.0.1:9/c"})
    assert urls == ("http://127.0.0.1:9/a", secret_url, "http://127.0.0.1:9/b", "http://127.0.0.1:9/c")
    assert resolve_webhook_urls(NotifierConfig(), {}) == ()
    # Registered with the process-wide mask that every handler installed by configure_logging applies.
    assert logsetup._mask_filter.mask(f"posting to {secret_url}") == f"posting to {MASK}"


async def test_delivers_to_a_real_loopback_server() -> None:
    """Over real sockets on 127.0.0.1, the default transport POSTs the JSON alert to every configured URL."""
    received: list[tuple[str, dict[str, Any]]] = []
    got_both = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                while True:
                    message = await receive()
                    if message["type"] == "lifespan.startup":
                        await send({"type": "lifespan.startup.complete"})
                    else:
                        await send({"type": "lifespan.shutdown.complete"})
                        return
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        received.append((scope["path"], json.loads(body)))
        if len(received) == 2:
            got_both.set()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = logging.getLogger("tests.ops.hook")
    config.graceful_timeout = 0.2
    fanout = NoticeFanout()
    rx = fanout.subscribe("notifier")
    counters = NotifierCounters()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(hypercorn.trio.serve, app, config)
            urls = (f"{binds[0]}/one", f"{binds[0]}/two")
            await nursery.start(lambda task_status: run_notifier(
                _cfg(urls=urls), urls=urls, notices=rx, counters=counters, task_status=task_status))
            fanout.publish(_alert("halted by operator"))
            await got_both.wait()
            await counters.wait_settled(2)
            nursery.cancel_scope.cancel(reason="test done")
    assert sorted(path for path, _ in received) == ["/one", "/two"]
    assert all(body["message"] == "halted by operator" for _, body in received)
    assert counters.statistics().sent == 2

"""Configuration of the simulated exchange server: the ``[simulator]`` section and its ``[simulator.faults]``.

Owns the declarations only (pure, no I/O). Invariants: every key has a default, a help text and a validator;
the defaults give a loopback-only server on a free port that replays from shortly before the 2021-05-19 crash
in real time, with the exchange's published rate limits and no injected faults.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from engine.confspec import at_least, greater_than, in_range, non_empty, setting

__all__ = ["FaultConfig", "SimConfig", "parse_speed"]


def parse_speed(text: str) -> float:
    """``"max"`` -> ``inf`` (as fast as possible); otherwise a positive number (1 = real time)."""
    if text.strip().lower() == "max":
        return math.inf
    value = float(text)
    if not value > 0:
        raise ValueError(f"speed must be > 0 or 'max'; got {text!r}")
    return value


def _iso_datetime(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"must be an ISO-8601 date or datetime (UTC), e.g. 2021-05-18T00:00:00; got {value!r}") from exc


def _port(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"must be in [0, 65535]; got {value}")


def _rate(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
    in_range(0.0, 1.0)(_inst, _attr, value)


@attrs.frozen(kw_only=True)
class FaultConfig:
    """Faults injected from the start (each can also be triggered at run time through ``SimHandle.faults``)."""

    drop_ws_every_s: float = setting(0.0, "drop every WebSocket connection every N seconds (0 = never)",
                                     unit="s", check=at_least(0.0))
    refuse_connections_s: float = setting(0.0, "refuse new WebSocket connections for the first N seconds",
                                          unit="s", check=at_least(0.0))
    malformed_frame_rate: float = setting(0.0, "fraction of WebSocket data frames sent truncated (invalid JSON)",
                                          check=_rate)
    depth_gap_rate: float = setting(0.0, "fraction of depth frames silently skipped (sequence gap)", check=_rate)
    rest_5xx_rate: float = setting(0.0, "fraction of REST requests answered 503", check=_rate)
    rest_429_rate: float = setting(0.0, "fraction of REST requests answered 429", check=_rate)
    lost_order_response_rate: float = setting(
        0.0, "fraction of POST /api/v1/order requests executed whose reply is lost (connection closed)",
        check=_rate)
    latency_ms: int = setting(0, "extra delay before every REST reply", unit="ms", check=at_least(0))
    clock_skew_ms: int = setting(0, "offset added to the server's host clock (/api/v1/time, signature window)",
                                 unit="ms")
    stalled_streams: list[str] = setting(None, "stream names stalled from the start (socket stays open)",
                                         factory=list)


@attrs.frozen(kw_only=True)
class SimConfig:
    """The simulated exchange: where it listens, what it replays, how fast, and what it refuses."""

    host: str = setting("127.0.0.1", "interface to bind (loopback unless you mean to expose it)", check=non_empty)
    port: int = setting(0, "TCP port for REST and WebSocket (0 = any free port)", check=_port)
    speed: float = setting(1.0, "market seconds per real second (inf = as fast as clients keep up)",
                           check=greater_than(0.0))
    start: str = setting("2021-05-18T00:00:00", "replay start moment (UTC), shortly before the 2021-05-19 crash",
                         check=_iso_datetime)
    data: str = setting("", "candle file to replay (empty = the bundled default)")
    seed: int = setting(1, "seed for the synthetic order flow and fault randomness", check=at_least(0))
    keep_historical_time: bool = setting(
        False, "stamp market data with the original historical times instead of re-stamping to now")
    step_interval_s: float = setting(0.1, "cadence of the market stepper", unit="s",
                                     check=in_range(0.001, 10.0))
    max_step_market_s: float = setting(1.0, "market time advanced per step when speed is inf", unit="s",
                                       check=greater_than(0.0))
    ping_interval_s: float = setting(60.0, "WebSocket protocol ping interval", unit="s", check=greater_than(0.0))
    ws_queue_size: int = setting(4096, "frames buffered per WebSocket connection before it is dropped",
                                 check=at_least(1))
    initial_usdc: Decimal = setting(Decimal("10000"), "USDC credited to every new account", unit="USDC",
                                    check=at_least(Decimal(0)))
    maker_fee: Decimal = setting(Decimal("0.0002"), "maker fee as a fraction of notional",
                                 check=in_range(Decimal("-0.01"), Decimal("0.01")))
    taker_fee: Decimal = setting(Decimal("0.0005"), "taker fee as a fraction of notional",
                                 check=in_range(Decimal(0), Decimal("0.01")))
    taker_speed_bump_ms: int = setting(
        100, "delay before an order that can take liquidity reaches the book (exchange: ~100; 0 disables)",
        unit="ms", check=in_range(0, 10000))
    rest_limit_per_min: int = setting(2000, "REST requests per minute per API key (or client IP if unsigned)",
                                      check=at_least(1))
    history_limit_per_min: int = setting(30, "requests per minute on history endpoints (klines, trades/history)",
                                         check=at_least(1))
    rate_limits: bool = setting(True, "enforce the request rate limits (429 when exceeded)")
    firehose_rate: int = setting(
        0, "benchmark endpoint: synthetic depth/bookTicker/trade frames per second per connection on "
           "firehose_port (0 = off)", unit="frames/s", check=at_least(0))
    firehose_port: int = setting(0, "port of the benchmark firehose endpoint (0 = any free port)", check=_port)
    firehose_symbol: str = setting("BTC_USDC_PERP", "symbol of the firehose frames", check=non_empty)
    api_keys: list[str] = setting(None, "accepted API keys (base64 public keys); empty = any valid key",
                                  factory=list)
    faults: FaultConfig = setting(None, "faults injected from the start", factory=FaultConfig)

"""How the benchmark's frames carry their own send time, so that any consumer can measure latency from a price.

A consumer that only sees a price (the engine's ``MarketView``, a polled dict, a ccxt ticker) cannot see the
frame's ``E`` field at microsecond resolution, so the tick source writes the send time into the price itself:
``50000 + (send_us // 1e6) % 1000`` before the point and the microseconds after it (six decimals). The wall
clock (``time.time_ns``) is the same clock in every process on the machine, so send and receive times compare.
Latencies are computed modulo 1,000 s, far above anything measured here.

Burst frames instead carry their sequence number in the price (``burst_price``) so the final value can be checked.
"""

from __future__ import annotations

import time
from decimal import Decimal

__all__ = ["BURST_BASE", "burst_price", "latency_us", "now_us", "send_price", "send_us_of"]

_BASE = 50_000
_PERIOD_US = 1_000_000_000
BURST_BASE = 40_000


def now_us() -> int:
    """Wall-clock microseconds (the clock every process shares)."""
    return time.time_ns() // 1000


def send_price(us: int) -> str:
    """The trade price that encodes send time ``us``."""
    return f"{_BASE + (us // 1_000_000) % 1000}.{us % 1_000_000:06d}"


def send_us_of(price: str | Decimal | float) -> int:
    """The send time (modulo 1,000 s) encoded by ``send_price``; accepts the string, a Decimal or a float."""
    value = Decimal(price) if isinstance(price, str) else Decimal(str(price)) if isinstance(price, float) else price
    offset = value - _BASE
    seconds = int(offset)
    micros = int(((offset - seconds) * 1_000_000).to_integral_value())
    return seconds * 1_000_000 + micros


def latency_us(price: str | Decimal | float, recv_us: int) -> int:
    """Receive time minus the send time encoded in ``price``, in microseconds."""
    return (recv_us % _PERIOD_US - send_us_of(price)) % _PERIOD_US


def burst_price(seq: int) -> str:
    """The price of burst frame ``seq`` (0-based); distinct for every ``seq`` below 10**8."""
    return f"{BURST_BASE + seq // 100_000}.{seq % 100_000:05d}"

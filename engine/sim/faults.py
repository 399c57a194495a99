"""Fault injection for the simulated exchange: the run-time handle that the server consults and tests drive.

Faults come from ``FaultConfig`` (config file / command line) and can be changed at run time through
``Faults`` (``SimHandle.faults``): drop every WebSocket connection (now, or every N s), stall streams while the
socket stays open, refuse new connections for N s, truncate frames at a rate, skip depth frames at a rate (a
sequence gap), answer REST with 503/429 at a rate, add REST latency, skew the host clock, and execute an order
but lose its reply. Invariant: every fault actually injected is counted exactly once in ``statistics()``.
Decisions at a rate use one seeded ``random.Random``, so a run with the same seed and traffic is repeatable.
"""

from __future__ import annotations

import random
from collections import Counter

import attrs
import trio

from engine.sim.config import FaultConfig

__all__ = ["FaultStats", "Faults"]


@attrs.frozen(kw_only=True)
class FaultStats:
    """How many faults of each kind were injected so far."""

    connections_dropped: int
    connections_refused: int
    frames_stalled: int
    frames_malformed: int
    depth_gaps: int
    rest_5xx: int
    rest_429: int
    rest_delayed: int
    clock_skewed: int
    order_responses_lost: int


class Faults:
    """Mutable fault switches plus counters. Use only from the server's trio thread."""

    def __init__(self, cfg: FaultConfig, *, seed: int) -> None:
        self._rng = random.Random(seed)
        self.drop_every_s = cfg.drop_ws_every_s
        self.malformed_frame_rate = cfg.malformed_frame_rate
        self.depth_gap_rate = cfg.depth_gap_rate
        self.rest_5xx_rate = cfg.rest_5xx_rate
        self.rest_429_rate = cfg.rest_429_rate
        self.lost_order_response_rate = cfg.lost_order_response_rate
        self.latency_ms = cfg.latency_ms
        self.clock_skew_ms = cfg.clock_skew_ms
        self._stalled: set[str] = set(cfg.stalled_streams)
        self._stall_all = False
        self._refuse_until = trio.current_time() + cfg.refuse_connections_s if cfg.refuse_connections_s else None
        self._lose_next_orders = 0
        self._drop_now = trio.Event()
        self._schedule_changed = trio.Event()
        self._drop_generation = 0
        self._counts: Counter[str] = Counter()

    # -- run-time triggers -------------------------------------------------------------------------------

    def drop_connections(self) -> None:
        """Close every open WebSocket connection now."""
        self._drop_generation += 1
        self._drop_now.set()
        self._drop_now = trio.Event()

    def drop_every(self, seconds: float) -> None:
        """Drop every WebSocket connection every ``seconds`` from now on (0 stops the schedule)."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0; got {seconds}")
        self.drop_every_s = seconds
        self._schedule_changed.set()
        self._schedule_changed = trio.Event()

    def stall(self, *streams: str) -> None:
        """Stop delivering the named streams (all streams when none are named); sockets stay open."""
        if streams:
            self._stalled.update(streams)
        else:
            self._stall_all = True

    def resume(self, *streams: str) -> None:
        """Undo ``stall`` for the named streams (all of them when none are named)."""
        if streams:
            self._stalled.difference_update(streams)
        else:
            self._stalled.clear()
            self._stall_all = False

    def refuse_connections(self, seconds: float) -> None:
        """Reject WebSocket handshakes (HTTP 403) for the next ``seconds``."""
        self._refuse_until = trio.current_time() + seconds

    def lose_next_order_responses(self, count: int = 1) -> None:
        """Execute the next ``count`` order requests but close the connection instead of replying."""
        self._lose_next_orders += count

    # -- decisions the server asks for (each "yes" is counted) --------------------------------------------

    @property
    def drop_generation(self) -> int:
        return self._drop_generation

    async def wait_drop(self) -> None:
        await self._drop_now.wait()

    async def wait_schedule_changed(self) -> None:
        await self._schedule_changed.wait()

    def count(self, kind: str, n: int = 1) -> None:
        self._counts[kind] += n

    def refusing(self) -> bool:
        if self._refuse_until is not None and trio.current_time() < self._refuse_until:
            self._counts["connections_refused"] += 1
            return True
        return False

    def stalled(self, stream: str) -> bool:
        return self._stall_all or stream in self._stalled

    def _hit(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def malform(self) -> bool:
        if self._hit(self.malformed_frame_rate):
            self._counts["frames_malformed"] += 1
            return True
        return False

    def depth_gap(self) -> bool:
        if self._hit(self.depth_gap_rate):
            self._counts["depth_gaps"] += 1
            return True
        return False

    def rest_error(self) -> int | None:
        """503 or 429 when a REST fault fires for this request, else None."""
        if self._hit(self.rest_5xx_rate):
            self._counts["rest_5xx"] += 1
            return 503
        if self._hit(self.rest_429_rate):
            self._counts["rest_429"] += 1
            return 429
        return None

    def rest_delay_s(self) -> float:
        if self.latency_ms > 0:
            self._counts["rest_delayed"] += 1
            return self.latency_ms / 1000.0
        return 0.0

    def skew_ms(self) -> int:
        """The clock skew to apply to one host-clock reading (counted when non-zero)."""
        if self.clock_skew_ms:
            self._counts["clock_skewed"] += 1
        return self.clock_skew_ms

    def lose_order_response(self) -> bool:
        if self._lose_next_orders > 0:
            self._lose_next_orders -= 1
        elif not self._hit(self.lost_order_response_rate):
            return False
        self._counts["order_responses_lost"] += 1
        return True

    def statistics(self) -> FaultStats:
        c = self._counts
        return FaultStats(
            connections_dropped=c["connections_dropped"], connections_refused=c["connections_refused"],
            frames_stalled=c["frames_stalled"], frames_malformed=c["frames_malformed"], depth_gaps=c["depth_gaps"],
            rest_5xx=c["rest_5xx"], rest_429=c["rest_429"], rest_delayed=c["rest_delayed"],
            clock_skewed=c["clock_skewed"], order_responses_lost=c["order_responses_lost"],
        )

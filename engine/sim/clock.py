"""The simulator's two time axes: the host clock and the market clock.

* Host time (``host_now_ms``) is what ``/api/v1/time`` reports and what signature windows are checked against,
  exactly as on the exchange. It is the injected wall clock plus an optional skew (the clock-skew fault).
* Market time (``market_now_us``) is where the replay stands, in the time stamps the simulator emits. By default
  the replay is re-stamped (``time_shift_us``, a whole number of minutes) so the chosen historical start is
  "now" on the host clock at server start (to within the minute); with ``speed`` N it then runs N times faster than the host clock (ahead of it when N > 1). With
  ``keep_historical_time`` the original historical stamps are kept (backtest style; ``time_shift_us == 0``).
  With an infinite speed market time is not tied to the host: the stepper advances it step by step.

Invariants: market time never goes backwards; the time sources are injected (``wall_us`` for the wall clock,
``elapsed_s`` for a monotonic clock such as ``trio.current_time``), so tests can run it on trio's MockClock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["SimClock", "iso_to_us"]

_MINUTE_US = 60_000_000


def iso_to_us(text: str) -> int:
    """UTC microseconds of an ISO-8601 date/datetime (naive means UTC)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


class SimClock:
    """Maps the injected host clocks to market time. Create it when the server starts."""

    __slots__ = ("_elapsed_s", "_last_market_us", "_origin_elapsed_s", "_wall_us", "market_origin_us", "speed",
                 "time_shift_us")

    def __init__(
        self,
        *,
        start_historical_us: int,
        speed: float,
        keep_historical_time: bool,
        wall_us: Callable[[], int],
        elapsed_s: Callable[[], float],
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0; got {speed}")
        self._wall_us = wall_us
        self._elapsed_s = elapsed_s
        self.speed = speed
        self._origin_elapsed_s = elapsed_s()
        host_start_us = wall_us()
        if keep_historical_time:
            self.time_shift_us = 0
            self.market_origin_us = start_historical_us
        else:
            # A whole number of minutes keeps replayed candles on kline bucket boundaries; the market still
            # starts at the host's "now" (the replay begins less than a minute after the chosen start).
            self.time_shift_us = (host_start_us - start_historical_us) // _MINUTE_US * _MINUTE_US
            self.market_origin_us = host_start_us
        self._last_market_us = self.market_origin_us

    @property
    def unbounded(self) -> bool:
        """True when the market runs as fast as possible (the stepper sets the pace)."""
        return math.isinf(self.speed)

    def host_now_ms(self, skew_ms: int = 0) -> int:
        """Host wall-clock milliseconds plus ``skew_ms`` (``/api/v1/time``, signature windows)."""
        return self._wall_us() // 1000 + skew_ms

    def host_now_us(self) -> int:
        """Host wall-clock microseconds (no skew)."""
        return self._wall_us()

    def market_now_us(self) -> int:
        """Current market time; for an unbounded speed, the last time the stepper advanced to."""
        if not self.unbounded:
            elapsed = self._elapsed_s() - self._origin_elapsed_s
            now = self.market_origin_us + int(elapsed * self.speed * 1_000_000)
            self._last_market_us = max(self._last_market_us, now)
        return self._last_market_us

    def advance_unbounded(self, step_us: int) -> int:
        """Move market time forward by ``step_us`` (only meaningful for an unbounded speed); returns it."""
        self._last_market_us += step_us
        return self._last_market_us

    def elapsed_for_market_us(self, market_us: int) -> float:
        """The monotonic-clock reading at which the market reaches ``market_us`` (finite speeds only)."""
        return self._origin_elapsed_s + (market_us - self.market_origin_us) / (self.speed * 1_000_000)

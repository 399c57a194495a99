"""Per-stream data-quality statistics (pure: time is passed in, seconds on the caller's monotonic clock).

Owns mutable counters per stream name (``ticker``, ``depth``, ``kline.1m``, ...) plus connection-level
counters, and hands out frozen snapshots via :meth:`QualityTracker.statistics`. Invariants: counters only
grow; stale time accumulates only while a stream is marked stale; latency samples are a bounded ring (the
newest ``latency_samples``), so memory is constant however long the engine runs. ``structure_version``
changes with everything except plain message counts, latencies and last-message times, so a publisher can
take a new snapshot at once on what matters and only periodically for the rest.
"""

from __future__ import annotations

from collections import Counter, deque

import attrs

__all__ = ["QualityStats", "QualityTracker", "StreamStats"]


@attrs.frozen(kw_only=True)
class StreamStats:
    stream: str
    messages: int
    decode_errors: tuple[tuple[str, int], ...]  # (reason, count), sorted by reason
    gaps: int
    resyncs: int
    out_of_order: int
    latency_ms_p50: float | None  # exchange event time to local receive time
    latency_ms_p99: float | None
    latency_ms_max: float | None
    stale: bool
    stale_time_s: float
    last_message_age_s: float | None

    @property
    def decode_error_total(self) -> int:
        return sum(n for _, n in self.decode_errors)


@attrs.frozen(kw_only=True)
class QualityStats:
    as_of_s: float
    uptime_s: float  # time connected, summed over connections
    connected: bool
    reconnects: int
    streams: tuple[StreamStats, ...]

    def stream(self, name: str) -> StreamStats | None:
        return next((s for s in self.streams if s.stream == name), None)

    @property
    def decode_errors(self) -> int:
        return sum(s.decode_error_total for s in self.streams)


@attrs.define
class _Stream:
    messages: int = 0
    errors: Counter[str] = attrs.Factory(Counter)
    gaps: int = 0
    resyncs: int = 0
    out_of_order: int = 0
    latencies: deque[float] = attrs.Factory(lambda: deque(maxlen=1024))
    stale_since: float | None = None
    stale_total: float = 0.0
    last_s: float | None = None


def _percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class QualityTracker:
    """Counters for every stream of one feed, across reconnects."""

    __slots__ = ("_connected_since", "_connections", "_streams", "_uptime", "structure_version")

    def __init__(self) -> None:
        self._streams: dict[str, _Stream] = {}
        self._connections = 0
        self._uptime = 0.0
        self._connected_since: float | None = None
        # Bumped by every change other than a plain message (count, latency, last time): a new stream, an
        # error, a gap, a resync, a stale flag flipping, a connection change. Lets a publisher refresh its
        # snapshot at once on those and only periodically for message counts.
        self.structure_version = 0

    def _s(self, stream: str) -> _Stream:
        entry = self._streams.get(stream)
        if entry is None:
            entry = self._streams[stream] = _Stream()
            self.structure_version += 1
        return entry

    def message(self, stream: str, *, now_s: float, latency_ms: float | None = None, live: bool = False) -> None:
        """Count one message; ``live`` also ends a stale period (the same as ``set_stale(stream, False)``)."""
        entry = self._streams.get(stream)
        if entry is None:
            entry = self._s(stream)
        entry.messages += 1
        entry.last_s = now_s
        if latency_ms is not None:
            entry.latencies.append(latency_ms)
        if live and entry.stale_since is not None:
            self.set_stale(stream, False, now_s=now_s)

    def decode_error(self, stream: str, reason: str) -> None:
        self._s(stream).errors[reason] += 1
        self.structure_version += 1

    def gap(self, stream: str) -> None:
        self._s(stream).gaps += 1
        self.structure_version += 1

    def resync(self, stream: str) -> None:
        self._s(stream).resyncs += 1
        self.structure_version += 1

    def out_of_order(self, stream: str) -> None:
        self._s(stream).out_of_order += 1
        self.structure_version += 1

    def set_stale(self, stream: str, stale: bool, *, now_s: float) -> None:
        entry = self._s(stream)
        if stale and entry.stale_since is None:
            entry.stale_since = now_s
            self.structure_version += 1
        elif not stale and entry.stale_since is not None:
            entry.stale_total += max(0.0, now_s - entry.stale_since)
            entry.stale_since = None
            self.structure_version += 1

    def connected(self, *, now_s: float) -> None:
        """A connection came up; every connection after the first counts as a reconnect."""
        if self._connected_since is not None:
            self.disconnected(now_s=now_s)
        self._connections += 1
        self._connected_since = now_s
        self.structure_version += 1

    def disconnected(self, *, now_s: float) -> None:
        if self._connected_since is not None:
            self._uptime += max(0.0, now_s - self._connected_since)
            self._connected_since = None
            self.structure_version += 1

    def statistics(self, now_s: float) -> QualityStats:
        streams = []
        for name in sorted(self._streams):
            entry = self._streams[name]
            lat = sorted(entry.latencies)
            stale_time = entry.stale_total
            if entry.stale_since is not None:
                stale_time += max(0.0, now_s - entry.stale_since)
            streams.append(StreamStats(
                stream=name,
                messages=entry.messages,
                decode_errors=tuple(sorted(entry.errors.items())),
                gaps=entry.gaps,
                resyncs=entry.resyncs,
                out_of_order=entry.out_of_order,
                latency_ms_p50=_percentile(lat, 0.5) if lat else None,
                latency_ms_p99=_percentile(lat, 0.99) if lat else None,
                latency_ms_max=lat[-1] if lat else None,
                stale=entry.stale_since is not None,
                stale_time_s=stale_time,
                last_message_age_s=None if entry.last_s is None else max(0.0, now_s - entry.last_s),
            ))
        uptime = self._uptime
        if self._connected_since is not None:
            uptime += max(0.0, now_s - self._connected_since)
        return QualityStats(
            as_of_s=now_s, uptime_s=uptime, connected=self._connected_since is not None,
            reconnects=max(0, self._connections - 1), streams=tuple(streams),
        )

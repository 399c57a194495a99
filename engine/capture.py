"""The capture file format of ``record``/``replay``: JSON lines of raw WebSocket frames, and its summary.

Owns the on-disk format (writing lines, reading them back) and the pure analysis of a capture through
``engine.backpack.decode_frame``. No trio, no clock: receive times are written by the recorder and only read
here.

Format (UTF-8 JSON lines, gzip-compressed when the file name ends in ``.gz``):

* line 1, the header: ``{"format": "engine-capture", "version": 1, "url": ..., "streams": [...],
  "start_ms": <wall ms>, "start_mono": <trio clock s>, "start_utc": "<ISO 8601>"}``;
* every further line, one received frame: ``{"t_ms": <wall ms>, "t_mono": <trio clock s>, "frame": "<raw
  text>"}`` (a binary frame is kept as ``"frame_b64"`` instead of ``"frame"``).

Invariants: the recorder writes every frame exactly as received (a frame that does not decode is still
recorded); reading never raises on a bad record line (it becomes a ``BadLine`` with its line number and
reason), only on a file that is not a capture at all (``CaptureError``: unreadable, not gzip, not UTF-8, no
valid header); the summary counts each record once, either as decoded (by stream) or as a decode error (by
reason).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, TypeGuard

import attrs

from engine.backpack import decode_frame
from engine.backpack.events import Depth, WsError
from engine.errors import EngineError, ProtocolError

__all__ = [
    "CAPTURE_FORMAT",
    "CAPTURE_VERSION",
    "BadLine",
    "CaptureError",
    "CaptureHeader",
    "CaptureRecord",
    "CaptureSummary",
    "DepthGap",
    "ReplayFrame",
    "SummaryBuilder",
    "error_reason",
    "frame_stream",
    "header_line",
    "iter_capture",
    "open_capture_for_writing",
    "read_capture",
    "record_line",
    "render_summary",
    "replay_frames",
    "summarize",
]

CAPTURE_FORMAT: Final = "engine-capture"
CAPTURE_VERSION: Final = 1
#: Stream name used in summaries for error frames ({"error": ...}), which carry no stream.
ERROR_FRAME_STREAM: Final = "(error frame)"
_MAX_GAPS_KEPT = 20


class CaptureError(EngineError):
    """The file is not a readable capture (I/O error, not gzip, not UTF-8, or no valid header line)."""


@attrs.frozen(kw_only=True)
class CaptureHeader:
    """The first line of a capture: what was recorded, from where, and when it started."""

    version: int
    url: str
    streams: tuple[str, ...]
    start_ms: int
    start_mono: float

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CAPTURE_FORMAT,
            "version": self.version,
            "url": self.url,
            "streams": list(self.streams),
            "start_ms": self.start_ms,
            "start_mono": self.start_mono,
            "start_utc": datetime.fromtimestamp(self.start_ms / 1000, UTC).isoformat(timespec="milliseconds"),
        }


@attrs.frozen(kw_only=True)
class CaptureRecord:
    """One received frame: wall time (ms), trio clock time (s), the raw frame, and its line number."""

    line: int
    t_ms: int
    t_mono: float
    frame: str | bytes


@attrs.frozen(kw_only=True)
class BadLine:
    """A record line that could not be read as a record (never a crash: it is counted and reported)."""

    line: int
    reason: str


def header_line(header: CaptureHeader) -> str:
    """The header as one JSON line (with the newline)."""
    return json.dumps(header.to_json(), separators=(",", ":")) + "\n"


def record_line(t_ms: int, t_mono: float, frame: str | bytes) -> str:
    """One received frame as one JSON line (with the newline); the frame text is kept byte for byte."""
    if isinstance(frame, bytes):
        payload: dict[str, Any] = {"t_ms": t_ms, "t_mono": t_mono,
                                   "frame_b64": base64.b64encode(frame).decode("ascii")}
    else:
        payload = {"t_ms": t_ms, "t_mono": t_mono, "frame": frame}
    # ensure_ascii keeps lone surrogates and control characters representable; json round-trips them exactly.
    return json.dumps(payload, separators=(",", ":")) + "\n"


def open_capture_for_writing(path: Path) -> IO[str]:
    """A text file for writing a capture: gzip when the name ends in ``.gz``."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8", newline="\n")
    return path.open("w", encoding="utf-8", newline="\n")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_header(text: str) -> CaptureHeader:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise CaptureError(f"line 1: the header is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict) or obj.get("format") != CAPTURE_FORMAT:
        raise CaptureError(f"line 1: not a capture header (expected \"format\": \"{CAPTURE_FORMAT}\")")
    version = obj.get("version")
    if version != CAPTURE_VERSION:
        raise CaptureError(f"line 1: unsupported capture version {version!r} (this engine reads {CAPTURE_VERSION})")
    url, streams, start_ms, start_mono = (obj.get(k) for k in ("url", "streams", "start_ms", "start_mono"))
    if not isinstance(url, str):
        raise CaptureError("line 1: header field 'url' must be a string")
    if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams):
        raise CaptureError("line 1: header field 'streams' must be a list of strings")
    if not _is_int(start_ms):
        raise CaptureError("line 1: header field 'start_ms' must be an integer")
    if not _is_number(start_mono):
        raise CaptureError("line 1: header field 'start_mono' must be a number")
    return CaptureHeader(version=version, url=url, streams=tuple(streams), start_ms=start_ms,
                         start_mono=float(start_mono))


def _parse_record(text: str, line: int) -> CaptureRecord | BadLine:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        return BadLine(line=line, reason=f"not valid JSON ({exc.msg})" if isinstance(exc, json.JSONDecodeError)
                       else "not valid JSON")
    if not isinstance(obj, dict):
        return BadLine(line=line, reason="not a JSON object")
    t_ms, t_mono = obj.get("t_ms"), obj.get("t_mono")
    if not _is_int(t_ms):
        return BadLine(line=line, reason="'t_ms' is missing or not an integer")
    if not _is_number(t_mono):
        return BadLine(line=line, reason="'t_mono' is missing or not a number")
    frame: str | bytes
    if isinstance(obj.get("frame"), str):
        frame = obj["frame"]
    elif isinstance(obj.get("frame_b64"), str):
        try:
            frame = base64.b64decode(obj["frame_b64"], validate=True)
        except (binascii.Error, ValueError):
            return BadLine(line=line, reason="'frame_b64' is not base64")
    else:
        return BadLine(line=line, reason="'frame' is missing or not a string")
    return CaptureRecord(line=line, t_ms=t_ms, t_mono=float(t_mono), frame=frame)


def iter_capture(lines: Iterable[str]) -> tuple[CaptureHeader, Iterator[CaptureRecord | BadLine]]:
    """Split capture text lines into the header and a lazy iterator of records and bad lines.

    Raises ``CaptureError`` when the first line is missing or is not a valid header. Blank lines are skipped.
    """
    it = iter(lines)
    first = next(it, None)
    if first is None or not first.strip():
        raise CaptureError("the file is empty (no header line)")
    header = _parse_header(first)

    def records() -> Iterator[CaptureRecord | BadLine]:
        for number, text in enumerate(it, start=2):
            if text.strip():
                yield _parse_record(text, number)

    return header, records()


def _read_lines(path: Path) -> Iterator[str]:
    """Text lines of a (possibly gzip) file, with every I/O or encoding failure as ``CaptureError``."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz") else \
                path.open(encoding="utf-8") as handle:
            yield from handle
    except OSError as exc:
        # gzip.BadGzipFile is an OSError too; EOFError is a truncated gzip stream.
        raise CaptureError(f"cannot read: {exc.strerror or exc}") from exc
    except EOFError as exc:
        raise CaptureError(f"truncated gzip data: {exc}") from exc
    except zlib.error as exc:
        raise CaptureError(f"corrupt gzip data: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CaptureError(f"not UTF-8 text: {exc}") from exc


def read_capture(path: Path) -> tuple[CaptureHeader, Iterator[CaptureRecord | BadLine]]:
    """Open a capture file; the records are read lazily (a read failure later raises ``CaptureError`` too)."""
    header, items = iter_capture(_read_lines(path))
    return header, items


# --- summary ----------------------------------------------------------------------------------------------


_FIXED_PREFIXES = frozenset({"ws frame", "error frame"})
_VARYING = re.compile(r"(, got\b|\(char \d|: '|: \"|\d).*$", re.S)


def error_reason(exc: ProtocolError) -> str:
    """A stable grouping key for a decode error: its class and the first words of its message.

    The stream name in front and the offending value at the end vary from frame to frame, so both are cut:
    ``"'depth.X': field 'U': first update id 9 is after the last 3"`` becomes
    ``"RemoteProtocolError: field 'U': first update id"``.
    """
    parts = str(exc).split(": ")
    if len(parts) > 1 and parts[0] not in _FIXED_PREFIXES:
        # decode_frame puts the stream name (quoted or not) first, except for these fixed prefixes.
        parts = parts[1:]
    text = ": ".join(parts[:2])
    text = _VARYING.sub("", text).rstrip(" :,")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@attrs.frozen(kw_only=True)
class DepthGap:
    """A depth frame whose first update id is not the previous frame's last id + 1 (same depth stream)."""

    stream: str
    line: int
    expected_first: int
    got_first: int


@attrs.frozen(kw_only=True)
class CaptureSummary:
    """What a capture holds; times from the records (wall ms, trio clock s)."""

    header: CaptureHeader
    records: int
    frames_by_stream: dict[str, int]
    decode_errors: dict[str, int]
    bad_lines: dict[str, int]
    first_bad_line: int | None
    depth_gaps: dict[str, int]
    gap_samples: tuple[DepthGap, ...]
    out_of_order: dict[str, int]
    first_t_ms: int | None
    last_t_ms: int | None
    first_mono: float | None
    last_mono: float | None

    @property
    def span_s(self) -> float:
        if self.first_mono is None or self.last_mono is None:
            return 0.0
        return max(0.0, self.last_mono - self.first_mono)

    @property
    def rate_per_s(self) -> float:
        span = self.span_s
        return self.records / span if span > 0 else 0.0

    @property
    def total_decode_errors(self) -> int:
        return sum(self.decode_errors.values())

    @property
    def total_bad_lines(self) -> int:
        return sum(self.bad_lines.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "header": self.header.to_json(),
            "records": self.records,
            "frames_by_stream": dict(sorted(self.frames_by_stream.items())),
            "decode_errors": dict(sorted(self.decode_errors.items())),
            "bad_lines": dict(sorted(self.bad_lines.items())),
            "first_bad_line": self.first_bad_line,
            "depth_gaps": dict(sorted(self.depth_gaps.items())),
            "depth_gap_samples": [attrs.asdict(gap) for gap in self.gap_samples],
            "out_of_order_event_times": dict(sorted(self.out_of_order.items())),
            "first_t_ms": self.first_t_ms,
            "last_t_ms": self.last_t_ms,
            "span_s": round(self.span_s, 6),
            "rate_per_s": round(self.rate_per_s, 3),
        }


class SummaryBuilder:
    """Folds records one at a time (a capture can be larger than memory) into a ``CaptureSummary``."""

    def __init__(self, header: CaptureHeader) -> None:
        self._header = header
        self._records = 0
        self._frames: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._bad: Counter[str] = Counter()
        self._first_bad: int | None = None
        self._gaps: Counter[str] = Counter()
        self._gap_samples: list[DepthGap] = []
        self._ooo: Counter[str] = Counter()
        self._last_depth_id: dict[str, int] = {}
        self._last_event_us: dict[str, int] = {}
        self._first_t_ms: int | None = None
        self._last_t_ms: int | None = None
        self._first_mono: float | None = None
        self._last_mono: float | None = None

    def add(self, item: CaptureRecord | BadLine) -> None:
        if isinstance(item, BadLine):
            self._bad[item.reason] += 1
            if self._first_bad is None:
                self._first_bad = item.line
            return
        self._records += 1
        if self._first_t_ms is None:
            self._first_t_ms, self._first_mono = item.t_ms, item.t_mono
        self._last_t_ms, self._last_mono = item.t_ms, item.t_mono
        try:
            event = decode_frame(item.frame)
        except ProtocolError as exc:
            self._errors[error_reason(exc)] += 1
            return
        if isinstance(event, WsError):
            self._frames[ERROR_FRAME_STREAM] += 1
            return
        stream = event.stream
        self._frames[stream] += 1
        event_us = event.event_time_us
        if event_us is not None:
            previous = self._last_event_us.get(stream)
            if previous is not None and event_us < previous:
                self._ooo[stream] += 1
            self._last_event_us[stream] = event_us if previous is None else max(previous, event_us)
        if isinstance(event, Depth):
            self._check_depth(event, item.line)

    def _check_depth(self, event: Depth, line: int) -> None:
        # Keyed by stream, not symbol: depth.X and depth.200ms.X are separate sequences of the same book.
        previous = self._last_depth_id.get(event.stream)
        if previous is not None and event.first_update_id != previous + 1:
            self._gaps[event.stream] += 1
            if len(self._gap_samples) < _MAX_GAPS_KEPT:
                self._gap_samples.append(DepthGap(stream=event.stream, line=line, expected_first=previous + 1,
                                                  got_first=event.first_update_id))
        self._last_depth_id[event.stream] = event.last_update_id

    def result(self) -> CaptureSummary:
        return CaptureSummary(
            header=self._header, records=self._records, frames_by_stream=dict(self._frames),
            decode_errors=dict(self._errors), bad_lines=dict(self._bad), first_bad_line=self._first_bad,
            depth_gaps=dict(self._gaps), gap_samples=tuple(self._gap_samples), out_of_order=dict(self._ooo),
            first_t_ms=self._first_t_ms, last_t_ms=self._last_t_ms, first_mono=self._first_mono,
            last_mono=self._last_mono,
        )


def summarize(header: CaptureHeader, items: Iterable[CaptureRecord | BadLine]) -> CaptureSummary:
    """The summary of a whole capture."""
    builder = SummaryBuilder(header)
    for item in items:
        builder.add(item)
    return builder.result()


def _utc(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def render_summary(summary: CaptureSummary) -> str:
    """The summary as terminal text."""
    h = summary.header
    out = [
        f"capture of {h.url} ({len(h.streams)} stream(s) subscribed), started {_utc(h.start_ms)}",
        f"records: {summary.records}  span: {summary.span_s:.3f} s  rate: {summary.rate_per_s:.1f} frames/s"
        f"  ({_utc(summary.first_t_ms)} .. {_utc(summary.last_t_ms)})",
        "frames by stream:",
    ]
    out += [f"  {stream:<32} {count:>9}" for stream, count in sorted(summary.frames_by_stream.items())] or ["  none"]
    silent = sorted(set(h.streams) - set(summary.frames_by_stream))
    if silent:
        out.append(f"subscribed but silent: {', '.join(silent)}")
    out.append(f"decode errors: {summary.total_decode_errors}")
    out += [f"  {count:>6}  {reason}" for reason, count in sorted(summary.decode_errors.items(),
                                                                  key=lambda kv: (-kv[1], kv[0]))]
    if summary.bad_lines:
        out.append(f"malformed capture lines: {summary.total_bad_lines} (first at line {summary.first_bad_line})")
        out += [f"  {count:>6}  {reason}" for reason, count in sorted(summary.bad_lines.items())]
    out.append(f"depth sequence gaps: {sum(summary.depth_gaps.values())}")
    out += [f"  {stream:<32} {count:>9}" for stream, count in sorted(summary.depth_gaps.items())]
    out += [f"    line {g.line}: {g.stream} expected U={g.expected_first}, got U={g.got_first}"
            for g in summary.gap_samples[:5]]
    out.append(f"out-of-order event times: {sum(summary.out_of_order.values())}")
    out += [f"  {stream:<32} {count:>9}" for stream, count in sorted(summary.out_of_order.items())]
    return "\n".join(out) + "\n"


# --- replay -----------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ReplayFrame:
    """A recorded frame prepared for replay: seconds after the first record, its stream (if any), the frame."""

    offset_s: float
    stream: str | None
    frame: str | bytes


def frame_stream(frame: str | bytes) -> str | None:
    """The ``stream`` a raw frame names, or None (not JSON, not an object, or no string ``stream``)."""
    try:
        obj = json.loads(frame)
    except (ValueError, TypeError, RecursionError):
        return None
    if isinstance(obj, dict):
        stream = obj.get("stream")
        if isinstance(stream, str):
            return stream
    return None


def replay_frames(items: Iterable[CaptureRecord | BadLine]) -> tuple[ReplayFrame, ...]:
    """The records of a capture as replay frames, spaced by their trio clock receive times (bad lines skipped)."""
    out: list[ReplayFrame] = []
    first: float | None = None
    for item in items:
        if isinstance(item, BadLine):
            continue
        if first is None:
            first = item.t_mono
        out.append(ReplayFrame(offset_s=max(0.0, item.t_mono - first), stream=frame_stream(item.frame),
                               frame=item.frame))
    return tuple(out)

"""The capture file format and its summary: round trips, garbage tolerance, depth gaps, event-time order."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.capture import (
    BadLine,
    CaptureError,
    CaptureRecord,
    CaptureSummary,
    error_reason,
    iter_capture,
    read_capture,
    record_line,
    render_summary,
    replay_frames,
    summarize,
)
from engine.errors import RemoteProtocolError
from tests.capture.helpers import SYMBOL, capture_text, depth_frame, header, trade_frame, write_capture


def _summary_of(text: str) -> CaptureSummary:
    head, items = iter_capture(text.splitlines(keepends=True))
    return summarize(head, items)


def _read_all(path: Path) -> list[CaptureRecord | BadLine]:
    _, items = read_capture(path)
    return list(items)


@pytest.mark.parametrize("name", ["cap.jsonl", "cap.jsonl.gz"])
def test_file_round_trip_keeps_every_frame_exactly(tmp_path: Path, name: str) -> None:
    """Frames written (text, unicode, control characters, bytes) read back identical, plain or gzip."""
    frames: list[str | bytes] = [trade_frame(1), "caf\u00e9 \u2603 \x00\n\"quoted\"", b"\x00\xffbinary", "{"]
    path = write_capture(tmp_path / name, frames)
    if name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            assert handle.readline().startswith('{"format":"engine-capture"')
    head, items = read_capture(path)
    records = list(items)
    assert head == header()
    assert [r.frame for r in records if isinstance(r, CaptureRecord)] == frames
    assert [r.line for r in records] == [2, 3, 4, 5]


@settings(max_examples=60, deadline=None)
@given(frame=st.one_of(st.text(), st.binary()), t_ms=st.integers(0, 2**62),
       t_mono=st.floats(0, 1e9, allow_nan=False))
def test_record_line_round_trips(frame: str | bytes, t_ms: int, t_mono: float) -> None:
    """Any frame text or bytes survives record_line and reading back, as one line."""
    line = record_line(t_ms, t_mono, frame)
    assert line.count("\n") == 1
    assert line.endswith("\n")
    _, items = iter_capture([capture_text([]), line])
    (record,) = list(items)
    assert record == CaptureRecord(line=2, t_ms=t_ms, t_mono=t_mono, frame=frame)


def test_garbage_is_counted_by_reason_without_crashing() -> None:
    """Garbage capture lines and undecodable frames are counted by reason; good frames are still counted."""
    good = [trade_frame(1), trade_frame(2)]
    bad_frames = ["not json at all", "[1, 2]", '{"stream": "trade.X"}', "{}",
                  trade_frame(3).replace('"p": "100.5"', '"p": "abc"'),
                  trade_frame(4).replace('"p": "100.5"', '"p": "xyz"'),
                  '{"stream": "nosuch.BTC", "data": {}}']
    text = capture_text([*good, *bad_frames]) + "this line is not JSON\n" + '{"t_ms": "soon", "t_mono": 1}\n' \
        + '[]\n' + '{"t_ms": 1, "t_mono": 2}\n' + "\n"
    summary = _summary_of(text)
    assert summary.records == 9
    assert summary.frames_by_stream == {f"trade.{SYMBOL}": 2}
    assert summary.decode_errors == {
        "RemoteProtocolError: ws frame: not valid JSON": 1,
        "RemoteProtocolError: ws frame: expected a JSON object": 1,
        "RemoteProtocolError: 'data' must be an object": 1,
        "RemoteProtocolError: ws frame: has neither 'stream' nor 'error'": 1,
        "RemoteProtocolError: field 'p': not a decimal": 2,
        "RemoteProtocolError: unknown stream type": 1,
    }
    assert summary.total_bad_lines == 4
    assert summary.first_bad_line == 11
    assert set(summary.bad_lines) == {"not valid JSON (Expecting value)", "'t_ms' is missing or not an integer",
                                      "not a JSON object", "'frame' is missing or not a string"}
    text_out = render_summary(summary)
    assert "decode errors: 7" in text_out
    assert "malformed capture lines: 4 (first at line 11)" in text_out


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.text(max_size=80), max_size=12))
def test_summary_never_crashes_on_arbitrary_record_lines(lines: list[str]) -> None:
    """Whatever follows a valid header, the summary accounts for every non-blank line exactly once."""
    body = [line.replace("\n", " ").replace("\r", " ") + "\n" for line in lines]
    head, items = iter_capture([capture_text([]), *body])
    summary = summarize(head, items)
    non_blank = sum(1 for line in body if line.strip())
    assert summary.records + summary.total_bad_lines == non_blank
    assert sum(summary.frames_by_stream.values()) + summary.total_decode_errors == summary.records


def test_depth_gap_is_reported_per_stream() -> None:
    """A depth frame whose U is not the previous u + 1 counts as one gap, with its line and ids."""
    frames = [depth_frame(1, 5), depth_frame(6, 9), depth_frame(12, 15), depth_frame(16, 16),
              depth_frame(1, 3, symbol="BTC_USDC"), depth_frame(4, 4, symbol="BTC_USDC")]
    summary = _summary_of(capture_text(frames))
    assert summary.depth_gaps == {f"depth.{SYMBOL}": 1}
    (gap,) = summary.gap_samples
    assert (gap.line, gap.expected_first, gap.got_first) == (4, 10, 12)
    assert "line 4: depth.BTC_USDC_PERP expected U=10, got U=12" in render_summary(summary)


def test_contiguous_depth_has_no_gap() -> None:
    """Contiguous depth updates report no gap."""
    summary = _summary_of(capture_text([depth_frame(i * 3 + 1, i * 3 + 3) for i in range(20)]))
    assert summary.depth_gaps == {}
    assert summary.frames_by_stream == {f"depth.{SYMBOL}": 20}


def test_out_of_order_event_times_are_counted_per_stream() -> None:
    """An event time earlier than the stream's latest counts once per late frame; other streams are separate."""
    frames = [trade_frame(1, event_us=10), trade_frame(2, event_us=30), trade_frame(3, event_us=20),
              trade_frame(4, event_us=25), trade_frame(5, event_us=40), depth_frame(1, 1, event_us=5)]
    summary = _summary_of(capture_text(frames))
    assert summary.out_of_order == {f"trade.{SYMBOL}": 2}


def test_span_and_rate_come_from_receive_times() -> None:
    """Span is last minus first trio clock receive time; rate is records per second of span."""
    summary = _summary_of(capture_text([trade_frame(i) for i in range(11)], step_s=0.5))
    assert summary.span_s == pytest.approx(5.0)
    assert summary.rate_per_s == pytest.approx(11 / 5.0)
    assert summary.to_json()["span_s"] == pytest.approx(5.0)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"hello\n", "header is not valid JSON"),
    (b'{"format": "other"}\n', "not a capture header"),
    (b'{"format": "engine-capture", "version": 99}\n', "unsupported capture version 99"),
    (b'{"format": "engine-capture", "version": 1, "url": 1}\n', "'url' must be a string"),
    (b"\xff\xfe\n", "not UTF-8"),
])
def test_not_a_capture_raises_capture_error(tmp_path: Path, content: bytes, message: str) -> None:
    """A file without a valid header raises CaptureError naming the problem."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match=message):
        _read_all(path)


def test_corrupt_gzip_raises_capture_error(tmp_path: Path) -> None:
    """A .gz file that is not gzip, or is truncated, raises CaptureError (never a raw zlib/EOF error)."""
    (tmp_path / "plain.jsonl.gz").write_text("not gzip\n")
    with pytest.raises(CaptureError, match="cannot read"):
        read_capture(tmp_path / "plain.jsonl.gz")
    full = write_capture(tmp_path / "full.jsonl.gz", [trade_frame(i) for i in range(200)]).read_bytes()
    (tmp_path / "cut.jsonl.gz").write_bytes(full[: len(full) // 2])
    with pytest.raises(CaptureError, match="truncated"):
        _read_all(tmp_path / "cut.jsonl.gz")


def test_error_reason_drops_stream_and_value() -> None:
    """The reason key keeps the class and leading words, not the stream name or offending value."""
    a = RemoteProtocolError("'depth.A': field 'U': first update id 9 is after the last 3")
    b = RemoteProtocolError("'depth.B': field 'U': first update id 7 is after the last 1")
    assert error_reason(a) == error_reason(b) == "RemoteProtocolError: field 'U': first update id"


def test_replay_frames_offsets_and_streams() -> None:
    """Replay frames start at offset 0, keep recorded spacing and order, skip bad lines, and name streams."""
    items: list[CaptureRecord | BadLine] = [CaptureRecord(line=2, t_ms=0, t_mono=10.0, frame=trade_frame(1)), BadLine(line=3, reason="x"),
             CaptureRecord(line=4, t_ms=0, t_mono=10.25, frame="garbage")]
    frames = replay_frames(items)
    assert [(f.offset_s, f.stream) for f in frames] == [(0.0, f"trade.{SYMBOL}"), (0.25, None)]

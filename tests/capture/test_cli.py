"""The record and replay commands through ``engine.cli.main`` and as a process: exit codes and output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from engine.capture import read_capture, summarize
from engine.cli import main
from tests.capture.helpers import SYMBOL, capture_text, depth_frame, trade_frame

REPO = Path(__file__).resolve().parents[2]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _sim_config(tmp_path: Path) -> Path:
    path = tmp_path / "engine.toml"
    path.write_text('[engine]\nexchange = "simulator"\n\n[sim]\nspeed = 600.0\nstep_interval_s = 0.05\n')
    return path


def test_replay_summary_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """replay prints the summary (text or JSON) and exits 0, with gaps and malformed lines reported."""
    path = tmp_path / "c.jsonl"
    path.write_text(capture_text([trade_frame(1), depth_frame(1, 2), depth_frame(5, 6), "junk"]) + "oops\n")
    code, out, _ = _run(capsys, "replay", str(path))
    assert code == 0
    assert f"trade.{SYMBOL}" in out
    assert "depth sequence gaps: 1" in out
    assert "malformed capture lines: 1 (first at line 6)" in out
    code, out, _ = _run(capsys, "replay", str(path), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["frames_by_stream"] == {f"trade.{SYMBOL}": 1, f"depth.{SYMBOL}": 2}
    assert data["depth_gaps"] == {f"depth.{SYMBOL}": 1}
    assert data["decode_errors"] == {"RemoteProtocolError: ws frame: not valid JSON": 1}
    assert data["bad_lines"] == {"not valid JSON (Expecting value)": 1}


@pytest.mark.parametrize(("content", "reason"), [
    (None, "cannot read"),
    (b"", "the file is empty"),
    (b'{"hello": 1}\n', "not a capture header"),
])
def test_replay_of_a_non_capture_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         content: bytes | None, reason: str) -> None:
    """A missing, empty or foreign file exits 2 with 'not a readable capture' and the reason on stderr."""
    path = tmp_path / "x.jsonl"
    if content is not None:
        path.write_bytes(content)
    code, out, err = _run(capsys, "replay", str(path))
    assert code == 2
    assert out == ""
    assert f"error: {path}: not a readable capture: " in err
    assert reason in err


@pytest.mark.parametrize(("args", "message"), [
    (["--duration", "0"], "must be > 0 seconds"),
    (["--duration", "1", "--streams", "bogus"], "unknown stream kind 'bogus'"),
    (["--duration", "1", "--out-dir-missing"], "directory"),
])
def test_record_bad_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                     message: str) -> None:
    """Bad --duration, --streams or --out exit 2 with the reason, before connecting anywhere."""
    out = tmp_path / "c.jsonl"
    if "--out-dir-missing" in args:
        args = [a for a in args if a != "--out-dir-missing"]
        out = tmp_path / "no" / "such" / "c.jsonl"
    code, _, err = _run(capsys, "record", "--out", str(out), "--ws-url", "ws://127.0.0.1:9", *args)
    assert code == 2
    assert message in err
    assert not out.exists()


async def _free_port() -> int:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port: int = listener.socket.getsockname()[1]
    await listener.aclose()
    return port


def test_record_unreachable_url_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A refused connection exits 1 naming the URL, and leaves no file."""
    port = trio.run(_free_port)
    out = tmp_path / "c.jsonl"
    code, _, err = _run(capsys, "record", "--duration", "1", "--out", str(out), "--ws-url", f"ws://127.0.0.1:{port}")
    assert code == 1
    assert f"cannot connect to ws://127.0.0.1:{port}" in err
    assert not out.exists()


def test_record_command_from_embedded_simulator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """record with exchange = simulator starts the simulator, writes a gzip capture and reports it; exit 0."""
    out = tmp_path / "c.jsonl.gz"
    code, stdout, _ = _run(capsys, "record", "--duration", "1.5", "--out", str(out), "--config",
                           str(_sim_config(tmp_path)), "--symbols", SYMBOL, "--streams", "trade,depth,ticker")
    assert code == 0
    assert "stopped: duration" in stdout
    head, items = read_capture(out)
    summary = summarize(head, items)
    assert head.streams == (f"trade.{SYMBOL}", f"depth.{SYMBOL}", f"ticker.{SYMBOL}")
    assert set(summary.frames_by_stream) == set(head.streams)
    assert f"recorded {summary.records} frames" in stdout


async def test_sigint_stops_a_recording_process_cleanly(tmp_path: Path) -> None:
    """SIGINT to a running record process (SIGINT ignored by its parent) exits 0 with a closed, readable gzip."""
    out = tmp_path / "c.jsonl.gz"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "engine", "record", "--duration", "60", "--out", str(out), "--config",
               str(_sim_config(tmp_path)), "--symbols", SYMBOL, "--streams", "trade,depth"]
    with trio.fail_after(30):
        # SIG_IGN for SIGINT is what a background job of a non-interactive shell inherits.
        process = await trio.lowlevel.open_process(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        assert process.stderr is not None
        assert process.stdout is not None
        seen = b""
        while b"simulator listening on" not in seen:
            chunk = await process.stderr.receive_some()
            assert chunk, f"record exited early: {seen!r}"
            seen += chunk
        process.send_signal(signal.SIGINT)
        code = await process.wait()
        stdout = b""
        while chunk := await process.stdout.receive_some():
            stdout += chunk
    assert code == 0, seen
    assert b"stopped: signal" in stdout
    head, items = read_capture(out)
    summary = summarize(head, items)
    assert head.streams == (f"trade.{SYMBOL}", f"depth.{SYMBOL}")
    assert summary.total_bad_lines == 0
    assert f"recorded {summary.records} frames".encode() in stdout

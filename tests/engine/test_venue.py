"""trading_venue refusals: live trading needs every one of its conditions, and a refusal happens before any I/O."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from engine.app import trading_venue
from engine.config import ApiCredentials, EngineConfig, EngineSection
from engine.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
KEYS = ApiCredentials(api_key="a2V5", api_secret="c2VjcmV0")
LOOPBACK_REST = "http://127.0.0.1:9"
LOOPBACK_WS = "ws://127.0.0.1:9"


def _cfg(**engine: str) -> EngineConfig:
    return EngineConfig(engine=EngineSection(**engine))  # type: ignore[arg-type]


LIVE = {"exchange": "backpack", "mode": "live", "rest_url": LOOPBACK_REST, "ws_url": LOOPBACK_WS}


def _problems(cfg: EngineConfig, *, live_flag: bool, credentials: ApiCredentials | None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        trading_venue(cfg, live_flag=live_flag, credentials=credentials)
    return info.value.problems


def test_live_with_every_condition_is_live() -> None:
    """mode = live, --live, keys and exchange = backpack together give the live venue (and only then)."""
    venue = trading_venue(_cfg(**LIVE), live_flag=True, credentials=KEYS)
    assert venue.kind == "live"
    assert not venue.embedded
    assert venue.private_streams
    assert (venue.rest_url, venue.ws_url) == (LOOPBACK_REST, LOOPBACK_WS)


def test_live_without_keys_names_the_keys() -> None:
    """Missing API keys alone is refused, and the refusal names both environment variables."""
    problems = _problems(_cfg(**LIVE), live_flag=True, credentials=None)
    assert len(problems) == 1
    assert "API keys in the environment" in problems[0]
    assert "BACKPACK_API_KEY" in problems[0]
    assert "BACKPACK_API_SECRET" in problems[0]


def test_live_without_flag_names_the_flag() -> None:
    """A live configuration with keys but without --live is refused, naming only the flag."""
    problems = _problems(_cfg(**LIVE), live_flag=False, credentials=KEYS)
    assert problems == ["live trading refused: it needs the --live command-line flag"]


def test_flag_without_live_mode_names_the_mode() -> None:
    """--live with keys against a paper configuration is refused, naming the mode."""
    cfg = _cfg(exchange="backpack", mode="paper", rest_url=LOOPBACK_REST, ws_url=LOOPBACK_WS)
    problems = _problems(cfg, live_flag=True, credentials=KEYS)
    assert problems == ['live trading refused: it needs engine.mode = "live" in the configuration']


def test_flag_on_the_simulator_names_mode_and_exchange() -> None:
    """--live against the simulator names the mode, the exchange and the keys: every missing piece at once."""
    problems = _problems(EngineConfig(), live_flag=True, credentials=None)
    text = "\n".join(problems)
    assert len(problems) == 3
    assert 'engine.mode = "live"' in text
    assert 'engine.exchange = "backpack"' in text
    assert "API keys in the environment" in text
    assert all(p.startswith("live trading refused: it needs ") for p in problems)


def test_live_mode_on_the_simulator_cannot_even_be_configured() -> None:
    """mode = live with exchange = simulator fails at load time, before trading_venue is ever asked."""
    with pytest.raises(ConfigError, match='requires exchange = "backpack"'):
        EngineConfig.from_toml({"engine": {"mode": "live", "exchange": "simulator"}})


def test_without_live_the_venues_are_paper_or_simulator() -> None:
    """Without live mode or flag, keys never make a venue live: backpack is paper, simulator is the simulator."""
    paper = trading_venue(_cfg(exchange="backpack", rest_url=LOOPBACK_REST, ws_url=LOOPBACK_WS),
                          live_flag=False, credentials=KEYS)
    assert (paper.kind, paper.private_streams, paper.embedded) == ("paper", False, False)
    sim = trading_venue(EngineConfig(), live_flag=False, credentials=KEYS)
    assert (sim.kind, sim.embedded) == ("simulator", True)
    external = trading_venue(_cfg(rest_url="http://127.0.0.1:1", ws_url="ws://127.0.0.1:1"), live_flag=False,
                             credentials=None)
    assert (external.kind, external.embedded) == ("simulator", False)


def test_run_live_without_keys_exits_2_before_any_io(tmp_path: Path) -> None:
    """`run --live` without keys exits 2 naming the keys, and never connects (a loopback listener sees nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        config = tmp_path / "live.toml"
        config.write_text(f'[engine]\nexchange = "backpack"\nmode = "live"\n'
                          f'rest_url = "http://127.0.0.1:{port}"\nws_url = "ws://127.0.0.1:{port}"\n'
                          f'state_dir = "{tmp_path / "var"}"\n[journal]\npath = "{tmp_path / "j.sqlite"}"\n')
        env = {k: v for k, v in os.environ.items() if k not in ("BACKPACK_API_KEY", "BACKPACK_API_SECRET")}
        env["PYTHONPATH"] = str(REPO)
        proc = subprocess.run([sys.executable, "-m", "engine", "run", "--config", str(config), "--live"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 2, proc.stderr
        assert "live trading refused: it needs API keys in the environment" in proc.stderr
        assert "BACKPACK_API_KEY" in proc.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert not (tmp_path / "j.sqlite").exists(), "a journal was opened before the refusal"
    assert not (tmp_path / "var").exists()


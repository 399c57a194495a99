"""``python -m engine simulate``: the simulated exchange alone, for any Backpack client.

Owns the sub-command's arguments and its process lifecycle: build a ``SimConfig`` from the command line (bad
values are reported all at once and exit with status 2), serve until SIGINT or SIGTERM, print one line with the
REST base URL and the WebSocket URL once listening, exit 0 on a signal. Binds loopback unless told otherwise.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

import attrs
import trio

from engine.errors import ConfigError
from engine.sim.config import FaultConfig, SimConfig, parse_speed

__all__ = ["add_simulate_parser", "build_config", "run_simulate"]


def add_simulate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``simulate`` on an ``argparse`` sub-parser collection and return its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simulate", help="run the Backpack-compatible simulated exchange alone",
        description="Serve the Backpack REST and WebSocket APIs on one port, replaying real BTC history.")
    parser.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 0 = any free port)")
    parser.add_argument("--speed", default=None, help="market seconds per real second, or 'max' (default 1)")
    parser.add_argument("--start", default=None, help="replay start, ISO date/time UTC (default 2021-05-18T00:00:00)")
    parser.add_argument("--data", default=None, help="candle file to replay (default: the bundled data)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 1)")
    parser.add_argument("--keep-historical-time", action="store_true", default=None,
                        help="emit the original historical timestamps instead of re-stamping to now")
    parser.add_argument("--ping-interval", type=float, default=None, help="WebSocket ping interval, s (default 60)")
    parser.add_argument("--taker-speed-bump-ms", type=int, default=None, help="taker delay, ms (default 100)")
    parser.add_argument("--no-rate-limits", action="store_true", help="do not enforce request rate limits")
    parser.add_argument("--api-key", action="append", default=None, dest="api_keys",
                        help="accept only this API key (repeatable; default: any valid key)")
    names = ", ".join(f.name for f in attrs.fields(FaultConfig))
    parser.add_argument("--fault", action="append", default=[], metavar="NAME=VALUE",
                        help=f"inject a fault from the start (repeatable); NAME is one of: {names}")
    parser.set_defaults(handler=run_simulate)
    return parser


def _fault_value(field: attrs.Attribute[Any], text: str) -> Any:
    kind = str(field.type)
    if kind.startswith("list"):
        return [part for part in text.split(",") if part]
    if kind == "int":
        return int(text)
    return float(text)


def build_config(args: argparse.Namespace) -> SimConfig:
    """The SimConfig the arguments describe; raises ConfigError listing every bad value."""
    problems: list[str] = []
    changes: dict[str, Any] = {}
    for name in ("host", "port", "start", "data", "seed", "keep_historical_time", "taker_speed_bump_ms",
                 "api_keys"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    if getattr(args, "ping_interval", None) is not None:
        changes["ping_interval_s"] = args.ping_interval
    if getattr(args, "no_rate_limits", False):
        changes["rate_limits"] = False
    if getattr(args, "speed", None) is not None:
        try:
            changes["speed"] = parse_speed(args.speed)
        except ValueError as exc:
            problems.append(f"--speed: {exc}")
    fields = {f.name: f for f in attrs.fields(FaultConfig)}
    fault_changes: dict[str, Any] = {}
    for item in getattr(args, "fault", []) or []:
        name, sep, text = item.partition("=")
        field = fields.get(name.strip())
        if not sep or field is None:
            problems.append(f"--fault {item!r}: expected NAME=VALUE with NAME one of {', '.join(fields)}")
            continue
        try:
            fault_changes[field.name] = _fault_value(field, text.strip())
        except ValueError as exc:
            problems.append(f"--fault {field.name}: {exc}")
    try:
        faults = FaultConfig(**fault_changes)
    except (ValueError, TypeError) as exc:
        problems.append(f"--fault: {exc}")
        faults = FaultConfig()
    if problems:
        raise ConfigError(problems)
    try:
        return SimConfig(faults=faults, **changes)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"simulate: {exc}") from exc


async def _serve_until_signal(cfg: SimConfig) -> None:
    from engine.sim.server import SimHandle, serve_simulator

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            handle: SimHandle = await nursery.start(serve_simulator, cfg)
            print(f"simulator ready: REST {handle.rest_url}  WebSocket {handle.ws_url}", flush=True)
            async for signum in signals:
                print(f"simulator stopping ({signal.Signals(signum).name})", file=sys.stderr, flush=True)
                nursery.cancel_scope.cancel(reason=f"signal {signum}")
                break


def run_simulate(args: argparse.Namespace) -> int:
    """Run the simulator until SIGINT/SIGTERM; 0 on a clean stop, 2 on a bad command line."""
    try:
        cfg = build_config(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    trio.run(_serve_until_signal, cfg)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m engine.sim.cli``) until the engine's own CLI hooks ``simulate`` in."""
    parser = argparse.ArgumentParser(prog="python -m engine")
    add_simulate_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())

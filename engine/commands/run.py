"""``python -m engine run`` (the default command): the whole engine, as the configuration says.

Owns the process edge of a run: read the configuration, apply command-line overrides, resolve secrets from
the environment once, refuse live trading unless every condition holds, then run the actor graph until
SIGINT/SIGTERM or a fatal error, and print one summary line. Exit 0 after an orderly stop, 1 after a fatal
error (one line on stderr), 2 for a bad configuration or command line.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys

import attrs
import trio

from actors.notifier import resolve_webhook_urls
from engine.app import run_engine, trading_venue
from engine.cli import apply_logging, register_command
from engine.config import ApiCredentials, EngineConfig, resolve_config, resolve_credentials
from engine.errors import ConfigError
from engine.runtime import Supervisor, SupervisorStatistics
from engine.runtime.shutdown import ShutdownSummary, run_until_signal

__all__ = ["apply_overrides", "run_arguments", "run_command"]

log = logging.getLogger("engine.run")


def run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="configuration file (default: ./config.toml if present, else built-in defaults)")
    parser.add_argument("--rest-url", default=None, help="connect to this REST base URL instead of the default")
    parser.add_argument("--ws-url", default=None, help="connect to this WebSocket URL instead of the default")
    parser.add_argument("--speed", default=None,
                        help="replay speed of the embedded simulator (market seconds per real second, or max)")
    parser.add_argument("--live", action="store_true",
                        help='allow real orders (also needs engine.mode = "live" and API keys in the environment)')


def apply_overrides(cfg: EngineConfig, args: argparse.Namespace) -> EngineConfig:
    """The configuration with the command line's endpoint and speed overrides applied (validated again)."""
    if (args.rest_url is None) != (args.ws_url is None):
        raise ConfigError("--rest-url and --ws-url go together: give both or neither")
    try:
        if args.rest_url is not None:
            cfg = attrs.evolve(cfg, engine=attrs.evolve(cfg.engine, rest_url=args.rest_url, ws_url=args.ws_url))
        if args.speed is not None:
            from engine.sim.config import parse_speed

            cfg = attrs.evolve(cfg, sim=attrs.evolve(cfg.sim, speed=parse_speed(args.speed)))
    except ValueError as exc:
        raise ConfigError(f"command line: {exc}") from exc
    return cfg


def _credentials(cfg: EngineConfig) -> ApiCredentials | None:
    """Keys from the environment when both variables are set; None otherwise (live refuses without them)."""
    env = cfg.engine
    if os.environ.get(env.api_key_env) and os.environ.get(env.api_secret_env):
        return resolve_credentials(env, os.environ)
    return None


def _summary(summary: ShutdownSummary[None], stats: SupervisorStatistics | None) -> str:
    restarts = sum(actor.restarts for actor in stats.actors) if stats is not None else 0
    return f"{summary.describe()}; {restarts} actor restart(s)"


def run_command(args: argparse.Namespace) -> int:
    cfg, source = resolve_config(args.config)
    apply_logging(args, cfg.logging)
    cfg = apply_overrides(cfg, args)
    credentials = _credentials(cfg)
    venue = trading_venue(cfg, live_flag=args.live, credentials=credentials)  # refuses before any I/O
    urls = resolve_webhook_urls(cfg.notifier, os.environ)
    log.info("configuration: %s; venue: %s", source, venue.kind)
    supervisors: list[Supervisor] = []

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            supervisors.append(await nursery.start(functools.partial(
                run_engine, cfg, live_flag=args.live, credentials=credentials, webhook_urls=urls)))

    summary = trio.run(functools.partial(run_until_signal, main, grace_s=cfg.supervisor.shutdown_grace_s))
    print(_summary(summary, supervisors[0].statistics() if supervisors else None), file=sys.stderr)
    return 0


register_command("run", run_arguments, run_command,
                 help="run the engine (default: paper trading on the embedded simulator)")

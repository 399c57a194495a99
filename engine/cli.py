"""The command line: ``python -m engine [global options] <command> [options]``.

Owns argument parsing, the command registry and the process edge (logging setup, exit codes). Commands are
plugged in with :func:`register_command`; modules in the package ``engine.commands`` (when it exists) are
imported before parsing so that each can register its own commands (``run``, ``simulate``, ``backtest``,
``record``, ``replay``) without touching this file. ``check-config`` and ``keygen`` are built in.

Rule 1: only registered commands appear in ``--help``; with no command, ``run`` is used when registered.
Rule 2: exit codes are 0 success, 1 a FatalError (one line on stderr), 2 bad input (CLI arguments or
configuration, every problem on stderr, one per line), 130 interrupted; a handler's own code is passed
through.
Rule 3: a secret is written only where the user asked (a 0600 file), or printed once with a warning.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import pkgutil
import sys
from collections.abc import Callable, Sequence
from typing import Final

import attrs

from engine import __version__
from engine.config import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_HEADER,
    EngineConfig,
    LoggingConfig,
    render_toml,
    resolve_config,
)
from engine.errors import ConfigError, FatalError
from engine.logsetup import FORMATS, LEVELS, add_secret, configure_logging

__all__ = [
    "COMMAND_PACKAGE",
    "Command",
    "apply_logging",
    "build_parser",
    "main",
    "register_command",
    "registered_commands",
    "unregister_command",
]

COMMAND_PACKAGE: Final = "engine.commands"
PROG: Final = "python -m engine"
EXIT_OK: Final = 0
EXIT_FATAL: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

log = logging.getLogger("engine.cli")


@attrs.frozen(kw_only=True)
class Command:
    """One subcommand: its name, one-line help, how it adds its arguments, and its handler."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


_REGISTRY: dict[str, Command] = {}


def register_command(
    name: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    handler: Callable[[argparse.Namespace], int],
    *,
    help: str,
    replace: bool = False,
) -> Command:
    """Register a subcommand. ``handler(args)`` returns the exit code; ConfigError from it exits 2.

    Registering a name twice is an error unless ``replace=True`` (so two plugins cannot silently collide).
    """
    if not name or not name.replace("-", "").isalnum() or name != name.lower():
        raise ValueError(f"command name must be lowercase letters, digits and '-'; got {name!r}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"command {name!r} is already registered")
    command = Command(name=name, help=help, add_arguments=add_arguments, handler=handler)
    _REGISTRY[name] = command
    return command


def unregister_command(name: str) -> None:
    """Remove a registered command (tests, or a plugin replacing a built-in under another name)."""
    if name not in _REGISTRY:
        raise KeyError(f"command {name!r} is not registered")
    del _REGISTRY[name]


def registered_commands() -> tuple[str, ...]:
    """Names of the registered commands, in registration order."""
    return tuple(_REGISTRY)


def _load_command_modules(package_name: str) -> None:
    """Import every module of ``package_name`` so that each registers its commands (absent package: none)."""
    if importlib.util.find_spec(package_name) is None:
        return
    package = importlib.import_module(package_name)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{package_name}.{info.name}")


def _level(text: str) -> str:
    name = text.upper()
    if name not in LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(LEVELS)}; got {text!r}")
    return name


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Repeated on every subparser with SUPPRESS defaults, so `--log-level` works before or after the command
    # without a subparser's default overwriting a value given before it.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--log-level", type=_level, default=default, metavar="LEVEL",
                        help=f"log level ({', '.join(LEVELS)}); overrides [logging] level")
    parser.add_argument("--log-format", choices=FORMATS, default=default,
                        help="log line format; overrides [logging] format")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every registered command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Supervised trio actor engine for Backpack Exchange, with an embedded simulator.",
        epilog="With no command, 'run' is used." if "run" in _REGISTRY else None,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in _REGISTRY.values():
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        _global_options(child, suppress=True)
        command.add_arguments(child)
        child.set_defaults(_handler=command.handler)
    return parser


def apply_logging(args: argparse.Namespace, section: LoggingConfig) -> None:
    """Configure logging from a loaded [logging] section, letting --log-level / --log-format win."""
    configure_logging(getattr(args, "log_level", None) or section.level,
                      getattr(args, "log_format", None) or section.format)


def main(argv: Sequence[str] | None = None, *, command_package: str = COMMAND_PACKAGE) -> int:
    """Parse ``argv`` (default: sys.argv[1:]), run the command and return its exit code.

    Every module of ``command_package`` is imported first, so the commands it registers are available.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    _load_command_modules(command_package)
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
        if args.command is None:
            if "run" not in _REGISTRY:
                parser.error(f"no command given; choose one of: {', '.join(_REGISTRY)}")
            args = parser.parse_args([*arguments, "run"])
    except SystemExit as exc:
        # argparse exits 0 for --help/--version and 2 (after printing usage and the reason) for bad input.
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    configure_logging(args.log_level or "INFO", args.log_format or "plain")
    try:
        return int(args._handler(args))
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_USAGE
    except FatalError as exc:
        # Fatal errors are expected outcomes (keys rejected, an invariant broken): one clear line, and the
        # traceback only at debug level.
        log.debug("command %s stopped", args.command, exc_info=True)
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _print_problems(exc: ConfigError) -> None:
    count = len(exc.problems)
    print(f"error: invalid configuration ({count} problem{'s' if count != 1 else ''}):", file=sys.stderr)
    for problem in exc.problems:
        print(problem, file=sys.stderr)


# --------------------------------------------------------------------------------------------------------
# check-config
# --------------------------------------------------------------------------------------------------------


def _check_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=None,
                        help=f"config file to check (default: ./{DEFAULT_CONFIG_PATH}, else the built-in defaults)")
    parser.add_argument("--defaults", action="store_true",
                        help="print the default configuration file (what config.toml holds) and exit")


def _check_config(args: argparse.Namespace) -> int:
    if args.defaults:
        if args.path is not None:
            print("error: check-config takes either a path or --defaults, not both", file=sys.stderr)
            return EXIT_USAGE
        sys.stdout.write(render_toml(EngineConfig(), header=DEFAULT_HEADER))
        return EXIT_OK
    cfg, source = resolve_config(args.path)
    if args.path is None and source != DEFAULT_CONFIG_PATH:
        print(f"note: no {DEFAULT_CONFIG_PATH} here; showing the built-in defaults", file=sys.stderr)
    sys.stdout.write(render_toml(cfg, header=f"Effective configuration from {source} (valid).", mark_changed=True))
    return EXIT_OK


# --------------------------------------------------------------------------------------------------------
# keygen
# --------------------------------------------------------------------------------------------------------


def _keygen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="FILE", default=None,
                        help="write the secret to FILE (created with mode 0600) instead of printing it")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")


def _write_secret(path: str, secret: str, *, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    try:
        # The umask can only remove bits, but an existing file (with --force) keeps its old mode: set it.
        os.fchmod(fd, 0o600)
        os.write(fd, (secret + "\n").encode("ascii"))
    finally:
        os.close(fd)


def _keygen(args: argparse.Namespace) -> int:
    from engine.backpack.signing import Signer

    signer, secret = Signer.generate()
    add_secret(secret)
    if args.out is not None:
        try:
            _write_secret(args.out, secret, force=args.force)
        except FileExistsError:
            print(f"error: {args.out} exists; use --force to overwrite it", file=sys.stderr)
            return EXIT_USAGE
        except OSError as exc:
            print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"BACKPACK_API_KEY={signer.public_key_b64}")
        print(f"secret written to {args.out} (mode 0600)", file=sys.stderr)
        return EXIT_OK
    print(f"BACKPACK_API_KEY={signer.public_key_b64}")
    print(f"BACKPACK_API_SECRET={secret}")
    print("warning: the API secret was printed above and is shown only once; store it safely "
          "(or use --out FILE to write it to a 0600 file instead)", file=sys.stderr)
    return EXIT_OK


register_command("check-config", _check_config_arguments, _check_config,
                 help="validate a config file and print the effective configuration")
register_command("keygen", _keygen_arguments, _keygen,
                 help="make an ED25519 API key pair (e.g. for the simulator)")

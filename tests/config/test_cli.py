"""The command line: real subprocesses for exit codes and output, in-process for the command registry."""

from __future__ import annotations

import argparse
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import __version__
from engine.backpack.signing import Signer, verify_signature
from engine.cli import main, register_command, registered_commands, unregister_command

REPO = Path(__file__).resolve().parents[2]


def _engine(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )


def test_check_config_valid_file_exits_0(tmp_path: Path) -> None:
    """A valid file exits 0 and prints the effective configuration, including the values it overrides."""
    cfg = tmp_path / "my.toml"
    cfg.write_text('[feed]\ndepth_levels = 20\n[logging]\nformat = "json"\n', encoding="utf-8")
    result = _engine("check-config", str(cfg), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "# levels per side in the REST depth snapshot (changed; default 100)\ndepth_levels = 20\n" in result.stdout
    assert result.stdout.count("(changed;") == 2
    assert 'format = "json"\n' in result.stdout
    assert f"Effective configuration from {cfg}" in result.stdout


def test_check_config_invalid_file_exits_2_with_every_problem(tmp_path: Path) -> None:
    """An invalid file exits 2 and lists every problem on stderr, one per line, nothing on stdout."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[feed]\ndepth_levels = 7\nbogus_key = 1\n[risk]\nmax_open_orders = 0\n", encoding="utf-8")
    result = _engine("check-config", str(cfg), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert "feed.depth_levels: must be one of 5, 10, 20, 50, 100, 500, 1000; got 7" in lines
    assert "feed.bogus_key: unknown key" in lines
    assert "risk.max_open_orders: must be in [1, inf]; got 0" in lines


def test_check_config_unknown_key_names_it(tmp_path: Path) -> None:
    """A single unknown key exits 2 and the message names the key with its section."""
    cfg = tmp_path / "typo.toml"
    cfg.write_text("[orders]\nack_timeout = 3\n", encoding="utf-8")
    result = _engine("check-config", str(cfg), cwd=tmp_path)
    assert result.returncode == 2
    assert "orders.ack_timeout: unknown key (did you mean ack_timeout_s?)" in result.stderr.splitlines()


@pytest.mark.parametrize(
    ("content", "expected"),
    [("[feed\n", "invalid TOML"), (None, "cannot read")],
)
def test_check_config_unreadable_file_exits_2(tmp_path: Path, content: str | None, expected: str) -> None:
    """Broken TOML or a missing file exits 2 with a message naming the file."""
    cfg = tmp_path / "x.toml"
    if content is not None:
        cfg.write_text(content, encoding="utf-8")
    result = _engine("check-config", str(cfg), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{cfg}: {expected}" in result.stderr


def test_check_config_defaults_prints_config_toml(tmp_path: Path) -> None:
    """`check-config --defaults` prints exactly the repo's config.toml (the regeneration command)."""
    result = _engine("check-config", "--defaults", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == (REPO / "config.toml").read_text(encoding="utf-8")


def test_keygen_out_file_is_0600_and_signs_verifiably(tmp_path: Path) -> None:
    """keygen --out writes a 0600 secret whose signatures verify with the printed public key."""
    out = tmp_path / "secret.key"
    result = _engine("keygen", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    secret = out.read_text(encoding="ascii").strip()
    assert secret not in result.stdout
    assert secret not in result.stderr
    (line,) = result.stdout.splitlines()
    name, _, public = line.partition("=")
    assert name == "BACKPACK_API_KEY"
    signer = Signer(secret)
    assert signer.public_key_b64 == public
    message = "instruction=orderExecute&symbol=BTC_USDC&timestamp=1&window=5000"
    assert verify_signature(public, message, signer.sign(message))


def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    """keygen --out on an existing file exits 2 and leaves the file untouched."""
    out = tmp_path / "secret.key"
    out.write_text("keep me", encoding="ascii")
    result = _engine("keygen", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2
    assert "exists" in result.stderr
    assert out.read_text(encoding="ascii") == "keep me"


def test_keygen_without_out_prints_secret_once_with_warning(
    capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --out the secret is printed once to stdout and a warning goes to stderr."""
    assert main(["keygen"]) == 0
    captured = capsys.readouterr()
    lines = dict(line.split("=", 1) for line in captured.out.splitlines())
    assert Signer(lines["BACKPACK_API_SECRET"]).public_key_b64 == lines["BACKPACK_API_KEY"]
    assert captured.out.count(lines["BACKPACK_API_SECRET"]) == 1
    assert "warning" in captured.err
    assert lines["BACKPACK_API_SECRET"] not in captured.err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version and exits 0."""
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["no-such-command"], "invalid choice: 'no-such-command'"),
        (["--log-level", "loud", "keygen"], "argument --log-level: must be one of DEBUG"),
        (["--log-format", "xml", "keygen"], "argument --log-format: invalid choice: 'xml'"),
        (["keygen", "--bogus"], "unrecognized arguments: --bogus"),
        (["check-config", "a.toml", "--defaults"], "either a path or --defaults"),
    ],
)
def test_bad_cli_input_exits_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad command-line input gives a precise message on stderr and exit code 2."""
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.fixture
def without_run() -> Iterator[None]:
    """The registry with the real `run` command taken out for the test and put back afterwards."""
    from engine import cli

    cli._load_command_modules(cli.COMMAND_PACKAGE)
    saved = cli._REGISTRY.pop("run", None)
    try:
        yield
    finally:
        cli._REGISTRY.pop("run", None)
        if saved is not None:
            cli._REGISTRY["run"] = saved


@pytest.fixture
def scratch_command(without_run: None) -> Iterator[list[argparse.Namespace]]:
    calls: list[argparse.Namespace] = []

    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--config", default=None)

    def handler(args: argparse.Namespace) -> int:
        calls.append(args)
        return 7

    register_command("run", add, handler, help="scratch run command")
    try:
        yield calls
    finally:
        unregister_command("run")


def test_unregistered_command_is_not_offered(
    without_run: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a registered run command, --help does not list it and no command is an error."""
    from engine import cli

    # Keep main() from importing the command package again (which would bring the real `run` back).
    monkeypatch.setattr(cli, "_load_command_modules", lambda _name: None)
    assert "run" not in registered_commands()
    assert main(["--help"]) == 0
    assert not re.search(r"^\s+run\s", capsys.readouterr().out, re.MULTILINE)
    assert main([]) == 2
    assert "no command given" in capsys.readouterr().err


def test_registered_run_is_the_default(
    scratch_command: list[argparse.Namespace], capsys: pytest.CaptureFixture[str]
) -> None:
    """A registered run appears in --help and runs when no command is given, with global options."""
    assert main(["--help"]) == 0
    assert "scratch run command" in capsys.readouterr().out
    assert main(["--log-level", "debug"]) == 7
    assert main(["run", "--config", "x.toml", "--log-format", "json"]) == 7
    first, second = scratch_command
    assert (first.command, first.log_level) == ("run", "DEBUG")
    assert (second.config, second.log_format, second.log_level) == ("x.toml", "json", None)


def test_duplicate_registration_is_refused(scratch_command: list[argparse.Namespace]) -> None:
    """Registering a taken name fails loudly instead of silently replacing a command."""
    with pytest.raises(ValueError, match="already registered"):
        register_command("run", lambda p: None, lambda a: 0, help="again")


def test_config_error_from_a_handler_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A ConfigError raised by any command exits 2 with each problem on its own stderr line."""
    from engine.errors import ConfigError

    def handler(_args: argparse.Namespace) -> int:
        raise ConfigError(["a.b: first", "c: second"])

    register_command("explode", lambda p: None, handler, help="raises")
    try:
        assert main(["explode"]) == 2
    finally:
        unregister_command("explode")
    err = capsys.readouterr().err.splitlines()
    assert err[-2:] == ["a.b: first", "c: second"]


def test_command_package_modules_register_themselves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A module dropped into the command package registers its command without any edit to the parser."""
    package = tmp_path / "scratch_cmds"
    package.mkdir()
    (package / "__init__.py").write_text('"""Scratch command package."""\n', encoding="utf-8")
    (package / "hello.py").write_text(
        "from engine.cli import register_command\n"
        "def add(parser):\n"
        "    parser.add_argument('--name', required=True)\n"
        "def handler(args):\n"
        "    print('hello', args.name)\n"
        "    return 0\n"
        "register_command('hello', add, handler, help='say hello')\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert main(["hello", "--name", "world"], command_package="scratch_cmds") == 0
        assert capsys.readouterr().out == "hello world\n"
        assert main(["hello"], command_package="scratch_cmds") == 2
        assert "the following arguments are required: --name" in capsys.readouterr().err
    finally:
        unregister_command("hello")
        for name in ("scratch_cmds.hello", "scratch_cmds"):
            sys.modules.pop(name, None)


def test_fatal_error_from_a_handler_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """A FatalError other than ConfigError exits 1 with one line naming the error."""
    from engine.errors import AuthError

    def handler(_args: argparse.Namespace) -> int:
        raise AuthError("API key rejected")

    register_command("deny", lambda p: None, handler, help="raises")
    try:
        assert main(["deny"]) == 1
    finally:
        unregister_command("deny")
    assert capsys.readouterr().err.splitlines()[-1] == "error: AuthError: API key rejected"

"""Logging setup: one handler however often it is configured, JSON lines, secrets never reach the output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from engine.logsetup import MASK, SecretMaskFilter, add_secret, configure_logging

SECRET = "c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1uZXZlci1sZWFr"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("DEBUG", "plain", stream=out)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _ours(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if type(h).__module__ == "engine.logsetup"]


def test_reconfiguring_replaces_the_handler(stream: io.StringIO) -> None:
    """Configuring twice leaves exactly one engine handler, with the new format and level."""
    root = logging.getLogger()
    handler = configure_logging("WARNING", "json", stream=stream)
    try:
        assert _ours(root) == [handler]
        assert root.level == logging.WARNING
        logging.getLogger("engine.test").info("hidden")
        logging.getLogger("engine.test").warning("shown %d", 3)
        (line,) = stream.getvalue().splitlines()
        entry = json.loads(line)
        assert (entry["level"], entry["logger"], entry["msg"]) == ("WARNING", "engine.test", "shown 3")
    finally:
        root.removeHandler(handler)


def test_secret_masked_in_message_args_extras_and_traceback(stream: io.StringIO) -> None:
    """A registered secret is masked wherever it appears: message, arguments, extras and exception text."""
    add_secret(SECRET)
    log = logging.getLogger("engine.test")
    log.info("key is %s", SECRET, extra={"detail": f"x{SECRET}y"})
    try:
        raise ValueError(f"bad secret {SECRET}")
    except ValueError:
        log.exception("failed with %r", {"secret": SECRET})
    text = stream.getvalue()
    assert SECRET not in text
    assert text.count(MASK) >= 3
    assert "ValueError: bad secret ***" in text


def test_resolved_credentials_are_masked(stream: io.StringIO) -> None:
    """Reading the API secret from the environment registers it with the log mask at once."""
    from engine.config import EngineSection, resolve_credentials

    value = "bW9yZS1zZWNyZXQtYnl0ZXMtZm9yLXRoZS1tYXNr"
    creds = resolve_credentials(EngineSection(), {"BACKPACK_API_KEY": "pub", "BACKPACK_API_SECRET": value})
    logging.getLogger("engine.test").warning("oops %s", creds.api_secret)
    assert stream.getvalue().rstrip().endswith(f"oops {MASK}")


def test_json_lines_carry_extras_and_exceptions() -> None:
    """JSON format writes one parseable object per record, with extras and the traceback."""
    out = io.StringIO()
    root = logging.getLogger()
    handler = configure_logging("INFO", "json", stream=out)
    try:
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            logging.getLogger("engine.j").error("boom", exc_info=True, extra={"actor": "feed"})
    finally:
        root.removeHandler(handler)
    entry = json.loads(out.getvalue())
    assert entry["actor"] == "feed"
    assert "ZeroDivisionError" in entry["exc"]


def test_short_values_are_not_masked() -> None:
    """Values too short to be real secrets are ignored, so ordinary words are never masked."""
    mask = SecretMaskFilter(["abc", SECRET])
    assert mask.mask(f"abc {SECRET}") == f"abc {MASK}"


@pytest.mark.parametrize(("level", "fmt"), [("LOUD", "plain"), ("INFO", "xml")])
def test_bad_settings_are_rejected(level: str, fmt: str) -> None:
    """An unknown level or format is a ValueError naming the allowed values."""
    with pytest.raises(ValueError, match="must be one of"):
        configure_logging(level, fmt, stream=io.StringIO())

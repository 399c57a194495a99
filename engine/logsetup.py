"""Logging setup for the whole process: one handler on the root logger, plain or JSON lines, secrets masked.

Owns the only place that configures ``logging``. Rule 1: :func:`configure_logging` is idempotent - calling it
again (e.g. once the config file has been read) replaces the engine's handler instead of adding another.
Rule 2: every record passes :class:`SecretMaskFilter` before it is formatted, so a registered secret value
never reaches the output, not in the message, its arguments, nor an exception traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final, TextIO

__all__ = [
    "LEVELS",
    "MASK",
    "JsonFormatter",
    "SecretMaskFilter",
    "add_secret",
    "configure_logging",
]

LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS: Final = ("plain", "json")
MASK: Final = "***"
_PLAIN_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Anything shorter would mask innocent text; real keys are 44 base64 characters.
_MIN_SECRET_LEN: Final = 8

# Attributes every LogRecord has; anything else was passed with extra= and goes into the JSON object.
_STANDARD_ATTRS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


class SecretMaskFilter(logging.Filter):
    """Replaces every registered secret value in a record with ``***`` (message, arguments, traceback)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        value = secret.strip()
        if len(value) < _MIN_SECRET_LEN:
            return
        with self._lock:
            # Longest first, so a secret that contains another is masked whole.
            self._secrets = tuple(sorted({*self._secrets, value}, key=len, reverse=True))

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg = self.mask(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, self.mask(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC ISO 8601), level, logger, msg, extras, and exc when present."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class _EngineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so reconfiguring replaces it."""


class _StderrHandler(_EngineHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (it may be replaced after setup, as in tests)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


_mask_filter = SecretMaskFilter()


def add_secret(value: str) -> None:
    """Register a secret value (e.g. the API secret read from the environment) to mask from now on."""
    _mask_filter.add(value)


_CHATTY_LOGGERS = ("httpx", "httpcore", "hypercorn.access", "engine.sim.hypercorn")


def configure_logging(
    level: str = "INFO",
    fmt: str = "plain",
    *,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> logging.Handler:
    """Install (or replace) the engine's log handler on the root logger and return it.

    ``level`` is one of LEVELS (case-insensitive), ``fmt`` is "plain" or "json"; output goes to ``stream``
    (stderr by default). ``secrets`` are added to the mask, which stays in force for the process.
    """
    name = level.upper()
    if name not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}; got {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    for secret in secrets:
        _mask_filter.add(secret)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _EngineHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _StderrHandler() if stream is None else _EngineHandler(stream)
    handler.addFilter(_mask_filter)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_PLAIN_FORMAT))
    root.addHandler(handler)
    root.setLevel(name)
    # Per-request lines from the HTTP libraries drown the engine's own story at INFO; they stay available
    # with --log-level DEBUG.
    for chatty in _CHATTY_LOGGERS:
        logging.getLogger(chatty).setLevel(name if name == "DEBUG" else "WARNING")
    return handler

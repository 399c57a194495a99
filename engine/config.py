"""The engine's configuration: ``config.toml`` -> frozen attrs sections, checked all at once.

Owns the generic loader (:func:`load_section`) that builds any section declared with
``engine.confspec.setting`` from a parsed TOML mapping, the sections the engine itself owns (``[engine]``,
``[logging]``, ``[risk]``, ``[orders]``, ``[status]``, ``[metrics]``, ``[notifier]``), the composed
:class:`EngineConfig`, and
:func:`render_toml`, which writes a configuration back as commented TOML from the same declarations.
Sections declared elsewhere and composed here: ``[strategy]`` (engine.nanpin.config), ``[feed]`` and
``[cache]`` (engine.market.config), ``[journal]`` (engine.store.config), ``[supervisor]``
(engine.runtime.policy) and ``[sim]`` (engine.sim.config).

Rule 1: loading never stops at the first problem. Every unknown key, wrong type, failed validator and
failed cross-field check in the whole file is collected as ``<toml.path>: <message>`` and raised once as
:class:`engine.errors.ConfigError`.
Rule 2: the file never holds secret values, only the *names* of the environment variables that hold them;
:func:`resolve_credentials` reads them once, at the edge (the CLI), never inside an actor.
Rule 3: invariants that span sections (live needs the real exchange; the simulator must list the strategy's
market; order cancellation fits the supervisor's cleanup bound) are checked at load time, by path.
Rule 4: ``render_toml(cfg)`` parsed and loaded again gives back ``cfg`` (for every value TOML can express).
"""

from __future__ import annotations

import difflib
import enum
import math
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import attrs

from engine.confspec import at_least, greater_than, in_range, non_empty, setting
from engine.errors import ConfigError
from engine.logsetup import add_secret
from engine.market.config import CacheConfig, FeedConfig
from engine.nanpin.config import NanpinConfig
from engine.runtime.policy import SupervisorConfig
from engine.sim.config import SimConfig
from engine.sim.markets import DEFAULT_MARKETS
from engine.store.config import JournalConfig

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_HEADER",
    "OFFICIAL_REST_URL",
    "OFFICIAL_WS_URL",
    "ApiCredentials",
    "EngineConfig",
    "EngineSection",
    "LoggingConfig",
    "MetricsConfig",
    "NotifierConfig",
    "OrdersConfig",
    "RiskConfig",
    "StatusConfig",
    "load_config",
    "load_section",
    "parse_toml",
    "render_toml",
    "resolve_config",
    "resolve_credentials",
]

T = TypeVar("T")

DEFAULT_CONFIG_PATH: Final = "config.toml"
OFFICIAL_REST_URL: Final = "https://api.backpack.exchange"
OFFICIAL_WS_URL: Final = "wss://ws.backpack.exchange"
_OFFICIAL_HOSTS: Final = ("api.backpack.exchange", "ws.backpack.exchange")

DEFAULT_HEADER: Final = (
    "Backpack nanpin engine configuration: every key with its default value.\n"
    "Generated from the declarations in engine/ by `python -m engine check-config --defaults > config.toml`;\n"
    "a test keeps this file in sync with the code. Edit a copy and run `python -m engine check-config FILE`\n"
    "to validate it. Secrets never go here: [engine] names the environment variables that hold them."
)


# --------------------------------------------------------------------------------------------------------
# Generic loader
# --------------------------------------------------------------------------------------------------------


class _Invalid(Exception):
    """One value failed conversion; the message reads well after ``<path>: ``."""


class _Failed:
    """Marker for a value whose problems are already recorded (so the parent is not built)."""


_FAILED: Final = _Failed()

_TOML_TYPE_NAMES: Final[dict[type, str]] = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
    Decimal: "a number",
}


def _describe(value: Any) -> str:
    """What the user wrote, in TOML words, for 'expected X; got Y' messages."""
    if isinstance(value, bool):
        kind = "boolean"
    elif isinstance(value, int):
        kind = "integer"
    elif isinstance(value, float):
        kind = "float"
    elif isinstance(value, str):
        kind = "string"
    elif isinstance(value, list | tuple):
        return f"an array of {len(value)}"
    elif isinstance(value, Mapping):
        return "a table"
    else:
        return f"{type(value).__name__} {value!r}"
    return f"{kind} {_render_value(value)}"


def _got(value: Any) -> str:
    """A scalar as the user wrote it (``7``, ``"x"``, ``true``); containers by shape."""
    if isinstance(value, bool | int | float | str):
        return _render_value(value)
    return _describe(value)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp in _TOML_TYPE_NAMES:
        return _TOML_TYPE_NAMES[tp]
    if isinstance(tp, type) and attrs.has(tp):
        return "a table"
    if origin in (list, tuple):
        return "an array"
    if origin in (dict,) or tp is dict:
        return "a table"
    if isinstance(tp, type) and issubclass(tp, Path):
        return "a string"
    return getattr(tp, "__name__", str(tp))


def _fmt_choice(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    return _render_value(value) if isinstance(value, str | bool) else str(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _convert(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    """Convert one TOML value to ``tp``; nested problems are recorded with their own paths."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in args if a is not type(None)]
        # TOML has no null: an optional key is set to None only by leaving it out.
        if len(members) == 1:
            return _convert(members[0], value, path, problems)
        first_error = ""
        for member in members:
            trial: list[str] = []
            try:
                result = _convert(member, value, path, trial)
            except _Invalid as exc:
                first_error = first_error or str(exc)
                continue
            if not trial:
                return result
            first_error = first_error or trial[0].split(": ", 1)[-1]
        raise _Invalid(first_error or f"expected one of {', '.join(_type_name(m) for m in members)}")

    if origin is Literal:
        for choice in args:
            if type(choice) is type(value) and choice == value:
                return choice
        raise _Invalid(f"must be one of {', '.join(_fmt_choice(c) for c in args)}; got {_got(value)}")

    if isinstance(tp, type) and attrs.has(tp):
        if not isinstance(value, Mapping):
            raise _Invalid(f"expected a table; got {_describe(value)}")
        return _build(tp, value, path, problems)

    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if type(member.value) is type(value) and member.value == value:
                return member
        raise _Invalid(f"must be one of {', '.join(_fmt_choice(m) for m in tp)}; got {_got(value)}")

    if origin is list or tp is list:
        if not isinstance(value, list):
            raise _Invalid(f"expected an array; got {_describe(value)}")
        (item_tp,) = args or (Any,)
        items = [_convert_item(item_tp, item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
        return _FAILED if any(item is _FAILED for item in items) else items

    if origin is tuple or tp is tuple:
        if not isinstance(value, list):
            raise _Invalid(f"expected an array; got {_describe(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            item_types = [args[0]] * len(value)
        else:
            item_types = list(args) if args else [Any] * len(value)
            if len(value) != len(item_types):
                raise _Invalid(f"expected an array of {len(item_types)}; got an array of {len(value)}")
        items = [_convert_item(t, item, f"{path}[{i}]", problems)
                 for i, (t, item) in enumerate(zip(item_types, value, strict=True))]
        return _FAILED if any(item is _FAILED for item in items) else tuple(items)

    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise _Invalid(f"expected a table; got {_describe(value)}")
        key_tp, val_tp = args or (str, Any)
        if key_tp is not str:
            raise _Invalid(f"unsupported key type {key_tp!r}")
        out = {k: _convert_item(val_tp, v, _join(path, k), problems) for k, v in value.items()}
        return _FAILED if any(v is _FAILED for v in out.values()) else out

    return _convert_scalar(tp, value)


def _convert_item(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    try:
        return _convert(tp, value, path, problems)
    except _Invalid as exc:
        problems.append(f"{path}: {exc}")
        return _FAILED


def _convert_scalar(tp: Any, value: Any) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Invalid(f"expected a boolean (true or false); got {_describe(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Invalid(f"expected an integer; got {_describe(value)}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and math.isnan(value):
                raise _Invalid("expected a number; got nan")
            return float(value)
        raise _Invalid(f"expected a number; got {_describe(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Invalid(f"expected a string; got {_describe(value)}")
    if tp is Decimal:
        return _to_decimal(value)
    if isinstance(tp, type) and issubclass(tp, Path):
        if isinstance(value, str):
            return tp(value)
        raise _Invalid(f"expected a string (a path); got {_describe(value)}")
    raise _Invalid(f"unsupported setting type {tp!r}")


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise _Invalid(f"expected a number; got {_describe(value)}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Invalid(f"expected a finite number; got {value!r}")
        # repr() is the shortest text that reads back as this float: 0.1 -> Decimal("0.1"), not 0.1000...0555.
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise _Invalid(f"expected a decimal number; got {_describe(value)}") from None
        if not result.is_finite():
            raise _Invalid(f"expected a finite decimal number; got {_describe(value)}")
        return result
    raise _Invalid(f"expected a number; got {_describe(value)}")


def _init_fields(cls: type) -> list[attrs.Attribute[Any]]:
    return [a for a in attrs.fields(cls) if a.init]


def _key(attribute: attrs.Attribute[Any]) -> str:
    return attribute.alias or attribute.name


def _hints(cls: type) -> dict[str, Any]:
    # Sections use `from __future__ import annotations`, so annotations are strings until resolved.
    return typing.get_type_hints(cls)


def _build(cls: type[T], data: Mapping[str, Any], path: str, problems: list[str]) -> T | _Failed:
    """Build ``cls`` from ``data`` or record why not. Returns _FAILED when anything under it failed."""
    hints = _hints(cls)
    fields = _init_fields(cls)
    by_key = {_key(a): a for a in fields}
    before = len(problems)

    for key in data:
        if key not in by_key:
            hint = difflib.get_close_matches(str(key), list(by_key), n=1)
            suffix = f" (did you mean {hint[0]}?)" if hint else ""
            problems.append(f"{_join(path, str(key))}: unknown key{suffix}")

    kwargs: dict[str, Any] = {}
    failed_keys: set[str] = set()
    for attribute in fields:
        key = _key(attribute)
        if key not in data:
            if attribute.default is attrs.NOTHING:
                problems.append(f"{_join(path, key)}: missing required key")
                failed_keys.add(key)
            continue
        sub_path = _join(path, key)
        mark = len(problems)
        converted = _convert_item(hints.get(attribute.name, Any), data[key], sub_path, problems)
        if converted is _FAILED or len(problems) > mark:
            failed_keys.add(key)
            continue
        kwargs[key] = converted

    # Run each field's validator on its own, so that every bad value is reported, not just the first.
    probe = _probe_instance(cls, fields, kwargs)
    for attribute in fields:
        key = _key(attribute)
        # Defaults are not judged here: an invalid default is a bug the class's own construction reports.
        if attribute.validator is None or key not in kwargs:
            continue
        try:
            attribute.validator(probe, attribute, kwargs[key])
        except (ValueError, TypeError) as exc:
            problems.append(f"{_join(path, key)}: {exc}")
            failed_keys.add(key)

    if len(problems) > before:
        return _FAILED
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        # Cross-field checks in __attrs_post_init__ (or a validator on a default) name the section.
        problems.append(f"{path or '<top level>'}: {exc}")
        return _FAILED


def _probe_instance(cls: type, fields: list[attrs.Attribute[Any]], kwargs: Mapping[str, Any]) -> Any:
    """A half-built instance to hand validators that look at ``inst`` (defaults where values failed)."""
    probe: Any = object.__new__(cls)
    for attribute in fields:
        key = _key(attribute)
        if key in kwargs:
            value = kwargs[key]
        elif attribute.default is attrs.NOTHING:
            continue
        else:
            value = _default_value(attribute, probe)
        object.__setattr__(probe, attribute.name, value)
    return probe


def _default_value(attribute: attrs.Attribute[Any], inst: Any) -> Any:
    default: Any = attribute.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return default.factory(inst) if default.takes_self else default.factory()
    return default


def load_section(cls: type[T], data: Mapping[str, Any], path: str) -> T:
    """Build the attrs section ``cls`` from a parsed TOML mapping found at ``path`` (``""`` for the root).

    Raises ConfigError listing every problem (unknown keys, wrong types, failed validators, failed
    cross-field checks), each as ``<toml.path>: <message>``.
    """
    if not (isinstance(cls, type) and attrs.has(cls)):
        raise TypeError(f"{cls!r} is not an attrs class")
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise ConfigError([f"{path or '<top level>'}: expected a table; got {_describe(data)}"])
    result = _build(cls, data, path, problems)
    if problems or isinstance(result, _Failed):
        raise ConfigError(problems or [f"{path or '<top level>'}: invalid"])
    return typing.cast(T, result)


def parse_toml(text: str, source: str = "<string>") -> dict[str, Any]:
    """Parse TOML text; a syntax error becomes a ConfigError naming the source and position."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: invalid TOML: {exc}"]) from exc


def resolve_config(path: str | Path | None) -> tuple[EngineConfig, str]:
    """The configuration to run with and where it came from.

    ``path`` given: that file (it must exist). ``None``: ``./config.toml`` when present, else the built-in
    defaults (described as such, so the caller can say which one it used).
    """
    if path is None:
        if not Path(DEFAULT_CONFIG_PATH).is_file():
            return EngineConfig(), "the built-in defaults"
        path = DEFAULT_CONFIG_PATH
    return load_config(path), str(path)


def load_config(path: str | Path) -> EngineConfig:
    """Read, parse and validate a config file; every problem is in the one ConfigError."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{file}: not UTF-8 text: {exc}"]) from exc
    return EngineConfig.from_toml(parse_toml(text, str(file)))


# --------------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _render_value(value: Any) -> str:
    """One value as TOML text (inline form)."""
    if isinstance(value, enum.Enum):
        return _render_value(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, Decimal):
        text = format(value, "f")
        # A plain number reads best; fall back to a string when a TOML float would lose digits.
        if Decimal(repr(float(text))) == value or ("." not in text and "e" not in text.lower()):
            return text
        return _toml_string(text)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Path):
        return _toml_string(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_render_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_render_value(v)}" for k, v in value.items()) + "}"
    if attrs.has(type(value)):
        parts = [f"{_toml_key(_key(a))} = {_render_value(getattr(value, a.name))}"
                 for a in _init_fields(type(value)) if getattr(value, a.name) is not None]
        return "{" + ", ".join(parts) + "}"
    raise TypeError(f"cannot render {type(value).__name__} as TOML")


def _comment(attribute: attrs.Attribute[Any]) -> str | None:
    help_text = str(attribute.metadata.get("help", "")).strip()
    unit = str(attribute.metadata.get("unit", "")).strip()
    if unit:
        help_text = f"{help_text} [{unit}]" if help_text else f"[{unit}]"
    return f"# {help_text}" if help_text else None


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(attrs.has(type(v)) for v in value)


def _section_doc(cls: type) -> str:
    doc = (cls.__doc__ or "").replace("``", "").strip().splitlines()
    return doc[0].strip() if doc else ""


def _attr_name(cls: type, key: str) -> str:
    """The attribute name behind a TOML key of section ``cls``."""
    for attribute in _init_fields(cls):
        if _key(attribute) == key:
            return attribute.name
    raise KeyError(key)


def _render_table(obj: Any, path: str, lines: list[str], *, array: bool = False, mark_changed: bool = False,
                  defaults: Any = None) -> None:
    """Render one section; ``defaults`` is the same section in the default configuration (for marking)."""
    cls = type(obj)
    header = f"[[{path}]]" if array else f"[{path}]"
    if path:
        if lines:
            lines.append("")
        doc = _section_doc(cls)
        if doc and not array:
            lines.append(f"# {doc}")
        lines.append(header)
    nested: list[tuple[str, Any, bool]] = []
    for attribute in _init_fields(cls):
        key = _key(attribute)
        value = getattr(obj, attribute.name)
        comment = _comment(attribute)
        if attrs.has(type(value)):
            nested.append((key, value, False))
            continue
        if _is_table_list(value):
            nested.append((key, value, True))
            continue
        if mark_changed and not array and defaults is not None:
            # The default is what this key holds in the default *configuration*, which may differ from the
            # section class's own default (the engine's embedded simulator runs faster than `simulate`).
            default = getattr(defaults, attribute.name)
            if default != value and not attribute.metadata.get("secret"):
                note = "unset" if default is None else _render_value(default)
                comment = f"{comment or '#'} (changed; default {note})"
        if comment:
            lines.append(comment)
        if attribute.metadata.get("secret"):
            lines.append(f"# {_toml_key(key)}: secret, never printed")
        elif value is None:
            lines.append(f"# {_toml_key(key)} is unset (leave it out for none)")
        else:
            lines.append(f"{_toml_key(key)} = {_render_value(value)}")
    for key, value, is_list in nested:
        sub = _join(path, _toml_key(key))
        if is_list:
            for item in value:
                _render_table(item, sub, lines, array=True, mark_changed=mark_changed)
        else:
            child_defaults = getattr(defaults, _attr_name(type(obj), key)) if defaults is not None else None
            _render_table(value, sub, lines, mark_changed=mark_changed, defaults=child_defaults)


def render_toml(cfg: Any, *, header: str = "", mark_changed: bool = False) -> str:
    """The configuration ``cfg`` (any attrs section, usually EngineConfig) as commented TOML.

    Each key is preceded by its help text and unit; secret settings are never printed; ``None`` values are
    written as a comment (TOML has no null, and leaving the key out means none). With ``mark_changed``, the
    comment of every value that differs from its default says so and shows the default.
    """
    lines: list[str] = [f"# {line}".rstrip() for line in header.splitlines()]
    if lines:
        lines.append("")
    body: list[str] = []
    _render_table(cfg, "", body, mark_changed=mark_changed, defaults=type(cfg)() if mark_changed else None)
    lines.extend(body)
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------------------------------------
# The engine's own sections
# --------------------------------------------------------------------------------------------------------

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_var_name(_inst: Any, _attr: attrs.Attribute[Any], value: str) -> None:
    if not _ENV_NAME.match(value):
        raise ValueError(f"must be an environment variable name (letters, digits, _); got {value!r}")


def _url(schemes: tuple[str, ...]) -> Callable[[Any, attrs.Attribute[Any], str], None]:
    def check(_inst: Any, _attr: attrs.Attribute[Any], value: str) -> None:
        if value == "":
            return
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in schemes or not rest or rest.startswith("/"):
            raise ValueError(f"must be empty or a {' or '.join(s + '://' for s in schemes)} URL; got {value!r}")

    return check


def _host(url: str) -> str:
    rest = url.partition("://")[2]
    return rest.split("/", 1)[0].split(":", 1)[0].lower()


@attrs.frozen(kw_only=True)
class EngineSection:
    """Which exchange to talk to, paper or live, and where secrets and state live."""

    exchange: Literal["simulator", "backpack"] = setting(
        "simulator", "simulator = the embedded Backpack-compatible simulator; backpack = the real exchange")
    mode: Literal["paper", "live"] = setting(
        "paper", "paper never sends orders to a real account; live also needs --live and API keys")
    rest_url: str = setting(
        "", "REST base URL; empty = embedded simulator (exchange = simulator) or " + OFFICIAL_REST_URL,
        check=_url(("http", "https")))
    ws_url: str = setting(
        "", "WebSocket URL; empty = embedded simulator (exchange = simulator) or " + OFFICIAL_WS_URL,
        check=_url(("ws", "wss")))
    api_key_env: str = setting(
        "BACKPACK_API_KEY", "name of the environment variable holding the API key (public, base64)",
        check=_env_var_name)
    api_secret_env: str = setting(
        "BACKPACK_API_SECRET", "name of the environment variable holding the API secret (base64 ED25519 seed)",
        check=_env_var_name)
    state_dir: str = setting(
        "var", "directory for run-time state such as recordings (relative to the working directory); "
        "the journal file is [journal] path", check=non_empty)

    def __attrs_post_init__(self) -> None:
        if self.exchange == "simulator":
            if bool(self.rest_url) != bool(self.ws_url):
                raise ValueError("with exchange = \"simulator\", set both rest_url and ws_url (an external "
                                 "simulator) or neither (the embedded one)")
            for url in (self.rest_url, self.ws_url):
                if url and _host(url) in _OFFICIAL_HOSTS:
                    raise ValueError(f"exchange = \"simulator\" must not point at the real exchange ({url})")

    @property
    def embedded_simulator(self) -> bool:
        """True when the engine must start its own simulator (exchange = simulator, no URLs given)."""
        return self.exchange == "simulator" and not self.rest_url

    def endpoints(self) -> tuple[str, str] | None:
        """(rest_url, ws_url) to connect to, or None when the embedded simulator supplies them."""
        if self.embedded_simulator:
            return None
        if self.exchange == "backpack":
            return (self.rest_url or OFFICIAL_REST_URL, self.ws_url or OFFICIAL_WS_URL)
        return (self.rest_url, self.ws_url)


@attrs.frozen(kw_only=True)
class LoggingConfig:
    """Log level and line format (the CLI's --log-level / --log-format override these)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = setting(
        "INFO", "minimum level of log records written to stderr")
    format: Literal["plain", "json"] = setting(
        "plain", "plain = human-readable lines; json = one JSON object per line")


_FRACTION = in_range(Decimal(0), Decimal(1))


@attrs.frozen(kw_only=True)
class RiskConfig:
    """Account-level limits enforced by the risk actor on every order before it is sent."""

    max_account_leverage: Decimal = setting(
        Decimal("3.0"), "block orders that would take (position notional / equity) above this",
        unit="x", check=greater_than(Decimal(0)))
    min_liq_distance_frac: Decimal = setting(
        Decimal("0.30"), "block orders whose projected liquidation price is closer than this below the price",
        unit="fraction of price", check=_FRACTION)
    max_position_notional_usdc: Decimal = setting(
        Decimal("0"), "largest position notional after a fill; 0 = off", unit="USDC", check=at_least(Decimal(0)))
    max_order_notional_usdc: Decimal = setting(
        Decimal("10000"), "largest notional of a single order; 0 = off", unit="USDC",
        check=at_least(Decimal(0)))
    max_open_orders: int = setting(5, "most orders resting on the book at once", check=at_least(1))
    max_orders_per_minute: int = setting(
        30, "most new orders in any 60 s window; more are refused, not queued", check=at_least(1))
    kill_switch_drawdown_frac: Decimal = setting(
        Decimal("0.60"),
        "drawdown of mark-to-market equity from its peak that trips the kill switch (cancel all, stop); 0 = off",
        unit="fraction of peak equity", check=_FRACTION)
    block_on_stale: bool = setting(True, "refuse new entries while any required price is stale")


@attrs.frozen(kw_only=True)
class OrdersConfig:
    """Order execution: timeouts, attempts, and what happens on start and shutdown."""

    ack_timeout_s: float = setting(5.0, "wait this long for the exchange to answer a submit before the order "
                                        "becomes unknown", unit="s", check=greater_than(0))
    lookup_timeout_s: float = setting(5.0, "timeout of one lookup by clientId that resolves an unknown order",
                                      unit="s", check=greater_than(0))
    max_attempts: int = setting(3, "lookups of an unknown order before the engine stops on it", check=at_least(1))
    shutdown_grace_s: float = setting(5.0, "time allowed to cancel resting orders on shutdown (at most "
                                           "supervisor.shutdown_grace_s)", unit="s", check=greater_than(0))
    reconcile_on_start: bool = setting(True, "reconcile open orders, fills and positions with the exchange "
                                             "before trading")
    paper_initial_usdc: Decimal = setting(
        Decimal("10000"), "starting quote balance of the local paper account (exchange = \"backpack\", "
        "mode = \"paper\"); kept in the journal afterwards", unit="USDC", check=greater_than(0))


@attrs.frozen(kw_only=True)
class StatusConfig:
    """The periodic status line in the log, or a live table on a terminal."""

    interval_s: float = setting(10.0, "seconds between status log lines", unit="s", check=greater_than(0))
    display: Literal["auto", "plain", "live"] = setting(
        "auto", "auto = a live table when stdout is a terminal, else log lines; plain = always log lines; "
        "live = always the live table")
    refresh_s: float = setting(1.0, "seconds between redraws of the live table (bounds its CPU use)",
                               unit="s", check=greater_than(0))
    recent_notices: int = setting(8, "order/fill notices kept on screen in the live table", check=at_least(0))


@attrs.frozen(kw_only=True)
class MetricsConfig:
    """Prometheus metrics served over HTTP on 127.0.0.1 (loopback only)."""

    enabled: bool = setting(False, "serve /metrics for Prometheus")
    port: int = setting(9464, "TCP port on 127.0.0.1; 0 = any free port (logged at start)",
                        check=in_range(0, 65535))


_WEBHOOK_SCHEMES: Final = ("http", "https")
_NOTICE_KINDS: Final = ("order", "fill", "risk", "alert", "restart", "info")


def _url_list(_inst: Any, _attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    check = _url(_WEBHOOK_SCHEMES)
    for url in value:
        if not url:
            raise ValueError("must not contain an empty URL")
        check(_inst, _attr, url)


def _env_var_names(_inst: Any, _attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for name in value:
        _env_var_name(_inst, _attr, name)


def _notice_kinds(_inst: Any, _attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for kind in value:
        if kind not in _NOTICE_KINDS:
            raise ValueError(f"must only contain {', '.join(_NOTICE_KINDS)}; got {kind!r}")


@attrs.frozen(kw_only=True)
class NotifierConfig:
    """Webhook alerts: JSON POSTs for kill switch, halt, restart-intensity stops (and fills if listed)."""

    enabled: bool = setting(False, "send webhook alerts")
    urls: tuple[str, ...] = setting(
        (), "webhook URLs written in the file; use url_env instead for any URL that contains a token",
        check=_url_list)
    url_env: tuple[str, ...] = setting(
        (), "names of environment variables that each hold one webhook URL (kept secret, never logged)",
        check=_env_var_names)
    kinds: tuple[str, ...] = setting(
        ("alert", "restart"), "notice kinds forwarded besides risk halts and kill switch (which are always "
        "sent); add \"fill\" for fills, \"risk\" for every risk notice", check=_notice_kinds)
    queue_size: int = setting(100, "alerts waiting to be sent; more are dropped and counted", check=at_least(1))
    timeout_s: float = setting(5.0, "timeout of one POST", unit="s", check=greater_than(0))
    max_retries: int = setting(3, "retries of a POST that failed with a network error, 429 or 5xx",
                               check=at_least(0))
    backoff_initial_s: float = setting(1.0, "wait before the second retry (the first is immediate), doubling",
                                       unit="s", check=greater_than(0))
    backoff_max_s: float = setting(30.0, "longest wait between retries", unit="s", check=greater_than(0))
    shutdown_grace_s: float = setting(2.0, "time allowed on shutdown to send alerts still queued", unit="s",
                                      check=greater_than(0))

    def __attrs_post_init__(self) -> None:
        if self.enabled and not (self.urls or self.url_env):
            raise ValueError("enabled = true needs at least one webhook in urls or url_env")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(f"backoff_max_s must be >= backoff_initial_s ({self.backoff_initial_s}); "
                             f"got {self.backoff_max_s}")


@attrs.frozen(kw_only=True)
class EngineConfig:
    """The whole configuration: one frozen section per actor, checked together at load time."""

    engine: EngineSection = setting(None, "", factory=EngineSection)
    logging: LoggingConfig = setting(None, "", factory=LoggingConfig)
    strategy: NanpinConfig = setting(None, "", factory=NanpinConfig)
    risk: RiskConfig = setting(None, "", factory=RiskConfig)
    orders: OrdersConfig = setting(None, "", factory=OrdersConfig)
    feed: FeedConfig = setting(None, "", factory=FeedConfig)
    cache: CacheConfig = setting(None, "", factory=CacheConfig)
    journal: JournalConfig = setting(None, "", factory=JournalConfig)
    supervisor: SupervisorConfig = setting(None, "", factory=SupervisorConfig)
    status: StatusConfig = setting(None, "", factory=StatusConfig)
    metrics: MetricsConfig = setting(None, "", factory=MetricsConfig)
    notifier: NotifierConfig = setting(None, "", factory=NotifierConfig)
    # The engine's embedded simulator replays 300x faster than real time, so a new user sees the ladder work
    # within minutes (a 24 h cooldown passes in under 5); `python -m engine simulate` alone defaults to 1x.
    sim: SimConfig = setting(None, "", factory=lambda: SimConfig(speed=300.0))

    def __attrs_post_init__(self) -> None:
        problems = self.cross_section_problems()
        if problems:
            raise ValueError("; ".join(problems))

    def cross_section_problems(self) -> list[str]:
        """Invariants that span sections, each as ``<toml.path>: <message>``."""
        return [message for _sections, message in self._cross_section_checks()]

    def _cross_section_checks(self) -> list[tuple[tuple[str, ...], str]]:
        """(sections involved, problem) for every broken cross-section invariant."""
        found: list[tuple[tuple[str, ...], str]] = []
        if self.engine.mode == "live" and self.engine.exchange != "backpack":
            found.append((("engine",), f"engine.mode: mode = \"live\" requires exchange = \"backpack\"; "
                                       f"got exchange = {_render_value(self.engine.exchange)}"))
        if self.engine.exchange == "simulator":
            market = self.strategy.market
            kinds = {spec.symbol: spec.kind.lower() for spec in DEFAULT_MARKETS}
            if market.symbol not in kinds:
                found.append((("engine", "strategy"),
                              f"strategy.market.symbol: must be one of the simulator's markets "
                              f"({', '.join(kinds)}) when exchange = \"simulator\"; got {market.symbol!r}"))
            elif kinds[market.symbol] != market.market_type:
                found.append((("engine", "strategy"),
                              f"strategy.market.market_type: {market.symbol} is a {kinds[market.symbol]} "
                              f"market on the simulator; got {market.market_type!r}"))
        if self.orders.shutdown_grace_s > self.supervisor.shutdown_grace_s:
            # The supervisor bounds each actor's shielded cleanup; a longer cancel-all would be cut off.
            found.append((("orders", "supervisor"),
                          f"orders.shutdown_grace_s: must be <= supervisor.shutdown_grace_s "
                          f"({self.supervisor.shutdown_grace_s}); got {self.orders.shutdown_grace_s}"))
        return found

    @classmethod
    def from_toml(cls, data: Mapping[str, Any]) -> EngineConfig:
        """Build from a parsed TOML document; ConfigError lists every problem in it.

        Cross-section invariants are checked too, except those that involve a section that already failed
        (they would judge values the user has not finished fixing).
        """
        problems: list[str] = []
        sections: dict[str, Any] = {}
        failed: set[str] = set()
        hints = _hints(cls)
        known = {_key(a) for a in _init_fields(cls)}
        for key in data:
            if key not in known:
                hint = difflib.get_close_matches(str(key), sorted(known), n=1)
                suffix = f" (did you mean [{hint[0]}]?)" if hint else ""
                problems.append(f"{key}: unknown key{suffix}")
        for attribute in _init_fields(cls):
            key = _key(attribute)
            if key not in data:
                continue
            value = _convert_item(hints[attribute.name], data[key], key, problems)
            if value is _FAILED:
                failed.add(key)
            else:
                sections[key] = value
        # Check the cross-section invariants on a probe (defaults standing in for failed sections), so their
        # messages keep their own paths instead of surfacing as one __attrs_post_init__ error.
        probe: EngineConfig = cls.__new__(cls)
        for attribute in _init_fields(cls):
            value = sections[_key(attribute)] if _key(attribute) in sections else _default_value(attribute, probe)
            object.__setattr__(probe, attribute.name, value)
        problems += [message for involved, message in probe._cross_section_checks()
                     if not failed.intersection(involved)]
        if problems:
            raise ConfigError(problems)
        return cls(**sections)


@attrs.frozen(kw_only=True)
class ApiCredentials:
    """API key pair read from the environment. The secret never appears in repr."""

    api_key: str
    api_secret: str = attrs.field(repr=False)


def resolve_credentials(section: EngineSection, environ: Mapping[str, str]) -> ApiCredentials:
    """Read the key pair named by ``[engine]`` from ``environ`` (called once, at the CLI edge).

    The secret is registered with the log mask (``engine.logsetup.add_secret``) before it is returned.
    """
    problems = []
    key = environ.get(section.api_key_env, "").strip()
    secret = environ.get(section.api_secret_env, "").strip()
    if not key:
        problems.append(f"engine.api_key_env: environment variable {section.api_key_env} is not set")
    if not secret:
        problems.append(f"engine.api_secret_env: environment variable {section.api_secret_env} is not set")
    if problems:
        raise ConfigError(problems)
    # From here on the secret is masked in every log record, whoever logs it.
    add_secret(secret)
    return ApiCredentials(api_key=key, api_secret=secret)

"""Building blocks for configuration sections (pure: no I/O).

Every configuration section in the engine is a frozen, keyword-only attrs class whose fields are declared
with :func:`setting`, so that one generic loader (``engine.config``) can build any section from TOML,
reject unknown keys, coerce numbers, and report every problem at once with its TOML path, and so that the
commented ``config.toml`` can be rendered from the same declarations (help text and unit live here, once).

Rule: a field validator raises ``ValueError`` with a message that reads well after ``<toml path>: ``,
e.g. ``must be one of 5, 10, 20; got 7``. Cross-field checks go in ``__attrs_post_init__`` and raise
``ValueError`` too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import attrs

__all__ = ["at_least", "greater_than", "in_range", "non_empty", "one_of", "setting"]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def setting(
    default: Any,
    help: str,
    *,
    unit: str = "",
    check: Validator | list[Validator] | None = None,
    factory: Callable[[], Any] | None = None,
    secret: bool = False,
) -> Any:
    """Declare one configuration key with its default, a one-line help text and optional unit.

    ``factory`` is for mutable or composite defaults (nested sections, lists). ``secret`` marks a value that
    must never be printed (only environment-variable *names* belong in the file anyway).
    """
    metadata = {"help": help, "unit": unit, "secret": secret}
    if factory is not None:
        return attrs.field(factory=factory, validator=check, metadata=metadata)
    return attrs.field(default=default, validator=check, metadata=metadata)


def _num(value: Any) -> Decimal | float | int:
    return value  # type: ignore[no-any-return]


def in_range(lo: float | Decimal | None, hi: float | Decimal | None, *, lo_open: bool = False,
             hi_open: bool = False) -> Validator:
    """Value within [lo, hi] (either end may be open or absent)."""
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    text = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"

    def check(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        ok = True
        if lo is not None:
            ok = ok and (value > lo if lo_open else value >= lo)
        if hi is not None:
            ok = ok and (value < hi if hi_open else value <= hi)
        if not ok:
            raise ValueError(f"must be in {text}; got {value}")

    return check


def greater_than(lo: float | Decimal) -> Validator:
    return in_range(lo, None, lo_open=True)


def at_least(lo: float | Decimal) -> Validator:
    return in_range(lo, None)


def one_of(choices: Iterable[Any]) -> Validator:
    options = tuple(choices)

    def check(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
        if value not in options:
            raise ValueError(f"must be one of {', '.join(str(o) for o in options)}; got {value!r}")

    return check


def non_empty(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
    if not value:
        raise ValueError("must not be empty")

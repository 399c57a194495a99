"""The generic section loader on small test-only sections: every supported type, every problem at once."""

from __future__ import annotations

import enum
import tomllib
from decimal import Decimal
from typing import Any, Literal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import load_section, render_toml
from engine.confspec import at_least, in_range, one_of, setting
from engine.errors import ConfigError


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _below_limit(inst: Any, _attr: attrs.Attribute[Any], value: int) -> None:
    # Looks at another field through ``inst``: the loader must hand validators a usable instance.
    if value > inst.limit:
        raise ValueError(f"must be <= limit ({inst.limit}); got {value}")


@attrs.frozen(kw_only=True)
class Leaf:
    """A row of an array of tables."""

    name: str = setting("x", "row name")
    weight: float = setting(1.0, "row weight", check=in_range(0, 10))


@attrs.frozen(kw_only=True)
class Inner:
    """A nested table."""

    depth: int = setting(5, "depth", check=one_of((5, 10, 20)))
    flag: bool = setting(False, "a flag")


@attrs.frozen(kw_only=True)
class Sample:
    """Every type the loader supports."""

    count: int = setting(1, "a count", check=at_least(0))
    limit: int = setting(100, "upper bound for used")
    used: int = setting(0, "must stay under limit", check=_below_limit)
    ratio: float = setting(0.5, "a float", unit="fraction", check=in_range(0, 1))
    enabled: bool = setting(True, "a bool")
    label: str = setting("a", "a string")
    price: Decimal = setting(Decimal("1.5"), "a decimal", unit="USDC")
    mode: Literal["paper", "live"] = setting("paper", "a literal")
    color: Color = setting(Color.RED, "an enum")
    window: tuple[float, float] = setting((-0.1, -0.01), "a pair")
    names: tuple[str, ...] = setting(None, "strings", factory=lambda: ("a", "b"))
    rows: list[Leaf] = setting(None, "array of tables", factory=lambda: [Leaf(name="r0")])
    inner: Inner = setting(None, "nested", factory=Inner)
    maybe: float | None = setting(None, "optional float")
    secret: str = setting("", "a secret", secret=True)

    def __attrs_post_init__(self) -> None:
        if self.mode == "live" and not self.enabled:
            raise ValueError("mode = live needs enabled = true")


def _problems(data: dict[str, Any], path: str = "sample") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_section(Sample, data, path)
    return info.value.problems


def test_empty_table_gives_defaults() -> None:
    """An empty table builds the class with every default."""
    assert load_section(Sample, {}, "sample") == Sample()


def test_every_type_converts() -> None:
    """Each supported annotation accepts its TOML form and converts it to the declared Python type."""
    data = tomllib.loads(
        """
        count = 3
        ratio = 1            # an int is accepted for a float
        enabled = false
        label = "hello"
        price = 0.1          # a float becomes Decimal through repr, so 0.1 stays exactly 0.1
        mode = "live"
        color = "blue"
        window = [-0.5, -0.25]
        names = ["x"]
        maybe = 2.5
        [inner]
        depth = 10
        [[rows]]
        name = "a"
        [[rows]]
        name = "b"
        weight = 3
        """
    )
    data["enabled"] = True
    got = load_section(Sample, data, "sample")
    assert got.ratio == 1.0
    assert isinstance(got.ratio, float)
    assert got.price == Decimal("0.1")
    assert got.mode == "live"
    assert got.color is Color.BLUE
    assert got.window == (-0.5, -0.25)
    assert got.names == ("x",)
    assert got.rows == [Leaf(name="a"), Leaf(name="b", weight=3.0)]
    assert got.inner == Inner(depth=10)
    assert got.maybe == 2.5


@pytest.mark.parametrize(("raw", "expected"), [(3, Decimal(3)), ("0.30", Decimal("0.30")), (0.3, Decimal("0.3"))])
def test_decimal_sources(raw: Any, expected: Decimal) -> None:
    """Decimal settings accept TOML integers, strings and floats (floats via repr, not binary expansion)."""
    got = load_section(Sample, {"price": raw}, "s").price
    assert got == expected
    assert str(got) == str(expected)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"count": True}, "sample.count: expected an integer; got boolean true"),
        ({"count": 1.5}, "sample.count: expected an integer; got float 1.5"),
        ({"enabled": 1}, "sample.enabled: expected a boolean (true or false); got integer 1"),
        ({"ratio": "0.5"}, 'sample.ratio: expected a number; got string "0.5"'),
        ({"label": 5}, "sample.label: expected a string; got integer 5"),
        ({"price": "abc"}, 'sample.price: expected a decimal number; got string "abc"'),
        ({"price": "NaN"}, 'sample.price: expected a finite decimal number; got string "NaN"'),
        ({"mode": "demo"}, 'sample.mode: must be one of "paper", "live"; got "demo"'),
        ({"color": "green"}, 'sample.color: must be one of "red", "blue"; got "green"'),
        ({"window": [-0.1]}, "sample.window: expected an array of 2; got an array of 1"),
        ({"window": [-0.1, "x"]}, 'sample.window[1]: expected a number; got string "x"'),
        ({"rows": [{"weight": 11}]}, "sample.rows[0].weight: must be in [0, 10]; got 11.0"),
        ({"rows": [{}, {"nme": "q"}]}, "sample.rows[1].nme: unknown key (did you mean name?)"),
        ({"inner": {"depth": 7}}, "sample.inner.depth: must be one of 5, 10, 20; got 7"),
        ({"inner": 3}, "sample.inner: expected a table; got integer 3"),
        ({"used": 200}, "sample.used: must be <= limit (100); got 200"),
        ({"maybe": "x"}, 'sample.maybe: expected a number; got string "x"'),
        ({"mode": "live", "enabled": False}, "sample: mode = live needs enabled = true"),
    ],
)
def test_single_problem_message(data: dict[str, Any], problem: str) -> None:
    """Each kind of bad value yields exactly one problem, prefixed with its full TOML path."""
    assert _problems(data) == [problem]


def test_all_problems_reported_at_once() -> None:
    """Unknown keys, type errors and validator failures in different places are all reported together."""
    problems = _problems(
        {"bogus": 1, "count": -1, "ratio": 2, "inner": {"depth": 3, "extra": True}, "rows": [{"weight": -1}]}
    )
    assert sorted(problems) == sorted(
        [
            "sample.bogus: unknown key",
            "sample.count: must be in [0, inf]; got -1",
            "sample.ratio: must be in [0, 1]; got 2.0",
            "sample.inner.extra: unknown key",
            "sample.inner.depth: must be one of 5, 10, 20; got 3",
            "sample.rows[0].weight: must be in [0, 10]; got -1.0",
        ]
    )


def test_cross_field_check_waits_for_valid_fields() -> None:
    """The cross-field check runs only once every field is valid, so it never reports on garbage."""
    assert _problems({"mode": "live", "enabled": False, "count": "x"}) == [
        'sample.count: expected an integer; got string "x"'
    ]


def test_non_attrs_class_is_a_programming_error() -> None:
    """Passing something that is not an attrs class is a TypeError, not a ConfigError."""
    with pytest.raises(TypeError):
        load_section(dict, {}, "x")  # type: ignore[type-var]


def test_render_skips_secrets_and_none() -> None:
    """Rendering never prints a secret value and writes an unset optional key as a comment."""
    text = render_toml(Sample(secret="hunter2-very-secret"))
    assert "hunter2-very-secret" not in text
    assert "# maybe is unset" in text
    assert load_section(Sample, tomllib.loads(text), "") == Sample()


_KEYS = [a.name for a in attrs.fields(Sample)]
_unknown = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(lambda k: k not in _KEYS)


@settings(max_examples=40, deadline=None)
@given(
    unknown=st.lists(_unknown, unique=True, max_size=4),
    bad=st.sets(st.sampled_from(["count", "ratio", "enabled", "label", "price", "mode", "window"]), max_size=7),
)
def test_every_injected_problem_is_reported(unknown: list[str], bad: set[str]) -> None:
    """With any mix of unknown keys and wrong-typed values, each one is reported once at its path."""
    wrong: dict[str, Any] = {"count": "x", "ratio": [1], "enabled": "yes", "label": 1.5, "price": True,
                             "mode": 3, "window": {"a": 1}}
    data: dict[str, Any] = {k: 1 for k in unknown}
    data.update({k: wrong[k] for k in bad})
    if not data:
        assert load_section(Sample, data, "s") == Sample()
        return
    with pytest.raises(ConfigError) as info:
        load_section(Sample, data, "s")
    paths = sorted(p.split(": ", 1)[0] for p in info.value.problems)
    assert paths == sorted(f"s.{k}" for k in data)


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(0, 10**12),
    ratio=st.floats(0, 1),
    price=st.decimals(allow_nan=False, allow_infinity=False, places=8, min_value=-10**9, max_value=10**9),
    label=st.text(max_size=20),
    names=st.lists(st.text(max_size=5), max_size=3).map(tuple),
    rows=st.lists(st.builds(Leaf, name=st.text(max_size=5), weight=st.floats(0, 10)), min_size=1, max_size=3),
)
def test_render_round_trips(count: int, ratio: float, price: Decimal, label: str, names: tuple[str, ...],
                            rows: list[Leaf]) -> None:
    """render_toml then parse then load gives back the same section, for any valid values."""
    value = Sample(count=count, ratio=ratio, price=price, label=label, names=names, rows=rows)
    assert load_section(Sample, tomllib.loads(render_toml(value)), "") == value

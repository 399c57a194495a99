"""EngineConfig as a whole: defaults round-trip, every problem in a file reported, cross-section checks."""

from __future__ import annotations

import enum
import tomllib
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import (
    DEFAULT_HEADER,
    OFFICIAL_REST_URL,
    OFFICIAL_WS_URL,
    EngineConfig,
    EngineSection,
    OrdersConfig,
    RiskConfig,
    load_config,
    load_section,
    render_toml,
    resolve_credentials,
)
from engine.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _walk(cls: type, prefix: tuple[str, ...]) -> tuple[list[tuple[tuple[str, ...], Any]], list[tuple[str, ...]]]:
    """Leaf settings (path, type) and table paths of an attrs section tree (arrays of tables excluded)."""
    leaves: list[tuple[tuple[str, ...], Any]] = []
    tables: list[tuple[str, ...]] = [prefix]
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        tp = hints[field.name]
        if isinstance(tp, type) and attrs.has(tp):
            sub_leaves, sub_tables = _walk(tp, (*prefix, field.name))
            leaves += sub_leaves
            tables += sub_tables
        elif typing.get_origin(tp) in (tuple, list) and any(attrs.has(a) for a in typing.get_args(tp)
                                                             if isinstance(a, type)):
            continue
        else:
            leaves.append(((*prefix, field.name), tp))
    return leaves, tables


LEAVES, TABLES = _walk(EngineConfig, ())
def _wrong_value(tp: Any) -> Any:
    """A TOML value that the annotation ``tp`` can never accept."""
    if tp is bool:
        return 1
    if tp in (int, float, Decimal):
        return [1]
    if tp is str:
        return 5
    if typing.get_origin(tp) is Literal:
        return "surely-not-a-choice"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "surely-not-a-member"
    if typing.get_origin(tp) in (tuple, list):
        return "not-an-array"
    raise AssertionError(f"no wrong value for {tp!r}")


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = doc
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def test_defaults_round_trip() -> None:
    """render_toml of the defaults, parsed and loaded again, equals EngineConfig()."""
    assert EngineConfig.from_toml(tomllib.loads(render_toml(EngineConfig()))) == EngineConfig()


def test_config_toml_is_the_rendered_defaults() -> None:
    """The repo's config.toml is exactly the rendered defaults, so it never drifts from the code."""
    expected = render_toml(EngineConfig(), header=DEFAULT_HEADER)
    actual = (REPO / "config.toml").read_text(encoding="utf-8")
    assert actual == expected, (
        "config.toml is out of date with the config declarations; regenerate it with "
        "`PYTHONPATH=. python -m engine check-config --defaults > config.toml`"
    )
    assert load_config(REPO / "config.toml") == EngineConfig()


def test_rendered_defaults_document_every_key() -> None:
    """Every setting with help text appears in the rendered file preceded by its help comment."""
    text = render_toml(EngineConfig())
    for path, _tp in LEAVES:
        assert f"\n{path[-1]} = " in text or f"# {path[-1]} is unset" in text, path


_bad_leaves = st.lists(st.sampled_from(LEAVES), unique_by=lambda leaf: leaf[0], max_size=12)
_unknown_keys = st.lists(
    st.tuples(st.sampled_from(TABLES), st.from_regex(r"zz[a-z0-9_]{0,8}", fullmatch=True)),
    unique=True,
    max_size=6,
)


@settings(max_examples=40, deadline=None)
@given(bad=_bad_leaves, unknown=_unknown_keys)
def test_every_problem_in_the_file_is_reported(
    bad: list[tuple[tuple[str, ...], Any]], unknown: list[tuple[tuple[str, ...], str]]
) -> None:
    """Any set of wrong-typed values and unknown keys anywhere in the file is reported in full, by path."""
    doc: dict[str, Any] = {}
    expected = set()
    for path, tp in bad:
        _set(doc, path, _wrong_value(tp))
        expected.add(".".join(path))
    for table, key in unknown:
        _set(doc, (*table, key), True)
        expected.add(".".join((*table, key)))
    if not expected:
        assert EngineConfig.from_toml(doc) == EngineConfig()
        return
    with pytest.raises(ConfigError) as info:
        EngineConfig.from_toml(doc)
    reported = [p.split(": ", 1)[0] for p in info.value.problems]
    assert sorted(reported) == sorted(expected)


def test_validator_failures_in_several_sections_all_reported() -> None:
    """Out-of-range values in different sections come back together with the validators' messages."""
    doc = tomllib.loads(
        """
        [feed]
        depth_levels = 7
        bogus = 1
        [risk]
        min_liq_distance_frac = 1.5
        max_orders_per_minute = 0
        [orders]
        ack_timeout_s = 0
        [[strategy.levels]]
        name = "a"
        ratio = 1.5
        """
    )
    with pytest.raises(ConfigError) as info:
        EngineConfig.from_toml(doc)
    assert sorted(info.value.problems) == sorted(
        [
            "feed.depth_levels: must be one of 5, 10, 20, 50, 100, 500, 1000; got 7",
            "feed.bogus: unknown key",
            "risk.min_liq_distance_frac: must be in [0, 1]; got 1.5",
            "risk.max_orders_per_minute: must be in [1, inf]; got 0",
            "orders.ack_timeout_s: must be in (0, inf]; got 0.0",
            "strategy.levels[0].ratio: must be in (0, 1); got 1.5",
        ]
    )


def test_live_mode_requires_backpack() -> None:
    """mode = live with the simulator is rejected at load time, naming engine.mode."""
    with pytest.raises(ConfigError) as info:
        EngineConfig.from_toml({"engine": {"mode": "live"}})
    assert info.value.problems == [
        'engine.mode: mode = "live" requires exchange = "backpack"; got exchange = "simulator"'
    ]


def test_simulator_never_points_at_the_real_exchange() -> None:
    """exchange = simulator with the real exchange's host is rejected (a paper run must stay local)."""
    with pytest.raises(ConfigError) as info:
        EngineConfig.from_toml({"engine": {"rest_url": OFFICIAL_REST_URL, "ws_url": OFFICIAL_WS_URL}})
    assert info.value.problems[0].startswith("engine: exchange = \"simulator\" must not point at the real")


def test_endpoints() -> None:
    """Empty URLs mean the embedded simulator, or the official hosts for exchange = backpack."""
    assert EngineSection().endpoints() is None
    assert EngineSection().embedded_simulator
    assert EngineSection(exchange="backpack").endpoints() == (OFFICIAL_REST_URL, OFFICIAL_WS_URL)
    own = EngineSection(rest_url="http://127.0.0.1:9000", ws_url="ws://127.0.0.1:9000/ws")
    assert own.endpoints() == ("http://127.0.0.1:9000", "ws://127.0.0.1:9000/ws")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"rest_url": "ftp://x", "ws_url": "ws://x"},
         "engine.rest_url: must be empty or a http:// or https:// URL; got 'ftp://x'"),
        ({"api_key_env": "MY KEY"},
         "engine.api_key_env: must be an environment variable name (letters, digits, _); got 'MY KEY'"),
        ({"state_dir": ""}, "engine.state_dir: must not be empty"),
    ],
)
def test_engine_section_checks(data: dict[str, Any], problem: str) -> None:
    """URLs, environment variable names and the state dir are validated with precise messages."""
    with pytest.raises(ConfigError) as info:
        load_section(EngineSection, data, "engine")
    assert info.value.problems == [problem]


def test_credentials_come_from_the_named_variables() -> None:
    """Credentials are read from the variables [engine] names; missing ones are reported together."""
    section = EngineSection(api_key_env="K", api_secret_env="S")
    creds = resolve_credentials(section, {"K": "pub", "S": "sec-value-123"})
    assert (creds.api_key, creds.api_secret) == ("pub", "sec-value-123")
    assert "sec-value-123" not in repr(creds)
    with pytest.raises(ConfigError) as info:
        resolve_credentials(section, {})
    assert info.value.problems == [
        "engine.api_key_env: environment variable K is not set",
        "engine.api_secret_env: environment variable S is not set",
    ]


_fraction = st.decimals(min_value=0, max_value=1, places=4)


@settings(max_examples=30, deadline=None)
@given(
    risk=st.builds(
        RiskConfig,
        max_account_leverage=st.decimals(min_value=Decimal("0.01"), max_value=100, places=2),
        min_liq_distance_frac=_fraction,
        kill_switch_drawdown_frac=_fraction,
        max_orders_per_minute=st.integers(1, 10_000),
        block_on_stale=st.booleans(),
    ),
    orders=st.builds(OrdersConfig, ack_timeout_s=st.floats(0.001, 1e6), max_attempts=st.integers(1, 100),
                     reconcile_on_start=st.booleans()),
)
def test_non_default_values_round_trip(risk: RiskConfig, orders: OrdersConfig) -> None:
    """Any valid [risk] and [orders] values survive render_toml -> parse -> from_toml unchanged."""
    cfg = EngineConfig(risk=risk, orders=orders)
    assert EngineConfig.from_toml(tomllib.loads(render_toml(cfg))) == cfg


def test_order_cancel_grace_fits_the_supervisor_grace() -> None:
    """orders.shutdown_grace_s above the supervisor's per-actor cleanup bound is rejected at load."""
    with pytest.raises(ConfigError) as info:
        EngineConfig.from_toml({"orders": {"shutdown_grace_s": 9.0}, "supervisor": {"shutdown_grace_s": 3.0}})
    assert info.value.problems == ["orders.shutdown_grace_s: must be <= supervisor.shutdown_grace_s (3.0); got 9.0"]


@pytest.mark.parametrize(
    ("market", "problem"),
    [
        ({"symbol": "ETH_USDC"},
         "strategy.market.symbol: must be one of the simulator's markets (BTC_USDC, BTC_USDC_PERP) when "
         "exchange = \"simulator\"; got 'ETH_USDC'"),
        ({"symbol": "BTC_USDC_PERP"},
         "strategy.market.market_type: BTC_USDC_PERP is a perp market on the simulator; got 'spot'"),
    ],
)
def test_strategy_market_must_exist_on_the_simulator(market: dict[str, str], problem: str) -> None:
    """With exchange = simulator the strategy's market must be one the simulator lists, of the same kind."""
    with pytest.raises(ConfigError) as info:
        EngineConfig.from_toml({"strategy": {"market": market}})
    assert info.value.problems == [problem]


def test_any_symbol_is_allowed_on_the_real_exchange() -> None:
    """The simulator's market list does not constrain exchange = backpack."""
    cfg = EngineConfig.from_toml({"engine": {"exchange": "backpack"}, "strategy": {"market": {"symbol": "SOL_USDC"}}})
    assert cfg.strategy.market.symbol == "SOL_USDC"
    perp = EngineConfig.from_toml({"strategy": {"market": {"symbol": "BTC_USDC_PERP", "market_type": "perp"}}})
    assert perp.strategy.is_perp


def test_cross_section_problems_reported_alongside_section_problems() -> None:
    """A broken cross-section rule is reported with unrelated bad values, but not over a section that failed."""
    with pytest.raises(ConfigError) as info:
        EngineConfig.from_toml({"engine": {"mode": "live"}, "risk": {"max_open_orders": 0},
                                "orders": {"shutdown_grace_s": "x"}, "supervisor": {"shutdown_grace_s": 1.0}})
    assert sorted(info.value.problems) == [
        'engine.mode: mode = "live" requires exchange = "backpack"; got exchange = "simulator"',
        'orders.shutdown_grace_s: expected a number; got string "x"',
        "risk.max_open_orders: must be in [1, inf]; got 0",
    ]

"""RestartPolicy and the [supervisor] config section."""

from __future__ import annotations

import re

import attrs
import pytest

from engine.errors import (
    AuthError,
    ExchangeUnavailable,
    FeedDisconnected,
    InvariantViolation,
    ProtocolError,
    RateLimited,
    RemoteProtocolError,
    TransientError,
)
from engine.runtime.backoff import Backoff
from engine.runtime.policy import RestartPolicy, SupervisorConfig


def test_default_policy_restarts_only_transient_errors() -> None:
    """Transient errors (including RateLimited) restart; fatal errors and plain bugs do not."""
    policy = RestartPolicy()
    assert policy.is_restartable(FeedDisconnected("closed"))
    assert policy.is_restartable(RateLimited("TOO_MANY_REQUESTS", "slow down", 429))
    assert not policy.is_restartable(AuthError("bad key"))
    assert not policy.is_restartable(ValueError("bug"))


def test_restartable_types_are_data() -> None:
    """A policy can narrow the restartable set to specific types."""
    policy = RestartPolicy(restartable=(ExchangeUnavailable,))
    assert policy.is_restartable(ExchangeUnavailable("503"))
    assert not policy.is_restartable(FeedDisconnected("closed"))


def test_restartable_must_be_exception_types() -> None:
    """A non-type in restartable is rejected at construction."""
    with pytest.raises(ValueError, match="must be a tuple of Exception subclasses"):
        RestartPolicy(restartable=("FeedDisconnected",))  # type: ignore[arg-type]


def test_config_defaults_map_to_policy() -> None:
    """to_policy carries every supervisor setting into the policy and its backoff."""
    cfg = SupervisorConfig(backoff_initial_s=0.25, backoff_max_s=10.0, backoff_factor=3.0,
                           max_restarts=7, within_s=120.0, healthy_reset_s=45.0)
    assert cfg.to_policy() == RestartPolicy(
        restartable=(TransientError, ProtocolError),
        max_restarts=7,
        within_s=120.0,
        backoff=Backoff(initial_s=0.25, max_s=10.0, factor=3.0),
        reset_after_s=45.0,
    )


def test_engine_policy_restarts_on_bad_input_but_not_on_fatal_errors() -> None:
    """A malformed exchange reply restarts the actor; config, auth and invariant errors never do."""
    policy = SupervisorConfig().to_policy()
    assert policy.is_restartable(RemoteProtocolError("bad body"))
    assert policy.is_restartable(FeedDisconnected("gone"))
    assert not policy.is_restartable(InvariantViolation("bug"))
    assert not policy.is_restartable(AuthError("rejected"))


def test_config_fields_carry_help_and_units() -> None:
    """Every setting is declared through confspec (help text present, durations in seconds)."""

    for field in attrs.fields(SupervisorConfig):
        assert field.metadata["help"]
        if field.name.endswith("_s"):
            assert field.metadata["unit"] == "s"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_restarts": -1}, "must be in [0, inf]; got -1"),
        ({"within_s": 0.0}, "must be in (0, inf]; got 0.0"),
        ({"backoff_factor": 0.5}, "must be in [1, 100]; got 0.5"),
        ({"backoff_initial_s": 5.0, "backoff_max_s": 1.0},
         "backoff_max_s must be >= backoff_initial_s (5.0); got 1.0"),
    ],
)
def test_invalid_config_is_rejected(kwargs: dict[str, float], message: str) -> None:
    """Out-of-range settings raise ValueError naming the bound and the value."""
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        SupervisorConfig(**kwargs)  # type: ignore[arg-type]

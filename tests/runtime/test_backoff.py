"""Backoff maths: properties over the whole parameter space, plus exact values for a seeded source."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.runtime.backoff import Backoff


@st.composite
def backoffs(draw: st.DrawFn) -> Backoff:
    initial = draw(st.floats(min_value=1e-3, max_value=100.0))
    max_s = draw(st.floats(min_value=initial, max_value=1e4))
    factor = draw(st.floats(min_value=1.0, max_value=10.0))
    return Backoff(initial_s=initial, max_s=max_s, factor=factor)


attempts = st.integers(min_value=0, max_value=5000)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@settings(max_examples=200)
@given(backoffs(), attempts, seeds)
def test_delay_is_within_zero_and_the_cap(backoff: Backoff, attempt: int, seed: int) -> None:
    """A delay is never negative and never above upper(attempt) <= max_s."""
    delay = backoff.delay(attempt, random.Random(seed))
    assert 0.0 <= delay <= backoff.upper(attempt) <= backoff.max_s


@settings(max_examples=100)
@given(backoffs(), seeds)
def test_first_retry_is_immediate_and_draws_nothing(backoff: Backoff, seed: int) -> None:
    """Attempt 0 is 0.0 and leaves the random source untouched."""
    rng = random.Random(seed)
    assert backoff.delay(0, rng) == 0.0
    assert rng.random() == random.Random(seed).random()


@settings(max_examples=200)
@given(backoffs(), attempts)
def test_upper_bound_is_monotone_in_attempt(backoff: Backoff, attempt: int) -> None:
    """upper(n) <= upper(n + 1): a later retry never has a tighter bound."""
    assert backoff.upper(attempt) <= backoff.upper(attempt + 1)


@settings(max_examples=100)
@given(backoffs(), st.integers(min_value=1, max_value=300), seeds)
def test_delay_is_full_jitter_of_the_bound(backoff: Backoff, attempt: int, seed: int) -> None:
    """delay(n) for n >= 1 is exactly upper(n) times one uniform draw from the injected source."""
    assert backoff.delay(attempt, random.Random(seed)) == backoff.upper(attempt) * random.Random(seed).random()


def test_upper_bound_exact_values() -> None:
    """The bound doubles from initial_s (for attempt 1) until it reaches max_s."""
    backoff = Backoff(initial_s=0.5, max_s=3.0, factor=2.0)
    assert [backoff.upper(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_huge_attempt_is_capped_not_an_overflow() -> None:
    """An attempt number far past the cap gives max_s instead of raising OverflowError."""
    assert Backoff(initial_s=1.0, max_s=60.0, factor=10.0).upper(10**6) == 60.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_s": 0.0}, "must be in (0, inf]; got 0.0"),
        ({"initial_s": 5.0, "max_s": 1.0}, "must be >= initial_s (5.0); got 1.0"),
        ({"factor": 0.5}, "must be in [1, inf]; got 0.5"),
    ],
)
def test_invalid_parameters_are_rejected(kwargs: dict[str, float], message: str) -> None:
    """Bad parameters raise ValueError with a message naming the bound and the value."""
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        Backoff(**kwargs)


def test_negative_attempt_is_rejected() -> None:
    """A negative attempt number is a caller bug."""
    with pytest.raises(ValueError, match="attempt must be >= 0; got -1"):
        Backoff().delay(-1, random.Random(0))

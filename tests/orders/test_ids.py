"""Client ids: CRC-32 of the attempt key, stable, uint32, distinct per attempt."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InvariantViolation
from engine.orders.ids import attempt_key, client_id_for
from tests.orders.strategies import intent_ids


def test_crc32_check_value() -> None:
    """Attempt 0 of "123456789" is the CRC-32/ISO-HDLC check value 0xCBF43926."""
    assert client_id_for("123456789", 0) == 0xCBF43926


def test_retry_key_spelling() -> None:
    """Attempt n >= 1 hashes intent_id + "#" + str(n), as nanpin-strategy.md section 9.9 specifies."""
    intent = "nanpin:BTC_USDC:2024-01-01:61.8"
    assert attempt_key(intent, 0) == intent
    assert attempt_key(intent, 3) == intent + "#3"
    assert client_id_for(intent, 3) == zlib.crc32((intent + "#3").encode())


def test_non_ascii_intent_is_hashed_as_utf8() -> None:
    """The id is the CRC of the UTF-8 bytes, not of any other encoding."""
    assert client_id_for("niveau:é", 0) == zlib.crc32("niveau:é".encode())
    assert client_id_for("niveau:é", 0) != zlib.crc32("niveau:é".encode("latin-1"))


@settings(max_examples=100)
@given(intent=intent_ids, attempt=st.integers(0, 10_000))
def test_stable_and_uint32(intent: str, attempt: int) -> None:
    """The same attempt always gets the same id, and it fits Backpack's uint32 clientId."""
    first = client_id_for(intent, attempt)
    assert first == client_id_for(intent, attempt)
    assert 0 <= first < 2**32


@settings(max_examples=50)
@given(intent=intent_ids)
def test_distinct_per_attempt(intent: str) -> None:
    """The first 30 attempts of an intent all have different ids, so a lookup finds exactly one attempt."""
    ids = [client_id_for(intent, n) for n in range(30)]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(("intent", "attempt"), [("x", -1), ("", 0)])
def test_bad_arguments_are_bugs(intent: str, attempt: int) -> None:
    """A negative attempt or an empty intent id is refused as an invariant violation."""
    with pytest.raises(InvariantViolation):
        client_id_for(intent, attempt)

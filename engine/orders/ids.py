"""Deterministic exchange client ids for order attempts (pure).

Owns the mapping from ``(intent_id, attempt)`` to Backpack's uint32 ``clientId``
(nanpin-strategy.md sections 1.3 and 9.9). Invariants:

* attempt 0 uses the intent id itself, attempt ``n >= 1`` uses ``intent_id + "#" + str(n)``;
* the id is CRC-32/ISO-HDLC (Python's ``zlib.crc32``) of the UTF-8 bytes, so it is stable across processes
  and restarts, and a lookup by ``clientId`` after a timeout finds exactly one attempt;
* the result is always in ``[0, 2**32)``.
"""

from __future__ import annotations

import zlib

from engine.errors import InvariantViolation

__all__ = ["attempt_key", "client_id_for"]


def attempt_key(intent_id: str, attempt: int) -> str:
    """The string whose CRC-32 is the client id of this attempt."""
    if attempt < 0:
        raise InvariantViolation(f"attempt must be >= 0; got {attempt}")
    if not intent_id:
        raise InvariantViolation("intent_id must not be empty")
    return intent_id if attempt == 0 else f"{intent_id}#{attempt}"


def client_id_for(intent_id: str, attempt: int) -> int:
    """uint32 client id of attempt ``attempt`` of ``intent_id`` (``zlib.crc32`` of the UTF-8 key)."""
    return zlib.crc32(attempt_key(intent_id, attempt).encode("utf-8")) & 0xFFFFFFFF

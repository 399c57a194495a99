"""ED25519 request signing and verification for Backpack (protocol reference section 2).

Pure: no clock reads (the caller passes the timestamp), no I/O. Rule 1: the signing string is built from the
*textual* values that travel on the wire, so the signer and the verifier share ``signing_string``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import nacl.exceptions
import nacl.signing

from engine.errors import AuthError, LocalProtocolError

__all__ = [
    "DEFAULT_WINDOW_MS",
    "MAX_WINDOW_MS",
    "Signer",
    "batch_signing_string",
    "render_value",
    "signing_string",
    "verify_signature",
]

DEFAULT_WINDOW_MS = 5000
MAX_WINDOW_MS = 60000


def render_value(value: Any) -> str:
    """Render one parameter value exactly as it is signed: booleans lowercase, ints plain, strings as-is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        # Decimals travel as strings; sign the same canonical text that is sent.
        return format(value, "f")
    raise LocalProtocolError(f"cannot sign a parameter of type {type(value).__name__}: {value!r}")


def _params_part(params: Mapping[str, Any]) -> str:
    return "&".join(f"{k}={render_value(params[k])}" for k in sorted(params) if params[k] is not None)


def signing_string(
    instruction: str, params: Mapping[str, Any], timestamp_ms: int, window_ms: int = DEFAULT_WINDOW_MS
) -> str:
    """The single-request signing string of section 2.3."""
    body = _params_part(params)
    head = f"instruction={instruction}"
    if body:
        head = f"{head}&{body}"
    return f"{head}&timestamp={timestamp_ms}&window={window_ms}"


def batch_signing_string(
    instruction: str, orders: Sequence[Mapping[str, Any]], timestamp_ms: int, window_ms: int = DEFAULT_WINDOW_MS
) -> str:
    """The batch signing string of section 2.4: one ``instruction=..&<sorted params>`` per order."""
    parts = []
    for order in orders:
        body = _params_part(order)
        parts.append(f"instruction={instruction}&{body}" if body else f"instruction={instruction}")
    return "&".join(parts) + f"&timestamp={timestamp_ms}&window={window_ms}"


def _decode_key(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuthError(f"{what} is not valid base64") from exc
    return raw


class Signer:
    """Holds one ED25519 seed and signs requests with it. The secret never appears in repr or logs."""

    __slots__ = ("_key", "public_key_b64")

    def __init__(self, secret_b64: str) -> None:
        raw = _decode_key(secret_b64, "API secret")
        # Some tools export seed||public key (64 bytes); the seed is the first 32 (as ccxt does).
        if len(raw) == 64:
            raw = raw[:32]
        if len(raw) != 32:
            raise AuthError(f"API secret must decode to 32 bytes, got {len(raw)}")
        self._key = nacl.signing.SigningKey(raw)
        self.public_key_b64: str = base64.b64encode(bytes(self._key.verify_key)).decode("ascii")

    def __repr__(self) -> str:
        return f"Signer(public_key_b64={self.public_key_b64!r})"

    @classmethod
    def generate(cls) -> tuple[Signer, str]:
        """A fresh key pair: the signer and its base64 secret (for keygen)."""
        key = nacl.signing.SigningKey.generate()
        secret = base64.b64encode(bytes(key)).decode("ascii")
        return cls(secret), secret

    def sign(self, message: str) -> str:
        """Base64 of the 64-byte signature of the UTF-8 message."""
        return base64.b64encode(self._key.sign(message.encode("utf-8")).signature).decode("ascii")

    def headers(
        self,
        instruction: str,
        params: Mapping[str, Any],
        timestamp_ms: int,
        window_ms: int = DEFAULT_WINDOW_MS,
    ) -> dict[str, str]:
        """The X-* headers of section 2.2 for one request."""
        if not 0 < window_ms <= MAX_WINDOW_MS:
            raise LocalProtocolError(f"window must be in (0, {MAX_WINDOW_MS}] ms, got {window_ms}")
        return {
            "X-API-Key": self.public_key_b64,
            "X-Signature": self.sign(signing_string(instruction, params, timestamp_ms, window_ms)),
            "X-Timestamp": str(timestamp_ms),
            "X-Window": str(window_ms),
        }

    def batch_headers(
        self,
        instruction: str,
        orders: Sequence[Mapping[str, Any]],
        timestamp_ms: int,
        window_ms: int = DEFAULT_WINDOW_MS,
    ) -> dict[str, str]:
        return {
            "X-API-Key": self.public_key_b64,
            "X-Signature": self.sign(batch_signing_string(instruction, orders, timestamp_ms, window_ms)),
            "X-Timestamp": str(timestamp_ms),
            "X-Window": str(window_ms),
        }


def verify_signature(public_key_b64: str, message: str, signature_b64: str) -> bool:
    """True when ``signature_b64`` is a valid ED25519 signature of ``message`` by ``public_key_b64``."""
    try:
        key = base64.b64decode(public_key_b64, validate=True)
        sig = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(key) != 32 or len(sig) != 64:
        return False
    try:
        nacl.signing.VerifyKey(key).verify(message.encode("utf-8"), sig)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        return False
    return True

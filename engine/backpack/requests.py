"""Build outgoing Backpack requests and WebSocket control frames, and verify incoming signed requests.

Rule 1: the signed text is the text that travels. ``prepare_request`` renders every parameter once (Decimal as
plain text, booleans lowercase, ints plain) and both sends and signs that rendering; ``verify_request``
rebuilds the signing string from the *textual* values the server received.
Rule 2: no clock reads. Signing takes ``timestamp_ms`` from the caller and every call signs afresh;
verification takes ``now_ms``.
Rule 3: the instruction table of section 2.5 lives here, once, for both sides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any, TypeAlias

import attrs

from engine.backpack.signing import (
    DEFAULT_WINDOW_MS,
    MAX_WINDOW_MS,
    Signer,
    batch_signing_string,
    signing_string,
    verify_signature,
)
from engine.errors import LocalProtocolError

__all__ = [
    "BATCH_ORDER_PATH",
    "INSTRUCTIONS",
    "JsonBody",
    "PreparedRequest",
    "VerifyFailure",
    "depth_stream",
    "instruction_for",
    "kline_stream",
    "prepare_request",
    "private_subscribe_frame",
    "subscribe_frame",
    "unsubscribe_frame",
    "verify_request",
]

#: Section 2.5: (HTTP method, path) -> signing instruction. Paths absent here are public (unsigned).
INSTRUCTIONS: Mapping[tuple[str, str], str] = {
    ("GET", "/api/v1/capital"): "balanceQuery",
    ("GET", "/api/v1/capital/collateral"): "collateralQuery",
    ("GET", "/api/v1/account"): "accountQuery",
    ("PATCH", "/api/v1/account"): "accountUpdate",
    ("GET", "/api/v1/account/limits/order"): "maxOrderQuantity",
    ("GET", "/api/v1/account/limits/borrow"): "maxBorrowQuantity",
    ("GET", "/api/v1/account/limits/withdrawal"): "maxWithdrawalQuantity",
    ("POST", "/api/v1/account/convertDust"): "convertDust",
    ("GET", "/api/v1/position"): "positionQuery",
    ("GET", "/api/v1/order"): "orderQuery",
    ("POST", "/api/v1/order"): "orderExecute",
    ("DELETE", "/api/v1/order"): "orderCancel",
    ("GET", "/api/v1/orders"): "orderQueryAll",
    ("POST", "/api/v1/orders"): "orderExecute",
    ("DELETE", "/api/v1/orders"): "orderCancelAll",
    ("GET", "/wapi/v1/history/orders"): "orderHistoryQueryAll",
    ("GET", "/wapi/v1/history/fills"): "fillHistoryQueryAll",
    ("GET", "/wapi/v1/history/funding"): "fundingHistoryQueryAll",
    ("GET", "/wapi/v1/history/interest"): "interestHistoryQueryAll",
    ("GET", "/wapi/v1/history/borrowLend"): "borrowHistoryQueryAll",
    ("GET", "/wapi/v1/history/borrowLend/positions"): "borrowPositionHistoryQueryAll",
    ("GET", "/wapi/v1/history/position"): "positionHistoryQueryAll",
    ("GET", "/wapi/v1/history/dust"): "dustHistoryQueryAll",
    ("GET", "/wapi/v1/history/settlement"): "settlementHistoryQueryAll",
    ("GET", "/wapi/v1/history/strategies"): "strategyHistoryQueryAll",
    ("GET", "/wapi/v1/capital/deposits"): "depositQueryAll",
    ("GET", "/wapi/v1/capital/deposit/address"): "depositAddressQuery",
    ("GET", "/wapi/v1/capital/withdrawals"): "withdrawalQueryAll",
    ("POST", "/wapi/v1/capital/withdrawals"): "withdraw",
    ("GET", "/api/v1/borrowLend/positions"): "borrowLendPositionQuery",
    ("POST", "/api/v1/borrowLend"): "borrowLendExecute",
    ("POST", "/api/v1/rfq"): "rfqSubmit",
    ("POST", "/api/v1/rfq/quote"): "quoteSubmit",
    ("POST", "/api/v1/rfq/accept"): "quoteAccept",
    ("POST", "/api/v1/rfq/cancel"): "rfqCancel",
    ("POST", "/api/v1/rfq/refresh"): "rfqRefresh",
    ("GET", "/api/v1/rfqs"): "rfqQuery",
    ("GET", "/api/v1/strategy"): "strategyQuery",
    ("POST", "/api/v1/strategy"): "strategyCreate",
    ("DELETE", "/api/v1/strategy"): "strategyCancel",
    ("GET", "/api/v1/strategies"): "strategyQueryAll",
    ("DELETE", "/api/v1/strategies"): "strategyCancelAll",
}

#: The batch endpoint: its body is a JSON array, signed per order (section 2.4).
BATCH_ORDER_PATH = "/api/v1/orders"

JsonBody: TypeAlias = dict[str, Any] | list[dict[str, Any]]
_BODY_METHODS = frozenset({"POST", "DELETE", "PATCH"})
# Accept a request whose timestamp is slightly ahead of the server clock: client and server clocks are
# never identical (the document observes 0-3 ms offsets), and a strict "not before X-Timestamp" would
# reject honest requests.
_FUTURE_TOLERANCE_MS = 1000


def _norm_path(path: str) -> str:
    return path.partition("?")[0].rstrip("/") or "/"


def instruction_for(method: str, path: str) -> str | None:
    """The signing instruction of ``method path``, or None for a public endpoint."""
    return INSTRUCTIONS.get((method.upper(), _norm_path(path)))


# --- WebSocket control frames -----------------------------------------------------------------------------


def depth_stream(symbol: str, window_ms: int | None = None) -> str:
    """``depth.<symbol>`` or ``depth.<window>ms.<symbol>`` (window 200, 600 or 1000)."""
    if window_ms is None:
        return f"depth.{symbol}"
    if window_ms not in (200, 600, 1000):
        raise LocalProtocolError(f"depth window must be 200, 600 or 1000 ms, got {window_ms}")
    return f"depth.{window_ms}ms.{symbol}"


def kline_stream(interval: str, symbol: str) -> str:
    return f"kline.{interval}.{symbol}"


def _check_streams(streams: Sequence[str]) -> list[str]:
    if isinstance(streams, str) or not streams:
        raise LocalProtocolError("streams must be a non-empty sequence of stream names")
    out = []
    for name in streams:
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise LocalProtocolError(f"invalid stream name {name!r}")
        out.append(name)
    return out


def _frame(method: str, params: list[str], signature: list[str] | None = None) -> str:
    frame: dict[str, Any] = {"method": method, "params": params}
    if signature is not None:
        frame["signature"] = signature
    return json.dumps(frame, separators=(",", ":"))


def subscribe_frame(streams: Sequence[str]) -> str:
    """A public SUBSCRIBE text frame. Private (``account.*``) streams need ``private_subscribe_frame``."""
    names = _check_streams(streams)
    private = [n for n in names if n.startswith("account.")]
    if private:
        raise LocalProtocolError(f"private streams need a signed subscription: {private}")
    return _frame("SUBSCRIBE", names)


def unsubscribe_frame(streams: Sequence[str]) -> str:
    """An UNSUBSCRIBE text frame (never signed, public or private)."""
    return _frame("UNSUBSCRIBE", _check_streams(streams))


def private_subscribe_frame(
    streams: Sequence[str], signer: Signer, *, timestamp_ms: int, window_ms: int = DEFAULT_WINDOW_MS
) -> str:
    """A signed SUBSCRIBE frame (section 5.3): ``signature`` = [key, sig, "<ts>", "<window>"]."""
    names = _check_streams(streams)
    _check_window(window_ms)
    _check_timestamp(timestamp_ms)
    sig = signer.sign(signing_string("subscribe", {}, timestamp_ms, window_ms))
    return _frame("SUBSCRIBE", names, [signer.public_key_b64, sig, str(timestamp_ms), str(window_ms)])


# --- outgoing REST requests -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PreparedRequest:
    """Everything needed to send one REST request: send ``query`` as the query string and ``content`` as
    the body bytes (``body`` is the same JSON value, for inspection)."""

    method: str
    path: str
    query: dict[str, str] | None
    body: JsonBody | None
    headers: dict[str, str]

    @property
    def content(self) -> bytes | None:
        if self.body is None:
            return None
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _check_window(window_ms: int) -> None:
    if isinstance(window_ms, bool) or not isinstance(window_ms, int) or not 0 < window_ms <= MAX_WINDOW_MS:
        raise LocalProtocolError(f"window must be an integer in (0, {MAX_WINDOW_MS}] ms, got {window_ms!r}")


def _check_timestamp(timestamp_ms: int | None) -> int:
    if timestamp_ms is None:
        raise LocalProtocolError("a signed request needs timestamp_ms (the core never reads a clock)")
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int) or timestamp_ms < 0:
        raise LocalProtocolError(f"timestamp_ms must be a non-negative integer, got {timestamp_ms!r}")
    return timestamp_ms


def _wire_value(key: str, value: Any) -> str | int | bool:
    """The JSON value sent for one parameter; the signer renders exactly this value."""
    if isinstance(value, bool | int) and not isinstance(value, Enum):
        return value
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise LocalProtocolError(f"parameter {key!r} is not a finite decimal: {value}")
        return format(value, "f")
    raise LocalProtocolError(f"parameter {key!r} has unsupported type {type(value).__name__}: {value!r}")


def _wire_params(params: Mapping[str, Any]) -> dict[str, str | int | bool]:
    if not isinstance(params, Mapping):
        raise LocalProtocolError(f"parameters must be a mapping, got {type(params).__name__}")
    out: dict[str, str | int | bool] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not key:
            raise LocalProtocolError(f"parameter names must be non-empty strings, got {key!r}")
        if value is not None:
            out[key] = _wire_value(key, value)
    return out


def _query_text(params: Mapping[str, str | int | bool]) -> dict[str, str]:
    return {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in params.items()}


def prepare_request(
    method: str,
    path: str,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    *,
    signer: Signer | None = None,
    timestamp_ms: int | None = None,
    window_ms: int = DEFAULT_WINDOW_MS,
) -> PreparedRequest:
    """Render and (for private endpoints) sign one request.

    GET parameters go to the query string; POST/DELETE/PATCH parameters go to the JSON body. ``None`` values
    are omitted. ``POST /api/v1/orders`` takes a sequence of order mappings (batch, section 2.4). A private
    endpoint requires ``signer`` and ``timestamp_ms``; a public one refuses a signer (it has no instruction).
    """
    verb = method.upper()
    bare = _norm_path(path)
    instruction = INSTRUCTIONS.get((verb, bare))
    if instruction is None and signer is not None:
        raise LocalProtocolError(f"{verb} {bare} is public: there is no instruction to sign")
    if instruction is not None and signer is None:
        raise LocalProtocolError(f"{verb} {bare} is private ({instruction}): a signer is required")
    _check_window(window_ms)

    is_batch = verb == "POST" and bare == BATCH_ORDER_PATH
    query: dict[str, str] | None = None
    body: JsonBody | None = None
    signed_params: dict[str, str | int | bool] = {}
    batch: list[dict[str, str | int | bool]] = []
    if is_batch:
        if params is None or isinstance(params, Mapping | str) or not params:
            raise LocalProtocolError("a batch order needs a non-empty sequence of order mappings")
        batch = [_wire_params(order) for order in params]
        body = [dict(order) for order in batch]
    else:
        if params is not None and not isinstance(params, Mapping):
            raise LocalProtocolError(f"{verb} {bare} takes a mapping of parameters")
        signed_params = _wire_params(params or {})
        if verb in _BODY_METHODS:
            body = dict(signed_params)
        elif signed_params:
            query = _query_text(signed_params)

    headers: dict[str, str] = {}
    if body is not None:
        headers["Content-Type"] = "application/json; charset=utf-8"
    if signer is not None and instruction is not None:
        ts = _check_timestamp(timestamp_ms)
        if is_batch:
            headers.update(signer.batch_headers(instruction, batch, ts, window_ms))
        else:
            headers.update(signer.headers(instruction, signed_params, ts, window_ms))
    return PreparedRequest(method=verb, path=bare, query=query, body=body, headers=headers)


# --- incoming request verification (the simulator's side) -------------------------------------------------


@attrs.frozen(kw_only=True)
class VerifyFailure:
    """Why a signed request was refused, as the exchange would say it (section 6.1)."""

    status: int
    code: str
    message: str

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def _fail(message: str, status: int = 400) -> VerifyFailure:
    # The FAQ reports INVALID_CLIENT_REQUEST for signature and expiry failures (section 6.1).
    return VerifyFailure(status=status, code="INVALID_CLIENT_REQUEST", message=message)


class _Unsignable(Exception):
    pass


def _received_text(value: object) -> str | None:
    """Render one received JSON body value as the client must have signed it (None: omitted)."""
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        # A client that sent a bare JSON number signed its text; repr is the shortest round-trip form.
        return repr(value)
    raise _Unsignable


def _received_params(obj: Mapping[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in obj.items():
        text = _received_text(value)
        if text is not None:
            out[key] = text
    return out


def _int_header(text: str) -> int | None:
    text = text.strip()
    if 0 < len(text) <= 16 and text.isascii() and text.isdigit():
        return int(text)
    return None


def verify_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    body: object,
    headers: Mapping[str, str],
    now_ms: int,
) -> str | VerifyFailure:
    """Check the signature and time window of a received private request; return the API key on success.

    ``query`` holds the received query parameters as text, ``body`` the parsed JSON body (None when empty),
    ``headers`` the received headers (any case). Whether the key is registered is the caller's business.
    """
    verb = method.upper()
    bare = _norm_path(path)
    instruction = INSTRUCTIONS.get((verb, bare))
    if instruction is None:
        raise LocalProtocolError(f"{verb} {bare} is public: there is nothing to verify")
    lower = {k.lower(): v for k, v in headers.items()}
    api_key = lower.get("x-api-key")
    signature = lower.get("x-signature")
    timestamp_text = lower.get("x-timestamp")
    if not api_key:
        return _fail("Missing X-API-Key header", 401)
    if not signature:
        return _fail("Missing X-Signature header", 401)
    if not timestamp_text:
        return _fail("Missing X-Timestamp header")
    timestamp = _int_header(timestamp_text)
    if timestamp is None:
        return _fail("Invalid timestamp")
    window_text = lower.get("x-window")
    window = DEFAULT_WINDOW_MS if window_text is None else _int_header(window_text)
    if window is None or not 0 < window <= MAX_WINDOW_MS:
        return _fail(f"Invalid X-Window header: must be an integer in (0, {MAX_WINDOW_MS}]")
    if now_ms > timestamp + window:
        return _fail("Request has expired")
    if timestamp > now_ms + _FUTURE_TOLERANCE_MS:
        return _fail("Invalid timestamp: request is from the future")

    try:
        if verb == "POST" and bare == BATCH_ORDER_PATH and isinstance(body, list):
            orders = []
            for item in body:
                if not isinstance(item, Mapping):
                    raise _Unsignable
                orders.append(_received_params(item))
            message = batch_signing_string(instruction, orders, timestamp, window)
        else:
            if isinstance(body, Mapping) and body:
                params = _received_params(body)
            elif body is None or body == {} or body == "":
                # GET, or POST/DELETE without a body: the query parameters are signed.
                params = {str(k): str(v) for k, v in query.items()}
            else:
                raise _Unsignable
            message = signing_string(instruction, params, timestamp, window)
    except _Unsignable:
        return _fail("Invalid request body: nested values cannot be signed")
    if not verify_signature(api_key, message, signature):
        return _fail("Invalid signature", 401)
    return api_key

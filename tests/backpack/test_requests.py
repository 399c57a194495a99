"""Request building and verification: section 2 signing, 2.4 batches, 5.3 private subscriptions."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.backpack.requests import (
    INSTRUCTIONS,
    PreparedRequest,
    VerifyFailure,
    depth_stream,
    instruction_for,
    prepare_request,
    private_subscribe_frame,
    subscribe_frame,
    unsubscribe_frame,
    verify_request,
)
from engine.backpack.responses import decode_error
from engine.backpack.signing import Signer
from engine.errors import LocalProtocolError, SignatureRejected

SECRET = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
PUBLIC = "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
SIGNER = Signer(SECRET)
OTHER, _ = Signer.generate()


def _verify(req: PreparedRequest, now_ms: int, **overrides: Any) -> str | VerifyFailure:
    """Feed a prepared request to the verifier the way a server receives it (text query, parsed body)."""
    body = None if req.content is None else json.loads(req.content)
    headers = dict(req.headers)
    headers.update(overrides.pop("headers", {}))
    return verify_request(
        overrides.pop("method", req.method),
        overrides.pop("path", req.path),
        overrides.pop("query", req.query or {}),
        overrides.pop("body", body),
        headers,
        now_ms,
    )


def test_worked_example_of_section_2_6() -> None:
    """The post-only limit order of section 2.6 gets the documented signature, headers and body."""
    req = prepare_request(
        "POST",
        "/api/v1/order",
        {
            "symbol": "BTC_USDC_PERP",
            "side": "Bid",
            "orderType": "Limit",
            "quantity": Decimal("0.0015"),
            "price": Decimal("65000.1"),
            "timeInForce": "GTC",
            "postOnly": True,
            "clientId": 42,
        },
        signer=SIGNER,
        timestamp_ms=1750000000000,
    )
    assert req.headers == {
        "Content-Type": "application/json; charset=utf-8",
        "X-API-Key": PUBLIC,
        "X-Signature": "WPgX527F7Di1qAy9RQvo4dGATlEsXLLGuXezEJ+nHl1my48kvjxN3aqTbdP39uvNl3O/AVisTVnBEBKo+cjnAg==",
        "X-Timestamp": "1750000000000",
        "X-Window": "5000",
    }
    assert req.query is None
    assert json.loads(req.content or b"") == {
        "symbol": "BTC_USDC_PERP",
        "side": "Bid",
        "orderType": "Limit",
        "quantity": "0.0015",
        "price": "65000.1",
        "timeInForce": "GTC",
        "postOnly": True,
        "clientId": 42,
    }
    assert _verify(req, now_ms=1750000000001) == PUBLIC


@pytest.mark.parametrize(
    ("method", "path", "params", "ts", "window", "signature"),
    [
        (
            "DELETE",
            "/api/v1/order",
            {"orderId": "28", "symbol": "BTC_USDT"},
            1614550000000,
            5000,
            "5JNvIFup6BvOx0ITxfxtEn5ac317vAI78vza6AWOyTvrzDTlVnO/T0dQazXuJmS4WJbLnm17ydL4EwqW5+6aBA==",
        ),
        (
            "GET",
            "/api/v1/capital",
            None,
            1614550000000,
            5000,
            "Z84gQTC7cBU2B7ntts0up1fqeLuPKUdNaYqZ8hMecImH8gBJzdntZ8AedhMlKMqLYysELwKES3SFW+k8i+JuDA==",
        ),
        (
            "GET",
            "/api/v1/orders",
            {"symbol": "BTC_USDC_PERP"},
            1750000000000,
            5000,
            "JMZX4cN1bT1apODSu4ijTDze0KhhGRWQwh9Gp7wwXEZ6BHTTC4jDBzY/fFN0Mp6fO+C5Zz4vtlJ23qXWRHysCQ==",
        ),
        (
            "POST",
            "/api/v1/order",
            {
                "orderType": "Market",
                "quantity": "0.01",
                "reduceOnly": True,
                "side": "Ask",
                "symbol": "BTC_USDC_PERP",
            },
            1750000000123,
            60000,
            "9OoxiDU/8ovg2Zh2qR4bf/9VqwsHuB8yKQYZLH/WZqrl7x9APWHS6iV4nxnCmICUTM0LtPl/cE/oLQRGdpj3Dg==",
        ),
    ],
)
def test_known_answer_vectors(
    method: str, path: str, params: dict[str, Any] | None, ts: int, window: int, signature: str
) -> None:
    """prepare_request reproduces the section 2.6 signatures, and verify_request accepts them."""
    req = prepare_request(method, path, params, signer=SIGNER, timestamp_ms=ts, window_ms=window)
    assert req.headers["X-Signature"] == signature
    assert req.headers["X-Window"] == str(window)
    if method == "GET":
        assert req.body is None
        assert req.query == params
    assert _verify(req, now_ms=ts + window) == PUBLIC


def test_batch_order_vector_of_section_2_4() -> None:
    """The section 2.4 batch body signs to the documented signature and verifies."""
    orders = [
        {"symbol": "SOL_USDC_PERP", "side": "Bid", "orderType": "Limit", "price": "141", "quantity": "12"},
        {"symbol": "SOL_USDC_PERP", "side": "Bid", "orderType": "Limit", "price": "140", "quantity": "11"},
    ]
    req = prepare_request("POST", "/api/v1/orders", orders, signer=SIGNER, timestamp_ms=1750793021519)
    assert req.headers["X-Signature"] == (
        "RWDblIEyuTyFXbmOYgWdkRyI1iA3dE5KZum11y2WD2Rn7nxglRXh5tcKvtWPpG+NNSMyZ5kTJWpB0MqUORlhCQ=="
    )
    assert req.body == orders
    assert _verify(req, now_ms=1750793021519) == PUBLIC
    swapped = [orders[1], orders[0]]
    assert isinstance(_verify(req, now_ms=1750793021519, body=swapped), VerifyFailure)


def test_private_subscribe_frame_matches_section_5_3() -> None:
    """The signed SUBSCRIBE frame is the documented one, with timestamp and window as strings."""
    frame = private_subscribe_frame(
        ["account.orderUpdate", "account.positionUpdate", "account.balanceUpdate"],
        SIGNER,
        timestamp_ms=1750000000000,
    )
    assert json.loads(frame) == {
        "method": "SUBSCRIBE",
        "params": ["account.orderUpdate", "account.positionUpdate", "account.balanceUpdate"],
        "signature": [
            PUBLIC,
            "WHLEmbhQg3PY3VWb1GoJKNBmKXDrZHeSs5pD1Q7X1owt+40k5jNqGKl1aQDpkG9K+czQBxg+8X3kyE4lj9fHDw==",
            "1750000000000",
            "5000",
        ],
    }


def test_public_subscribe_and_unsubscribe_frames() -> None:
    """Public SUBSCRIBE/UNSUBSCRIBE frames are the documented shapes; private streams are refused unsigned."""
    streams = ["depth.BTC_USDC_PERP", "bookTicker.BTC_USDC_PERP", "trade.BTC_USDC_PERP"]
    assert json.loads(subscribe_frame(streams)) == {"method": "SUBSCRIBE", "params": streams}
    assert json.loads(unsubscribe_frame(["trade.BTC_USDC_PERP"])) == {
        "method": "UNSUBSCRIBE",
        "params": ["trade.BTC_USDC_PERP"],
    }
    assert depth_stream("X_Y", 200) == "depth.200ms.X_Y"
    with pytest.raises(LocalProtocolError):
        subscribe_frame(["account.orderUpdate"])
    with pytest.raises(LocalProtocolError):
        subscribe_frame([])
    with pytest.raises(LocalProtocolError):
        depth_stream("X_Y", 100)


def test_instruction_table_and_routing_rules() -> None:
    """Private paths need a signer and a timestamp; public paths refuse one; GET params go to the query."""
    assert instruction_for("get", "/api/v1/capital/") == "balanceQuery"
    assert instruction_for("GET", "/api/v1/depth") is None
    assert len(INSTRUCTIONS) >= 40
    public = prepare_request("GET", "/api/v1/depth", {"symbol": "BTC_USDC", "limit": 5})
    assert public.query == {"symbol": "BTC_USDC", "limit": "5"}
    assert public.headers == {}
    with pytest.raises(LocalProtocolError):
        prepare_request("GET", "/api/v1/depth", {"symbol": "X"}, signer=SIGNER, timestamp_ms=1)
    with pytest.raises(LocalProtocolError):
        prepare_request("GET", "/api/v1/capital")
    with pytest.raises(LocalProtocolError):
        prepare_request("GET", "/api/v1/capital", signer=SIGNER)
    with pytest.raises(LocalProtocolError):
        prepare_request("GET", "/api/v1/capital", signer=SIGNER, timestamp_ms=1, window_ms=60001)
    with pytest.raises(LocalProtocolError):
        prepare_request("POST", "/api/v1/order", {"price": 1.5}, signer=SIGNER, timestamp_ms=1)


def test_every_call_signs_afresh_with_its_timestamp() -> None:
    """Two calls with different timestamps produce different signatures and X-Timestamp headers."""
    a = prepare_request("GET", "/api/v1/capital", signer=SIGNER, timestamp_ms=1000)
    b = prepare_request("GET", "/api/v1/capital", signer=SIGNER, timestamp_ms=1001)
    assert a.headers["X-Timestamp"] == "1000"
    assert b.headers["X-Timestamp"] == "1001"
    assert a.headers["X-Signature"] != b.headers["X-Signature"]


_ORDER = {"symbol": "BTC_USDC_PERP", "side": "Bid", "orderType": "Limit", "quantity": "0.5", "price": "60000"}


def test_verify_rejects_tampering_expiry_wrong_key_and_bad_window() -> None:
    """Tampered parameter, expired window, another key, window > 60000 and missing headers all fail."""
    req = prepare_request("POST", "/api/v1/order", _ORDER, signer=SIGNER, timestamp_ms=10_000, window_ms=5000)
    assert _verify(req, now_ms=15_000) == PUBLIC
    tampered = dict(_ORDER, price="60001")
    failure = _verify(req, now_ms=10_000, body=tampered)
    assert isinstance(failure, VerifyFailure)
    assert failure.message == "Invalid signature"
    expired = _verify(req, now_ms=15_001)
    assert isinstance(expired, VerifyFailure)
    assert expired.message == "Request has expired"
    wrong_key = _verify(req, now_ms=10_000, headers={"X-API-Key": OTHER.public_key_b64})
    assert isinstance(wrong_key, VerifyFailure)
    assert wrong_key.message == "Invalid signature"
    too_wide = _verify(req, now_ms=10_000, headers={"X-Window": "60001"})
    assert isinstance(too_wide, VerifyFailure)
    assert "X-Window" in too_wide.message
    missing = verify_request("POST", "/api/v1/order", {}, _ORDER, {"X-Timestamp": "1"}, 1)
    assert isinstance(missing, VerifyFailure)
    assert "X-API-Key" in missing.message
    # Each failure, sent back as an error body, decodes on the client as a SignatureRejected.
    for f in (failure, expired, wrong_key, too_wide, missing):
        assert isinstance(decode_error(f.status, json.dumps(f.body())), SignatureRejected)


def test_verify_uses_received_text_and_header_case() -> None:
    """Lower-case headers, an omitted X-Window (default 5000) and a GET query are verified from text."""
    req = prepare_request("GET", "/api/v1/orders", {"symbol": "X_Y"}, signer=SIGNER, timestamp_ms=5)
    headers = {k.lower(): v for k, v in req.headers.items() if k != "X-Window"}
    assert verify_request("GET", "/api/v1/orders", {"symbol": "X_Y"}, None, headers, 5) == PUBLIC
    assert isinstance(
        verify_request("GET", "/api/v1/orders", {"symbol": "X_Z"}, None, headers, 5), VerifyFailure
    )


_text = st.text(st.characters(codec="ascii", exclude_characters="&="), min_size=1, max_size=12)
_params = st.dictionaries(
    st.from_regex(r"[a-zA-Z]{1,10}", fullmatch=True),
    _text
    | st.booleans()
    | st.integers(0, 2**32)
    | st.decimals(allow_nan=False, allow_infinity=False, places=4),
    max_size=6,
)


@settings(max_examples=40, deadline=None)
@given(
    route=st.sampled_from(sorted(INSTRUCTIONS)),
    params=_params,
    ts=st.integers(0, 2**41),
    window=st.integers(1, 60000),
    elapsed=st.integers(0, 60000),
)
def test_verify_accepts_what_prepare_produces(
    route: tuple[str, str], params: dict[str, Any], ts: int, window: int, elapsed: int
) -> None:
    """For any route and parameters, verify_request accepts the request exactly while inside the window."""
    method, path = route
    payload: Any = [params or {"symbol": "X"}] if (method, path) == ("POST", "/api/v1/orders") else params
    req = prepare_request(method, path, payload, signer=SIGNER, timestamp_ms=ts, window_ms=window)
    result = _verify(req, now_ms=ts + elapsed)
    if elapsed <= window:
        assert result == PUBLIC
    else:
        assert isinstance(result, VerifyFailure)
        assert result.message == "Request has expired"


@pytest.mark.parametrize(
    "body",
    [
        {
            "orderType": "Limit",
            "price": "4000",
            "quantity": "0.001",
            "side": "Bid",
            "symbol": "ETH_USDC_PERP",
        },
        {"orderType": "Market", "quantity": "0.001", "side": "Bid", "symbol": "ETH_USDC_PERP"},
        {"orderType": "Market", "quoteQuantity": "5", "side": "Bid", "symbol": "DOGE_USDC"},
        {"clientId": 55555, "orderType": "Market", "quantity": "1", "side": "Bid", "symbol": "ADA_USDC_PERP"},
        {
            "orderType": "Limit",
            "price": "4000",
            "side": "Bid",
            "symbol": "ETH_USDC_PERP",
            "triggerPrice": "4100",
            "triggerQuantity": "0.001",
        },
    ],
)
def test_typical_order_bodies_of_section_4_5(body: dict[str, Any]) -> None:
    """The documented order bodies are sent verbatim (clientId stays a JSON integer) and verify."""
    req = prepare_request("POST", "/api/v1/order", body, signer=SIGNER, timestamp_ms=1_000)
    assert json.loads(req.content or b"") == body
    assert _verify(req, now_ms=1_000) == PUBLIC

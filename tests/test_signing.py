"""Signing: the known-answer vectors of protocol section 2.6 and sign/verify round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.backpack.signing import Signer, batch_signing_string, signing_string, verify_signature
from engine.errors import AuthError

SECRET = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
PUBLIC = "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="

VECTORS = [
    (
        "instruction=orderExecute&clientId=42&orderType=Limit&postOnly=true&price=65000.1&quantity=0.0015"
        "&side=Bid&symbol=BTC_USDC_PERP&timeInForce=GTC&timestamp=1750000000000&window=5000",
        "WPgX527F7Di1qAy9RQvo4dGATlEsXLLGuXezEJ+nHl1my48kvjxN3aqTbdP39uvNl3O/AVisTVnBEBKo+cjnAg==",
    ),
    (
        "instruction=orderCancel&orderId=28&symbol=BTC_USDT&timestamp=1614550000000&window=5000",
        "5JNvIFup6BvOx0ITxfxtEn5ac317vAI78vza6AWOyTvrzDTlVnO/T0dQazXuJmS4WJbLnm17ydL4EwqW5+6aBA==",
    ),
    (
        "instruction=balanceQuery&timestamp=1614550000000&window=5000",
        "Z84gQTC7cBU2B7ntts0up1fqeLuPKUdNaYqZ8hMecImH8gBJzdntZ8AedhMlKMqLYysELwKES3SFW+k8i+JuDA==",
    ),
    (
        "instruction=orderQueryAll&symbol=BTC_USDC_PERP&timestamp=1750000000000&window=5000",
        "JMZX4cN1bT1apODSu4ijTDze0KhhGRWQwh9Gp7wwXEZ6BHTTC4jDBzY/fFN0Mp6fO+C5Zz4vtlJ23qXWRHysCQ==",
    ),
    (
        "instruction=orderExecute&orderType=Market&quantity=0.01&reduceOnly=true&side=Ask&symbol=BTC_USDC_PERP"
        "&timestamp=1750000000123&window=60000",
        "9OoxiDU/8ovg2Zh2qR4bf/9VqwsHuB8yKQYZLH/WZqrl7x9APWHS6iV4nxnCmICUTM0LtPl/cE/oLQRGdpj3Dg==",
    ),
    (
        "instruction=subscribe&timestamp=1750000000000&window=5000",
        "WHLEmbhQg3PY3VWb1GoJKNBmKXDrZHeSs5pD1Q7X1owt+40k5jNqGKl1aQDpkG9K+czQBxg+8X3kyE4lj9fHDw==",
    ),
]


def test_public_key_matches_vector() -> None:
    """The seed of 32 bytes 0x01 gives the documented API key."""
    assert Signer(SECRET).public_key_b64 == PUBLIC


@pytest.mark.parametrize(("message", "signature"), VECTORS)
def test_known_answer_vectors(message: str, signature: str) -> None:
    """Each section 2.6 signing string signs to the documented signature and verifies."""
    assert Signer(SECRET).sign(message) == signature
    assert verify_signature(PUBLIC, message, signature)


def test_worked_example_signing_string_and_headers() -> None:
    """The worked example's body renders to the documented signing string and headers."""
    body = {
        "symbol": "BTC_USDC_PERP",
        "side": "Bid",
        "orderType": "Limit",
        "quantity": "0.0015",
        "price": "65000.1",
        "timeInForce": "GTC",
        "postOnly": True,
        "clientId": 42,
    }
    assert signing_string("orderExecute", body, 1750000000000, 5000) == VECTORS[0][0]
    headers = Signer(SECRET).headers("orderExecute", body, 1750000000000, 5000)
    assert headers == {
        "X-API-Key": PUBLIC,
        "X-Signature": VECTORS[0][1],
        "X-Timestamp": "1750000000000",
        "X-Window": "5000",
    }


def test_trailing_zero_is_a_different_message() -> None:
    """0.00150 and 0.0015 sign differently: the signature is over the text."""
    msg = VECTORS[0][0].replace("quantity=0.0015", "quantity=0.00150")
    assert Signer(SECRET).sign(msg) == (
        "iBBPaZrONcxf6jcqPR9kd9tC157yVvuRQQG0ylMIePo6fm6lx5dYOKRf6gDp8zsisQEUF9esUTU7utxeiw0ABw=="
    )


def test_batch_vector() -> None:
    """The section 2.4 batch body renders and signs to the documented vector."""
    orders = [
        {"symbol": "SOL_USDC_PERP", "side": "Bid", "orderType": "Limit", "price": "141", "quantity": "12"},
        {"symbol": "SOL_USDC_PERP", "side": "Bid", "orderType": "Limit", "price": "140", "quantity": "11"},
    ]
    text = batch_signing_string("orderExecute", orders, 1750793021519, 5000)
    assert text == (
        "instruction=orderExecute&orderType=Limit&price=141&quantity=12&side=Bid&symbol=SOL_USDC_PERP"
        "&instruction=orderExecute&orderType=Limit&price=140&quantity=11&side=Bid&symbol=SOL_USDC_PERP"
        "&timestamp=1750793021519&window=5000"
    )
    assert Signer(SECRET).sign(text) == (
        "RWDblIEyuTyFXbmOYgWdkRyI1iA3dE5KZum11y2WD2Rn7nxglRXh5tcKvtWPpG+NNSMyZ5kTJWpB0MqUORlhCQ=="
    )


params_st = st.dictionaries(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12),
    st.one_of(st.booleans(), st.integers(0, 2**32 - 1), st.text(alphabet="0123456789._ABCDEFGHIJ", max_size=12)),
    max_size=8,
)


@given(params=params_st, ts=st.integers(0, 2**45), window=st.integers(1, 60000))
def test_verify_accepts_what_sign_produces(params: dict[str, object], ts: int, window: int) -> None:
    """verify(sign(x)) holds for generated requests; a tampered string or another key fails."""
    signer = Signer(SECRET)
    msg = signing_string("orderExecute", params, ts, window)
    sig = signer.sign(msg)
    assert verify_signature(signer.public_key_b64, msg, sig)
    assert not verify_signature(signer.public_key_b64, msg + "x", sig)
    other, _ = Signer.generate()
    assert not verify_signature(other.public_key_b64, msg, sig)


def test_bad_secret_is_an_auth_error() -> None:
    """A secret that is not base64 of 32 bytes is rejected with AuthError."""
    with pytest.raises(AuthError):
        Signer("not base64!!")
    with pytest.raises(AuthError):
        Signer("AAAA")

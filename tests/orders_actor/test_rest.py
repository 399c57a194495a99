"""RestClient: httpx failures and error bodies become the engine's exceptions at this one boundary."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
import trio

from engine.backpack import Order
from engine.backpack.signing import signing_string, verify_signature
from engine.errors import (
    ApiError,
    ExchangeUnavailable,
    LocalProtocolError,
    NotFound,
    OrderRejected,
    RateLimited,
    RemoteProtocolError,
    ServerUnavailable,
    SignatureRejected,
)
from engine.rest import RestClient
from tests.orders_actor.conftest import SIGNER, SPOT, last_price, rest_client, running_sim

ORDER_JSON = {
    "id": "111", "clientId": 7, "symbol": SPOT, "side": "Bid", "orderType": "Limit", "timeInForce": "IOC",
    "status": "Filled", "quantity": "0.01", "price": "50000", "executedQuantity": "0.01",
    "executedQuoteQuantity": "500", "createdAt": 1700000000000, "postOnly": False, "selfTradePrevention":
    "RejectTaker", "triggerPrice": None, "quoteQuantity": None, "reduceOnly": None, "relatedOrderId": None,
    "strategyId": None, "triggerBy": None, "triggerQuantity": None,
}


def client_for(handler: Callable[[httpx.Request], httpx.Response], clock: list[int] | None = None) -> RestClient:
    ticks = clock if clock is not None else [1_700_000_000_000]

    def now_ms() -> int:
        ticks[0] += 1
        return ticks[0]

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://exchange.test")
    return RestClient(http, signer=SIGNER, now_ms=now_ms, window_ms=5000)


def raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc
    return handler


@pytest.mark.parametrize("exc", [
    httpx.ConnectError("refused"),
    httpx.ReadTimeout("slow"),
    httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    httpx.WriteError("broken pipe"),
])
async def test_transport_errors_become_exchange_unavailable(exc: Exception) -> None:
    """Every httpx transport failure is ExchangeUnavailable, chained to the httpx exception."""
    rest = client_for(raising(exc))
    with pytest.raises(ExchangeUnavailable) as info:
        await rest.signed("GET", "/api/v1/capital")
    assert info.value.__cause__ is exc
    assert rest.statistics().transport_errors == 1


@pytest.mark.parametrize(("status", "body", "kind"), [
    (400, {"code": "INSUFFICIENT_FUNDS", "message": "Insufficient funds"}, OrderRejected),
    (404, {"code": "RESOURCE_NOT_FOUND", "message": "Not Found"}, NotFound),
    (429, {"code": "TOO_MANY_REQUESTS", "message": "slow down"}, RateLimited),
    (503, {"code": "SERVER_ERROR", "message": "try later"}, ServerUnavailable),
    (400, {"code": "INVALID_CLIENT_REQUEST", "message": "Request has expired"}, SignatureRejected),
])
async def test_error_bodies_become_typed_api_errors(status: int, body: dict[str, str], kind: type[ApiError]) -> None:
    """A non-2xx JSON error body raises the typed ApiError subclass with its code and status."""
    rest = client_for(lambda _r: httpx.Response(status, json=body))
    with pytest.raises(kind) as info:
        await rest.signed("POST", "/api/v1/order", {"symbol": SPOT, "side": "Bid", "orderType": "Limit",
                                                    "quantity": Decimal("0.01"), "price": Decimal(50000)})
    assert (info.value.code, info.value.status) == (body["code"], status)


async def test_undecodable_content_is_remote_protocol_error() -> None:
    """A body whose content-encoding cannot be decoded is the peer's protocol error, not a transport one."""
    rest = client_for(raising(httpx.DecodingError("bad gzip")))
    with pytest.raises(RemoteProtocolError) as info:
        await rest.public("/api/v1/markets")
    assert isinstance(info.value.__cause__, httpx.DecodingError)


async def test_plain_text_5xx_is_server_unavailable() -> None:
    """A CDN-style plain-text 502 is a transient ServerUnavailable (also an ExchangeUnavailable)."""
    rest = client_for(lambda _r: httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(ExchangeUnavailable):
        await rest.public("/api/v1/markets")


async def test_malformed_success_body_is_remote_protocol_error() -> None:
    """A 2xx body that does not decode raises RemoteProtocolError, never a raw ValueError/KeyError."""
    for body in (b"{not json", b'{"id": 1}', b"[1, 2]"):
        def handler(_request: httpx.Request, content: bytes = body) -> httpx.Response:
            return httpx.Response(200, content=content)
        rest = client_for(handler)
        with pytest.raises(RemoteProtocolError):
            await rest.signed("GET", "/api/v1/order", {"symbol": SPOT, "clientId": 7})


async def test_every_signed_call_is_signed_afresh() -> None:
    """Two identical signed calls carry different timestamps, each with a signature valid for its own."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ORDER_JSON)

    rest = client_for(handler)
    params = {"symbol": SPOT, "side": "Bid", "orderType": "Limit", "timeInForce": "IOC",
              "quantity": Decimal("0.01"), "price": Decimal(50000), "clientId": 7}
    first = await rest.signed("POST", "/api/v1/order", params)
    await rest.signed("POST", "/api/v1/order", params)
    assert isinstance(first, Order)
    assert first.executed_quantity == Decimal("0.01")
    stamps = [int(r.headers["X-Timestamp"]) for r in seen]
    assert stamps[0] < stamps[1]
    for request, stamp in zip(seen, stamps, strict=True):
        body = json.loads(request.content)
        message = signing_string("orderExecute", body, stamp, 5000)
        assert verify_signature(request.headers["X-API-Key"], message, request.headers["X-Signature"])


async def test_private_call_without_signer_is_refused_locally() -> None:
    """A client without a signer refuses a private call before anything is sent."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://exchange.test")
    rest = RestClient(http, signer=None, now_ms=lambda: 0)
    with pytest.raises(LocalProtocolError):
        await rest.signed("GET", "/api/v1/capital")
    assert sent == []


async def test_lost_response_on_a_real_socket_is_exchange_unavailable() -> None:
    """The simulator executes an order and drops the reply mid-body: the client raises ExchangeUnavailable."""
    with trio.fail_after(30):
        async with running_sim() as sim, rest_client(sim) as rest:
            price = await last_price(rest, SPOT)
            sim.faults.lose_next_order_responses(1)
            with pytest.raises(ExchangeUnavailable) as info:
                await rest.signed("POST", "/api/v1/order", {
                    "symbol": SPOT, "side": "Bid", "orderType": "Limit", "timeInForce": "IOC",
                    "quantity": Decimal("0.001"), "price": price, "clientId": 5})
            assert isinstance(info.value.__cause__, httpx.TransportError)
            assert sim.faults.statistics().order_responses_lost == 1

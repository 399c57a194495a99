"""A thin REST client for Backpack (or the simulator): THE boundary where httpx exceptions become ours.

Owns: sending one request built by :func:`engine.backpack.prepare_request` and decoding its answer with
:func:`engine.backpack.decode_response` / :func:`engine.backpack.decode_error`. Invariants:

* every signed request is signed afresh with ``now_ms()`` at the moment it is built, so a caller that repeats
  a call (a lookup, a reconciliation) never reuses a timestamp; the client itself never retries;
* transport failures (connect/read/write errors, an incomplete body, httpx timeouts) raise
  :class:`~engine.errors.ExchangeUnavailable` ``from`` the httpx exception; non-2xx answers raise the typed
  :class:`~engine.errors.ApiError` subclass from ``decode_error``; a 2xx body that does not decode raises
  :class:`~engine.errors.RemoteProtocolError`;
* timeouts are the caller's: wrap a call in ``trio.fail_after`` / ``trio.move_on_after``. A cancelled call
  raises trio's ``Cancelled`` as usual and was possibly received by the server.

Other actors (orders, the feed's depth snapshots and REST fallback) share one instance per connection pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import httpx

from engine.backpack import Response, decode_error, decode_response, prepare_request
from engine.backpack.signing import DEFAULT_WINDOW_MS, Signer
from engine.errors import ExchangeUnavailable, LocalProtocolError, RemoteProtocolError

__all__ = ["RestClient", "RestStatistics"]

log = logging.getLogger("engine.rest")

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


@attrs.frozen(kw_only=True)
class RestStatistics:
    """Counters of one client since it was created."""

    requests: int
    transport_errors: int
    api_errors: int


class RestClient:
    """Public and signed REST calls over an injected ``httpx.AsyncClient`` (its ``base_url`` is the host).

    ``signer`` is None for a client that only reads public data; ``now_ms`` is the wall clock used for request
    timestamps; ``window_ms`` is the signature validity window sent with every signed request.
    """

    def __init__(self, http: httpx.AsyncClient, *, signer: Signer | None, now_ms: Callable[[], int],
                 window_ms: int = DEFAULT_WINDOW_MS) -> None:
        self._http = http
        self._signer = signer
        self._now_ms = now_ms
        self.window_ms = window_ms
        self._requests = 0
        self._transport_errors = 0
        self._api_errors = 0

    def statistics(self) -> RestStatistics:
        return RestStatistics(requests=self._requests, transport_errors=self._transport_errors,
                              api_errors=self._api_errors)

    @property
    def can_sign(self) -> bool:
        return self._signer is not None

    async def public(self, path: str, params: Mapping[str, Any] | None = None) -> Response:
        """GET a public endpoint and return its decoded value."""
        prepared = prepare_request("GET", path, params)
        return await self._send(prepared.method, prepared.path, prepared.query, prepared.content,
                                prepared.headers)

    async def signed(self, method: str, path: str, params: Params = None) -> Response:
        """Sign (with a fresh timestamp) and send a private request; return its decoded value."""
        if self._signer is None:
            raise LocalProtocolError(f"{method} {path} is private but this client has no signer")
        prepared = prepare_request(method, path, params, signer=self._signer, timestamp_ms=self._now_ms(),
                                   window_ms=self.window_ms)
        return await self._send(prepared.method, prepared.path, prepared.query, prepared.content,
                                prepared.headers)

    async def _send(self, method: str, path: str, query: dict[str, str] | None, content: bytes | None,
                    headers: dict[str, str]) -> Response:
        self._requests += 1
        try:
            reply = await self._http.request(method, path, params=query, content=content, headers=headers)
        except httpx.TransportError as exc:
            # Includes timeouts, connect/read/write errors and a peer that closed mid-body.
            self._transport_errors += 1
            raise ExchangeUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        except httpx.RequestError as exc:
            # A body that cannot be content-decoded, a redirect loop: the peer spoke, but not sensibly.
            self._transport_errors += 1
            raise RemoteProtocolError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if reply.status_code >= 300:
            self._api_errors += 1
            error = decode_error(reply.status_code, reply.content)
            log.debug("%s %s -> %s", method, path, error)
            raise error
        try:
            return decode_response(path, reply.content, method=method)
        except RemoteProtocolError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise RemoteProtocolError(f"{method} {path}: undecodable body: {exc}") from exc

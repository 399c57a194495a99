"""Shared helpers for the simulator-core tests: a fresh exchange per test and a depth-book rebuilder."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine.sim.core import Emit, SimExchange, SimParams

KEY_A = "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
KEY_B = "B" * 43 + "="


def make_exchange(**kw: Any) -> SimExchange:
    return SimExchange(SimParams(**kw))


@pytest.fixture
def ex() -> SimExchange:
    return make_exchange(seed=5)


class BookMirror:
    """A client-side book rebuilt from a REST snapshot plus depth frames, as section 3.4 describes."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.last_u = int(snapshot["lastUpdateId"])
        self.bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
        self.asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}

    def apply(self, data: dict[str, Any]) -> None:
        assert data["U"] == self.last_u + 1, (data["U"], self.last_u)
        assert data["U"] <= data["u"]
        self.last_u = data["u"]
        for side, book in (("b", self.bids), ("a", self.asks)):
            for p, q in data[side]:
                if Decimal(q) == 0:
                    book.pop(Decimal(p), None)
                else:
                    book[Decimal(p)] = Decimal(q)

    def same_as(self, snapshot: dict[str, Any]) -> bool:
        return (int(snapshot["lastUpdateId"]) == self.last_u
                and self.bids == {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
                and self.asks == {Decimal(p): Decimal(q) for p, q in snapshot["asks"]})


def streams(emits: list[Emit], prefix: str) -> list[dict[str, Any]]:
    return [e.data for e in emits if e.stream.startswith(prefix)]

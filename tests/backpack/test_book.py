"""The local order book: snapshot + delta continuity against a dict model, and book queries."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine.backpack.book import Applied, Buffered, Ignored, OrderBook, ResyncNeeded
from engine.backpack.events import Depth, Levels, Side
from engine.backpack.responses import DepthSnapshot, decode_depth

D = Decimal
SYMBOL = "BTC_USDC_PERP"


def delta(first: int, last: int, bids: Levels = (), asks: Levels = (), symbol: str = SYMBOL) -> Depth:
    return Depth(
        stream=f"depth.{symbol}",
        symbol=symbol,
        window_ms=None,
        event_time_us=0,
        engine_time_us=0,
        first_update_id=first,
        last_update_id=last,
        bids=bids,
        asks=asks,
    )


def snapshot(last_id: int, bids: Levels, asks: Levels) -> DepthSnapshot:
    return DepthSnapshot(last_update_id=last_id, timestamp_us=0, bids=bids, asks=asks)


DOC_DEPTH = decode_depth(
    '{"asks":[["100.65","65.5"],["100.66","240.6"],["100.67","30.64"]],'
    '"bids":[["100.62","168.89"],["100.63","149.64"],["100.64","67.95"]],'
    '"lastUpdateId":"4324522523","timestamp":1788285151254895}'
)


def synced_book() -> OrderBook:
    book = OrderBook(SYMBOL)
    assert book.apply_snapshot(DOC_DEPTH) == Applied(update_id=4324522523)
    return book


# --- stateful model test ----------------------------------------------------------------------------------

# Bids live strictly below 100 and asks strictly above, so the exchange model is never crossed.
bid_prices = st.integers(900, 999).map(lambda i: D(i) / 10)
ask_prices = st.integers(1001, 1100).map(lambda i: D(i) / 10)
sizes = st.sampled_from([D("0"), D("0.00000"), D("1"), D("2.5"), D("0.00100"), D("7.000")])
changes = st.lists(st.tuples(bid_prices, sizes), max_size=5)
ask_changes = st.lists(st.tuples(ask_prices, sizes), max_size=5)


def _pad(price: Decimal, pad: bool) -> Decimal:
    # The WS pads decimals and REST does not: the same level must be found either way.
    return price.quantize(D("0.001")) if pad else price


class BookMachine(RuleBasedStateMachine):
    """An exchange emits consecutive depth frames; the client book sees them in order, with skips."""

    def __init__(self) -> None:
        super().__init__()
        self.book = OrderBook(SYMBOL)
        self.ex_bids: dict[Decimal, Decimal] = {}
        self.ex_asks: dict[Decimal, Decimal] = {}
        self.ex_id = 100
        self.history: dict[int, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {100: ({}, {})}
        self.pending: list[Depth] = []
        # The recipe's buffer, as the specification describes it: frames seen while waiting for a snapshot.
        self.model_buffer: list[Depth] = []
        self.model_last: int | None = None
        self.model_bridged = False
        self.last_delivered: Depth | None = None

    @rule(bids=changes, asks=ask_changes, span=st.integers(1, 3), pad=st.booleans())
    def exchange_update(
        self, bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]], span: int, pad: bool
    ) -> None:
        for side, levels in ((self.ex_bids, bids), (self.ex_asks, asks)):
            for price, size in levels:
                if size:
                    side[price] = size
                else:
                    side.pop(price, None)
        frame = delta(
            self.ex_id + 1,
            self.ex_id + span,
            tuple((_pad(p, pad), s) for p, s in bids),
            tuple((_pad(p, pad), s) for p, s in asks),
        )
        self.ex_id += span
        self.history[self.ex_id] = (dict(self.ex_bids), dict(self.ex_asks))
        self.pending.append(frame)

    def _reset_model(self, keep: list[Depth]) -> None:
        self.model_last = None
        self.model_bridged = False
        self.model_buffer = keep

    def _expect_continue(self, frame: Depth) -> type:
        assert self.model_last is not None
        last = self.model_last
        if frame.last_update_id <= last:
            return Ignored
        if frame.first_update_id == last + 1 or (
            not self.model_bridged and frame.first_update_id <= last + 1
        ):
            self.model_last = frame.last_update_id
            self.model_bridged = True
            return Applied
        self._reset_model([frame])
        return ResyncNeeded

    @precondition(lambda self: self.pending)
    @rule()
    def deliver(self) -> None:
        self._deliver(self.pending.pop(0))

    @precondition(lambda self: len(self.pending) >= 2)
    @rule()
    def deliver_merged(self) -> None:
        """Two consecutive frames merged into one (U < u), as the server does under load."""
        a, b = self.pending.pop(0), self.pending.pop(0)
        self._deliver(delta(a.first_update_id, b.last_update_id, a.bids + b.bids, a.asks + b.asks))

    @precondition(
        lambda self: (
            self.last_delivered is not None
            and self.pending
            # A truthful frame covers every change in its id range, so nothing may be skipped in between.
            and self.pending[0].first_update_id == self.last_delivered.last_update_id + 1
        )
    )
    @rule()
    def deliver_overlapping(self) -> None:
        """A frame re-covering the last delivered ids plus the next ones: an overlap, never applied when synced."""
        assert self.last_delivered is not None
        a, b = self.last_delivered, self.pending.pop(0)
        self._deliver(delta(a.first_update_id, b.last_update_id, a.bids + b.bids, a.asks + b.asks))

    @precondition(lambda self: self.last_delivered is not None)
    @rule()
    def redeliver(self) -> None:
        """A duplicate of the last frame."""
        assert self.last_delivered is not None
        self._deliver(self.last_delivered)

    def _deliver(self, frame: Depth) -> None:
        self.last_delivered = frame
        if self.model_last is None:
            self.model_buffer.append(frame)
            expected: type = Buffered
        else:
            expected = self._expect_continue(frame)
        outcome = self.book.apply_delta(frame)
        assert type(outcome) is expected, (outcome, expected)
        if isinstance(outcome, Applied):
            assert outcome.update_id == frame.last_update_id

    @precondition(lambda self: self.pending)
    @rule()
    def skip(self) -> None:
        """Lose one frame on the way: the book must notice when it matters."""
        self.pending.pop(0)

    @rule(data=st.data())
    def take_snapshot(self, data: st.DataObject) -> None:
        ids = sorted(self.history)
        snap_id = data.draw(st.sampled_from(ids[-6:]))
        bids, asks = self.history[snap_id]
        snap = snapshot(snap_id, tuple(sorted(bids.items())), tuple(sorted(asks.items())))
        self.model_last = snap_id
        self.model_bridged = False
        buffered = [f for f in self.model_buffer if f.last_update_id > snap_id]
        self.model_buffer = []
        expected: type = Applied
        expected_id = snap_id
        for frame in buffered:
            expected = self._expect_continue(frame)
            if expected is ResyncNeeded:
                break
            expected_id = frame.last_update_id
        outcome = self.book.apply_snapshot(snap)
        assert type(outcome) is expected, (outcome, expected)
        if isinstance(outcome, Applied):
            assert outcome.update_id == expected_id

    @invariant()
    def book_equals_exchange_state_at_its_id(self) -> None:
        """Whenever the book has an id, its levels are exactly the exchange's levels at that id."""
        last = self.book.last_update_id
        assert last == self.model_last
        if last is None:
            assert self.book.best_bid() is None
            assert self.book.best_ask() is None
            return
        bids, asks = self.history[last]
        assert dict(self.book.bids()) == bids
        assert dict(self.book.asks()) == asks
        assert [p for p, _ in self.book.bids()] == sorted(bids, reverse=True)
        assert [p for p, _ in self.book.asks()] == sorted(asks)


BookMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestBookAgainstModel = BookMachine.TestCase


# --- targeted cases ---------------------------------------------------------------------------------------


def test_buffer_then_snapshot_replays_frames_after_it() -> None:
    """Deltas before the snapshot are buffered; those covered by lastUpdateId are dropped, the rest replayed."""
    book = OrderBook(SYMBOL)
    assert book.apply_delta(delta(4324522520, 4324522522, asks=((D("100.65"), D("1")),))) == Buffered(
        pending=1
    )
    assert book.apply_delta(delta(4324522523, 4324522524, bids=((D("100.64"), D("0")),))) == Buffered(
        pending=2
    )
    assert book.apply_snapshot(DOC_DEPTH) == Applied(update_id=4324522524)
    assert book.best_bid() == (D("100.63"), D("149.64"))
    assert book.best_ask() == (D("100.65"), D("65.5"))
    assert book.is_synced


def test_snapshot_behind_the_stream_needs_resync() -> None:
    """If the first buffered frame starts after lastUpdateId + 1, the snapshot is too old: ResyncNeeded."""
    book = OrderBook(SYMBOL)
    book.apply_delta(delta(4324522530, 4324522531))
    outcome = book.apply_snapshot(DOC_DEPTH)
    assert isinstance(outcome, ResyncNeeded)
    assert not book.is_synced
    assert book.best_bid() is None


def test_snapshot_ahead_keeps_waiting_for_a_bridging_frame() -> None:
    """Frames wholly before the snapshot are ignored until one bridges lastUpdateId + 1."""
    book = OrderBook(SYMBOL)
    book.apply_snapshot(DOC_DEPTH)
    assert isinstance(book.apply_delta(delta(4324522520, 4324522523)), Ignored)
    assert book.apply_delta(delta(4324522522, 4324522525)) == Applied(update_id=4324522525)
    assert isinstance(book.apply_delta(delta(4324522525, 4324522526)), ResyncNeeded)


def test_gap_after_sync_is_resync_and_keeps_the_frame() -> None:
    """A skipped id is ResyncNeeded; the frame past the gap is buffered for the next snapshot."""
    book = synced_book()
    assert book.apply_delta(delta(4324522524, 4324522524)) == Applied(update_id=4324522524)
    outcome = book.apply_delta(delta(4324522526, 4324522526, bids=((D("100.5"), D("3")),)))
    assert isinstance(outcome, ResyncNeeded)
    assert "gap" in outcome.reason
    fresh = snapshot(4324522525, DOC_DEPTH.bids, DOC_DEPTH.asks)
    assert book.apply_snapshot(fresh) == Applied(update_id=4324522526)
    assert D("100.5") in dict(book.bids())


def test_crossed_delta_is_resync() -> None:
    """A delta that leaves best bid >= best ask is never patched over."""
    book = synced_book()
    outcome = book.apply_delta(delta(4324522524, 4324522524, bids=((D("100.65"), D("1")),)))
    assert isinstance(outcome, ResyncNeeded)
    assert "crossed" in outcome.reason
    assert book.last_update_id is None


def test_crossed_snapshot_is_resync() -> None:
    """A crossed snapshot is refused."""
    book = OrderBook(SYMBOL)
    bad = snapshot(5, ((D("101"), D("1")),), ((D("100"), D("1")),))
    assert isinstance(book.apply_snapshot(bad), ResyncNeeded)


def test_other_symbol_is_ignored() -> None:
    """A delta for another market leaves the book untouched."""
    book = synced_book()
    assert isinstance(book.apply_delta(delta(4324522524, 4324522524, symbol="ETH_USDC")), Ignored)
    assert book.last_update_id == 4324522523


def test_padded_and_unpadded_prices_are_one_level() -> None:
    """WS "100.640" updates the REST level "100.64"; "0.00000" removes it."""
    book = synced_book()
    book.apply_delta(delta(4324522524, 4324522524, bids=((D("100.640"), D("1.000")),)))
    assert book.best_bid() == (D("100.64"), D("1"))
    book.apply_delta(delta(4324522525, 4324522525, bids=((D("100.6400"), D("0.00000")),)))
    assert book.best_bid() == (D("100.63"), D("149.64"))
    assert book.statistics().bid_levels == 2


def test_queries_on_the_documented_snapshot() -> None:
    """Best levels, spread, mid, top N and imbalance of the section 3.4 snapshot."""
    book = synced_book()
    assert book.spread() == D("0.01")
    assert book.mid() == D("100.645")
    bids, asks = book.top(2)
    assert bids == ((D("100.64"), D("67.95")), (D("100.63"), D("149.64")))
    assert asks == ((D("100.65"), D("65.5")), (D("100.66"), D("240.6")))
    total_bid = D("168.89") + D("149.64") + D("67.95")
    total_ask = D("65.5") + D("240.6") + D("30.64")
    assert book.imbalance(10) == (total_bid - total_ask) / (total_bid + total_ask)
    assert book.imbalance(1) == (D("67.95") - D("65.5")) / (D("67.95") + D("65.5"))


def test_fill_price_and_slippage() -> None:
    """Walking the book gives the volume-weighted price; too large a size gives None."""
    book = synced_book()
    assert book.average_fill_price(Side.BID, D("65.5")) == D("100.65")
    expected = (D("65.5") * D("100.65") + D("34.5") * D("100.66")) / D("100")
    assert book.average_fill_price(Side.BID, D("100")) == expected
    assert book.average_fill_price(Side.ASK, D("67.95")) == D("100.64")
    assert book.average_fill_price(Side.BID, D("1000")) is None
    assert book.average_fill_price(Side.BID, D("0")) is None
    assert book.slippage_bps(Side.BID, D("1")) == (D("100.65") - D("100.645")) / D("100.645") * 10000
    assert book.slippage_bps(Side.ASK, D("1")) == (D("100.645") - D("100.64")) / D("100.645") * 10000
    assert book.slippage_bps(Side.ASK, D("10000")) is None


def test_size_within_bps() -> None:
    """Sizes within N bps of mid include exactly the levels inside the band."""
    book = synced_book()
    # 1 bp of 100.645 is ~0.01: covers 100.64 and 100.65 only.
    assert book.size_within_bps(1) == (D("67.95"), D("65.5"))
    assert book.size_within_bps(100) == (
        D("168.89") + D("149.64") + D("67.95"),
        D("65.5") + D("240.6") + D("30.64"),
    )
    assert OrderBook(SYMBOL).size_within_bps(10) is None


@pytest.mark.parametrize("n", [0, 1, 3, 10])
def test_top_n_is_bounded(n: int) -> None:
    """top(n) returns at most n levels per side, best first."""
    bids, asks = synced_book().top(n)
    assert len(bids) == min(n, 3)
    assert len(asks) == min(n, 3)

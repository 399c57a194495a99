"""Pre-trade risk rules as pure functions over a frozen :class:`RiskBook` (no trio, no clock: time is passed in).

Risk is separate from the strategy and has the last word: every intent is checked here before it can become
an order, against risk's own reading of the price and the account, not the strategy's projections alone.

:func:`check` evaluates, in this order, and stops at the first failure (the order is part of the contract,
so a block always names the most basic problem):

1. ``KILL_SWITCH`` / ``HALTED``: the drawdown kill switch is latched, or the operator halted. Both stop new
   *entries*; a reduce-only order only lowers exposure, so it is never stopped by a halt.
2. ``INVALID_INTENT``: non-positive quantity or limit price, an unknown side, or a SELL that is not reduce-only
   (this strategy never sells except to deleverage).
3. ``STALE_PRICE``: no usable price for the intent's symbol (a :class:`~engine.market.prices.Stale` quote, no
   market view, or a view too old). A stale quote carries no number, so nothing below can be evaluated for an
   entry; with ``block_on_stale = false`` only reduce-only orders may pass on a stale price.
4. ``ACCOUNT_UNKNOWN``: no account snapshot, one not yet reconciled with the exchange, one for another symbol,
   or (for an entry) one without a mark-to-market equity.
5. ``PRICE_SANITY``: the limit price is further than ``price_band_frac`` from the fresh price.
6. ``ORDER_NOTIONAL``: ``qty x max(price, limit)`` above ``max_order_notional_usdc`` (0 = off).
7. ``REDUCE_EXCEEDS_POSITION``: a reduce-only order larger than the position (reduce-only orders skip 8-10).
8. ``POSITION_NOTIONAL``: ``(position + qty) x price`` above ``max_position_notional_usdc`` (0 = off).
9. ``LEVERAGE``: projected account leverage ``(position + qty) x price / equity`` (or the strategy's own
   projection, whichever is higher) above ``max_account_leverage``, or equity not positive.
10. ``LIQ_UNKNOWN`` / ``LIQ_DISTANCE`` (perpetuals only; spot cannot be liquidated): the projected liquidation
    price, the higher of risk's own estimate and the strategy's projection, must satisfy
    ``(price - liq) / price >= min_liq_distance_frac``. No estimate at all blocks.
11. ``OPEN_ORDERS``: the account already has ``max_open_orders`` resting orders.
12. ``RATE_LIMIT``: ``max_orders_per_minute`` approvals already inside the sliding 60 s window ending now.

Invariants: an approval is recorded in the window at ``now_ms``; every block increments its code's counter;
the kill switch trips exactly when ``1 - equity / peak >= kill_switch_drawdown_frac`` (peak = highest equity
seen since start or the last resume from a trip) and stays latched until :func:`resume`, which re-bases the peak on the
current equity when it was the kill switch that was latched (the operator accepts the loss; otherwise the
switch would re-trip at once).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from engine.errors import InvariantViolation
from engine.events import AccountSnapshot, Proposal, RiskState
from engine.market.prices import Price, Quote, Stale

if TYPE_CHECKING:
    from engine.config import RiskConfig
    from engine.market.view import MarketView

__all__ = [
    "RATE_WINDOW_MS",
    "Approve",
    "Block",
    "BlockCode",
    "Outcome",
    "RiskBook",
    "RiskLimits",
    "Verdict",
    "check",
    "current_quote",
    "halt",
    "is_perp",
    "observe_equity",
    "resume",
    "risk_state",
]

_ZERO = Decimal(0)
_ONE = Decimal(1)
# The order-rate limit is "per minute" by definition of its config key.
RATE_WINDOW_MS = 60_000


class BlockCode(enum.StrEnum):
    KILL_SWITCH = "KILL_SWITCH"
    HALTED = "HALTED"
    INVALID_INTENT = "INVALID_INTENT"
    STALE_PRICE = "STALE_PRICE"
    ACCOUNT_UNKNOWN = "ACCOUNT_UNKNOWN"
    PRICE_SANITY = "PRICE_SANITY"
    ORDER_NOTIONAL = "ORDER_NOTIONAL"
    REDUCE_EXCEEDS_POSITION = "REDUCE_EXCEEDS_POSITION"
    POSITION_NOTIONAL = "POSITION_NOTIONAL"
    LEVERAGE = "LEVERAGE"
    LIQ_UNKNOWN = "LIQ_UNKNOWN"
    LIQ_DISTANCE = "LIQ_DISTANCE"
    OPEN_ORDERS = "OPEN_ORDERS"
    RATE_LIMIT = "RATE_LIMIT"


@attrs.frozen(kw_only=True)
class Approve:
    """The intent may be sent; ``price`` is the fresh price it was checked against (None: reduce-only on stale)."""

    price: Decimal | None


@attrs.frozen(kw_only=True)
class Block:
    code: BlockCode
    detail: str


Verdict = Approve | Block


@attrs.frozen(kw_only=True)
class RiskLimits:
    """The limits :func:`check` applies: the ``[risk]`` section plus two freshness/sanity bounds.

    ``price_band_frac``: largest allowed ``|limit - price| / price``. ``max_price_age_ms``: oldest price (its age
    in the view plus the view's own age) that still counts as fresh.
    """

    max_account_leverage: Decimal
    min_liq_distance_frac: Decimal
    max_position_notional_usdc: Decimal
    max_order_notional_usdc: Decimal
    max_open_orders: int
    max_orders_per_minute: int
    kill_switch_drawdown_frac: Decimal
    block_on_stale: bool
    price_band_frac: Decimal
    max_price_age_ms: int

    def __attrs_post_init__(self) -> None:
        if not _ZERO < self.price_band_frac <= _ONE:
            raise ValueError(f"price_band_frac must be in (0, 1]; got {self.price_band_frac}")
        if self.max_price_age_ms <= 0:
            raise ValueError(f"max_price_age_ms must be > 0; got {self.max_price_age_ms}")
        if self.max_orders_per_minute < 1 or self.max_open_orders < 1:
            raise ValueError("max_orders_per_minute and max_open_orders must be >= 1")

    @classmethod
    def from_config(cls, cfg: RiskConfig, *, price_band_frac: Decimal, max_price_age_ms: int) -> RiskLimits:
        return cls(
            max_account_leverage=cfg.max_account_leverage,
            min_liq_distance_frac=cfg.min_liq_distance_frac,
            max_position_notional_usdc=cfg.max_position_notional_usdc,
            max_order_notional_usdc=cfg.max_order_notional_usdc,
            max_open_orders=cfg.max_open_orders,
            max_orders_per_minute=cfg.max_orders_per_minute,
            kill_switch_drawdown_frac=cfg.kill_switch_drawdown_frac,
            block_on_stale=cfg.block_on_stale,
            price_band_frac=price_band_frac,
            max_price_age_ms=max_price_age_ms,
        )


@attrs.frozen(kw_only=True)
class RiskBook:
    """Everything risk remembers. ``halt_reason`` is set while the operator halt is on; ``kill_reason`` while
    the kill switch is latched. ``approved_ms`` holds the approval times inside the rate window, oldest first."""

    halt_reason: str | None = None
    kill_reason: str | None = None
    peak_equity: Decimal = _ZERO
    equity: Decimal | None = None
    approved_ms: tuple[int, ...] = ()
    blocks: tuple[tuple[str, int], ...] = ()
    approvals: int = 0

    @property
    def halted(self) -> bool:
        return self.halt_reason is not None or self.kill_reason is not None

    @property
    def kill_switch(self) -> bool:
        return self.kill_reason is not None

    @property
    def drawdown_frac(self) -> Decimal:
        if self.equity is None or self.peak_equity <= 0:
            return _ZERO
        return max(_ZERO, _ONE - self.equity / self.peak_equity)

    def block_count(self, code: BlockCode) -> int:
        return dict(self.blocks).get(code.value, 0)

    def persisted(self) -> dict[str, Any]:
        """The part that must survive restarts (peak, latches, rate window), as a JSON-able mapping."""
        return {"halt_reason": self.halt_reason, "kill_reason": self.kill_reason,
                "peak_equity": str(self.peak_equity), "approved_ms": list(self.approved_ms)}

    @classmethod
    def restored(cls, blob: Mapping[str, Any]) -> RiskBook:
        """Inverse of :meth:`persisted`; raises ValueError on a malformed blob."""
        halt_reason = blob.get("halt_reason")
        kill_reason = blob.get("kill_reason")
        peak = blob.get("peak_equity")
        approved = blob.get("approved_ms", [])
        if (not isinstance(peak, str) or not all(r is None or isinstance(r, str) for r in (halt_reason, kill_reason))
                or not isinstance(approved, list) or not all(type(t) is int for t in approved)):
            raise ValueError(f"malformed risk state blob: {dict(blob)!r}")
        try:
            peak_equity = Decimal(peak)
        except ArithmeticError as exc:
            raise ValueError(f"malformed peak_equity in risk state: {peak!r}") from exc
        if not peak_equity.is_finite() or peak_equity < 0:
            raise ValueError(f"malformed peak_equity in risk state: {peak!r}")
        return cls(halt_reason=halt_reason, kill_reason=kill_reason, peak_equity=peak_equity,
                   approved_ms=tuple(approved))

    @classmethod
    def from_state(cls, state: RiskState) -> RiskBook:
        """Rebuild from a published :class:`RiskState` (an actor restart inside one engine run)."""
        return cls(
            halt_reason=(state.halt_reason or "halted") if state.halted and not state.kill_switch else None,
            kill_reason=(state.halt_reason or "kill switch") if state.kill_switch else None,
            peak_equity=state.peak_equity,
            equity=state.equity,
            blocks=state.blocks,
            approvals=state.approvals,
        )


@attrs.frozen(kw_only=True)
class Outcome:
    verdict: Verdict
    book: RiskBook


def is_perp(symbol: str) -> bool:
    """Backpack names perpetual markets ``BASE_QUOTE_PERP``; everything else here is spot."""
    return symbol.endswith("_PERP")


def current_quote(view: MarketView | None, symbol: str, view_age_s: float, max_price_age_ms: int) -> Quote:
    """The price risk checks ``symbol`` against, aged by ``view_age_s``; a :class:`Stale` status when there is none.

    Perpetuals use the mark price (what liquidation follows), falling back to the market's trade/mid price;
    spot uses the trade/mid price. A price's age is its age in the view plus the view's own age
    (``view_age_s``, measured by the caller on the same monotonic clock as ``view.as_of_s``, never on the
    exchange's time axis, which runs ahead during a fast replay), so a view that stopped being refreshed goes
    stale here even though it still holds a ``Price``.
    """
    if view is None:
        return Stale(reason="no market view yet", age_s=None)
    try:
        state = view.market(symbol)
    except KeyError:
        return Stale(reason=f"{symbol} is not in the market view", age_s=None)
    quote: Quote = state.price
    if is_perp(symbol) and isinstance(state.mark, Price):
        quote = state.mark
    if isinstance(quote, Stale):
        return quote
    age_ms = (quote.age_s + max(0.0, view_age_s)) * 1000
    if age_ms > max_price_age_ms:
        return Stale(reason=f"{symbol} price is {age_ms / 1000:.1f}s old (limit {max_price_age_ms / 1000:.1f}s)",
                     age_s=age_ms / 1000)
    return quote


def _blocked(book: RiskBook, code: BlockCode, detail: str) -> Outcome:
    counts = dict(book.blocks)
    counts[code.value] = counts.get(code.value, 0) + 1
    return Outcome(verdict=Block(code=code, detail=detail), book=attrs.evolve(book, blocks=tuple(sorted(counts.items()))))


def _window(book: RiskBook, now_ms: int) -> tuple[int, ...]:
    # Approvals stamped after now_ms (a wall clock stepping back) stay in the window: that only errs strict.
    return tuple(t for t in book.approved_ms if t > now_ms - RATE_WINDOW_MS)


def _own_liq_estimate(account: AccountSnapshot, qty: Decimal, fill_px: Decimal, price: Decimal) -> Decimal | None:
    """Liquidation price of the long after buying ``qty`` at ``fill_px``, marked at ``price`` (cross margin).

    Solves ``equity' + Q' (L - P) = mmf Q' L`` for L, with ``Q' = Q + q`` and ``equity'`` the equity less the
    fill's slippage above the price; 0 when the equity covers the whole position.
    """
    if account.mmf is None or account.equity is None:
        return None
    new_qty = account.position_qty + qty
    if new_qty <= 0:
        return _ZERO
    equity_after = account.equity - qty * max(_ZERO, fill_px - price)
    return max(_ZERO, (new_qty * price - equity_after) / (new_qty * (_ONE - account.mmf)))


def check(book: RiskBook, proposal: Proposal, quote: Quote, account: AccountSnapshot | None, now_ms: int,
          limits: RiskLimits) -> Outcome:
    """Approve or block one proposal (see the module docstring for the order of the checks)."""
    intent = proposal.intent
    entry = not intent.reduce_only
    if entry and book.kill_reason is not None:
        return _blocked(book, BlockCode.KILL_SWITCH, f"kill switch latched: {book.kill_reason}")
    if entry and book.halt_reason is not None:
        return _blocked(book, BlockCode.HALTED, f"halted: {book.halt_reason}")

    if intent.side not in ("BUY", "SELL") or (intent.side == "SELL" and entry):
        return _blocked(book, BlockCode.INVALID_INTENT, f"side {intent.side!r} with reduce_only={intent.reduce_only}")
    if not (intent.qty.is_finite() and intent.qty > 0 and intent.limit_price.is_finite() and intent.limit_price > 0):
        return _blocked(book, BlockCode.INVALID_INTENT, f"qty {intent.qty} / limit price {intent.limit_price}")

    price: Decimal | None = None
    if isinstance(quote, Price):
        price = quote.value
    elif entry or limits.block_on_stale:
        return _blocked(book, BlockCode.STALE_PRICE, f"{intent.symbol}: {quote.reason}")

    if account is None:
        return _blocked(book, BlockCode.ACCOUNT_UNKNOWN, "no account snapshot yet")
    if not account.reconciled:
        return _blocked(book, BlockCode.ACCOUNT_UNKNOWN, "account not yet reconciled with the exchange")
    if account.symbol != intent.symbol:
        return _blocked(book, BlockCode.ACCOUNT_UNKNOWN, f"account snapshot is for {account.symbol}, "
                                                         f"intent for {intent.symbol}")
    if entry and account.equity is None:
        return _blocked(book, BlockCode.ACCOUNT_UNKNOWN, "account equity unknown")

    if price is not None:
        deviation = abs(intent.limit_price - price) / price
        if deviation > limits.price_band_frac:
            return _blocked(book, BlockCode.PRICE_SANITY, f"limit {intent.limit_price} is {deviation:.4f} from "
                                                          f"price {price} (band {limits.price_band_frac})")
    worst_px = intent.limit_price if price is None else max(price, intent.limit_price)
    order_notional = intent.qty * worst_px
    if _ZERO < limits.max_order_notional_usdc < order_notional:
        return _blocked(book, BlockCode.ORDER_NOTIONAL, f"order notional {order_notional} > "
                                                        f"{limits.max_order_notional_usdc}")

    if not entry:
        if intent.qty > account.position_qty:
            return _blocked(book, BlockCode.REDUCE_EXCEEDS_POSITION,
                            f"reduce-only qty {intent.qty} > position {account.position_qty}")
    else:
        if price is None or account.equity is None:
            raise InvariantViolation("entry reached the position checks without a price or an equity")
        new_qty = account.position_qty + intent.qty
        position_notional = new_qty * price
        if _ZERO < limits.max_position_notional_usdc < position_notional:
            return _blocked(book, BlockCode.POSITION_NOTIONAL, f"position notional after fill {position_notional} "
                                                               f"> {limits.max_position_notional_usdc}")
        if account.equity <= 0:
            return _blocked(book, BlockCode.LEVERAGE, f"equity {account.equity} is not positive")
        leverage = max(position_notional / account.equity, intent.projected.account_leverage)
        if leverage > limits.max_account_leverage:
            return _blocked(book, BlockCode.LEVERAGE, f"projected account leverage {leverage:.4f} > "
                                                      f"{limits.max_account_leverage}")
        if is_perp(intent.symbol):
            estimates = [e for e in (_own_liq_estimate(account, intent.qty, worst_px, price),
                                     intent.projected.liq_price) if e is not None]
            if not estimates:
                return _blocked(book, BlockCode.LIQ_UNKNOWN, "no liquidation estimate (no mmf, no projection)")
            liq = max(estimates)
            distance = (price - liq) / price
            if distance < limits.min_liq_distance_frac:
                return _blocked(book, BlockCode.LIQ_DISTANCE, f"projected liquidation {liq:.2f} is {distance:.4f} "
                                                              f"below price {price} (min "
                                                              f"{limits.min_liq_distance_frac})")

    if account.open_orders >= limits.max_open_orders:
        return _blocked(book, BlockCode.OPEN_ORDERS, f"{account.open_orders} open orders (max "
                                                     f"{limits.max_open_orders})")
    window = _window(book, now_ms)
    if len(window) >= limits.max_orders_per_minute:
        return _blocked(book, BlockCode.RATE_LIMIT, f"{len(window)} orders in the last minute (max "
                                                    f"{limits.max_orders_per_minute})")
    return Outcome(verdict=Approve(price=price),
                   book=attrs.evolve(book, approved_ms=(*window, now_ms), approvals=book.approvals + 1))


def observe_equity(book: RiskBook, equity: Decimal, limits: RiskLimits) -> tuple[RiskBook, bool]:
    """Record a mark-to-market equity; returns the new book and whether this observation tripped the switch.

    The peak only rises. The switch trips when the drawdown from the peak reaches the threshold (0 = off) and
    stays latched; while latched, the peak is left alone so the drawdown that tripped it stays visible.
    """
    peak = book.peak_equity if book.kill_switch else max(book.peak_equity, equity)
    book = attrs.evolve(book, equity=equity, peak_equity=peak)
    frac = limits.kill_switch_drawdown_frac
    if book.kill_switch or frac <= 0 or peak <= 0:
        return book, False
    drawdown = book.drawdown_frac
    if drawdown >= frac:
        reason = f"drawdown {drawdown:.4f} of equity {equity} from peak {peak} >= {frac}"
        return attrs.evolve(book, kill_reason=reason), True
    return book, False


def halt(book: RiskBook, reason: str) -> RiskBook:
    """Operator halt: stop new entries until :func:`resume`."""
    return attrs.evolve(book, halt_reason=reason or "operator")


def resume(book: RiskBook) -> RiskBook:
    """Clear the operator halt and the kill switch.

    Resuming from a tripped kill switch re-bases the peak on the current equity (when known and positive):
    the operator accepts the loss, otherwise the switch would trip again at once. Resuming from an operator
    halt alone keeps the peak, so a halt/resume cycle cannot weaken the kill switch.
    """
    rebase = book.kill_switch and book.equity is not None and book.equity > 0
    peak = book.equity if rebase and book.equity is not None else book.peak_equity
    return attrs.evolve(book, halt_reason=None, kill_reason=None, peak_equity=peak)


def risk_state(book: RiskBook, now_ms: int) -> RiskState:
    """The :class:`RiskState` risk publishes for this book."""
    return RiskState(
        halted=book.halted,
        halt_reason=book.kill_reason if book.kill_reason is not None else book.halt_reason,
        kill_switch=book.kill_switch,
        peak_equity=book.peak_equity,
        equity=book.equity,
        drawdown_frac=book.drawdown_frac,
        blocks=book.blocks,
        approvals=book.approvals,
        as_of_ms=now_ms,
    )

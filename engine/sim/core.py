"""The pure core of the Backpack-compatible simulated exchange.

Owns :class:`SimExchange`: two markets (``BTC_USDC`` spot and ``BTC_USDC_PERP``) driven by one replayed real
BTC price path, their order books, public trades, ticker/markPrice/openInterest/funding/liquidation data,
and the simulated accounts (balances, orders, fills, perp positions with cross margin). The server
(``engine/sim`` server modules) drives it: it passes the current time on the market's time axis
(integer microseconds) into every call and routes the returned :class:`Emit` values to WebSocket
subscribers. No trio, no sockets, no clock reads in here.

Time axis: historical candle time + ``SimParams.time_shift_us``. Any shift works; a whole number of minutes
(see :func:`shift_for`) keeps the replayed candles on kline bucket boundaries, a whole number of days does
the same for the daily history. Funding settles on the hours of the shifted axis. Before the replay start nothing moves; after the last candle the market
freezes at the last price.

Public API (the server contract plus a few helpers):

* ``SimParams`` (``SimParams.from_config(cfg, time_shift_us=...)`` maps the server's ``[simulator]`` section),
  ``SimExchange(params)``, ``Emit``, ``SimApiError`` (``.status``, ``.code``, ``.message``, ``.body()``);
* time: ``start_time_us()``, ``end_time_us()``, ``now_us()``, ``step(now_us)``; ``shift_for(start_ms, now_us)``
  gives a minute-aligned shift, ``iso_to_ms(text)`` parses the configured start;
* public REST views: ``markets``, ``market``, ``assets``, ``securities`` (always ``[]``; ccxt asks for it while
  loading markets), ``status``, ``ticker``, ``tickers``, ``depth``, ``klines`` (``1s`` comes from the path
  ticks, at most 1000 rows), ``trades``, ``mark_prices``, ``open_interest``, ``funding_rates``;
* private: ``capital``, ``collateral``, ``account``, ``update_account`` (PATCH ``leverageLimit``),
  ``positions``, ``position_snapshot_emits``, ``execute_order(s)``, ``cancel_order``, ``cancel_all``,
  ``get_order``, ``open_orders``, ``order_history``, ``fill_history``, ``funding_history``;
* streams emitted by ``step`` and the order calls: ``depth.S``, ``bookTicker.S``, ``trade.S``, ``ticker.S`` and
  ``markPrice.S`` (each second), ``openInterest.S`` (each minute), ``kline.<interval>.S`` (every interval in
  ``KLINE_STREAM_INTERVALS``, when the candle changed, at most once per second, plus ``X=true`` at close),
  ``liquidation`` (all markets on one stream), and the private ``account.orderUpdate``,
  ``account.balanceUpdate``, ``account.positionUpdate``.

Rules kept here (``backpack-protocol.md`` sections 3-8):

* decimals are strings: REST unpadded, WebSocket depth/bookTicker/trade/order payloads padded to tick/step;
  E/T are integer microseconds, ``markPrice.n`` milliseconds;
* one update-id counter per market shared by depth frames and bookTicker; every depth frame takes exactly one
  id (``U == u == previous u + 1``); ``depth()`` returns exactly the book those frames build;
* every emit a call produces is returned by that call, except when the call raises :class:`SimApiError`:
  then the emits it produced while bringing the market up to ``now_us`` are returned by the next call;
* private events per order: ``orderAccepted`` -> ``orderFill``* -> (``orderCancelled`` | ``orderExpired``),
  then ``balanceUpdate`` per changed asset and ``positionUpdate`` per changed perp position;
* a taker fills against the book (synthetic levels and other users' resting orders); a resting order fills
  in full, as maker at its own price, when the path trades at or through its price;
* self-trade prevention applies only between one account's own orders (the synthetic liquidity and other
  accounts are other parties);
* perp collateral is the USDC balance (BTC held on spot is not used as collateral: weight 0); realised
  PnL and funding settle into USDC immediately; an account whose margin fraction falls below its
  maintenance fraction is liquidated at the perp price with a 1 % liquidation fee (capped at what the
  account still has: the simulated insurance fund absorbs any deficit, so balances never go negative);
* large jumps of ``now_us`` are fast-forwarded candle by candle: a candle is replayed tick by tick only if
  something can happen inside it (a resting order, a crowd or user liquidation price inside its range);
  path trades of skipped candles are not generated, ticker/markPrice are emitted once for the latest second
  and openInterest once for the latest minute; funding is settled for every hour crossed.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Protocol

import attrs

from engine.sim.accounts import Account, Position
from engine.sim.marketdata import (
    DEFAULT_DAILY_FILE,
    DEFAULT_MINUTE_FILE,
    INTERVALS_MS,
    Bar,
    CandleSeries,
    aggregate,
    bucket_end_ms,
    bucket_start_ms,
    fmt_datetime_ms,
    load_candles,
)
from engine.sim.markets import DEFAULT_MARKETS, MarketSpec, assets_rows, plain
from engine.sim.matching import Book, Order, PlannedFill, mix
from engine.sim.replay import LiquidationCrowd, PricePath

__all__ = [
    "KLINE_STREAM_INTERVALS",
    "Emit",
    "SimApiError",
    "SimExchange",
    "SimConfigLike",
    "SimParams",
    "default_daily_series",
    "iso_to_ms",
    "default_minute_series",
    "shift_for",
]

ZERO = Decimal(0)
ONE = Decimal(1)
_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_MINUTE_US = 60_000_000
_INTEREST = Decimal("0.0000125")
_PREMIUM_CLAMP = Decimal("0.0005")
_RATE_BOUND = Decimal("0.01")
_LIQUIDATION_FEE = Decimal("0.01")
_U32 = 2**32
# kline streams the core pushes (1s is not: the replayed path has one tick per 5 s)
KLINE_STREAM_INTERVALS = tuple(i for i in INTERVALS_MS if i != "1s")


class SimApiError(Exception):
    """An exchange error reply: the server sends ``{"code", "message"}`` with HTTP ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@attrs.frozen(kw_only=True)
class Emit:
    """One WebSocket data message to route (the server wraps it as ``{"stream", "data"}``).

    Private emits carry the owning ``account`` (API key) and the base stream name
    (``account.orderUpdate``, ``account.positionUpdate``, ``account.balanceUpdate``); the server also
    delivers order and position emits to ``<stream>.<data["s"]>`` subscribers.
    """

    stream: str
    data: dict[str, Any]
    account: str | None = None


@functools.cache
def default_minute_series() -> CandleSeries:
    """The bundled 1m file (2021-04-20 .. 2021-05-20, with the 2021-05-19 crash), loaded once."""
    return load_candles(DEFAULT_MINUTE_FILE)


@functools.cache
def default_daily_series() -> CandleSeries:
    """The bundled daily file (2017-08-17 .. 2026-01-19), loaded once."""
    return load_candles(DEFAULT_DAILY_FILE)


def shift_for(start_ms: int, now_us: int) -> int:
    """A valid ``time_shift_us`` that puts historical ``start_ms`` within the minute before ``now_us``."""
    return (now_us // 1000 - start_ms) // 60_000 * _MINUTE_US


class SimConfigLike(Protocol):
    """The fields of the server's ``[simulator]`` section that the core uses (duck-typed: no import cycle)."""

    seed: int
    start: str
    data: str
    initial_usdc: Decimal
    maker_fee: Decimal
    taker_fee: Decimal


def iso_to_ms(text: str) -> int:
    """``2021-05-18T00:00:00`` (naive = UTC, or with an offset) -> Unix milliseconds."""
    d = datetime.fromisoformat(text)
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return int(d.timestamp() * 1000)


@attrs.frozen(kw_only=True)
class SimParams:
    """Constructor knobs of :class:`SimExchange` (the server maps its configuration onto these)."""

    seed: int = 1
    initial_balances: Mapping[str, Decimal] = attrs.field(factory=lambda: {"USDC": Decimal(10000)})
    maker_fee: Decimal = Decimal("0.0002")  # fraction of notional, both markets
    taker_fee: Decimal = Decimal("0.0005")
    candles: CandleSeries | None = None  # minute path; None = the bundled 1m file
    daily: CandleSeries | None = None  # long daily history for klines; None = the bundled 1d file
    start_ms: int | None = None  # historical replay start; None = one day after the first candle
    time_shift_us: int = 0  # a whole number of minutes keeps kline buckets on candle boundaries
    book_levels: int = 20
    markets: tuple[MarketSpec, ...] = DEFAULT_MARKETS
    ticks_per_candle: int = 12
    crowd_per_candle: int = 2
    crowd_warmup_ms: int = 3 * _DAY_MS
    leverage_limit: Decimal = Decimal(20)
    trade_qty_fraction: float = 0.1  # path trade size = this fraction of a tick's share of candle volume

    @classmethod
    def from_config(cls, cfg: SimConfigLike, *, time_shift_us: int) -> SimParams:
        """Map the server's ``[simulator]`` section onto the core's knobs."""
        return cls(seed=cfg.seed, initial_balances={"USDC": Decimal(cfg.initial_usdc)},
                   maker_fee=Decimal(cfg.maker_fee), taker_fee=Decimal(cfg.taker_fee),
                   candles=load_candles(cfg.data) if cfg.data else None, start_ms=iso_to_ms(cfg.start),
                   time_shift_us=time_shift_us)


def _err(message: str, code: str = "INVALID_CLIENT_REQUEST", status: int = 400) -> SimApiError:
    return SimApiError(status, code, message)


_NOT_FOUND = (404, "RESOURCE_NOT_FOUND", "Not Found")


def _dec(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _err(f"Invalid {name}")
    try:
        d = Decimal(str(value))
    except InvalidOperation as exc:
        raise _err(f"Invalid {name}") from exc
    if not d.is_finite() or d <= 0:
        raise _err(f"Invalid {name}")
    return d


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise _err(f"Invalid {name}")


def _mapping(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise _err("Invalid request body")
    return body


def _int_param(params: Mapping[str, Any], name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except (TypeError, ValueError) as exc:
        raise _err(f"Invalid {name}") from exc
    if not lo <= v <= hi:
        raise _err(f"Invalid {name}")
    return v


class SimExchange:
    """The simulated exchange; see the module docstring for the rules it keeps."""

    def __init__(self, params: SimParams) -> None:
        self.params = params
        self.specs: dict[str, MarketSpec] = {m.symbol: m for m in params.markets}
        spots = [m for m in params.markets if not m.is_perp]
        perps = [m for m in params.markets if m.is_perp]
        if len(spots) != 1 or len(perps) != 1:
            raise ValueError("markets must be exactly one spot and one perp market on the same base")
        self.spot, self.perp = spots[0], perps[0]
        if self.spot.tick != self.perp.tick:
            raise ValueError("the spot and perp markets must share one tick size (one price path)")
        self.minute = params.candles if params.candles is not None else default_minute_series()
        self.daily = params.daily if params.daily is not None else default_daily_series()
        self.path = PricePath(self.minute, ticks_per_candle=params.ticks_per_candle)
        self.T = params.ticks_per_candle
        self.shift_us = params.time_shift_us
        self.shift_ms = params.time_shift_us // 1000
        first = self.minute.times[0]
        start = params.start_ms if params.start_ms is not None else first + _DAY_MS
        if not first <= start <= self.path.last_ms:
            raise ValueError(f"start_ms must lie inside the candle series [{first}, {self.path.last_ms}]; got {start}")
        self.start_hist_ms = start
        self.day_boundary_ms = start // _DAY_MS * _DAY_MS
        seed = params.seed
        self.books: dict[str, Book] = {
            m.symbol: Book(m, seed=seed, salt=n + 1, levels=params.book_levels,
                           first_update_id=1_000_000 + mix(seed, n) % 1_000_000)
            for n, m in enumerate(params.markets)
        }
        self.crowd = LiquidationCrowd(seed, per_candle=params.crowd_per_candle)
        self.accounts: dict[str, Account] = {}
        self._out: list[Emit] = []
        self._trades: dict[str, deque[tuple[int, int, int, bool, int]]] = {
            m.symbol: deque(maxlen=1000) for m in params.markets}
        self._trade_id = {m.symbol: 100_000_000 + mix(seed, 7, n) % 1_000_000 for n, m in enumerate(params.markets)}
        self._order_seq = 0
        self._next_order_id = 10_000_000_000 + mix(seed, 11) % 1_000_000_000
        self._next_position_id = 5_000_000_000
        self._next_user_id = 1_000_000
        self._ticker_cache: dict[tuple[str, str, int], tuple[int, int, int, Decimal, Decimal, int]] = {}
        self._cols: dict[str, tuple[list[int], list[int], list[int], list[int], list[Decimal]]] = {}
        self._emit_trades = True
        self._open_positions: set[tuple[str, str]] = set()
        self._klines_live: dict[tuple[str, str], list[Any]] = {}
        self._price_texts: dict[str, dict[int, str]] = {}
        self._klines_sent: dict[tuple[str, str], tuple[int, int, int, int, Decimal, int]] = {}
        self._klines_at = (-1, -1)
        # position the path at the start, warm the crowd, set the books without emitting
        ci, ck = self.path.locate(start)
        self._ci, self._ck = ci, ck
        self._warm_crowd(ci)
        self._set_prices(ci, ck)
        start_us = self._wire_us(self.path.tick_time(ci, ck))
        self._now_us = start_us
        self._last_second = start_us // 1_000_000
        self._last_oi_minute = start_us // _MINUTE_US
        self._next_funding_ms = (start_us // 1000 // _HOUR_MS + 1) * _HOUR_MS
        self.books[self.spot.symbol].move(self.price, self._phase())
        self.books[self.perp.symbol].move(self.perp_price, self._phase())
        for book in self.books.values():
            book.publish(start_us)

    # ----- time axis -----------------------------------------------------------------------------------

    def _wire_us(self, hist_ms: int) -> int:
        return hist_ms * 1000 + self.shift_us

    def start_time_us(self) -> int:
        """Wire time of the replay start."""
        return self._wire_us(self.path.tick_time(*self.path.locate(self.start_hist_ms)))

    def end_time_us(self) -> int:
        """Wire time of the last tick of the replay."""
        return self._wire_us(self.path.last_ms)

    def now_us(self) -> int:
        """The market time the core has advanced to."""
        return self._now_us

    # ----- path ----------------------------------------------------------------------------------------

    def _warm_crowd(self, ci: int) -> None:
        s = self.minute
        j = s.index_from(s.times[ci] - self.params.crowd_warmup_ms)
        for i in range(j, ci):
            self.crowd.expire(s.times[i])
            lo = self.path.perp_ticks(s.lows[i], i)
            hi = self.path.perp_ticks(s.highs[i], i)
            self.crowd.crossed(lo)
            self.crowd.crossed(hi)
            self.crowd.spawn(s.times[i] + s.interval_ms, self.path.perp_ticks(s.closes[i], i))

    def _set_prices(self, i: int, k: int) -> None:
        p = self.path.ticks(i)[k]
        self.price = p
        self.perp_price = self.path.perp_ticks(p, i)
        self._ci, self._ck = i, k

    def _phase(self) -> int:
        return self._ci * self.T + self._ck

    def _advance(self, now_us: int) -> None:
        if now_us <= self._now_us:
            return
        hist_ms = min((now_us - self.shift_us) // 1000, self.path.last_ms)
        ti, tk = self.path.locate(hist_ms)
        ci, ck = self._ci, self._ck
        if ti >= 0 and (ti, tk) > (ci, ck):
            fine = (ti - ci) * self.T + (tk - ck) <= 2 * self.T
            self._emit_trades = fine
            s = self.minute
            for i in range(ci, ti + 1):
                k0 = ck + 1 if i == ci else 0
                k1 = tk if i == ti else self.T - 1
                if k0 > k1:
                    continue
                if i != ci:
                    self._enter_candle(i)
                if fine or self._candle_active(i):
                    for k in range(k0, k1 + 1):
                        self._tick(i, k, s.times[i] + k * self.path.tick_ms)
                else:
                    self._tick(i, k1, s.times[i] + k1 * self.path.tick_ms)
            self._emit_trades = True
        self._settle_funding_upto(now_us // 1000)
        self._now_us = now_us
        phase = self._phase()
        self.books[self.spot.symbol].move(self.price, phase)
        self.books[self.perp.symbol].move(self.perp_price, phase)
        self._publish_books(now_us)
        sec = now_us // 1_000_000
        if sec > self._last_second:
            self._last_second = sec
            self._emit_seconds(now_us)
            self._emit_klines(now_us)
        minute = now_us // _MINUTE_US
        if minute > self._last_oi_minute:
            self._last_oi_minute = minute
            self._emit_open_interest(now_us)

    def _enter_candle(self, i: int) -> None:
        s = self.minute
        prev = i - 1
        self.crowd.spawn(s.times[prev] + s.interval_ms, self.path.perp_ticks(s.closes[prev], prev))
        self.crowd.expire(s.times[i])

    def _candle_active(self, i: int) -> bool:
        """Could anything happen inside candle ``i`` (fills, liquidations)?"""
        s = self.minute
        lo, hi = s.lows[i], s.highs[i]
        if self.books[self.spot.symbol].user_orders_between(lo, hi):
            return True
        plo, phi = self.path.perp_ticks(lo, i), self.path.perp_ticks(hi, i)
        if self.books[self.perp.symbol].user_orders_between(plo, phi):
            return True
        long_top, short_top = self.crowd.thresholds()
        if (long_top is not None and long_top >= plo) or (short_top is not None and short_top <= phi):
            return True
        for acct in self.accounts.values():
            if acct.positions and (self._liquidatable(acct, self.perp.tick * plo)
                                   or self._liquidatable(acct, self.perp.tick * phi)):
                return True
        return False

    def _tick(self, i: int, k: int, t_ms: int) -> None:
        t_us = self._wire_us(t_ms)
        self._settle_funding_upto(t_us // 1000)
        prev_spot, prev_perp = self.price, self.perp_price
        self._set_prices(i, k)
        vol = float(self.minute.volumes[i])
        qty = max(1, int(vol / self.T * self.params.trade_qty_fraction / float(self.spot.step)))
        self._path_trade(self.spot, self.price, qty, self.price < prev_spot, t_us)
        self._path_trade(self.perp, self.perp_price, qty, self.perp_price < prev_perp, t_us)
        for spec, px in ((self.spot, self.price), (self.perp, self.perp_price)):
            book = self.books[spec.symbol]
            if book.user_bids or book.user_asks:
                for order in book.crossed_by(px):
                    self._path_fill(order, t_us)
        for liq in self.crowd.crossed(self.perp_price):
            self._crowd_liquidation(liq.side, liq.qty_steps, t_us)
        for acct in list(self.accounts.values()):
            if acct.positions and self._liquidatable(acct, self._mark()):
                self._liquidate(acct, t_us)

    # ----- public trades -------------------------------------------------------------------------------

    def _next_trade_id(self, symbol: str) -> int:
        self._trade_id[symbol] += 1
        return self._trade_id[symbol]

    def _record_trade(self, spec: MarketSpec, price: int, qty: int, buyer_maker: bool, t_us: int,
                      buyer: str, seller: str, force_emit: bool = False) -> int:
        tid = self._next_trade_id(spec.symbol)
        self._trades[spec.symbol].append((tid, price, qty, buyer_maker, t_us // 1000))
        if self._emit_trades or force_emit:
            self._out.append(Emit(stream=f"trade.{spec.symbol}", data={
                "e": "trade", "E": t_us, "s": spec.symbol, "p": spec.wire_price(price), "q": spec.wire_qty(qty),
                "b": buyer, "a": seller, "t": tid, "m": buyer_maker, "T": t_us}))
        return tid

    def _synthetic_id(self, n: int) -> str:
        return str(20_000_000_000 + mix(self.params.seed, n) % 10_000_000_000)

    def _path_trade(self, spec: MarketSpec, price: int, qty: int, down: bool, t_us: int) -> None:
        n = self._trade_id[spec.symbol]
        self._record_trade(spec, price, qty, down, t_us, self._synthetic_id(2 * n), self._synthetic_id(2 * n + 1))

    def trades(self, symbol: str, limit: int = 100) -> list[dict[str, Any]]:
        """REST ``/trades``: newest first."""
        spec = self._spec(symbol)
        rows: list[dict[str, Any]] = []
        for tid, price, qty, bm, ts in reversed(self._trades[spec.symbol]):
            if len(rows) >= limit:
                break
            p, q = spec.price_of(price), spec.qty_of(qty)
            rows.append({"id": tid, "isBuyerMaker": bm, "price": plain(p), "quantity": plain(q),
                         "quoteQuantity": plain(p * q), "timestamp": ts})
        return rows

    # ----- markets, books ------------------------------------------------------------------------------

    def _spec(self, symbol: Any) -> MarketSpec:
        spec = self.specs.get(symbol) if isinstance(symbol, str) else None
        if spec is None:
            raise _err("Invalid market symbol")
        return spec

    def markets(self) -> list[dict[str, Any]]:
        return [m.row() for m in self.params.markets]

    def market(self, symbol: str) -> dict[str, Any]:
        return self._spec(symbol).row()

    def assets(self) -> list[dict[str, Any]]:
        syms: list[str] = []
        for m in self.params.markets:
            for a in (m.base, m.quote):
                if a not in syms:
                    syms.append(a)
        return assets_rows(syms)

    def securities(self) -> list[dict[str, Any]]:
        """``/api/v1/securities``: the simulator lists no tokenised stocks."""
        return []

    def status(self) -> dict[str, Any]:
        return {"status": "Ok", "message": None}

    def depth(self, symbol: str, limit: int = 1000) -> dict[str, Any]:
        """REST ``/depth`` (``limit`` per side; the caller enforces the enum of section 3.4)."""
        return self.books[self._spec(symbol).symbol].snapshot(limit)

    def _publish_books(self, now_us: int) -> None:
        for book in self.books.values():
            for stream, data in book.publish(now_us):
                self._out.append(Emit(stream=stream, data=data))

    # ----- step ----------------------------------------------------------------------------------------

    def _drain(self) -> list[Emit]:
        out, self._out = self._out, []
        return out

    def step(self, now_us: int) -> list[Emit]:
        """Advance market time to ``now_us``; every public and private event that happened, in order."""
        self._advance(now_us)
        return self._drain()

    # ----- seconds: ticker and mark price --------------------------------------------------------------

    def _mark(self) -> Decimal:
        return self.perp.tick * self.perp_price

    def _index(self) -> Decimal:
        return self.spot.tick * self.price

    def _funding_rate(self, hour_start_ms: int, upto_ms: int) -> Decimal:
        """Funding estimate for the wire hour starting at ``hour_start_ms`` using data up to ``upto_ms``."""
        s = self.minute
        a = s.index_from(hour_start_ms - self.shift_ms)
        b = s.index_at_or_before(min(upto_ms, hour_start_ms + _HOUR_MS - 1) - self.shift_ms) + 1
        if b <= a:
            avg = ZERO
        else:
            avg = Decimal(repr(round(sum(self.path.premium(j) for j in range(a, b)) / (b - a), 10)))
        inner = min(_PREMIUM_CLAMP, max(-_PREMIUM_CLAMP, _INTEREST - avg))
        return min(_RATE_BOUND, max(-_RATE_BOUND, avg + inner))

    def _emit_seconds(self, now_us: int) -> None:
        now_ms = now_us // 1000
        for spec in self.params.markets:
            o, h, lo, c, v, qv, n = self._ticker_stats(spec, "1d")
            rp = self._price_text(spec)
            self._out.append(Emit(stream=f"ticker.{spec.symbol}", data={
                "e": "ticker", "E": now_us, "s": spec.symbol, "o": rp(o), "c": rp(c), "h": rp(h), "l": rp(lo),
                "v": plain(v), "V": plain(qv), "n": n}))
        hour = now_ms // _HOUR_MS * _HOUR_MS
        self._out.append(Emit(stream=f"markPrice.{self.perp.symbol}", data={
            "e": "markPrice", "E": now_us, "s": self.perp.symbol, "p": plain(self._mark()),
            "f": plain(self._funding_rate(hour, now_ms)), "i": plain(self._index()),
            "n": hour + _HOUR_MS, "T": now_us}))

    def _kline_fold(self, st: list[Any], spec: MarketSpec, upto: int) -> None:
        """Fold full minute candles ``st[8] .. upto-1`` that lie in the bucket into the kline state."""
        s = self.minute
        opens, highs, lows, closes, _ = self._columns(spec)
        j = st[8]
        end = st[1] - self.shift_ms
        while j < upto and s.times[j] < end:
            if st[2] is None:
                st[2], st[3], st[4] = opens[j], highs[j], lows[j]
            else:
                st[3], st[4] = max(st[3], highs[j]), min(st[4], lows[j])
            st[5] = closes[j]
            st[6] += s.volumes[j]
            st[7] += self.T
            j += 1
        st[8] = j

    def _kline_state(self, spec: MarketSpec, interval: str, bucket: int) -> list[Any]:
        """Fresh state of the bucket at wire ``bucket``: [start, end, o, h, l, c, v, n, next j, t, T]."""
        end = bucket_end_ms(bucket, interval)
        st: list[Any] = [bucket, end, None, 0, 0, 0, ZERO, 0, 0, fmt_datetime_ms(bucket)[:19],
                         fmt_datetime_ms(end)[:19]]
        from_ms = bucket - self.shift_ms
        if INTERVALS_MS[interval] >= _DAY_MS:
            d = self.daily
            for j in range(d.index_from(from_ms), d.index_from(min(end - self.shift_ms, self.day_boundary_ms))):
                if st[2] is None:
                    st[2], st[3], st[4] = d.opens[j], d.highs[j], d.lows[j]
                else:
                    st[3], st[4] = max(st[3], d.highs[j]), min(st[4], d.lows[j])
                st[5] = d.closes[j]
                st[6] += d.volumes[j]
                st[7] += self.T * _DAY_MS // self.minute.interval_ms
            from_ms = max(from_ms, self.day_boundary_ms)
        st[8] = self.minute.index_from(from_ms)
        return st

    def _kline_payload(self, spec: MarketSpec, st: list[Any], closed: bool,
                       merged: tuple[int, int, int, int, Decimal, int], now_us: int) -> dict[str, Any]:
        o, h, lo, c, v, n = merged
        rp = self._price_text(spec)
        return {"e": "kline", "E": now_us, "s": spec.symbol, "t": st[9], "T": st[10], "o": rp(o), "c": rp(c),
                "h": rp(h), "l": rp(lo), "v": plain(v), "n": n, "X": closed}

    @staticmethod
    def _kline_merge(st: list[Any], partial: tuple[int, int, int, int, Decimal, int] | None
                     ) -> tuple[int, int, int, int, Decimal, int]:
        o, h, lo, c, v, n = st[2], st[3], st[4], st[5], st[6], st[7]
        if partial is not None:
            po, ph, pl, pc, pv, pn = partial
            if o is None:
                o, h, lo = po, ph, pl
            h, lo, c, v, n = max(h, ph), min(lo, pl), pc, v + pv, n + pn
        return o, h, lo, c, v, n

    def _emit_klines(self, now_us: int) -> None:
        """kline.<interval>.<symbol>: the current candle when it changed, and a final X=true frame at close."""
        ci = self._ci
        position = (ci, self._ck)
        if position == self._klines_at:
            return  # no path tick since the last push: no candle changed
        self._klines_at = position
        wire_open = self.minute.times[ci] + self.shift_ms
        for spec in self.params.markets:
            partial = self._partial(spec)
            for interval in KLINE_STREAM_INTERVALS:
                key = (spec.symbol, interval)
                bucket = bucket_start_ms(wire_open, interval)
                st = self._klines_live.get(key)
                if st is not None and st[0] != bucket:
                    self._kline_fold(st, spec, ci)
                    if st[2] is not None:
                        self._out.append(Emit(stream=f"kline.{interval}.{spec.symbol}", data=self._kline_payload(
                            spec, st, True, self._kline_merge(st, None), now_us)))
                    st = None
                if st is None:
                    st = self._klines_live[key] = self._kline_state(spec, interval, bucket)
                self._kline_fold(st, spec, ci)
                merged = self._kline_merge(st, partial)
                if self._klines_sent.get(key) != merged:
                    self._klines_sent[key] = merged
                    self._out.append(Emit(stream=f"kline.{interval}.{spec.symbol}",
                                          data=self._kline_payload(spec, st, False, merged, now_us)))

    def _price_text(self, spec: MarketSpec) -> Callable[[int], str]:
        """Memoised unpadded price text (klines and tickers format the same few prices over and over)."""
        cache = self._price_texts.setdefault(spec.symbol, {})
        if len(cache) > 100_000:
            cache.clear()
        render = spec.rest_price

        def text(ticks: int) -> str:
            got = cache.get(ticks)
            if got is None:
                got = cache[ticks] = render(ticks)
            return got

        return text

    def _emit_open_interest(self, now_us: int) -> None:
        self._out.append(Emit(stream=f"openInterest.{self.perp.symbol}", data={
            "e": "openInterest", "E": now_us, "s": self.perp.symbol, "o": plain(self._open_interest())}))

    def _open_interest(self) -> Decimal:
        steps = self.crowd.open_interest_steps()
        users = sum((abs(a.positions[self.perp.symbol].qty) for a in self.accounts.values()
                     if self.perp.symbol in a.positions), ZERO)
        return self.perp.qty_of(steps) + users

    def _columns(self, spec: MarketSpec) -> tuple[list[int], list[int], list[int], list[int], list[Decimal]]:
        """Per-market minute candle columns (perp prices carry the premium), built once."""
        got = self._cols.get(spec.symbol)
        if got is not None:
            return got
        s = self.minute
        if spec.is_perp:
            f = self.path.perp_ticks
            n = range(len(s))
            cols = ([f(s.opens[j], j) for j in n], [f(s.highs[j], j) for j in n],
                    [f(s.lows[j], j) for j in n], [f(s.closes[j], j) for j in n])
        else:
            cols = (s.opens, s.highs, s.lows, s.closes)
        tick = spec.tick
        qvols = [v * tick * ((o + h + lo + c) // 4) for v, o, h, lo, c in zip(s.volumes, *cols, strict=True)]
        got = (*cols, qvols)
        self._cols[spec.symbol] = got
        return got

    def _candle_prices(self, spec: MarketSpec, j: int) -> tuple[int, int, int, int]:
        o, h, lo, c, _ = self._columns(spec)
        return o[j], h[j], lo[j], c[j]

    def _partial(self, spec: MarketSpec) -> tuple[int, int, int, int, Decimal, int]:
        """The current candle so far: (o, h, l, c, volume, path trades)."""
        i, k = self._ci, self._ck
        ticks = self.path.ticks(i)[: k + 1]
        if spec.is_perp:
            ticks = [self.path.perp_ticks(p, i) for p in ticks]
        vol = (self.minute.volumes[i] * (k + 1) / self.T).quantize(Decimal("0.00000001"))
        return ticks[0], max(ticks), min(ticks), ticks[-1], vol, k + 1

    def _ticker_stats(self, spec: MarketSpec, interval: str) -> tuple[int, int, int, int, Decimal, Decimal, int]:
        window = 7 * _DAY_MS if interval == "1w" else _DAY_MS
        s = self.minute
        i = self._ci
        key = (spec.symbol, interval, i)
        cached = self._ticker_cache.get(key)
        if cached is None:
            a = s.index_from(s.times[i] + s.interval_ms - window)
            opens, highs, lows, _closes, qvols = self._columns(spec)
            if i > a:
                cached = (opens[a], max(highs[a:i]), min(lows[a:i]), sum(s.volumes[a:i], ZERO),
                          sum(qvols[a:i], ZERO), (i - a) * self.T)
            else:
                cached = (-1, 0, 0, ZERO, ZERO, 0)
            if len(self._ticker_cache) > 16:
                self._ticker_cache.clear()
            self._ticker_cache[key] = cached
        first, hi, lo, vol, qv, n = cached
        po, ph, pl, pc, pv, pn = self._partial(spec)
        if first < 0:
            first, hi, lo = po, ph, pl
        qv_partial = pv * spec.tick * ((po + ph + pl + pc) // 4)
        return first, max(hi, ph), min(lo, pl), pc, vol + pv, (qv + qv_partial).quantize(Decimal("0.0001")), n + pn

    def ticker(self, symbol: str, interval: str = "1d") -> dict[str, Any]:
        """REST ``/ticker``: rolling 24 h (or 1 w) statistics from the replayed candles."""
        spec = self._spec(symbol)
        if interval not in ("1d", "1w"):
            raise _err("Invalid interval")
        o, h, lo, c, v, qv, n = self._ticker_stats(spec, interval)
        first, last = spec.price_of(o), spec.price_of(c)
        change = last - first
        pct = (change / first).quantize(Decimal("0.000001")) if first else ZERO
        return {"symbol": spec.symbol, "firstPrice": plain(first), "lastPrice": plain(last),
                "high": plain(spec.price_of(h)), "low": plain(spec.price_of(lo)), "priceChange": plain(change),
                "priceChangePercent": plain(pct), "volume": plain(v), "quoteVolume": plain(qv), "trades": str(n)}

    def tickers(self) -> list[dict[str, Any]]:
        return [self.ticker(m.symbol) for m in self.params.markets]

    def mark_prices(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """REST ``/markPrices`` (perps only)."""
        if symbol is not None and symbol not in self.specs:
            raise _err("Symbol not found")
        if symbol is not None and symbol != self.perp.symbol:
            return []
        now_ms = self._now_us // 1000
        hour = now_ms // _HOUR_MS * _HOUR_MS
        return [{"fundingRate": plain(self._funding_rate(hour, now_ms)), "indexPrice": plain(self._index()),
                 "markPrice": plain(self._mark()), "nextFundingTimestamp": hour + _HOUR_MS,
                 "symbol": self.perp.symbol}]

    def open_interest(self, symbol: str | None, now_us: int) -> list[dict[str, Any]]:
        """REST ``/openInterest`` (perps; all perps when ``symbol`` is None)."""
        self._advance(now_us)
        if symbol is not None and symbol != self.perp.symbol:
            return []
        return [{"openInterest": plain(self._open_interest()), "symbol": self.perp.symbol,
                 "timestamp": self._now_us // 1000}]

    def funding_rates(self, symbol: str, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """REST ``/fundingRates``: hourly intervals newest first, the in-progress one included."""
        if symbol != self.perp.symbol:
            return []
        now_ms = self._now_us // 1000
        first_hour = (self.minute.times[0] + self.shift_ms) // _HOUR_MS * _HOUR_MS + _HOUR_MS
        hour = now_ms // _HOUR_MS * _HOUR_MS - offset * _HOUR_MS
        rows: list[dict[str, Any]] = []
        while hour >= first_hour and len(rows) < limit:
            rows.append({"fundingRate": plain(self._funding_rate(hour, now_ms)),
                         "intervalEndTimestamp": fmt_datetime_ms(hour + _HOUR_MS)[:19], "symbol": symbol})
            hour -= _HOUR_MS
        return rows

    # ----- klines --------------------------------------------------------------------------------------

    def klines(self, symbol: str, interval: str, start_s: int, end_s: int | None, now_us: int) -> list[dict[str, Any]]:
        """REST ``/klines``: real history up to the market time, the still-open candle last."""
        spec = self._spec(symbol)
        if interval not in INTERVALS_MS:
            raise _err("Invalid interval")
        self._advance(now_us)
        now_ms = self._now_us // 1000
        lo_ms = bucket_start_ms(start_s * 1000, interval)
        hi_ms = now_ms if end_s is None else min(end_s * 1000 - 1, now_ms)
        if hi_ms < lo_ms:
            return []
        if interval == "1s":
            return list(aggregate(self._second_bars(spec, lo_ms, hi_ms), interval, spec.tick))
        bars: list[Bar] = []
        per_day = self.T * _DAY_MS // self.minute.interval_ms
        if INTERVALS_MS[interval] >= _DAY_MS:
            d = self.daily
            a = d.index_from(lo_ms - self.shift_ms)
            b = d.index_from(min(hi_ms + 1 - self.shift_ms, self.day_boundary_ms))
            for j in range(a, b):
                o, h, low, c = d.opens[j], d.highs[j], d.lows[j], d.closes[j]
                bars.append(Bar(start_ms=d.times[j] + self.shift_ms, open=o, high=h, low=low, close=c,
                                volume=d.volumes[j], quote_volume=d.volumes[j] * spec.tick * ((o + h + low + c) // 4),
                                trades=per_day))
            m_from = max(lo_ms - self.shift_ms, self.day_boundary_ms)
        else:
            m_from = lo_ms - self.shift_ms
        s = self.minute
        a = s.index_from(m_from)
        b = min(s.index_at_or_before(hi_ms - self.shift_ms), self._ci)
        opens, highs, lows, closes, qvols = self._columns(spec)
        for j in range(a, b + 1):
            if j == self._ci:
                o, h, low, c, v, n = self._partial(spec)
                qv = v * spec.tick * ((o + h + low + c) // 4)
            else:
                o, h, low, c = opens[j], highs[j], lows[j], closes[j]
                v, qv, n = s.volumes[j], qvols[j], self.T
            bars.append(Bar(start_ms=s.times[j] + self.shift_ms, open=o, high=h, low=low, close=c, volume=v,
                            quote_volume=qv, trades=n))
        return list(aggregate(bars, interval, spec.tick))

    def _second_bars(self, spec: MarketSpec, lo_ms: int, hi_ms: int, cap: int = 1000) -> list[Bar]:
        """1s klines come from the path ticks themselves (one bar per tick, at most ``cap`` of them)."""
        s = self.minute
        bars: list[Bar] = []
        j = max(0, s.index_at_or_before(lo_ms - self.shift_ms))
        while j <= self._ci and len(bars) < cap:
            ticks = self.path.ticks(j)
            vol = (s.volumes[j] / self.T).quantize(Decimal("0.00000001"))
            for k, price in enumerate(ticks):
                if j == self._ci and k > self._ck:
                    break
                t = s.times[j] + k * self.path.tick_ms + self.shift_ms
                if t < lo_ms or t > hi_ms or len(bars) >= cap:
                    continue
                p = self.path.perp_ticks(price, j) if spec.is_perp else price
                bars.append(Bar(start_ms=t, open=p, high=p, low=p, close=p, volume=vol,
                                quote_volume=vol * spec.tick * p, trades=1))
            j += 1
        return bars

    # ----- accounts ------------------------------------------------------------------------------------

    def _account(self, key: str) -> Account:
        acct = self.accounts.get(key)
        if acct is None:
            self._next_user_id += 1
            acct = Account(key=key, user_id=self._next_user_id, leverage_limit=self.params.leverage_limit,
                           balances={})
            for asset, amount in self.params.initial_balances.items():
                acct.balance(asset).available = Decimal(amount)
            self.accounts[key] = acct
        return acct

    def capital(self, key: str) -> dict[str, Any]:
        """REST ``/capital``: assets with a balance."""
        acct = self._account(key)
        return {a: {"available": plain(b.available), "locked": plain(b.locked), "staked": "0"}
                for a, b in acct.balances.items() if b.available or b.locked}

    def _upnl(self, acct: Account, mark: Decimal | None = None) -> Decimal:
        m = self._mark() if mark is None else mark
        return sum(((m - p.entry) * p.qty for p in acct.positions.values()), ZERO)

    def _exposure(self, acct: Account, mark: Decimal | None = None) -> Decimal:
        m = self._mark() if mark is None else mark
        return sum((abs(p.qty) * m for p in acct.positions.values()), ZERO)

    def _margin_equity(self, acct: Account, mark: Decimal | None = None) -> Decimal:
        return acct.balance(self.perp.quote).available + self._upnl(acct, mark)

    def _liquidatable(self, acct: Account, mark: Decimal) -> bool:
        exposure = self._exposure(acct, mark)
        if not exposure:
            return False
        return self._margin_equity(acct, mark) < exposure * self.perp.mmf(exposure)

    def _imf(self, acct: Account, notional: Decimal) -> Decimal:
        return max(self.perp.imf(notional), ONE / acct.leverage_limit)

    def collateral(self, key: str) -> dict[str, Any]:
        """REST ``/capital/collateral`` (USDC is the only collateral; BTC weight 0)."""
        acct = self._account(key)
        index = self._index()
        rows = []
        assets_value = ZERO
        coll_value = ZERO
        open_qty: dict[str, Decimal] = {}
        for o in acct.open_orders.values():
            if o.locked_asset:
                open_qty[o.locked_asset] = open_qty.get(o.locked_asset, ZERO) + o.locked
        for asset, b in acct.balances.items():
            if not b.total:
                continue
            px = ONE if asset == self.perp.quote else index
            weight = ONE if asset == self.perp.quote else ZERO
            notional = b.total * px
            assets_value += notional
            coll_value += notional * weight
            rows.append({"assetMarkPrice": plain(px), "availableQuantity": plain(b.available),
                         "balanceNotional": plain(notional), "collateralValue": plain(notional * weight),
                         "collateralWeight": plain(weight), "lendQuantity": "0",
                         "openOrderQuantity": plain(open_qty.get(asset, ZERO)), "symbol": asset,
                         "totalQuantity": plain(b.total)})
        upnl = self._upnl(acct)
        exposure = self._exposure(acct)
        net_equity = coll_value + upnl
        imf = self._imf(acct, exposure) if exposure else ONE
        mmf = self.perp.mmf(exposure) if exposure else self.perp.mmf_base
        locked = acct.balance(self.perp.quote).locked + exposure * (self._imf(acct, exposure) if exposure else ZERO)
        return {"assetsValue": plain(assets_value), "borrowLiability": "0", "collateral": rows,
                "imf": plain(imf), "liabilitiesValue": "0",
                "marginFraction": plain(net_equity / exposure) if exposure else None, "mmf": plain(mmf),
                "netEquity": plain(net_equity), "netEquityAvailable": plain(net_equity - locked),
                "netEquityLocked": plain(locked), "netExposureFutures": plain(exposure),
                "pnlUnrealized": plain(upnl), "unsettledEquity": "0"}

    def account(self, key: str) -> dict[str, Any]:
        """REST ``GET /account``; fees in basis points."""
        acct = self._account(key)
        bps = Decimal(10000)
        limit_orders = sum(1 for o in acct.open_orders.values() if o.order_type == "Limit")
        return {"autoBorrowSettlements": False, "autoLend": False, "autoRealizePnl": True,
                "autoRepayBorrows": False, "borrowLimit": "0",
                "futuresMakerFee": plain(self.params.maker_fee * bps), "futuresTakerFee": plain(self.params.taker_fee * bps),
                "spotMakerFee": plain(self.params.maker_fee * bps), "spotTakerFee": plain(self.params.taker_fee * bps),
                "leverageLimit": plain(acct.leverage_limit), "limitOrders": limit_orders, "triggerOrders": 0,
                "liquidating": acct.liquidating, "positionLimit": "1000000"}

    def update_account(self, key: str, body: Mapping[str, Any]) -> None:
        """REST ``PATCH /account``: only ``leverageLimit`` has an effect (1..100)."""
        acct = self._account(key)
        if "leverageLimit" in body:
            lev = _dec(body["leverageLimit"], "leverageLimit")
            if lev < 1 or lev > 100:
                raise _err("Invalid leverageLimit")
            acct.leverage_limit = lev

    def _position_row(self, acct: Account, pos: Position, with_liq: bool) -> dict[str, Any]:
        spec = self.perp
        mark = self._mark()
        notional = abs(pos.qty) * mark
        open_bid = sum((spec.qty_of(o.remaining) for o in acct.open_orders.values()
                        if o.symbol == pos.symbol and o.side == "Bid"), ZERO)
        open_ask = sum((spec.qty_of(o.remaining) for o in acct.open_orders.values()
                        if o.symbol == pos.symbol and o.side == "Ask"), ZERO)
        exposure_q = max(abs(pos.qty + open_bid), abs(pos.qty - open_ask))
        return {"breakEvenPrice": plain(self._break_even(pos)), "cumulativeFundingPayment": plain(pos.funding),
                "cumulativeInterest": "0", "entryPrice": plain(pos.entry),
                "estLiquidationPrice": plain(self._est_liq_price(acct, pos)) if with_liq else "0",
                "imf": plain(self._imf(acct, notional)),
                "imfFunction": {"base": plain(spec.imf_base), "factor": plain(spec.imf_factor), "type": "sqrt"},
                "markPrice": plain(mark), "mmf": plain(spec.mmf(notional)),
                "mmfFunction": {"base": plain(spec.mmf_base), "factor": plain(spec.mmf_factor), "type": "sqrt"},
                "netCost": plain(pos.entry * pos.qty), "netExposureNotional": plain(exposure_q * mark),
                "netExposureQuantity": plain(exposure_q), "netQuantity": plain(pos.qty),
                "pnlRealized": plain(pos.realized), "pnlUnrealized": plain((mark - pos.entry) * pos.qty),
                "positionId": str(pos.position_id), "subaccountId": None, "symbol": pos.symbol,
                "userId": acct.user_id}

    @staticmethod
    def _break_even(pos: Position) -> Decimal:
        if not pos.qty:
            return ZERO
        return pos.entry + pos.fees / pos.qty

    def _est_liq_price(self, acct: Account, pos: Position) -> Decimal:
        """Price at which equity meets maintenance margin (single perp, mmf at the current notional)."""
        q = pos.qty
        if not q:
            return ZERO
        usdc = acct.balance(self.perp.quote).available
        mmf = self.perp.mmf(abs(q) * self._mark())
        # usdc + q (P - entry) = mmf |q| P  =>  P = (q entry - usdc) / (q - mmf |q|)
        denom = q - mmf * abs(q)
        if not denom:
            return ZERO
        p = (q * pos.entry - usdc) / denom
        return max(ZERO, p.quantize(Decimal("0.01")))

    def positions(self, key: str, symbol: str | None = None) -> list[dict[str, Any]]:
        """REST ``/position``: open perp positions (estimated liquidation price only with ``symbol``)."""
        acct = self._account(key)
        return [self._position_row(acct, p, symbol is not None) for s, p in acct.positions.items()
                if p.qty and (symbol is None or s == symbol)]

    def _position_event(self, acct: Account, pos: Position, event: str | None, t_us: int) -> Emit:
        row = self._position_row(acct, pos, False)
        data: dict[str, Any] = {"E": t_us, "T": t_us, "s": pos.symbol, "i": pos.position_id,
                                "q": row["netQuantity"], "Q": row["netExposureQuantity"],
                                "n": row["netExposureNotional"], "b": row["breakEvenPrice"], "B": row["entryPrice"],
                                "M": row["markPrice"], "f": row["imf"], "m": row["mmf"], "p": row["pnlRealized"],
                                "P": row["pnlUnrealized"], "l": "0"}
        if event is not None:
            data["e"] = event
        return Emit(stream="account.positionUpdate", data=data, account=acct.key)

    def position_snapshot_emits(self, key: str) -> list[Emit]:
        """What ``account.positionUpdate`` sends on subscribe: open positions without an ``e`` field."""
        acct = self._account(key)
        return [self._position_event(acct, p, None, self._now_us) for p in acct.positions.values() if p.qty]

    # ----- orders: wire shapes -------------------------------------------------------------------------

    def _order_quote(self, o: Order) -> Decimal | None:
        spec = self.specs[o.symbol]
        if o.order_type == "Limit" and o.price is not None and o.qty is not None:
            return spec.price_of(o.price) * spec.qty_of(o.qty)
        return o.quote_qty if o.quote_qty is not None else o.quote_cap

    def _order_row(self, o: Order) -> dict[str, Any]:
        """Live order object of ``/api/v1/order(s)`` (createdAt ms)."""
        spec = self.specs[o.symbol]
        row: dict[str, Any] = {"clientId": o.client_id, "createdAt": o.created_us // 1000,
                               "executedQuantity": plain(spec.qty_of(o.executed)),
                               "executedQuoteQuantity": plain(o.executed_quote), "id": o.id,
                               "orderType": o.order_type}
        qty = o.qty if o.qty is not None else o.executed
        if o.order_type == "Limit":
            assert o.price is not None
            row |= {"postOnly": o.post_only, "price": plain(spec.price_of(o.price)), "quantity": plain(spec.qty_of(qty))}
        else:
            quote = self._order_quote(o)
            row |= {"quantity": plain(spec.qty_of(qty)), "quoteQuantity": None if quote is None else plain(quote)}
        row |= {"reduceOnly": True if o.reduce_only else None, "relatedOrderId": None,
                "selfTradePrevention": o.stp, "side": o.side, "status": o.status, "stopLossLimitPrice": None,
                "stopLossTriggerBy": None, "stopLossTriggerPrice": None, "strategyId": None, "symbol": o.symbol,
                "takeProfitLimitPrice": None, "takeProfitTriggerBy": None, "takeProfitTriggerPrice": None,
                "timeInForce": o.tif, "triggerBy": None, "triggerPrice": None, "triggerQuantity": None,
                "triggeredAt": None}
        return row

    def _history_row(self, o: Order) -> dict[str, Any]:
        spec = self.specs[o.symbol]
        quote = self._order_quote(o)
        qty = o.qty if o.qty is not None else o.executed
        return {"clientId": o.client_id, "createdAt": fmt_datetime_ms(o.created_us // 1000),
                "executedQuantity": plain(spec.qty_of(o.executed)), "executedQuoteQuantity": plain(o.executed_quote),
                "expiryReason": o.expiry_reason, "id": o.id, "orderType": o.order_type,
                "postOnly": o.post_only if o.order_type == "Limit" else None,
                "price": None if o.price is None else plain(spec.price_of(o.price)),
                "quantity": plain(spec.qty_of(qty)), "quoteQuantity": None if quote is None else plain(quote),
                "selfTradePrevention": o.stp, "side": o.side, "slippageTolerance": None,
                "slippageToleranceType": None, "status": o.status, "stopLossLimitPrice": None,
                "stopLossTriggerBy": None, "stopLossTriggerPrice": None, "strategyId": None, "symbol": o.symbol,
                "systemOrderType": o.system_order_type, "takeProfitLimitPrice": None, "takeProfitTriggerBy": None,
                "takeProfitTriggerPrice": None, "timeInForce": o.tif, "triggerBy": None, "triggerPrice": None,
                "triggerQuantity": None}

    def _order_event(self, o: Order, event: str, t_us: int, fill: dict[str, Any] | None = None) -> Emit:
        spec = self.specs[o.symbol]
        data: dict[str, Any] = {"e": event, "E": t_us, "s": o.symbol, "i": o.id}
        if o.client_id is not None:
            data["c"] = o.client_id
        quote = self._order_quote(o)
        qty = o.qty if o.qty is not None else o.executed
        data |= {"S": o.side, "o": o.order_type.upper(), "f": o.tif, "q": spec.wire_qty(qty),
                 "Q": plain(quote) if quote is not None else "0"}
        if o.price is not None:
            data["p"] = spec.wire_price(o.price)
        data |= {"X": o.status, "t": None, "z": spec.wire_qty(o.executed), "Z": plain(o.executed_quote),
                 "V": o.stp, "r": o.reduce_only, "T": t_us, "O": o.origin}
        if o.order_type == "Limit":
            data["y"] = o.post_only
        if event == "orderExpired":
            data["R"] = o.expiry_reason
        if fill is not None:
            data |= fill
        return Emit(stream="account.orderUpdate", data=data, account=o.account)

    # ----- orders: placement ---------------------------------------------------------------------------

    def execute_order(self, key: str, body: Mapping[str, Any], now_us: int) -> tuple[dict[str, Any], list[Emit]]:
        """REST ``POST /order``: the order after the engine processed it, and the events it caused."""
        self._advance(now_us)
        row = self._place(self._account(key), body, self._now_us)
        return row, self._drain()

    def execute_orders(self, key: str, bodies: list[Mapping[str, Any]],
                       now_us: int) -> tuple[list[dict[str, Any]], list[Emit]]:
        """REST ``POST /orders``: one order object or ``{"code","message","operation":"Err"}`` per input."""
        self._advance(now_us)
        acct = self._account(key)
        rows: list[dict[str, Any]] = []
        for body in bodies:
            try:
                rows.append(self._place(acct, body, self._now_us))
            except SimApiError as exc:
                rows.append({"code": exc.code, "message": exc.message, "operation": "Err"})
        return rows, self._drain()

    def _parse_order(self, acct: Account, body: Mapping[str, Any], now_us: int) -> Order:
        if not isinstance(body, Mapping):
            raise _err("Invalid order")
        spec = self._spec(body.get("symbol"))
        side = body.get("side")
        if side not in ("Bid", "Ask"):
            raise _err("Invalid side")
        otype = body.get("orderType")
        if otype not in ("Limit", "Market"):
            raise _err("Invalid order type")
        tif = body.get("timeInForce", "GTC")
        if tif not in ("GTC", "IOC", "FOK"):
            raise _err("Invalid time in force")
        stp = body.get("selfTradePrevention", "RejectTaker")
        if stp not in ("RejectTaker", "RejectMaker", "RejectBoth", "Allow"):
            raise _err("Invalid self trade prevention")
        post_only = _bool(body.get("postOnly", False), "postOnly")
        reduce_only = _bool(body.get("reduceOnly", False), "reduceOnly")
        if ("triggerPrice" in body) != ("triggerQuantity" in body):
            raise _err("Must specify both `triggerPrice` and `triggerQuantity` or neither")
        for unsupported in ("triggerPrice", "stopLossTriggerPrice", "takeProfitTriggerPrice"):
            if unsupported in body:
                raise SimApiError(400, "NOT_IMPLEMENTED", "Conditional orders are not supported by the simulator")
        client_id = body.get("clientId")
        if client_id is not None and (isinstance(client_id, bool) or not isinstance(client_id, int)
                                      or not 0 <= client_id < _U32):
            raise _err("Invalid clientId")
        if reduce_only and not spec.is_perp:
            raise _err("Reduce only is not supported on spot markets", "INVALID_ORDER")
        qty: int | None = None
        quote_qty: Decimal | None = None
        if "quantity" in body:
            q = _dec(body["quantity"], "quantity")
            if q % spec.step:
                raise _err("Quantity decimal too long")
            if q < spec.min_qty:
                raise _err("Quantity is below the minimum allowed value", "INVALID_QUANTITY")
            qty = int(q / spec.step)
        price: int | None = None
        last = self.books[spec.symbol].center
        if otype == "Limit":
            if "price" not in body:
                raise _err("Limit order requires a price", "INVALID_ORDER")
            if qty is None:
                raise _err("Limit order requires a quantity", "INVALID_ORDER")
            if "quoteQuantity" in body:
                raise _err("Invalid order", "INVALID_ORDER")
            p = _dec(body["price"], "price")
            if p % spec.tick:
                raise _err("Price decimal too long")
            price = int(p / spec.tick)
            if p < spec.min_price or (spec.max_price is not None and p > spec.max_price):
                raise _err("Price is out of bounds", "INVALID_PRICE")
            lp = spec.price_of(last)
            if p > lp * spec.max_multiplier or p < lp * spec.min_multiplier:
                raise _err("Price is too far from the last active price", "INVALID_PRICE")
        else:
            if post_only:
                raise _err("Invalid order", "INVALID_ORDER")
            if "quoteQuantity" in body:
                if qty is not None:
                    raise _err("Cannot specify both `quantity` and `quoteQuantity`")
                quote_qty = _dec(body["quoteQuantity"], "quoteQuantity")
            elif qty is None:
                raise _err("Market order requires a quantity or quoteQuantity", "INVALID_ORDER")
        self._order_seq += 1
        self._next_order_id += 1 + mix(self.params.seed, self._order_seq) % 7
        return Order(id=str(self._next_order_id), account=acct.key, symbol=spec.symbol, side=side,
                     order_type=otype, tif=tif, price=price, qty=qty, quote_qty=quote_qty, post_only=post_only,
                     reduce_only=reduce_only, client_id=client_id, stp=stp, created_us=now_us, seq=self._order_seq)

    def _impact_limit(self, spec: MarketSpec, side: str) -> int:
        last = spec.price_of(self.books[spec.symbol].center)
        if side == "Bid":
            return int((last * spec.max_impact_multiplier / spec.tick).to_integral_value(ROUND_FLOOR))
        return int((last * spec.min_impact_multiplier / spec.tick).to_integral_value(ROUND_CEILING))

    def _place(self, acct: Account, body: Mapping[str, Any], now_us: int) -> dict[str, Any]:
        order = self._parse_order(acct, body, now_us)
        spec = self.specs[order.symbol]
        book = self.books[spec.symbol]
        bids, asks = book.target()
        if order.post_only:
            assert order.price is not None
            if (order.side == "Bid" and asks and order.price >= min(asks)) or (
                    order.side == "Ask" and bids and order.price <= max(bids)):
                raise SimApiError(400, "INVALID_ORDER", "Order would immediately match and take")
        # reduce-only: never more than the position, never in its direction
        reduce_cap: int | None = None
        if order.reduce_only:
            pos = acct.positions.get(spec.symbol)
            q = pos.qty if pos is not None else ZERO
            if (order.side == "Bid" and q < 0) or (order.side == "Ask" and q > 0):
                reduce_cap = int(abs(q) / spec.step)
            else:
                reduce_cap = 0
        limit = order.price if order.order_type == "Limit" else self._impact_limit(spec, order.side)
        want = order.qty
        if reduce_cap is not None and want is not None:
            want = min(want, reduce_cap)
        if order.post_only or (reduce_cap == 0):
            plan: list[PlannedFill] = []
            stop: str | None = None
            stp_cancels: list[Order] = []
        else:
            plan, stop, stp_cancels = book.plan_take(side=order.side, account=acct.key, limit=limit, qty=want,
                                                     quote_budget=order.quote_qty, stp=order.stp)
        fill_qty = sum(f.qty for f in plan)
        fill_cost = sum((spec.price_of(f.price) * spec.qty_of(f.qty) for f in plan), ZERO)
        # funds and margin
        if spec.is_perp:
            self._check_margin(acct, spec, order, plan)
        else:
            self._check_spot_funds(acct, spec, order, fill_qty, fill_cost)
        if order.order_type == "Market" and order.quote_qty is None:
            order.quote_cap = fill_cost
        acct.orders.append(order)
        touched: set[str] = set()
        self._out.append(self._order_event(order, "orderAccepted", now_us))
        self._lock_for(acct, spec, order, touched)
        fok_short = order.tif == "FOK" and order.qty is not None and fill_qty < order.qty
        if fok_short:
            self._finish(acct, order, "Expired", "FillOrKill", now_us, touched)
            return self._wrap_up(acct, order, touched, now_us)
        for maker in stp_cancels:
            maker_acct = self.accounts[maker.account]
            self._cancel(maker_acct, maker, "Expired", "SelfTradePrevention", now_us, set())
        for f in plan:
            self._match(acct, order, f, now_us, touched)
        if order.qty is None:  # sized by quoteQuantity: the quantity is what filled
            order.qty = order.executed
            if not order.executed:
                order.qty = None
        remaining = order.remaining if order.qty is not None else 1
        if remaining <= 0:
            order.status = "Filled"
            self._release(acct, order, touched)
        elif reduce_cap is not None and order.executed >= reduce_cap:
            self._finish(acct, order, "Expired", "ReduceOnlyNotReduced", now_us, touched)
        elif stop is not None:
            self._finish(acct, order, "Expired", stop, now_us, touched)
        elif order.order_type == "Market":
            self._finish(acct, order, "Expired", "InsufficientLiquidity", now_us, touched)
        elif order.tif == "IOC":
            self._finish(acct, order, "Expired", "ImmediateOrCancel", now_us, touched)
        else:
            acct.open_orders[order.id] = order
            book.add(order)
        return self._wrap_up(acct, order, touched, now_us)

    def _wrap_up(self, acct: Account, order: Order, touched: set[str], now_us: int) -> dict[str, Any]:
        self._flush_account(acct, touched, now_us)
        self._publish_books(now_us)
        return self._order_row(order)

    def _check_spot_funds(self, acct: Account, spec: MarketSpec, order: Order, fill_qty: int,
                          fill_cost: Decimal) -> None:
        if order.side == "Bid":
            have = acct.balance(spec.quote).available
            if order.order_type == "Limit":
                assert order.price is not None
                assert order.qty is not None
                need = spec.price_of(order.price) * spec.qty_of(order.qty)
            elif order.quote_qty is not None:
                need = order.quote_qty
            else:
                need = fill_cost
        else:
            have = acct.balance(spec.base).available
            need = spec.qty_of(order.qty) if order.qty is not None else spec.qty_of(fill_qty)
        if need > have:
            raise SimApiError(400, "INSUFFICIENT_FUNDS", "Insufficient funds")

    def _check_margin(self, acct: Account, spec: MarketSpec, order: Order, plan: list[PlannedFill]) -> None:
        pos = acct.positions.get(spec.symbol)
        q = pos.qty if pos is not None else ZERO
        open_bid = sum((spec.qty_of(o.remaining) for o in acct.open_orders.values()
                        if o.symbol == spec.symbol and o.side == "Bid"), ZERO)
        open_ask = sum((spec.qty_of(o.remaining) for o in acct.open_orders.values()
                        if o.symbol == spec.symbol and o.side == "Ask"), ZERO)
        before = max(abs(q + open_bid), abs(q - open_ask))
        size = spec.qty_of(order.qty) if order.qty is not None else spec.qty_of(sum(f.qty for f in plan))
        if order.reduce_only:
            return
        if order.side == "Bid":
            after = max(abs(q + open_bid + size), abs(q - open_ask))
        else:
            after = max(abs(q + open_bid), abs(q - open_ask - size))
        if after <= before:
            return
        mark = self._mark()
        notional = after * mark
        if notional * self._imf(acct, notional) > self._margin_equity(acct):
            raise SimApiError(400, "INSUFFICIENT_MARGIN", "Insufficient margin")

    def _lock_for(self, acct: Account, spec: MarketSpec, order: Order, touched: set[str]) -> None:
        """Reserve spot funds for a limit order (the whole order; takers pay from the reserve)."""
        if spec.is_perp or order.order_type != "Limit":
            return
        assert order.price is not None
        assert order.qty is not None
        if order.side == "Bid":
            asset, amount = spec.quote, spec.price_of(order.price) * spec.qty_of(order.qty)
        else:
            asset, amount = spec.base, spec.qty_of(order.qty)
        bal = acct.balance(asset)
        bal.available -= amount
        bal.locked += amount
        order.locked_asset = asset
        order.locked = amount
        touched.add(asset)

    def _release(self, acct: Account, order: Order, touched: set[str]) -> None:
        if order.locked_asset is None or not order.locked:
            return
        bal = acct.balance(order.locked_asset)
        bal.locked -= order.locked
        bal.available += order.locked
        order.locked = ZERO
        touched.add(order.locked_asset)

    def _finish(self, acct: Account, order: Order, status: str, reason: str | None, t_us: int,
                touched: set[str]) -> None:
        order.status = status
        order.expiry_reason = reason if status == "Expired" else None
        self._release(acct, order, touched)
        acct.open_orders.pop(order.id, None)
        self._out.append(self._order_event(order, "orderExpired" if status == "Expired" else "orderCancelled", t_us))

    def _cancel(self, acct: Account, order: Order, status: str, reason: str | None, t_us: int,
                touched: set[str]) -> None:
        self.books[order.symbol].remove(order)
        self._finish(acct, order, status, reason, t_us, touched)
        self._flush_account(acct, touched, t_us)

    # ----- fills ---------------------------------------------------------------------------------------

    def _match(self, acct: Account, order: Order, f: PlannedFill, t_us: int, touched: set[str]) -> None:
        spec = self.specs[order.symbol]
        book = self.books[spec.symbol]
        if f.maker is None:
            book.consume(f.price, f.qty)
            counter = self._synthetic_id(self._trade_id[spec.symbol] * 2 + 1)
        else:
            counter = f.maker.id
        buyer, seller = (order.id, counter) if order.side == "Bid" else (counter, order.id)
        tid = self._record_trade(spec, f.price, f.qty, order.side == "Ask", t_us, buyer, seller, force_emit=True)
        self._apply_fill(acct, order, f.price, f.qty, False, tid, t_us, touched)
        if f.maker is not None:
            maker = f.maker
            macct = self.accounts[maker.account]
            mt: set[str] = set()
            self._apply_fill(macct, maker, f.price, f.qty, True, tid, t_us, mt)
            if maker.remaining <= 0:
                book.remove(maker)
                macct.open_orders.pop(maker.id, None)
                self._release(macct, maker, mt)
            book.dirty = True
            if macct is not acct:
                self._flush_account(macct, mt, t_us)
            else:
                touched |= mt

    def _path_fill(self, order: Order, t_us: int) -> None:
        """A resting order the path traded through: filled in full at its price, as maker."""
        acct = self.accounts[order.account]
        spec = self.specs[order.symbol]
        book = self.books[spec.symbol]
        touched: set[str] = set()
        qty = order.remaining
        if order.reduce_only:
            pos = acct.positions.get(spec.symbol)
            q = pos.qty if pos is not None else ZERO
            ok = (order.side == "Bid" and q < 0) or (order.side == "Ask" and q > 0)
            qty = min(qty, int(abs(q) / spec.step)) if ok else 0
            if qty <= 0:
                book.remove(order)
                self._finish(acct, order, "Expired", "ReduceOnlyNotReduced", t_us, touched)
                self._flush_account(acct, touched, t_us)
                return
        assert order.price is not None
        counter = self._synthetic_id(self._trade_id[spec.symbol] * 2 + 1)
        buyer, seller = (order.id, counter) if order.side == "Bid" else (counter, order.id)
        tid = self._record_trade(spec, order.price, qty, order.side == "Bid", t_us, buyer, seller, force_emit=True)
        self._apply_fill(acct, order, order.price, qty, True, tid, t_us, touched)
        if order.remaining <= 0:
            book.remove(order)
            acct.open_orders.pop(order.id, None)
            self._release(acct, order, touched)
        else:
            book.remove(order)
            self._finish(acct, order, "Expired", "ReduceOnlyNotReduced", t_us, touched)
        book.dirty = True
        self._flush_account(acct, touched, t_us)

    def _apply_fill(self, acct: Account, order: Order, price: int, qty: int, is_maker: bool, trade_id: int,
                    t_us: int, touched: set[str], fee_rate: Decimal | None = None) -> None:
        spec = self.specs[order.symbol]
        p = spec.price_of(price)
        q = spec.qty_of(qty)
        notional = p * q
        rate = fee_rate if fee_rate is not None else (self.params.maker_fee if is_maker else self.params.taker_fee)
        if spec.is_perp:
            usdc = acct.balance(spec.quote)
            fee = notional * rate
            pos = acct.position(spec.symbol, self._next_position_id + 1)
            if pos.position_id == self._next_position_id + 1:
                self._next_position_id += 1
            realized = pos.apply_fill(q if order.side == "Bid" else -q, p)
            usdc.available += realized - fee
            if usdc.available < 0 and order.origin != "USER":
                usdc.available = ZERO  # the insurance fund absorbs a liquidation deficit
            if pos.qty:
                pos.fees += fee
            fee_asset = spec.quote
            touched.add(spec.quote)
            touched.add("pos:" + spec.symbol)
        elif order.side == "Bid":
            quote_bal, base_bal = acct.balance(spec.quote), acct.balance(spec.base)
            fee = q * rate
            if order.locked_asset == spec.quote and order.price is not None:
                reserved = min(order.locked, spec.price_of(order.price) * q)
                quote_bal.locked -= reserved
                order.locked -= reserved
                quote_bal.available += reserved - notional
            else:
                quote_bal.available -= notional
            base_bal.available += q - fee
            fee_asset = spec.base
            touched.update((spec.quote, spec.base))
        else:
            quote_bal, base_bal = acct.balance(spec.quote), acct.balance(spec.base)
            fee = notional * rate
            if order.locked_asset == spec.base:
                reserved = min(order.locked, q)
                base_bal.locked -= reserved
                order.locked -= reserved
                base_bal.available -= q - reserved
            else:
                base_bal.available -= q
            quote_bal.available += notional - fee
            fee_asset = spec.quote
            touched.update((spec.quote, spec.base))
        order.executed += qty
        order.executed_quote += notional
        order.status = "Filled" if order.qty is not None and order.executed >= order.qty else "PartiallyFilled"
        fill = {"t": trade_id, "l": spec.wire_qty(qty), "L": spec.wire_price(price), "m": is_maker,
                "n": plain(fee), "N": fee_asset}
        self._out.append(self._order_event(order, "orderFill", t_us, fill))
        acct.fills.append((t_us // 1000, {
            "clientId": None if order.client_id is None else str(order.client_id), "fee": plain(fee),
            "feeSymbol": fee_asset, "isMaker": is_maker, "orderId": order.id, "price": plain(p),
            "quantity": plain(q), "side": order.side, "symbol": spec.symbol,
            "systemOrderType": order.system_order_type, "timestamp": fmt_datetime_ms(t_us // 1000),
            "tradeId": trade_id}))

    def _flush_account(self, acct: Account, touched: set[str], t_us: int) -> None:
        """balanceUpdate per touched asset, positionUpdate per touched position."""
        for item in sorted(touched):
            if item.startswith("pos:"):
                continue
            b = acct.balance(item)
            self._out.append(Emit(stream="account.balanceUpdate", account=acct.key, data={
                "e": "balanceUpdate", "E": t_us, "T": t_us, "a": item, "A": plain(b.available),
                "L": plain(b.locked), "S": "0"}))
        for item in sorted(touched):
            if not item.startswith("pos:"):
                continue
            sym = item[4:]
            pos = acct.positions.get(sym)
            if pos is None:
                continue
            event = self._position_kind(acct, pos)
            self._out.append(self._position_event(acct, pos, event, t_us))
            if not pos.qty:
                del acct.positions[sym]
        touched.clear()

    def _position_kind(self, acct: Account, pos: Position) -> str:
        key = (acct.key, pos.symbol)
        was_open = key in self._open_positions
        if pos.qty and not was_open:
            self._open_positions.add(key)
            return "positionOpened"
        if not pos.qty:
            self._open_positions.discard(key)
            return "positionClosed"
        return "positionAdjusted"

    # ----- liquidations and funding --------------------------------------------------------------------

    def _crowd_liquidation(self, side: str, qty: int, t_us: int) -> None:
        spec = self.perp
        price = self.perp_price
        self._out.append(Emit(stream="liquidation", data={
            "e": "liquidation", "E": t_us, "q": spec.wire_qty(qty), "p": spec.wire_price(price), "S": side,
            "s": spec.symbol, "T": t_us}))
        n = self._trade_id[spec.symbol]
        self._record_trade(spec, price, qty, side == "Ask", t_us, self._synthetic_id(2 * n),
                           self._synthetic_id(2 * n + 1))

    def _liquidate(self, acct: Account, t_us: int) -> None:
        """Forced close of every perp position at the perp price (origin LIQUIDATION_AUTOCLOSE)."""
        acct.liquidating = True
        for order in list(acct.open_orders.values()):
            self._cancel(acct, order, "Cancelled", None, t_us, set())
        spec = self.perp
        pos = acct.positions.get(spec.symbol)
        if pos is None or not pos.qty:
            acct.liquidating = False
            return
        side = "Ask" if pos.qty > 0 else "Bid"
        qty = int(abs(pos.qty) / spec.step)
        self._order_seq += 1
        self._next_order_id += 1
        order = Order(id=str(self._next_order_id), account=acct.key, symbol=spec.symbol, side=side,
                      order_type="Market", tif="IOC", price=None, qty=qty, quote_qty=None, post_only=False,
                      reduce_only=True, client_id=None, stp="RejectTaker", created_us=t_us, seq=self._order_seq,
                      origin="LIQUIDATION_AUTOCLOSE", system_order_type="LiquidatePositionOnBook")
        acct.orders.append(order)
        touched: set[str] = set()
        self._out.append(self._order_event(order, "orderAccepted", t_us))
        n = self._trade_id[spec.symbol]
        counter = self._synthetic_id(2 * n + 1)
        buyer, seller = (order.id, counter) if side == "Bid" else (counter, order.id)
        tid = self._record_trade(spec, self.perp_price, qty, side == "Ask", t_us, buyer, seller, force_emit=True)
        self._apply_fill(acct, order, self.perp_price, qty, False, tid, t_us, touched,
                         fee_rate=self.params.taker_fee + _LIQUIDATION_FEE)
        usdc = acct.balance(spec.quote)
        if usdc.available < 0:
            usdc.available = ZERO
        self._out.append(Emit(stream="liquidation", data={
            "e": "liquidation", "E": t_us, "q": spec.wire_qty(qty), "p": spec.wire_price(self.perp_price),
            "S": side, "s": spec.symbol, "T": t_us}))
        self._flush_account(acct, touched, t_us)
        acct.liquidating = False

    def _settle_funding_upto(self, wire_ms: int) -> None:
        while wire_ms >= self._next_funding_ms:
            end = self._next_funding_ms
            self._next_funding_ms += _HOUR_MS
            rate = self._funding_rate(end - _HOUR_MS, end - 1)
            mark = self._mark()
            t_us = end * 1000
            for acct in self.accounts.values():
                pos = acct.positions.get(self.perp.symbol)
                if pos is None or not pos.qty:
                    continue
                amount = -(rate * pos.qty * mark)
                usdc = acct.balance(self.perp.quote)
                usdc.available += amount
                if usdc.available < 0:
                    usdc.available = ZERO  # funding beyond the account's cash is absorbed (insurance)
                pos.funding += amount
                acct.funding.append({"fundingRate": plain(rate), "intervalEndTimestamp": fmt_datetime_ms(end)[:19],
                                     "quantity": plain(amount), "subaccountId": 0, "symbol": self.perp.symbol,
                                     "userId": acct.user_id})
                self._flush_account(acct, {self.perp.quote}, t_us)

    # ----- orders: queries and cancels -----------------------------------------------------------------

    def _find_open(self, acct: Account, params: Mapping[str, Any]) -> Order:
        params = _mapping(params)
        symbol = params.get("symbol")
        self._spec(symbol)
        oid = params.get("orderId")
        cid = params.get("clientId")
        if (oid is None) == (cid is None):
            raise _err("Must specify exactly one of `orderId` and `clientId`")
        for o in acct.open_orders.values():
            if o.symbol != symbol:
                continue
            if oid is not None and o.id == str(oid):
                return o
            if cid is not None and str(o.client_id) == str(cid):
                return o
        raise SimApiError(*_NOT_FOUND)

    def get_order(self, key: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """REST ``GET /order``: only a resting order (404 otherwise)."""
        return self._order_row(self._find_open(self._account(key), params))

    def open_orders(self, key: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        acct = self._account(key)
        symbol = params.get("symbol")
        if symbol is not None:
            self._spec(symbol)
        mtype = params.get("marketType")
        return [self._order_row(o) for o in sorted(acct.open_orders.values(), key=lambda o: o.seq)
                if (symbol is None or o.symbol == symbol)
                and (mtype is None or self.specs[o.symbol].kind == mtype)]

    def cancel_order(self, key: str, body: Mapping[str, Any], now_us: int) -> tuple[dict[str, Any], list[Emit]]:
        """REST ``DELETE /order``: the cancelled order."""
        self._advance(now_us)
        acct = self._account(key)
        order = self._find_open(acct, body)
        self._cancel(acct, order, "Cancelled", None, self._now_us, set())
        self._publish_books(self._now_us)
        return self._order_row(order), self._drain()

    def cancel_all(self, key: str, body: Mapping[str, Any], now_us: int) -> tuple[list[dict[str, Any]], list[Emit]]:
        """REST ``DELETE /orders``: every cancelled order of the symbol."""
        self._advance(now_us)
        acct = self._account(key)
        body = _mapping(body)
        spec = self._spec(body.get("symbol"))
        if body.get("orderType") == "ConditionalOrder":
            return [], self._drain()
        rows = []
        for order in sorted(acct.open_orders.values(), key=lambda o: o.seq):
            if order.symbol == spec.symbol:
                self._cancel(acct, order, "Cancelled", None, self._now_us, set())
                rows.append(self._order_row(order))
        self._publish_books(self._now_us)
        return rows, self._drain()

    @staticmethod
    def _page(rows: list[Any], params: Mapping[str, Any]) -> list[Any]:
        limit = _int_param(params, "limit", 100, 1, 1000) or 100
        offset = _int_param(params, "offset", 0, 0, 10**9) or 0
        direction = params.get("sortDirection", "Desc")
        if direction not in ("Asc", "Desc"):
            raise _err("Invalid sortDirection")
        if direction == "Desc":
            rows = list(reversed(rows))
        return rows[offset: offset + limit]

    def order_history(self, key: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``/wapi/v1/history/orders`` (newest first by default)."""
        acct = self._account(key)
        symbol = params.get("symbol")
        oid = params.get("orderId")
        mtype = params.get("marketType")
        rows = [o for o in acct.orders if (symbol is None or o.symbol == symbol) and (oid is None or o.id == str(oid))
                and (mtype is None or self.specs[o.symbol].kind == mtype)]
        return [self._history_row(o) for o in self._page(rows, params)]

    def fill_history(self, key: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``/wapi/v1/history/fills``: ``fillType=User`` keeps own-order fills, liquidation types the rest."""
        acct = self._account(key)
        symbol = params.get("symbol")
        oid = params.get("orderId")
        lo = _int_param(params, "from", None, 0, 2**63)
        hi = _int_param(params, "to", None, 0, 2**63)
        ftype = params.get("fillType")
        mtype = params.get("marketType")
        rows = []
        for ts, row in acct.fills:
            if symbol is not None and row["symbol"] != symbol:
                continue
            if oid is not None and row["orderId"] != str(oid):
                continue
            if (lo is not None and ts < lo) or (hi is not None and ts > hi):
                continue
            if mtype is not None and self.specs[row["symbol"]].kind != mtype:
                continue
            system = row["systemOrderType"] is not None
            if ftype == "User" and system:
                continue
            if ftype in ("Liquidation", "AllLiquidation", "BookLiquidation") and not system:
                continue
            rows.append(row)
        return self._page(rows, params)

    def funding_history(self, key: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``/wapi/v1/history/funding``: payments (> 0 received, < 0 paid)."""
        acct = self._account(key)
        symbol = params.get("symbol")
        rows = [r for r in acct.funding if symbol is None or r["symbol"] == symbol]
        return self._page(rows, params)

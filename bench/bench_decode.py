"""Benchmark: WebSocket frame decoding and order-book delta application, as ratios to bare ``json.loads``.

Run from the repository root: ``python bench/bench_decode.py`` (prints a table, takes well under a minute).

For each frame kind it times, in the same process and on the same bytes:
  * stdlib ``json.loads`` (the baseline), ``orjson.loads`` and ``msgspec.json.Decoder().decode`` (the parsing
    step alone, to justify the parser choice), and
  * ``engine.backpack.decode_frame`` (parse + validate + build the typed event).
Then it times ``OrderBook.apply_delta`` for 10-level deltas (5 bids + 5 asks, some deletions) on a book
holding 1000 levels per side, and reports it against ``json.loads`` of a 10-level depth frame.
Targets: decode_frame <= 1.5x json.loads; a 10-level apply within another 1.5x json.loads.
"""

from __future__ import annotations

import json
import pathlib
import statistics
import sys
import timeit
from collections.abc import Callable
from decimal import Decimal

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import msgspec  # noqa: E402
import orjson  # noqa: E402

from engine.backpack import Depth, DepthSnapshot, OrderBook, decode_frame  # noqa: E402

TICKER = (
    b'{"stream":"ticker.SOL_USDC","data":{"E":1788367430549233,"V":"1498114.9234","c":"98.98","e":"ticker",'
    b'"h":"101.19","l":"97.38","n":6796,"o":"100.87","s":"SOL_USDC","v":"15089.56"}}'
)
BOOK_TICKER = (
    b'{"stream":"bookTicker.BTC_USDC_PERP","data":{"A":"2.01178","B":"1.94230","E":1790134357267285,'
    b'"T":1790134357267074,"a":"86656.0","b":"86655.9","e":"bookTicker","s":"BTC_USDC_PERP","u":6730019258}}'
)
DEPTH_3 = (
    b'{"stream":"depth.SOL_USDC","data":{"E":1788367430265241,"T":1788367430264934,"U":4330360996,'
    b'"a":[["99.00","225.81"]],"b":[["98.95","12.00"],["98.90","0.00"]],"e":"depth","s":"SOL_USDC","u":4330360996}}'
)
DEPTH_10 = (
    b'{"stream":"depth.200ms.ETH_USDC_PERP","data":{"E":1790134357903774,"T":1790134357900446,"U":7501116422,'
    b'"a":[["2766.95","6.9498"],["2766.98","22.8939"],["2767.10","0.0000"],["2767.55","1.2000"],'
    b'["2768.01","3.3333"]],"b":[["2754.43","45.0537"],["2755.33","0.0000"],["2763.10","0.1579"],'
    b'["2763.20","7.5000"],["2763.30","0.0100"]],"e":"depth","s":"ETH_USDC_PERP","u":7501116464}}'
)

FRAMES = [
    ("ticker", TICKER),
    ("bookTicker", BOOK_TICKER),
    ("depth (3 levels)", DEPTH_3),
    ("depth (10 levels)", DEPTH_10),
]


def paired(
    base: Callable[[], object], ours: Callable[[], object], number: int, repeat: int = 7
) -> tuple[float, float, float]:
    """Best per-call ns of ``base`` and ``ours``, and the median of their ratios timed back to back.

    The machine is shared, so load changes during a run; a ratio of two adjacent timings is much more stable
    than a ratio of two minima taken at different moments.
    """
    base_times, our_times, ratios = [], [], []
    for _ in range(repeat):
        b = timeit.timeit(base, number=number)
        o = timeit.timeit(ours, number=number)
        base_times.append(b)
        our_times.append(o)
        ratios.append(o / b)
    return min(base_times) / number * 1e9, min(our_times) / number * 1e9, statistics.median(ratios)


def bench_frames(number: int) -> list[tuple[str, float, float, float, float, float]]:
    rows = []
    ms_decoder = msgspec.json.Decoder()
    for name, frame in FRAMES:
        decode_frame(frame)  # warm up and fail fast if the frame is wrong
        base, ours, ratio = paired(lambda f=frame: json.loads(f), lambda f=frame: decode_frame(f), number)
        _, orj, orj_ratio = paired(lambda f=frame: json.loads(f), lambda f=frame: orjson.loads(f), number)
        _, msg, msg_ratio = paired(
            lambda f=frame: json.loads(f), lambda f=frame: ms_decoder.decode(f), number
        )
        rows.append((name, base, orj, msg, ours, ratio, orj_ratio, msg_ratio))
    return rows


def _unique_frames(template: bytes, count: int) -> list[bytes]:
    """``count`` copies of a frame whose every decimal text is different, so no decoded value can be reused."""
    obj = json.loads(template)
    data = obj["data"]
    out = []
    for n in range(count):
        suffix = f"{n:06d}"
        for key in ("a", "b", "A", "B", "c", "o", "h", "l", "v", "V"):
            value = data.get(key)
            if isinstance(value, str):
                data[key] = value.split(".")[0] + "." + suffix
            elif isinstance(value, list):
                data[key] = [
                    [p.split(".")[0] + "." + suffix + str(i), q.split(".")[0] + "." + suffix]
                    for i, (p, q) in enumerate(value)
                ]
        out.append(json.dumps(obj, separators=(",", ":")).encode())
    return out


def bench_cold(count: int) -> list[tuple[str, float, float, float]]:
    """Per-frame cost when every decimal text is new (the decoder's value cache never hits)."""
    rows = []
    for name, frame in FRAMES:
        frames = _unique_frames(frame, count)
        base, ours, ratio = paired(
            lambda fs=frames: [json.loads(f) for f in fs],
            lambda fs=frames: [decode_frame(f) for f in fs],
            1,
            5,
        )
        rows.append((name, base / count, ours / count, ratio))
    return rows


def _book_and_deltas(count: int) -> tuple[OrderBook, list[Depth]]:
    symbol = "ETH_USDC_PERP"
    tick = Decimal("0.01")
    bids = tuple((Decimal(2000) - i * tick, Decimal("1.5")) for i in range(1, 1001))
    asks = tuple((Decimal(2000) + i * tick, Decimal("1.5")) for i in range(1, 1001))
    book = OrderBook(symbol)
    book.apply_snapshot(DepthSnapshot(last_update_id=1000, timestamp_us=0, bids=bids, asks=asks))
    deltas = []
    for n in range(count):
        # Touch 5 levels per side near the top; every third level is deleted and comes back later, so the
        # sorted price lists see real inserts and removals, not only size changes. The deltas go through
        # decode_frame, as on the live path, so the book sees the same Decimal objects it would in production.
        bid_levels = [
            [str(Decimal(2000) - ((n + k * 7) % 40 + 1) * tick), "0.00000" if (n + k) % 3 == 0 else "2.25000"]
            for k in range(5)
        ]
        ask_levels = [
            [
                str(Decimal(2000) + ((n + k * 11) % 40 + 1) * tick),
                "0.00000" if (n + k) % 3 == 1 else "0.75000",
            ]
            for k in range(5)
        ]
        frame = {
            "stream": f"depth.{symbol}",
            "data": {
                "e": "depth",
                "E": 0,
                "T": 0,
                "s": symbol,
                "U": 1001 + n,
                "u": 1001 + n,
                "b": bid_levels,
                "a": ask_levels,
            },
        }
        event = decode_frame(json.dumps(frame, separators=(",", ":")))
        assert isinstance(event, Depth)
        deltas.append(event)
    return book, deltas


def bench_book(count: int, repeat: int = 7) -> tuple[float, float]:
    """Best ns per applied delta, and the median ratio to json.loads of a 10-level frame timed back to back."""
    best = float("inf")
    ratios = []
    for _ in range(repeat):
        book, deltas = _book_and_deltas(count)
        base = timeit.timeit(lambda: json.loads(DEPTH_10), number=count)
        elapsed = timeit.timeit(lambda b=book, ds=deltas: [b.apply_delta(d) for d in ds], number=1)
        stats = book.statistics()
        # Every delta must really be applied, or the timing would measure the rejection path.
        assert stats.applied == count, stats
        assert stats.resyncs == 0, stats
        best = min(best, elapsed)
        ratios.append(elapsed / base)
    return best / count * 1e9, statistics.median(ratios)


def main() -> None:
    number = 5_000
    rows = bench_frames(number)
    print(f"Python {sys.version.split()[0]}, msgspec {msgspec.__version__}, orjson {orjson.__version__}")
    print(f"ns per frame = best of 7 x {number} calls; ratio x = median over 7 back-to-back pairs of")
    print("time / json.loads of the same bytes (robust to load changes on a shared machine)")
    print("steady state: the same frame repeated (decoded-value cache warm, as for repeating prices/sizes)\n")
    header = (
        f"{'frame':<19}{'json.loads':>11}{'orjson':>9}{'msgspec':>9}{'decode_frame':>14}"
        f"{'orjson x':>10}{'msgspec x':>11}{'decode x':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, base, orj, msg, ours, ratio, orj_ratio, msg_ratio in rows:
        print(
            f"{name:<19}{base:>11.0f}{orj:>9.0f}{msg:>9.0f}{ours:>14.0f}"
            f"{orj_ratio:>10.2f}{msg_ratio:>11.2f}{ratio:>10.2f}"
        )
    print("\nworst case: every decimal text unseen (decoded-value cache cold), 5000 distinct frames per kind")
    print(f"{'frame':<19}{'json.loads':>11}{'decode_frame':>14}{'decode x':>10}")
    for name, base, ours, ratio in bench_cold(5_000):
        print(f"{name:<19}{base:>11.0f}{ours:>14.0f}{ratio:>10.2f}")
    apply_ns, apply_ratio = bench_book(5_000)
    print()
    print(f"{'OrderBook.apply_delta, 10 levels, 1000 levels/side':<54}{apply_ns:>8.0f} ns")
    print(f"{'  ratio to json.loads of a 10-level depth frame':<54}{apply_ratio:>8.2f} x")


if __name__ == "__main__":
    main()

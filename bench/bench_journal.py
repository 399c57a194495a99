"""Journal write-path benchmark: what persist-then-send costs, and why checkpoints are kept off that path.

Run from the repository root (about 15-40 s on a shared 2-core machine)::

    PYTHONPATH=. python bench/bench_journal.py [--n 2000] [--stall-n 12000] [--repeat 3] [--dir DIR]

It prints, all measured in this one process on this machine:

1. ``record_attempt`` latency (the commit that must precede every order POST), and the full pre-send cost
   both ways the journal offers it (NEW then ``record_event(Submitted)``: two commits; or the state
   machine's ``Submitted`` applied first and ``record_attempt`` of the SENT order: one commit), as ratios to
   a bare ``sqlite3`` INSERT + COMMIT on the same pragmas (WAL, ``synchronous=NORMAL``, autocheckpoint off);
2. the commit-latency tail with SQLite's automatic checkpoint on (its default 1000 pages) vs off, and off with
   ``Journal.checkpoint()`` running concurrently on a thread, as the journal actor runs it;
3. the cost of a ``trio.to_thread.run_sync`` hop, for comparison with simply calling the journal inline.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import trio

from engine.orders.fsm import OrderTracker, Side, Submitted, new_order
from engine.store.journal import Journal

__all__ = ["main"]


def pct(samples_ns: list[int], q: float) -> float:
    """The q-quantile of ``samples_ns`` in microseconds (nearest rank)."""
    ordered = sorted(samples_ns)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index] / 1000


def summary(samples_ns: list[int]) -> dict[str, float]:
    return {
        "p50": pct(samples_ns, 0.50),
        "p99": pct(samples_ns, 0.99),
        "p99.9": pct(samples_ns, 0.999),
        "max": max(samples_ns) / 1000,
        "mean": statistics.fmean(samples_ns) / 1000,
        "over_1ms": float(sum(1 for s in samples_ns if s > 1_000_000)),
        "over_5ms": float(sum(1 for s in samples_ns if s > 5_000_000)),
    }


def timed(n: int, op: Callable[[int], object]) -> list[int]:
    out = []
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        op(i)
        out.append(clock() - start)
    return out


def bare_sqlite(path: Path, n: int) -> list[int]:
    """Baseline: one INSERT + COMMIT per op, same pragmas as the journal, nothing else."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, intent TEXT, qty TEXT, price TEXT, status TEXT)")

    def op(i: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (id, intent, qty, price, status) VALUES (?, ?, ?, ?, ?)",
                     (i, f"nanpin:BTC_USDC:k:{i}", "0.10183", "98691.5", "NEW"))
        conn.execute("COMMIT")

    samples = timed(n, op)
    conn.close()
    return samples


def journal_attempts(path: Path, n: int, *, autocheckpoint_pages: int = 0, mode: str = "new",
                     background_checkpoint_s: float | None = None, tag: str = "a") -> list[int]:
    """Latency per order of the pre-send journal writes. ``mode``: ``new`` = ``record_attempt`` of a NEW
    order; ``two`` = that plus ``record_event(Submitted)``; ``sent`` = ``tracker.apply(Submitted)`` then
    ``record_attempt`` of the SENT order (one commit)."""
    journal = Journal.open(path, autocheckpoint_pages=autocheckpoint_pages)
    tracker = OrderTracker()
    orders = [new_order(intent_id=f"nanpin:BTC_USDC:{tag}:{i}", attempt=0, symbol="BTC_USDC", side=Side.BUY,
                        qty=Decimal("0.10183"), limit_price=Decimal("98691.5"), created_ms=i) for i in range(n)]
    for order in orders:
        tracker.add(order)
    stop = threading.Event()

    def checkpoints() -> None:
        assert background_checkpoint_s is not None
        while not stop.wait(background_checkpoint_s):
            journal.checkpoint()

    worker = threading.Thread(target=checkpoints, daemon=True)
    if background_checkpoint_s is not None:
        worker.start()

    def op(i: int) -> None:
        order = orders[i]
        if mode == "sent":
            journal.record_attempt(tracker.apply(order.client_id, Submitted()).order)
            return
        journal.record_attempt(order)
        if mode == "two":
            journal.record_event(tracker.apply(order.client_id, Submitted()).order, Submitted())

    try:
        return timed(n, op)
    finally:
        stop.set()
        if background_checkpoint_s is not None:
            worker.join()
        journal.close()


def checkpoint_cost(directory: Path, rounds: int, frames: int = 1000) -> list[int]:
    """Wall time of one ``Journal.checkpoint()`` over a fresh WAL of about ``frames`` frames: the stall that an
    automatic checkpoint adds to the unlucky commit that triggers it."""
    out: list[int] = []
    for r in range(rounds):
        path = directory / f"ckpt{r}.sqlite"
        journal = Journal.open(path)
        i = 0
        while i % 50 or Path(f"{path}-wal").stat().st_size < frames * 4096:
            journal.record_attempt(new_order(
                intent_id=f"nanpin:BTC_USDC:ckpt:{i}", attempt=0, symbol="BTC_USDC", side=Side.BUY,
                qty=Decimal("0.1"), limit_price=Decimal("98691.5"), created_ms=i))
            i += 1
        start = time.perf_counter_ns()
        result = journal.checkpoint()
        out.append(time.perf_counter_ns() - start)
        if result.busy or result.checkpointed_frames != result.wal_frames:
            raise SystemExit(f"checkpoint did not complete: {result}")
        journal.close()
    return out


async def thread_hops(path: Path, n: int) -> tuple[list[int], list[int]]:
    """A bare ``trio.to_thread.run_sync`` round trip, and ``record_attempt`` called through one."""
    clock = time.perf_counter_ns
    hop: list[int] = []
    for _ in range(n):
        start = clock()
        await trio.to_thread.run_sync(int)
        hop.append(clock() - start)
    journal = Journal.open(path)
    through: list[int] = []
    for i in range(n):
        order = new_order(intent_id=f"nanpin:BTC_USDC:hop:{i}", attempt=0, symbol="BTC_USDC", side=Side.BUY,
                          qty=Decimal("0.1"), limit_price=Decimal("98691.5"), created_ms=i)
        start = clock()
        await trio.to_thread.run_sync(journal.record_attempt, order)
        through.append(clock() - start)
    journal.close()
    return hop, through


def row(name: str, s: dict[str, float], base: dict[str, float] | None = None) -> str:
    text = (f"  {name:<47} p50 {s['p50']:6.1f}  p99 {s['p99']:7.1f}  p99.9 {s['p99.9']:7.0f}  "
            f"max {s['max']:8.0f}  >1ms {int(s['over_1ms']):4d}  >5ms {int(s['over_5ms']):3d}")
    if base is not None:
        text += f"   (x{s['p50'] / base['p50']:.2f} p50, x{s['p99'] / base['p99']:.2f} p99)"
    return text


def median_summary(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per statistic, the median over repeated runs (the machine is shared: single runs are noisy)."""
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="ops per latency series")
    parser.add_argument("--stall-n", type=int, default=12000, help="ops per checkpoint-stall series")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each figure is the median over rounds")
    parser.add_argument("--dir", type=Path, default=None, help="directory for the scratch databases")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load_before = os.getloadavg()
    series: dict[str, list[dict[str, float]]] = {}

    def add(name: str, samples: list[int]) -> None:
        series.setdefault(name, []).append(summary(samples))

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp)
        # Warm-up (page cache, imports, statement cache), discarded.
        bare_sqlite(d / "warm.sqlite", 300)
        journal_attempts(d / "warm-j.sqlite", 300)
        for r in range(args.repeat):
            # Series are interleaved round by round so that load drift on a shared machine hits all alike.
            add("bare", bare_sqlite(d / f"bare{r}.sqlite", args.n))
            add("new", journal_attempts(d / f"attempt{r}.sqlite", args.n))
            add("two", journal_attempts(d / f"presend{r}.sqlite", args.n, mode="two"))
            add("sent", journal_attempts(d / f"onecommit{r}.sqlite", args.n, mode="sent"))
            add("on", journal_attempts(d / f"auto-on{r}.sqlite", args.stall_n, autocheckpoint_pages=1000))
            add("off", journal_attempts(d / f"auto-off{r}.sqlite", args.stall_n))
            add("bg", journal_attempts(d / f"auto-off-bg{r}.sqlite", args.stall_n, background_checkpoint_s=0.05))
            ckpt_dir = d / f"ckpt{r}"
            ckpt_dir.mkdir()
            add("ckpt", checkpoint_cost(ckpt_dir, 5))
            hop_ns, through_ns = trio.run(thread_hops, d / f"hop{r}.sqlite", args.n)
            add("hop", hop_ns)
            add("through", through_ns)
    m = {name: median_summary(runs) for name, runs in series.items()}
    out = sys.stdout.write
    out(f"journal write path: sqlite {sqlite3.sqlite_version}, python {sys.version.split()[0]}; "
        f"each figure is the median of {args.repeat} interleaved rounds; microseconds\n")
    out(f"load average at start {load_before[0]:.2f}, at end {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
        "(tails above ~4 ms on a loaded machine are mostly CPU preemption, visible in the baseline too)\n")
    out(f"\n1. persist-then-send latency, n={args.n} (WAL, synchronous=NORMAL, autocheckpoint off)\n")
    out(row("bare sqlite3 INSERT+COMMIT (baseline)", m["bare"]) + "\n")
    out(row("Journal.record_attempt (NEW)", m["new"], m["bare"]) + "\n")
    out(row("record_attempt(NEW) + record_event(Submitted)", m["two"], m["bare"]) + "\n")
    out(row("apply(Submitted) + record_attempt(SENT)", m["sent"], m["bare"]) + "\n")
    out(f"\n2. commit stalls, record_attempt x {args.stall_n}\n")
    out(row("autocheckpoint on (1000 pages, SQLite default)", m["on"]) + "\n")
    out(row("autocheckpoint off, no checkpoint", m["off"]) + "\n")
    out(row("autocheckpoint off, checkpoint() thread /50ms", m["bg"]) + "\n")
    out(row("one checkpoint() of a ~1000-frame WAL", m["ckpt"]) + "\n")
    out(f"\n3. trio.to_thread hop, n={args.n}\n")
    out(row("trio.to_thread.run_sync(no-op)", m["hop"]) + "\n")
    out(row("record_attempt via trio.to_thread", m["through"], m["new"]) + "\n")
    out(f"\nthe hop alone costs x{m['hop']['p50'] / m['new']['p50']:.2f} the p50 of an inline record_attempt\n")
    out(f"total {time.perf_counter() - started:.1f} s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

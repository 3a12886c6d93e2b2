#!/usr/bin/env python3
"""The batch engines on the question `benches/window.rs` streams: one-minute windows by
sensor over 10M readings (count, avg, max), asked of the whole table at once.

DuckDB (`time_bucket`), DataFusion (`date_bin`) and Polars (`dt.truncate`) group the
in-memory table by (minute, sensor): no watermark, no arrival order, no emission as the
windows close, so it is the floor a streaming run could reach on this machine, not the
same service. The data has the same shape as the Rust benchmark's (100 minutes of event
time, readings up to 5 s out of order, 1k or 1M sensors, values in [-20, 80)), drawn with
numpy (not the same numbers).

    python3 benches/window/peers.py [--rows N] [--runs 3]
"""
import argparse
import statistics
import time

import numpy as np
import pyarrow as pa


def table(rows, keys):
    rng = np.random.default_rng(2026)
    span = 100 * 60 * 1000
    ts = (np.arange(rows, dtype=np.int64) * span) // rows - rng.integers(0, 5000, rows)
    return pa.table({
        "ts": pa.array(ts, pa.timestamp("ms")),
        "sensor": pa.array(rng.integers(0, keys, rows)),
        "v": pa.array(rng.integers(0, 1_000_000, rows) / 1e4 - 20.0),
    })


def timed(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import duckdb
    import datafusion
    import polars as pl

    print(f"{args.rows} events; median of {args.runs} runs after a warm-up")
    print("| keys | engine | events/s | groups |")
    print("|---|---|---|---|")
    for label, keys in [("1k", 1_000), ("1M", 1_000_000)]:
        t = table(args.rows, keys)
        con = duckdb.connect()
        con.register("t", t)
        q = ("SELECT time_bucket(INTERVAL 1 MINUTE, ts) AS w, sensor, count(*), avg(v), max(v) "
             "FROM t GROUP BY ALL")
        s, n = timed(lambda: len(con.sql(q).to_arrow_table()), args.runs)
        print(f"| {label} | DuckDB {duckdb.__version__} | {args.rows / s / 1e6:.2f}M | {n} |")
        ctx = datafusion.SessionContext()
        ctx.register_record_batches("t", [t.to_batches(max_chunksize=8192)])
        q = ("SELECT date_bin(INTERVAL '1 minute', ts) AS w, sensor, count(*), avg(v), max(v) "
             "FROM t GROUP BY 1, 2")
        s, n = timed(lambda: sum(b.num_rows for b in ctx.sql(q).collect()), args.runs)
        print(f"| {label} | DataFusion {datafusion.__version__} | {args.rows / s / 1e6:.2f}M | {n} |")
        df = pl.from_arrow(t)
        s, n = timed(lambda: df.group_by(pl.col("ts").dt.truncate("1m"), "sensor").agg(
            pl.len(), pl.col("v").mean().alias("avg"), pl.col("v").max().alias("max")).height, args.runs)
        print(f"| {label} | Polars {pl.__version__} | {args.rows / s / 1e6:.2f}M | {n} |")


if __name__ == "__main__":
    main()

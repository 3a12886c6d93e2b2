#!/usr/bin/env python3
"""Each question through `arrow-wgpu sql --backend cpu`, DataFusion's own plan of the same
SQL (the `datafusion` Python package, the same engine version as the crate), DuckDB and
Polars, on the same files, in one run; prints a Markdown table of medians and the ratio
of ours to DataFusion's and to the best of the three.

    pip install duckdb polars datafusion pyarrow numpy tpchgen-cli
    python3 benches/sql/h2o_data.py 1e7 1e2 /tmp/h2o/G1_1e7_1e2_0_0.parquet
    tpchgen-cli parquet -s 1 --output-dir /tmp/tpch-sf1
    cargo build --release -p arrow-wgpu-cli
    python3 benches/sql/compare.py --h2o /tmp/h2o/G1_1e7_1e2_0_0.parquet --tpch /tmp/tpch-sf1 --runs 5

Ours is timed as a whole process (start-up, reading the files' footers, planning,
running, printing), the others in-process from the query to the collected result: the
comparison leans against ours. Each timing is the median of --runs runs after a warm-up.
Questions whose result is large (the 10M-group ones) print only a count in every engine.

    python3 benches/sql/compare.py --h2o ... --before /tmp/arrow-wgpu-before --runs 7

times an earlier build against --binary, alternated, beside DataFusion: a change's
effect on this noisy machine.

    cargo install datafusion-cli --version 55.2.0 --locked
    python3 benches/sql/compare.py --h2o ... --datafusion-cli ~/.cargo/bin/datafusion-cli --runs 7

times ours against DataFusion's own command, both fresh processes (start-up, footers,
planning, running, printing), alternated: the same shape of measurement on both sides.
"""
import argparse
import pathlib
import resource
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]

# (name, SQL over table x for the h2o data / lineitem for TPC-H, polars builder)
H2O = [
    ("h2o q1: sum v1 by id1 (100 groups)", "SELECT id1, sum(v1) AS v1 FROM x GROUP BY id1"),
    ("h2o q2: sum v1 by id1, id2 (10k)", "SELECT id1, id2, sum(v1) AS v1 FROM x GROUP BY id1, id2"),
    ("h2o q3: sum v1, mean v3 by id3 (100k strings)", "SELECT id3, sum(v1) AS v1, avg(v3) AS v3 FROM x GROUP BY id3"),
    ("h2o q4: mean v1, v2, v3 by id4 (100)", "SELECT id4, avg(v1) AS v1, avg(v2) AS v2, avg(v3) AS v3 FROM x GROUP BY id4"),
    ("h2o q5: sum v1, v2, v3 by id6 (100k ints)", "SELECT id6, sum(v1) AS v1, sum(v2) AS v2, sum(v3) AS v3 FROM x GROUP BY id6"),
    ("h2o q7: max v1 - min v2 by id3 (100k)", "SELECT id3, max(v1) - min(v2) AS range_v1_v2 FROM x GROUP BY id3"),
    ("h2o q10: sum v3, count by id1..id6 (10M groups)", "SELECT count(*) FROM (SELECT id1, id2, id3, id4, id5, id6, sum(v3) AS v3, count(*) AS cnt FROM x GROUP BY id1, id2, id3, id4, id5, id6)"),
    ("h2o: stddev v3 by id4 (100)", "SELECT id4, stddev(v3) AS s FROM x GROUP BY id4"),
    ("filter + count", "SELECT count(*) FROM x WHERE v3 > 50 AND id4 < 30"),
    ("distinct id3 (100k)", "SELECT count(*) FROM (SELECT DISTINCT id3 FROM x)"),
    ("top-10 by v3", "SELECT id6, v3 FROM x ORDER BY v3 DESC, id6 LIMIT 10"),
]
TPCH = ["q01", "q06"]


def median_time(f, runs):
    f()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def process(args):
    """A runner of the command `args` as a fresh process, its output thrown away."""
    return lambda: subprocess.run(
        args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def ours(binary, tables, sql):
    args = [binary, "sql", "--backend", "cpu", "-q"]
    for name, path in tables.items():
        args += ["--table", f"{name}={path}"]
    args.append(sql)
    return process(args)


def datafusion_cli(binary, tables, sql):
    """DataFusion's own command (`datafusion-cli` of the same DataFusion version), a fresh
    process each run, as ours is: the tables made by CREATE EXTERNAL TABLE, then the SQL."""
    args = [binary, "-q", "--format", "csv"]
    for name, path in tables.items():
        args += ["-c", f"CREATE EXTERNAL TABLE {name} STORED AS PARQUET LOCATION '{path}';"]
    args += ["-c", sql]
    return process(args)


def datafusion_engine(tables, sql):
    import datafusion

    ctx = datafusion.SessionContext()
    for name, path in tables.items():
        ctx.register_parquet(name, str(path))
    return lambda: ctx.sql(sql).collect()


def duckdb_engine(tables, sql):
    import duckdb

    con = duckdb.connect()
    for name, path in tables.items():
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
    return lambda: con.sql(sql).fetchall()


def polars_engine(tables, sql):
    import polars as pl

    frames = {name: pl.scan_parquet(str(path)) for name, path in tables.items()}
    ctx = pl.SQLContext(frames=frames)
    return lambda: ctx.execute(sql, eager=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--h2o", type=pathlib.Path)
    p.add_argument("--tpch", type=pathlib.Path)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--binary", default=str(ROOT / "target" / "release" / "arrow-wgpu"))
    p.add_argument("--only", help="run the questions whose name contains this")
    p.add_argument(
        "--before",
        help="another build of the command: time it and --binary alternated, run by run, "
        "beside DataFusion (wall and CPU time), instead of the table of all engines",
    )
    p.add_argument(
        "--datafusion-cli",
        help="DataFusion's own command (datafusion-cli): time it and --binary alternated, run "
        "by run, each a fresh process (wall and CPU time), instead of the table of all engines",
    )
    a = p.parse_args()
    cases = []
    if a.h2o:
        cases += [(name, {"x": a.h2o}, sql) for name, sql in H2O]
    if a.tpch:
        tables = {t: a.tpch / f"{t}.parquet" for t in ["lineitem"]}
        for q in TPCH:
            sql = (ROOT / "queries" / "tpch" / f"{q}.sql").read_text()
            cases.append((f"TPC-H {q.upper()} SF1", tables, sql))
    if a.only:
        cases = [c for c in cases if a.only in c[0]]
    if a.before:
        return paired(a.before, a.binary, cases, a.runs)
    if a.datafusion_cli:
        return processes(a.binary, a.datafusion_cli, cases, a.runs)
    engines = [
        ("arrow-wgpu sql --backend cpu", lambda t, s: ours(a.binary, t, s)),
        ("DataFusion", datafusion_engine),
        ("DuckDB", duckdb_engine),
        ("Polars", polars_engine),
    ]
    print("| question | " + " | ".join(e for e, _ in engines) + " | ours / DataFusion | ours / best |")
    print("|---|" + "---:|" * (len(engines) + 2))
    for name, tables, sql in cases:
        times = []
        for ename, make in engines:
            try:
                times.append(median_time(make(tables, sql), a.runs))
            except Exception as e:  # an engine that can't run the SQL
                print(f"{ename} failed on {name}: {e}", file=sys.stderr)
                times.append(None)
        cells = [f"{t * 1e3:.0f} ms" if t is not None else "n/a" for t in times]
        others = [t for t in times[1:] if t is not None]
        ratio_df = f"{times[0] / times[1]:.2f}x" if times[0] and times[1] else "n/a"
        ratio_best = f"{times[0] / min(others):.2f}x" if times[0] and others else "n/a"
        print(f"| {name} | " + " | ".join(cells) + f" | {ratio_df} | {ratio_best} |", flush=True)


def cpu_of_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def alternated(runners, runs):
    """Each process runner once to warm up, then all in turn `runs` times: the medians of
    their wall and CPU times, in ms."""
    for r in runners:
        r()
    wall = [[] for _ in runners]
    cpu = [[] for _ in runners]
    for _ in range(runs):
        for i, r in enumerate(runners):
            c, t = cpu_of_children(), time.perf_counter()
            r()
            wall[i].append(time.perf_counter() - t)
            cpu[i].append(cpu_of_children() - c)
    med = lambda xs: [statistics.median(x) * 1e3 for x in xs]  # noqa: E731
    return med(wall), med(cpu)


def processes(binary, dfcli, cases, runs):
    """Ours against datafusion-cli, both fresh processes, alternated run by run."""
    print("| question | datafusion-cli | ours | ours / datafusion-cli | CPU datafusion-cli | CPU ours |")
    print("|---|" + "---:|" * 5)
    for name, tables, sql in cases:
        runners = [datafusion_cli(dfcli, tables, sql), ours(binary, tables, sql)]
        (d, o), (cd, co) = alternated(runners, runs)
        print(
            f"| {name} | {d:.0f} ms | {o:.0f} ms | {o / d:.2f}x | {cd:.0f} ms | {co:.0f} ms |",
            flush=True,
        )


def paired(before, after, cases, runs):
    """Two builds of ours, alternated run by run (this machine's speed drifts over a run),
    and DataFusion in-process: medians of wall time, and of our process's CPU time."""
    print("| question | DataFusion | before | before / DF | after | after / DF | CPU before | CPU after |")
    print("|---|" + "---:|" * 7)
    for name, tables, sql in cases:
        runners = [ours(b, tables, sql) for b in (before, after)]
        runners.append(datafusion_engine(tables, sql))  # in-process: its CPU is not counted
        (b, f, d), (cb, cf, _) = alternated(runners, runs)
        print(
            f"| {name} | {d:.0f} ms | {b:.0f} ms | {b / d:.2f}x | {f:.0f} ms | {f / d:.2f}x "
            f"| {cb:.0f} ms | {cf:.0f} ms |",
            flush=True,
        )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""TPC-H Q1 through `arrow-wgpu sql` on this process alone and over 1, 2 and 3
`arrow-wgpu worker` processes on 127.0.0.1, beside DataFusion's own plan of the same SQL
(the `datafusion` Python package, the same engine version as the crate) in one run; prints
a Markdown table of medians and, from one `--profile` run of each, the bytes of Arrow data
moved between stages and of plans sent.

    pip install datafusion pyarrow tpchgen-cli
    tpchgen-cli parquet -s 1 --output-dir /tmp/tpch-sf1
    cargo build --release -p arrow-wgpu-cli
    python3 benches/distributed.py --tpch /tmp/tpch-sf1 --runs 5

Every worker shares this machine's cores with the others and with the coordinator, so
more workers here measure the cost of the stages and the network, not a speed-up. Ours
is timed as a whole process (start-up, planning, the stages, printing); DataFusion's
in-process.
"""
import argparse
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benches" / "sql"))
from compare import median_time  # noqa: E402  (one timing rule for every bench script)


def start_worker(binary, backend):
    p = subprocess.Popen(
        [binary, "worker", "--listen", "127.0.0.1:0", "--backend", backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = p.stdout.readline()
    m = re.match(r"listening on (\S+)", line)
    if not m:
        p.kill()
        sys.exit(f"the worker said {line!r}")
    return p, "http://" + m.group(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tpch", required=True, help="folder of TPC-H Parquet files")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--backend", default="cpu", help="the workers' and coordinator's --backend")
    ap.add_argument("--binary", default=str(ROOT / "target/release/arrow-wgpu"))
    args = ap.parse_args()
    sql = (ROOT / "queries/tpch/q01.sql").read_text()
    lineitem = pathlib.Path(args.tpch) / "lineitem.parquet"
    base = [args.binary, "sql", "-q", "--backend", args.backend, "--table", f"lineitem={lineitem}", sql]

    rows = []
    try:
        import datafusion

        ctx = datafusion.SessionContext()
        ctx.register_parquet("lineitem", str(lineitem))
        t = median_time(lambda: ctx.sql(sql).collect(), args.runs)
        rows.append(("DataFusion (Python, in-process)", t, None))
    except ImportError:
        print("datafusion (Python) not installed: its line is left out", file=sys.stderr)

    def run(extra):
        subprocess.run(base + extra, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    rows.append(("arrow-wgpu sql, one process", median_time(lambda: run([]), args.runs), None))
    workers = [start_worker(args.binary, args.backend) for _ in range(3)]
    try:
        for n in (1, 2, 3):
            urls = ",".join(u for _, u in workers[:n])
            extra = ["--workers", urls]
            t = median_time(lambda: run(extra), args.runs)
            prof = subprocess.run(
                base + extra + ["--profile"], check=True, capture_output=True, text=True
            ).stderr
            m = re.search(r"network: (\d+) bytes of Arrow data between stages, (\d+) bytes of plans", prof)
            rows.append((f"arrow-wgpu sql --workers ({n})", t, (int(m.group(1)), int(m.group(2))) if m else None))
    finally:
        for p, _ in workers:
            p.kill()
            p.wait()

    print(f"| TPC-H Q1, {lineitem} | median s | between stages | plans sent |")
    print("|---|---:|---:|---:|")
    for name, t, traffic in rows:
        moved = (f"{traffic[0]:,} B", f"{traffic[1]:,} B") if traffic else ("", "")
        print(f"| {name} | {t:.3f} | {moved[0]} | {moved[1]} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The peers' side of scripts/gpu-bench.sh, and the report that puts both sides together.

`measure`: the card's copy bandwidth, then the same operations as examples/gpu_bench.rs on
the same data (the formulas of its module docs, computed on the card) in PyTorch and CuPy,
whose sort, unique, boolean-mask and scatter-add are CUB's: one JSON object a line on stdout,
flushed as each case ends. What is not installed (no CUDA here) is written as skipped.

`report`: reads both JSON-lines files and writes gpu-bench.json (every line, with the
machine and date) and gpu-bench.md (a table per operation: rows/s of each engine, resident,
and ours with transfers, with our counted device work).
"""

import argparse
import datetime
import json
import platform
import sys
import time

HASH = 2654435761
MERSENNE61 = (1 << 61) - 1


def emit(obj):
    print(json.dumps(obj), flush=True)


def median(runs, f, sync):
    times = []
    for _ in range(max(1, runs)):
        sync()
        t = time.perf_counter()
        f()
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def torch_side(sizes, runs, budget, started):
    try:
        import torch
    except ImportError:
        emit({"engine": "pytorch", "skipped": "torch is not installed"})
        return
    if not torch.cuda.is_available():
        emit({"engine": "pytorch", "skipped": "no CUDA device"})
        return
    dev = torch.device("cuda")
    sync = torch.cuda.synchronize
    name = torch.cuda.get_device_name(0)
    # Copy bandwidth: a 4 GiB device-to-device copy, bytes read + written.
    x = torch.empty(1 << 32, dtype=torch.uint8, device=dev)
    y = torch.empty_like(x)
    s = median(runs, lambda: y.copy_(x), sync)
    emit({"engine": "pytorch", "adapter": name, "op": "copy", "rows": x.numel(),
          "seconds": s, "bytes_per_second": 2 * x.numel() / s})
    del x, y
    for n in sizes:
        i = torch.arange(n, dtype=torch.int64, device=dev)
        h = (i * HASH) % MERSENNE61
        cols = {
            "k1k": ((i * HASH) % 1000).to(torch.int32),
            "k10m": ((i * HASH) % 10_000_000).to(torch.int32),
            "ki64": h,
            "kf64": h.to(torch.float64) / float(1 << 61),
            "v": ((i * 40503) % 1000).to(torch.float64) / 2.0,
        }
        del i, h
        cases = [
            ("filter", "k1k", lambda c: (c["k1k"][c["v"] > 249.75], c["v"][c["v"] > 249.75])),
            ("sort", "k1k", lambda c: torch.sort(c["k1k"], stable=True)),
            ("sort", "ki64", lambda c: torch.sort(c["ki64"], stable=True)),
            ("sort", "kf64", lambda c: torch.sort(c["kf64"], stable=True)),
            ("group_by", "k1k", lambda c: (torch.bincount(c["k1k"], minlength=1000),
                                            torch.zeros(1000, dtype=torch.float64, device=dev).index_add_(0, c["k1k"], c["v"]))),
            ("group_by", "k10m", lambda c: (torch.bincount(c["k10m"], minlength=10_000_000),
                                             torch.zeros(10_000_000, dtype=torch.float64, device=dev).index_add_(0, c["k10m"], c["v"]))),
            ("distinct", "k1k", lambda c: torch.unique(c["k1k"])),
            ("distinct", "k10m", lambda c: torch.unique(c["k10m"])),
        ]
        for op, key, f in cases:
            if time.time() - started > budget:
                emit({"engine": "pytorch", "op": op, "key": key, "rows": n, "skipped": "over the time budget"})
                continue
            f(cols)
            s = median(runs, lambda: f(cols), sync)
            emit({"engine": "pytorch", "adapter": name, "op": op, "key": key, "rows": n,
                  "mode": "resident", "seconds": s, "rows_per_second": n / s})
        del cols
        torch.cuda.empty_cache()


def cupy_side(sizes, runs, budget, started):
    try:
        import cupy as cp
    except ImportError:
        emit({"engine": "cupy", "skipped": "cupy is not installed"})
        return
    try:
        name = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception as e:  # no device
        emit({"engine": "cupy", "skipped": f"no CUDA device ({e})"})
        return
    sync = cp.cuda.Device().synchronize
    for n in sizes:
        i = cp.arange(n, dtype=cp.int64)
        h = (i * HASH) % MERSENNE61
        cols = {
            "k1k": ((i * HASH) % 1000).astype(cp.int32),
            "k10m": ((i * HASH) % 10_000_000).astype(cp.int32),
            "ki64": h,
            "kf64": h.astype(cp.float64) / float(1 << 61),
            "v": ((i * 40503) % 1000).astype(cp.float64) / 2.0,
        }
        del i, h
        cases = [
            ("filter", "k1k", lambda c: (c["k1k"][c["v"] > 249.75], c["v"][c["v"] > 249.75])),
            ("sort", "k1k", lambda c: cp.sort(c["k1k"])),
            ("sort", "ki64", lambda c: cp.sort(c["ki64"])),
            ("sort", "kf64", lambda c: cp.sort(c["kf64"])),
            ("group_by", "k1k", lambda c: (cp.bincount(c["k1k"], minlength=1000),
                                            cp.bincount(c["k1k"], weights=c["v"], minlength=1000))),
            ("group_by", "k10m", lambda c: (cp.bincount(c["k10m"], minlength=10_000_000),
                                             cp.bincount(c["k10m"], weights=c["v"], minlength=10_000_000))),
            ("distinct", "k1k", lambda c: cp.unique(c["k1k"])),
            ("distinct", "k10m", lambda c: cp.unique(c["k10m"])),
        ]
        for op, key, f in cases:
            if time.time() - started > budget:
                emit({"engine": "cupy", "op": op, "key": key, "rows": n, "skipped": "over the time budget"})
                continue
            f(cols)
            s = median(runs, lambda: f(cols), sync)
            emit({"engine": "cupy", "adapter": name, "op": op, "key": key, "rows": n,
                  "mode": "resident", "seconds": s, "rows_per_second": n / s})
        del cols
        cp.get_default_memory_pool().free_all_blocks()


def read_lines(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                out.append(json.loads(line))
    return out


def si(x):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def report(ours_path, peers_path, out_json, out_md, note):
    ours = read_lines(ours_path)
    peers = read_lines(peers_path) if peers_path else []
    every = ours + peers
    with open(out_json, "w") as f:
        json.dump({"date": datetime.date.today().isoformat(), "machine": platform.platform(),
                   "cpu": platform.processor(), "note": note, "results": every}, f, indent=1)
    adapter = next((r["adapter"] for r in ours if r.get("adapter")), "no adapter")
    copy = next((r for r in peers if r.get("op") == "copy"), None)
    lines = [f"# GPU benchmark: arrow-wgpu against PyTorch and CuPy\n",
             f"- Date: {datetime.date.today().isoformat()}; adapter: {adapter}; {note}",
             f"- Copy bandwidth (PyTorch, 4 GiB device-to-device, read + written): "
             + (f"{copy['bytes_per_second'] / 1e12:.2f} TB/s" if copy else "not measured"), ""]
    skipped = [r for r in every if "skipped" in r]
    lines += ["| op | key | rows | arrow-wgpu resident | with transfers | our CPU path | PyTorch | CuPy | device / minimal | dispatches | host syncs |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    keys = []
    for r in ours:
        k = (r.get("op"), r.get("key"), r.get("rows"))
        if "skipped" not in r and k not in keys:
            keys.append(k)

    def find(engine, k, mode="resident"):
        for r in every:
            if r.get("engine") == engine and (r.get("op"), r.get("key"), r.get("rows")) == k \
                    and r.get("mode", "resident") == mode and "rows_per_second" in r:
                return r
        return None

    for k in keys:
        res, tr = find("arrow-wgpu", k), find("arrow-wgpu", k, "with_transfers")
        cpu = find("arrow-wgpu", k, "cpu")
        pt, cu = find("pytorch", k), find("cupy", k)
        rate = lambda r: si(r["rows_per_second"]) + " rows/s" if r else "-"
        ratio = "-"
        if res and res.get("minimal_bytes"):
            ratio = f"{res['device_bytes'] / res['minimal_bytes']:.2f}x"
        lines.append(f"| {k[0]} | {k[1] or '-'} | {k[2]:,} | {rate(res)} | {rate(tr)} | {rate(cpu)} | {rate(pt)} | {rate(cu)} | "
                     f"{ratio} | {res['dispatches'] if res else '-'} | {res['host_syncs'] if res else '-'} |")
    errors = [r for r in every if "error" in r]
    wrong = [r for r in ours if str(r.get("check", "ok")) != "ok"]
    checked = [r for r in ours if r.get("check") == "ok"]
    lines += ["", f"- Answers checked on the host (with transfers, and our CPU path): {len(checked)} right, "
              f"{len(wrong)} wrong."]
    for r in wrong:
        what = " ".join(str(r[k]) for k in ("op", "key", "rows") if r.get(k))
        lines.append(f"- WRONG ANSWER: {what}: {r['check']}")
    if errors or skipped:
        lines.append("")
    for r in errors:
        what = " ".join(str(r[k]) for k in ("engine", "op", "key", "rows") if r.get(k))
        lines.append(f"- error: {what}: {r['error']}")
    for r in skipped:
        what = " ".join(str(r[k]) for k in ("engine", "op", "key", "rows") if r.get(k))
        lines.append(f"- skipped: {what}: {r['skipped']}")
    with open(out_md, "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0 if not errors and not wrong else 1


def main():
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--sizes", default="16000000")
    m.add_argument("--runs", type=int, default=3)
    m.add_argument("--budget-s", type=float, default=120)
    r = sub.add_parser("report")
    r.add_argument("--ours", required=True)
    r.add_argument("--peers")
    r.add_argument("--json", required=True)
    r.add_argument("--md", required=True)
    r.add_argument("--note", default="")
    a = p.parse_args()
    if a.cmd == "measure":
        sizes = [int(s) for s in a.sizes.split(",")]
        started = time.time()
        torch_side(sizes, a.runs, a.budget_s, started)
        cupy_side(sizes, a.runs, a.budget_s, started)
        return 0
    return report(a.ours, a.peers, a.json, a.md, a.note)


if __name__ == "__main__":
    sys.exit(main())

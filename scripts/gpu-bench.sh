#!/usr/bin/env bash
# One run to measure a real GPU: filter, sort, group-by, distinct and TPC-H Q1 on the
# adapter (resident and with transfers, counted device work beside each time), the same
# operations in PyTorch and CuPy on the same card, and the card's copy bandwidth; written
# as gpu-bench-out/gpu-bench.json and gpu-bench-out/gpu-bench.md.
#
#   bash scripts/gpu-bench.sh             here: build the benchmark, pack .gpu/ (binary,
#                                         scripts) and .gl/ (the Vulkan loader)
#   bash scripts/gpu-bench.sh --on-device on the NVIDIA machine, after the pack travelled
#                                         with the tree: everything, in at most 8 minutes
#   bash scripts/gpu-bench.sh --dry-run   here, on llvmpipe at small sizes, the CUDA parts
#                                         skipped: the same steps, so they can't rot (the
#                                         test command runs it)
#
# Sizes and budgets: GPU_BENCH_SIZES (rows, comma-separated; 16M, 128M, 256M on the device),
# GPU_BENCH_RUNS (timed runs per point, 3), GPU_BENCH_Q1_SF (TPC-H Q1's scale factor, 2.7:
# 16M lineitem rows).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-pack}
out=gpu-bench-out
peers=scripts/gpu_bench_peers.py

case "$mode" in
pack)
    cargo build --release --example gpu_bench
    bash ../shared/gpu/fetch-vulkan-loader.sh
    mkdir -p .gpu  # kept out of git by .gitignore, as .gl/ is
    cp target/release/examples/gpu_bench ../shared/gpu/on-device.sh .gpu/
    echo "packed: .gpu/ ($(du -sh .gpu | cut -f1)) and .gl/; on the GPU machine, in the"
    echo "project's root: bash scripts/gpu-bench.sh --on-device"
    ;;
--on-device)
    [ -x .gpu/gpu_bench ] || { echo "no .gpu/gpu_bench: run bash scripts/gpu-bench.sh here first" >&2; exit 1; }
    # shellcheck disable=SC1091
    source .gpu/on-device.sh
    mkdir -p "$out"
    sizes=${GPU_BENCH_SIZES:-16000000,128000000,256000000}
    runs=${GPU_BENCH_RUNS:-3}
    started=$(date +%s)
    # Ours first (4.5 minutes at most; every case ends with a flushed line, so a cut run
    # keeps what it measured), then the peers (2 minutes), then the report.
    timeout 270 .gpu/gpu_bench --sizes "$sizes" --runs "$runs" --budget-s 200 \
        --q1-sf "${GPU_BENCH_Q1_SF:-2.7}" > "$out/ours.jsonl" || echo "gpu_bench stopped: $?" >&2
    timeout 120 python3 "$peers" measure --sizes "$sizes" --runs "$runs" --budget-s 90 \
        > "$out/peers.jsonl" || echo "peers stopped: $?" >&2
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt" 2>&1 || true
    python3 "$peers" report --ours "$out/ours.jsonl" --peers "$out/peers.jsonl" \
        --json "$out/gpu-bench.json" --md "$out/gpu-bench.md" \
        --note "$(cat "$out/gpu.txt" 2>/dev/null | head -1); $(nproc) cores; runs $runs" || true
    echo "done in $(( $(date +%s) - started )) s"
    cat "$out/gpu-bench.md"
    ;;
--dry-run)
    # llvmpipe's Vulkan device (Backend::Gpu takes a software adapter when it is the one
    # there is), sizes where it answers in seconds.
    export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-$(id -u)}"
    mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
    export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
    out=target/gpu-bench-dry
    rm -rf "$out" && mkdir -p "$out"
    # The test profile: the dependencies the test command already built.
    cargo build --profile test --example gpu_bench
    target/debug/examples/gpu_bench --sizes "${GPU_BENCH_SIZES:-100000,300000}" \
        --runs "${GPU_BENCH_RUNS:-1}" --budget-s 300 --q1-sf "${GPU_BENCH_Q1_SF:-0.01}" \
        > "$out/ours.jsonl"
    python3 "$peers" measure --sizes 100000 --runs 1 --budget-s 60 > "$out/peers.jsonl"
    python3 "$peers" report --ours "$out/ours.jsonl" --peers "$out/peers.jsonl" \
        --json "$out/gpu-bench.json" --md "$out/gpu-bench.md" --note "dry run on llvmpipe"
    # Every case answered (no error, nothing skipped) and carries its counted device work.
    python3 - "$out/ours.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
bad = [r for r in rows if "error" in r or "skipped" in r or not r.get("dispatches")]
ops = {r["op"] for r in rows}
want = {"filter", "sort", "group_by", "distinct", "tpch_q1"}
if bad or ops != want or len(rows) != 2 * (8 * 2 + 1):
    sys.exit(f"gpu-bench dry run: {len(rows)} lines, ops {sorted(ops)}, problems: {bad}")
print(f"gpu-bench dry run: {len(rows)} cases measured and counted")
EOF
    ;;
*)
    echo "usage: bash scripts/gpu-bench.sh [--on-device | --dry-run]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# One run to measure a real GPU: filter, sort, group-by, distinct and TPC-H Q1 on the
# adapter (resident and with transfers, counted device work beside each time, each answer
# checked on the host), the same operations in PyTorch and CuPy on the same card, and the
# card's copy bandwidth; written as gpu-bench-out/gpu-bench.json and gpu-bench-out/gpu-bench.md.
#
#   bash scripts/gpu-bench.sh             here: build the benchmark, pack .gpu/ (binary,
#                                         scripts) and .gl/ (the Vulkan loader, and EGL's
#                                         for wgpu's GL backend)
#   bash scripts/gpu-bench.sh --on-device on the NVIDIA machine, after the pack travelled
#                                         with the tree: everything, in at most 8 minutes
#   bash scripts/gpu-bench.sh --dry-run   here, on llvmpipe at small sizes, the CUDA parts
#                                         skipped: the same steps, so they can't rot (the
#                                         test command runs it)
#
# Sizes and budgets: GPU_BENCH_SIZES (rows, comma-separated; 16M, 128M, 256M on the device),
# GPU_BENCH_RUNS (timed runs per point, 3), GPU_BENCH_Q1_SF (TPC-H Q1's scale factor, 2.7:
# 16M lineitem rows), GPU_BENCH_OURS_S and GPU_BENCH_PEERS_S (seconds for each side, 270
# and 120).
#
# GPU_BENCH_TESTS=1 when packing also packs the library's test binaries (lib and
# integration, debug info stripped, xz'd: about 12 MB); --on-device then runs them on the
# card after the benchmark, for GPU_BENCH_TESTS_S seconds (150), Vulkan first and then GL
# (EGL) with what is left, logged to gpu-bench-out/tests-*.log: the property tests' GPU ==
# CPU on a real adapter.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-pack}
out=gpu-bench-out
peers=scripts/gpu_bench_peers.py

case "$mode" in
pack)
    cargo build --release --example gpu_bench
    # The loaders, from this machine's package archive (amd64): Vulkan's, and EGL's (glvnd)
    # for wgpu's GL backend.
    grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >> .git/info/exclude
    mkdir -p .gl /tmp/amd64/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    # shellcheck disable=SC2086
    apt-get $o update -q >/dev/null
    # shellcheck disable=SC2086
    (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1)
    rm -rf .gpu && mkdir -p .gpu  # kept out of git by .gitignore, as .gl/ is
    cp "${CARGO_TARGET_DIR:-target}/release/examples/gpu_bench" ../shared/gpu/on-device.sh .gpu/
    if [ "${GPU_BENCH_TESTS:-0}" = 1 ]; then
        mkdir -p .gpu/tests
        cargo test -p arrow-wgpu --lib --test integration --no-run --message-format=json 2>/dev/null |
            python3 -c 'import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["name"], m["executable"])' |
            while read -r name exe; do
                objcopy --strip-debug "$exe" ".gpu/tests/$name"
                xz -T0 -6 ".gpu/tests/$name"
            done
    fi
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
    ours_s=${GPU_BENCH_OURS_S:-270}
    peers_s=${GPU_BENCH_PEERS_S:-120}
    started=$(date +%s)
    nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
    # A small run first: when the adapter isn't there, say why in seconds, not minutes.
    if ! timeout 60 .gpu/gpu_bench --sizes 1000000 --runs 1 --budget-s 30 --q1-sf 0.01 \
        > "$out/smoke.jsonl" 2> "$out/smoke.err"; then
        echo "the 1M-row run failed; no benchmark:" >&2
        cat "$out/smoke.err" >&2
        ls -l /usr/local/nvidia/share/vulkan/icd.d/ "${VK_DRIVER_FILES:-}" >&2 || true
        VK_LOADER_DEBUG=error,warn timeout 30 .gpu/gpu_bench --sizes 1000 --runs 1 --q1-sf 0.001 \
            > /dev/null 2> "$out/loader.err" || true
        tail -40 "$out/loader.err" >&2
        exit 1
    fi
    grep -c '"check": "ok"' "$out/smoke.jsonl" | sed 's/^/smoke: answers right: /'
    # Ours first (every case ends with a flushed line, so a cut run keeps what it
    # measured), then the peers, then the report.
    timeout "$ours_s" .gpu/gpu_bench --sizes "$sizes" --runs "$runs" --budget-s $((ours_s * 3 / 4)) \
        --q1-sf "${GPU_BENCH_Q1_SF:-2.7}" > "$out/ours.jsonl" || echo "gpu_bench stopped: $?" >&2
    timeout "$peers_s" python3 "$peers" measure --sizes "$sizes" --runs "$runs" \
        --budget-s $((peers_s * 3 / 4)) > "$out/peers.jsonl" || echo "peers stopped: $?" >&2
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt" 2>&1 || true
    python3 "$peers" report --ours "$out/ours.jsonl" --peers "$out/peers.jsonl" \
        --json "$out/gpu-bench.json" --md "$out/gpu-bench.md" \
        --note "$(cat "$out/gpu.txt" 2>/dev/null | head -1); $(nproc) cores; runs $runs" || true
    echo "benchmark done in $(( $(date +%s) - started )) s"
    cat "$out/gpu-bench.md"
    if [ -d .gpu/tests ]; then
        # The library's tests on the card, Vulkan and then GL, in what time is given.
        tests_end=$(( $(date +%s) + ${GPU_BENCH_TESTS_S:-150} ))
        mkdir -p /tmp/gpu-tests
        for f in .gpu/tests/*.xz; do xz -dc "$f" > "/tmp/gpu-tests/$(basename "$f" .xz)"; done
        chmod +x /tmp/gpu-tests/*
        for backend in vulkan gl; do
            for t in /tmp/gpu-tests/*; do
                left=$(( tests_end - $(date +%s) ))
                [ "$left" -gt 5 ] || { echo "tests: no time left for $backend $(basename "$t")"; continue; }
                echo "tests: $backend $(basename "$t") (at most $left s)"
                WGPU_BACKEND=$backend ARROW_WGPU_TEST_BACKENDS=$backend ARROW_WGPU_REQUIRE_GPU=1 \
                    timeout "$left" "$t" --test-threads "$(nproc)" \
                    > "$out/tests-$backend-$(basename "$t").log" 2>&1 || echo "  exit $?"
                grep -E '^test result|panicked|FAILED|failed' "$out/tests-$backend-$(basename "$t").log" | head -20 || true
            done
        done
    fi
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
    "${CARGO_TARGET_DIR:-target}"/debug/examples/gpu_bench --sizes "${GPU_BENCH_SIZES:-100000,300000}" \
        --runs "${GPU_BENCH_RUNS:-1}" --budget-s 300 --q1-sf "${GPU_BENCH_Q1_SF:-0.01}" \
        > "$out/ours.jsonl"
    python3 "$peers" measure --sizes 100000 --runs 1 --budget-s 60 > "$out/peers.jsonl"
    python3 "$peers" report --ours "$out/ours.jsonl" --peers "$out/peers.jsonl" \
        --json "$out/gpu-bench.json" --md "$out/gpu-bench.md" --note "dry run on llvmpipe"
    # Every case answered (no error, nothing skipped) and carries its counted device work.
    python3 - "$out/ours.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
bad = [r for r in rows if "error" in r or "skipped" in r
       or (r.get("mode") != "cpu" and not r.get("dispatches"))
       or (r.get("mode") in ("with_transfers", "cpu")) != (r.get("check") == "ok")]
ops = {r["op"] for r in rows}
want = {"filter", "sort", "group_by", "distinct", "tpch_q1"}
# Two sizes of eight cases and TPC-H Q1, each resident, with transfers and on the CPU.
if bad or ops != want or len(rows) != 3 * (2 * 8 + 1):
    sys.exit(f"gpu-bench dry run: {len(rows)} lines, ops {sorted(ops)}, problems: {bad}")
print(f"gpu-bench dry run: {len(rows)} cases measured and counted, answers checked")
EOF
    ;;
*)
    echo "usage: bash scripts/gpu-bench.sh [--on-device | --dry-run]" >&2
    exit 2
    ;;
esac

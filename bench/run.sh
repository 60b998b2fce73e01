#!/usr/bin/env bash
# `make bench`: builds the empty baseline filter, runs the paired Envoy benchmark
# (bench/pairs.py) and the native engine micro-benchmark (bench/engine-bench).
#   BENCH_ROUNDS   rounds per pair        (default 5)
#   BENCH_SECONDS  measured seconds/round (default 10)
#   BENCH_SKIP_ENGINE=1 skips the engine micro-benchmark
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
for tool in taskset wrk; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool" >&2; exit 1; }
done

# `make bench` has built botgate.wasm already; build it here too so run.sh works on its own.
cargo build --quiet --lib --release --target wasm32-wasip1
cargo build --quiet --release --target wasm32-wasip1 --manifest-path bench/empty-filter/Cargo.toml
cargo build --quiet --release --target wasm32-wasip1 --manifest-path bench/empty-filter/Cargo.toml \
  --features hostcalls --target-dir bench/empty-filter/target/hostcalls

mkdir -p bench/results
"$PY" bench/pairs.py

if [ "${BENCH_SKIP_ENGINE:-0}" != 1 ]; then
  echo
  cargo run --quiet --release --manifest-path bench/engine-bench/Cargo.toml | tee bench/results/engine.md
fi

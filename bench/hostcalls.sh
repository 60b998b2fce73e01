#!/usr/bin/env bash
# Splits botgate's host-call cost by call: the empty filter built with one group of botgate's
# per-request host calls at a time, each paired against the empty filter (see BENCHMARKS.md).
#   BENCH_ROUNDS (default 3) and BENCH_SECONDS (default 8) as for bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3

pairs=""
for group in headers clock property metric verdict-headers response-status; do
  cargo build --quiet --release --target wasm32-wasip1 --manifest-path bench/empty-filter/Cargo.toml \
    --features "$group" --target-dir "bench/empty-filter/target/$group"
  pairs="$pairs,bench/empty-filter/target/$group/wasm32-wasip1/release/empty_filter.wasm:empty-wasm"
done
cargo build --quiet --release --target wasm32-wasip1 --manifest-path bench/empty-filter/Cargo.toml

BENCH_ROUNDS=${BENCH_ROUNDS:-3} BENCH_SECONDS=${BENCH_SECONDS:-8} BENCH_PAIRS=${pairs#,} "$PY" bench/pairs.py

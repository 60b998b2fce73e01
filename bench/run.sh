#!/usr/bin/env bash
# `make bench`: builds the baseline filters, runs the paired Envoy benchmark (bench/pairs.py),
# then the engine micro-benchmark (bench/engine-bench), natively and as Wasm in Node's V8.
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
python3 tools/trim_exports.py target/wasm32-wasip1/release/botgate.wasm
cargo build --quiet --release --target wasm32-wasip1 --manifest-path bench/empty-filter/Cargo.toml
cargo build --quiet --release --target wasm32-wasip1 --manifest-path bench/empty-filter/Cargo.toml \
  --features hostcalls --target-dir bench/empty-filter/target/hostcalls

# The bench policy is derived from envoy/policy.example.json (and compiled into the engine
# benchmark), so it is written first.
"$PY" bench/pairs.py --write-policy

# The engine benchmark is built now, from the same sources as botgate.wasm, so a build error
# shows before the ten-minute Envoy run rather than after it.
ENGINE=bench/engine-bench
if [ "${BENCH_SKIP_ENGINE:-0}" != 1 ]; then
  cargo build --quiet --release --manifest-path $ENGINE/Cargo.toml
  if command -v node >/dev/null; then
    cargo build --quiet --release --target wasm32-wasip1 --manifest-path $ENGINE/Cargo.toml
  fi
fi

mkdir -p bench/results
"$PY" bench/pairs.py
# What a cached crawler verification costs, against the host calls alone (issue 13).
BENCH_TRAFFIC=crawler BENCH_PAIRS="${BENCH_CRAWLER_PAIRS:-botgate-crawlers:hostcalls-only}" "$PY" bench/pairs.py
# What vendor signals cost (issue 14): one and three sources against none, answers cached (256
# clients, an hour's TTL) and not (10,000 clients, a second's TTL).
BENCH_POOL=256 BENCH_PAIRS="botgate-vendors1-cached:botgate,botgate-vendors3-cached:botgate" "$PY" bench/pairs.py
BENCH_PAIRS="botgate-vendors1-uncached:botgate,botgate-vendors3-uncached:botgate" "$PY" bench/pairs.py
# What fleet-wide limits cost (issue 17): the per-address limit counted across the fleet in a
# local Redis (webdis), against the same policy without.
BENCH_PAIRS="botgate-fleet:botgate" "$PY" bench/pairs.py

if [ "${BENCH_SKIP_ENGINE:-0}" != 1 ]; then
  echo
  $ENGINE/target/release/engine-bench | tee bench/results/engine.md
  # The same benchmark as Wasm in V8 (Node): the runtime Envoy runs botgate in.
  if command -v node >/dev/null; then
    echo | tee -a bench/results/engine.md
    node --no-warnings $ENGINE/run-wasm.mjs $ENGINE/target/wasm32-wasip1/release/engine-bench.wasm |
      tee -a bench/results/engine.md
  fi
fi

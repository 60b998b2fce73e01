#!/usr/bin/env bash
# Runs every fuzz target briefly (CI smoke). Exits non-zero if any target crashes.
#
#   fuzz/smoke.sh                  # every target, FUZZ_SECONDS (default 20) each
#   fuzz/smoke.sh policy           # named targets only
#   FUZZ_SECONDS=600 fuzz/smoke.sh request
#
# Environment: FUZZ_SECONDS (per target), FUZZ_TIMEOUT (seconds per input, default 10),
# FUZZ_RSS_MB (default 2048), FUZZ_ARGS (extra libFuzzer flags), FUZZ_TOOLCHAIN (default nightly),
# FUZZ_SANITIZER (address, the default, or none for speed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."   # cargo fuzz looks for ./fuzz

seconds="${FUZZ_SECONDS:-20}"
timeout_s="${FUZZ_TIMEOUT:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo "+$toolchain" --version >/dev/null 2>&1; then
    echo "smoke: the $toolchain toolchain is required (rustup toolchain install $toolchain)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "+$toolchain" fuzz list)
fi

# Build once, outside the timed runs.
cargo "+$toolchain" fuzz build --sanitizer "$sanitizer"

failed=()
for t in "${targets[@]}"; do
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus"
    extra=()
    [ -d "fuzz/seeds/$t" ] && extra+=("fuzz/seeds/$t")
    flags=(-max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb="$rss_mb" -print_final_stats=1)
    [ -f "fuzz/dict/$t.dict" ] && flags+=(-dict="fuzz/dict/$t.dict")
    # The request target keeps its engines across inputs on purpose; libFuzzer would take that
    # state for a leak and rerun each growing input to check (slow, and it replays requests).
    [ "$t" = request ] && flags+=(-detect_leaks=0)
    # shellcheck disable=SC2206
    flags+=(${FUZZ_ARGS:-})
    echo "== fuzz $t for ${seconds}s"
    if ! cargo "+$toolchain" fuzz run --sanitizer "$sanitizer" "$t" "$corpus" "${extra[@]}" -- "${flags[@]}"; then
        echo "!! fuzz target $t failed; reproducer under fuzz/artifacts/$t/" >&2
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "smoke: crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "smoke: ${#targets[@]} target(s) ran ${seconds}s each without a crash"

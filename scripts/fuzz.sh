#!/usr/bin/env bash
# Runs the fuzz targets under fuzz/ for a bounded time each, on the pinned stable toolchain.
#
#   scripts/fuzz.sh SECONDS [TARGET...]      (default: every target)
#
# cargo-fuzz passes nightly-only flags to rustc; RUSTC_BOOTSTRAP=1 lets the pinned stable
# compiler accept them, so CI needs no nightly. No sanitizer (`-s none`): the code under test
# is safe Rust, and AddressSanitizer would cost a third of the executions. Debug assertions
# stay on, so integer overflows fail the run.
#
# The committed seeds (fuzz/corpus/TARGET) are only read; what a run discovers goes to
# $CARGO_TARGET_DIR/fuzz/corpus/TARGET (target/fuzz/corpus by default) and is reused by the
# next run, so fuzzing never dirties the work tree. A failing input is saved under
# fuzz/artifacts/TARGET/ and the run exits non-zero; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none -a TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}"
shift
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(publish_body crate_tarball crate_entries)

target_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")/fuzz"
export RUSTC_BOOTSTRAP=1
fuzz_flags=(-s none --debug-assertions --target-dir "$target_dir")

cd fuzz
# cargo-fuzz has no --locked: refuse a fuzz/Cargo.lock that would need changing.
cargo metadata --locked --format-version 1 >/dev/null
cargo fuzz build "${fuzz_flags[@]}"
summary=()
for target in "${targets[@]}"; do
    work_corpus="$target_dir/corpus/$target"
    mkdir -p "$work_corpus"
    seeds=()
    [ -d "corpus/$target" ] && seeds=("corpus/$target")
    log="$target_dir/$target.log"
    echo "fuzz: $target for ${seconds}s (log: $log)"
    # -timeout: one input taking 10 s is a finding (the API would hold a blocking thread).
    if ! cargo fuzz run "${fuzz_flags[@]}" "$target" "$work_corpus" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        # The panic message first: the backtrace after it pushes it out of a short tail.
        grep -A 3 'panicked at' "$log" | head -n 20 || true
        tail -n 25 "$log"
        echo "fuzz: $target FAILED; the input is under fuzz/artifacts/$target/" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    corpus=$(find "$work_corpus" -type f | wc -l)
    summary+=("$(printf '%-14s %10s runs %8s exec/s %6s corpus inputs' "$target" "$runs" "$rate" "$corpus")")
done
printf 'fuzz: %s\n' "${summary[@]}"

#!/usr/bin/env bash
# Runs one fuzz target for a set time: `fuzz/run.sh TARGET SECONDS [libFuzzer options…]`.
# Uses `cargo fuzz` when installed; otherwise builds the target with the flags cargo-fuzz
# uses (sanitizer coverage for libFuzzer, --cfg fuzzing; no ASan, the code under test is safe
# Rust) on nightly. Needs the nightly toolchain. New inputs go to fuzz/corpus/TARGET, crashes
# to fuzz/artifacts/TARGET/. Results and how to read them: docs/robustness.md.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer options]}
secs=${2:-60}
shift 2 || true
mkdir -p "corpus/$target" "artifacts/$target"
if cargo +nightly fuzz --help >/dev/null 2>&1; then
  exec cargo +nightly fuzz run --sanitizer none "$target" -- -max_total_time="$secs" "$@"
fi
export RUSTFLAGS="${RUSTFLAGS:-} -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros (as cargo-fuzz does).
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
cargo +nightly build --release --target "$triple" --bin "$target"
exec "$CARGO_TARGET_DIR/$triple/release/$target" -artifact_prefix="artifacts/$target/" \
  -max_total_time="$secs" -print_final_stats=1 "$@" "corpus/$target"

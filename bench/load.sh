#!/usr/bin/env bash
# The load harness of issue 11, one command: builds the release binaries once, then runs
# each stage against a fresh `hotline serve` (SQLite, every call recorded) and prints every
# stage's table and a summary.
#
#   bench/load.sh
#
# Stages (each script also runs alone; see its header):
#   held calls   bench/sipp/held_calls.sh    LEVELS (100 500 1000 2000), HOLD (10 s), RATE (200/s)
#   short calls  bench/sipp/call_setup.sh    SHORT_RATES (1000 1500 2000 3000): INVITE/200/ACK/BYE to a seat
#   IVR calls    bench/sipp/ivr_rate.sh      IVR_RATES (500 1000 1500 2000): answer, record, prompt, DTMF, BYE at 2 s
#   REGISTER     bench/sipp/register_rate.sh REGISTER_RATES (1000 2000 4000 8000): digest, binding stored
# SECONDS_PER_RATE (10) for the rate stages. Needs sipp (Debian sip-tester) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
command -v sipp >/dev/null || { echo "sipp is needed (apt-get install sip-tester)" >&2; exit 1; }
echo "building (release): hotline and rtpload"
cargo build --release -p hotline -p hotline-bench --bins >/dev/null
export BENCH_BUILT=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

stage() {
  local name=$1; shift
  echo
  echo "== $name"
  "$@" | tee "$out/$name.txt"
}

# shellcheck disable=SC2086 # the level and rate lists are word lists
{
  stage held bench/sipp/held_calls.sh ${LEVELS:-100 500 1000 2000}
  stage short bench/sipp/call_setup.sh ${SHORT_RATES:-1000 1500 2000 3000}
  stage ivr bench/sipp/ivr_rate.sh ${IVR_RATES:-500 1000 1500 2000}
  stage register bench/sipp/register_rate.sh ${REGISTER_RATES:-1000 2000 4000 8000}
}

# The highest rate with < 0.1 % failures, and the first rate past it (if any).
clean_rate() {
  awk 'NR > 1 && $1 ~ /^[0-9]+$/ {
         if ($5 + 0 < 0.1 && !broken) best = $1; else if (!broken) { broken = $1; bad = $5 }
       }
       END { printf "%s/s", best ? best : "none"; if (broken) printf " (%s/s: %s %% failed)", broken, bad }' "$1"
}

echo
echo "== summary"
echo "held calls (calls, failed, loss % c>s / s>c, p99 µs c>s / s>c, hotline CPU %, RSS MiB, CPU % per call, KiB per call):"
awk '$1 ~ /^[0-9]+$/ && $4 == "|" {
       printf "  %6s calls: %s failed, loss %s / %s %%, p99 %s / %s µs, CPU %s %%, RSS %s MiB, %s %% and %s KiB per call\n",
         $1, $3, $7, $14, $9, $16, $19, $20, $23, $24 }' "$out/held.txt"
grep -h "recording frames dropped" "$out/held.txt" | sed 's/^/  /'
echo "short calls:  $(clean_rate "$out/short.txt")"
echo "IVR calls:    $(clean_rate "$out/ivr.txt")"
echo "REGISTER:     $(clean_rate "$out/register.txt")"

#!/usr/bin/env bash
# Calls into the IVR at rising rates: each call is answered and recorded by hotline, hears
# the welcome prompt, sends the digit 1 (RFC 4733) and hangs up after HOLD_MS. Prints one line per rate with successful and failed
# calls; the highest rate with < 0.1 % failures is the result (bench/README.md).
#
#   bench/sipp/ivr_rate.sh [rates...]       default rates: 50 100 200 400 800
#
# Builds the release binary, runs it on a temporary data directory (SQLite) and drives it
# with sipp (Debian package sip-tester). Environment: HOLD_MS (2000), SECONDS_PER_RATE (10).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. bench/sipp/lib.sh
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(50 100 200 400 800)
hold=${HOLD_MS:-2000}
per=${SECONDS_PER_RATE:-10}
start_hotline 5090 '[{ did = "02296077", target = "ivr" }]'
printf '%8s %10s %10s %10s %8s\n' rate calls ok failed fail%
for r in "${rates[@]}"; do
  n=$((r * per))
  (cd "$work" && sipp 127.0.0.1:5090 -sf "$root/bench/sipp/ivr_call.xml" -s 02296077 \
     -r "$r" -m "$n" -d "$hold" -l $((r * (hold / 1000 + 2))) -nostdin -timeout $((per + 30))s \
     -mp 6000 -trace_stat -stf "stat_$r.csv" -fd 1 >/dev/null 2>&1) || true
  read -r ok failed < <(sipp_counts "$work/stat_$r.csv")
  printf '%8s %10s %10s %10s %8s\n' "$r" "$n" "$ok" "$failed" \
    "$(awk -v f="$failed" -v n="$n" 'BEGIN { printf "%.2f", 100 * f / n }')"
done

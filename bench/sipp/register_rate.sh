#!/usr/bin/env bash
# REGISTER rate with digest authentication: seat 8001 registers at rising rates, each
# registration REGISTER → 401 (challenge) → REGISTER with credentials → 200 (the binding is
# stored), SECONDS_PER_RATE (10) each. Prints successful and failed registrations per rate;
# the result is the highest rate with < 0.1 % failures (bench/README.md).
#
#   bench/sipp/register_rate.sh [rates...]       default rates: 500 1000 2000 4000
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. bench/sipp/lib.sh
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(500 1000 2000 4000)
per=${SECONDS_PER_RATE:-10}
start_hotline 5093 '[]'
sc=$root/sip-gateway/tests/sipp
printf '%8s %10s %10s %10s %8s\n' rate calls ok failed fail%
for r in "${rates[@]}"; do
  n=$((r * per))
  (cd "$work" && sipp 127.0.0.1:5093 -sf "$sc/register.xml" -p 5330 -s 8001 -au 8001 -ap "$seat_pw" \
     -r "$r" -m "$n" -nostdin -timeout $((per + 30))s -trace_stat -stf "stat_$r.csv" -fd 1 \
     >/dev/null 2>&1) || true
  read -r ok failed < <(sipp_counts "$work/stat_$r.csv")
  printf '%8s %10s %10s %10s %8s\n' "$r" "$n" "$ok" "$failed" \
    "$(awk -v f="$failed" -v n="$n" 'BEGIN { printf "%.2f", 100 * f / n }')"
done

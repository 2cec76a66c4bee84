#!/usr/bin/env bash
# Call setup rate through the B2BUA: trunk calls (INVITE → 200 → ACK → BYE, no media) to a
# DID routed to seat 8001 (a sipp UAS registered as 8001) at rising rates, SECONDS_PER_RATE
# (10) each. Prints successful and failed calls per rate, and hotline's CPU time per
# offered call (user + system, from /proc); the result is the highest rate with < 0.1 %
# failures (bench/README.md). RECORDING=false leaves the recorder out.
#
#   bench/sipp/call_setup.sh [rates...]       default rates: 100 200 400 800
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
. bench/sipp/lib.sh
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(100 200 400 800)
per=${SECONDS_PER_RATE:-10}
start_hotline 5092 '[{ did = "02212345", target = "seat:8001" }]'
sc=$root/sip-gateway/tests/sipp
(cd "$work" && sipp 127.0.0.1:5092 -sf "$sc/register.xml" -m 1 -p 5310 -s 8001 -au 8001 -ap "$seat_pw" -nostdin >/dev/null 2>&1)
printf '%8s %10s %10s %10s %8s %12s\n' rate calls ok failed fail% 'cpu/call ms'
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
for r in "${rates[@]}"; do
  n=$((r * per))
  t0=$(cpu_ticks)
  # exec: $! is sipp itself, so that the kill below reaches it (a seat left running would
  # hold port 5310 into the next rate or run).
  (cd "$work" && exec sipp 127.0.0.1:5092 -sf "$sc/seat_uas.xml" -p 5310 -m "$n" -mp 7100 -key pt 8 -key codec PCMA \
     -nostdin -timeout $((per + 30))s >/dev/null 2>&1) &
  seat=$!
  (cd "$work" && sipp 127.0.0.1:5092 -sf "$root/bench/sipp/setup_call.xml" -s 02212345 -r "$r" -m "$n" \
     -mp 9100 -nostdin -timeout $((per + 30))s -trace_stat -stf "stat_$r.csv" -fd 1 >/dev/null 2>&1) || true
  # The caller side is done, so every call is over; a seat that did not get all n calls
  # (some failed) would wait on (sipp's -timeout does not end a UAS that is idle).
  kill "$seat" 2>/dev/null || true
  wait "$seat" 2>/dev/null || true
  t1=$(cpu_ticks)
  read -r ok failed < <(sipp_counts "$work/stat_$r.csv")
  printf '%8s %10s %10s %10s %8s %12s\n' "$r" "$n" "$ok" "$failed" \
    "$(awk -v f="$failed" -v n="$n" 'BEGIN { printf "%.2f", 100 * f / n }')" \
    "$(awk -v t="$((t1 - t0))" -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", 1000 * t / hz / n }')"
done

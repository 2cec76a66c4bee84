#!/usr/bin/env bash
# Concurrent bridged calls with RTP through the relay: N trunk calls (sipp UAC playing the
# G.711 pcap) to a DID routed to seat 8001 (sipp UAS registered as 8001, echoing RTP), held
# ~21 s. Reports per level: failed calls, hotline's CPU (% of one core) over the 10 s when
# all calls carry audio, RSS and RSS per call, and recording frames dropped so far (run with
# RECORDING=false to measure the same without recording).
#
#   bench/sipp/bridged_calls.sh [levels...]      default levels: 100 500 1000
#
# Needs sipp (Debian sip-tester); builds the release binary; SQLite in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(100 500 1000)
. bench/sipp/lib.sh
start_hotline 5091 '[{ did = "02212345", target = "seat:8001" }]'
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
sc=$root/sip-gateway/tests/sipp
(cd "$work" && sipp 127.0.0.1:5091 -sf "$sc/register.xml" -m 1 -p 5300 -s 8001 -au 8001 -ap "$seat_pw" -nostdin >/dev/null 2>&1)
idle=$(rss_kib)
printf '%6s %7s %7s %9s %9s %12s %9s\n' calls ok failed cpu% rss_MiB KiB/call dropped
for n in "${levels[@]}"; do
  rate=$(( n / 4 > 0 ? n / 4 : 1 ))
  (cd "$work" && sipp 127.0.0.1:5091 -sf "$sc/seat_uas.xml" -p 5300 -m "$n" -l "$n" -rtp_echo -mp 7000 \
     -key pt 8 -key codec PCMA -nostdin -timeout 120s >/dev/null 2>&1) &
  seat=$!
  (cd "$work" && sipp 127.0.0.1:5091 -sf "$root/bench/sipp/bridged_call.xml" -s 02212345 -r "$rate" -m "$n" -l "$n" \
     -mp 9000 -nostdin -timeout 120s -trace_stat -stf "stat_$n.csv" -fd 1 >/dev/null 2>&1) &
  caller=$!
  sleep 5   # the ramp (n/rate = 4 s) plus setup
  c0=$(cpu); t0=$(date +%s.%N)
  sleep 10
  c1=$(cpu); t1=$(date +%s.%N)
  rss=$(rss_kib)
  wait "$caller" || true
  wait "$seat" || true
  read -r ok failed < <(sipp_counts "$work/stat_$n.csv")
  awk -v n="$n" -v ok="$ok" -v f="$failed" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" \
      -v hz="$ticks" -v rss="$rss" -v idle="$idle" 'BEGIN {
    printf "%6d %7d %7d %9.1f %9.1f %12.1f\n", n, ok, f, 100 * (c1 - c0) / hz / (t1 - t0),
      rss / 1024, (rss - idle) / n }' | tr -d '\n'
  printf ' %9s\n' "$(metric hotline_recording_dropped_frames_total)"
done

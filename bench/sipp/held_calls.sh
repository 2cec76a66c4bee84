#!/usr/bin/env bash
# Held calls: N concurrent bridged and recorded G.711 calls through the relay, with the RTP
# played by bench/src/bin/rtpload.rs (both ends of every call, sendmmsg/recvmmsg, stamped
# payloads) instead of sipp, so that the load tool costs little next to the gateway. Per
# level: calls up/failed, per direction packets sent/received, loss, added latency p50/p99
# and jitter (µs), hotline's CPU (% of one core) and RSS over the hold, and per call.
#
#   bench/sipp/held_calls.sh [levels...]        default levels: 100 500 1000 2000
#   HOLD=10 RATE=200 bench/sipp/held_calls.sh   seconds of audio per level, calls set up per second
#
# Part of bench/load.sh (which builds both binaries first); alone, it builds them itself.
# SQLite in a temporary directory; every call recorded unless RECORDING=false (lib.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(100 500 1000 2000)
# Each call holds two relay sockets and a recording file in hotline, and the SIP transactions
# of a level arrive at once.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ -n "${BENCH_BUILT:-}" ] || cargo build --release -p hotline -p hotline-bench --bins >/dev/null
. bench/sipp/lib.sh
start_hotline 5092 '[{ did = "02212345", target = "seat:8001" }]'
rtpload=$(dirname "$bin")/rtpload
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$rtpload" --gateway 127.0.0.1:5092 --did 02212345 --password "$seat_pw" --pid "$pid" \
  --hold "${HOLD:-10}" --rate "${RATE:-200}" "${levels[@]}"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); recording frames dropped: $(metric hotline_recording_dropped_frames_total)"

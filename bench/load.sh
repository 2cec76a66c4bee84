#!/usr/bin/env bash
# The load harness of issue 11: N concurrent bridged and recorded G.711 calls through the
# relay, with the RTP played by bench/src/bin/rtpload.rs (both ends of every call, sendmmsg/
# recvmmsg, stamped payloads) instead of sipp, so that the load tool costs little next to the
# gateway. Per level: calls up/failed, per direction packets sent/received, loss, added
# latency p50/p99 and jitter (µs), and hotline's CPU (% of one core) and RSS over the hold.
#
#   bench/load.sh [levels...]        default levels: 100 500 1000 2000
#   HOLD=10 RATE=200 bench/load.sh   seconds of audio per level, calls set up per second
#
# Builds the release binaries; SQLite in a temporary directory; RECORDING=false as in lib.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(100 500 1000 2000)
# Each call holds two relay sockets and a recording file in hotline, and the SIP transactions
# of a level arrive at once.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
. bench/sipp/lib.sh
cargo build --release -p hotline-bench --bin rtpload >/dev/null
start_hotline 5092 '[{ did = "02212345", target = "seat:8001" }]'
rtpload=$(dirname "$bin")/rtpload
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$rtpload" --gateway 127.0.0.1:5092 --did 02212345 --password "$seat_pw" --pid "$pid" \
  --hold "${HOLD:-10}" --rate "${RATE:-200}" "${levels[@]}"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); recording frames dropped: $(metric hotline_recording_dropped_frames_total)"

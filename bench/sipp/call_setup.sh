#!/usr/bin/env bash
# Call setup rate through the B2BUA: trunk calls (INVITE → 200 → ACK → BYE, no media) to a
# DID routed to seat 8001 (a sipp UAS registered as 8001) at rising rates, SECONDS_PER_RATE
# (10) each. Prints successful and failed calls per rate; the result is the highest rate
# with < 0.1 % failures (bench/README.md).
#
#   bench/sipp/call_setup.sh [rates...]       default rates: 100 200 400 800
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(100 200 400 800)
per=${SECONDS_PER_RATE:-10}
command -v sipp >/dev/null || { echo "sipp is needed (apt-get install sip-tester)" >&2; exit 1; }
cargo build --release -p hotline --bins >/dev/null
bin=${CARGO_TARGET_DIR:-target}/release/hotline
[ -x "$bin" ] || bin="$root/$bin"
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
seat_pw=$("$bin" init --data-dir "$work/data" | sed -n 's/^ *seat 8001: *//p')
cat >"$work/hotline.toml" <<TOML
[log]
filter = "warn"
[sip]
listen = "127.0.0.1:5092"
routes = [{ did = "02212345", target = "seat:8001" }]
qualify_interval_secs = 0
max_calls_per_second_per_source = 100000
[sip.trunk]
channels = 5000
peers = [{ name = "e1", address = "127.0.0.1/32" }]
[sip.rtp]
port_min = 20000
port_max = 59998
TOML
"$bin" --config "$work/hotline.toml" serve --data-dir "$work/data" --http 127.0.0.1:0 >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "SIP (UDP+TCP)" "$work/serve.log" && break; sleep 0.1; done
sc=$root/sip-gateway/tests/sipp
(cd "$work" && sipp 127.0.0.1:5092 -sf "$sc/register.xml" -m 1 -p 5310 -s 8001 -au 8001 -ap "$seat_pw" -nostdin >/dev/null 2>&1)
printf '%8s %10s %10s %10s %8s\n' rate calls ok failed fail%
for r in "${rates[@]}"; do
  n=$((r * per))
  (cd "$work" && sipp 127.0.0.1:5092 -sf "$sc/seat_uas.xml" -p 5310 -m "$n" -mp 7100 -key pt 8 -key codec PCMA \
     -nostdin -timeout $((per + 30))s >/dev/null 2>&1) &
  seat=$!
  (cd "$work" && sipp 127.0.0.1:5092 -sf "$root/bench/sipp/setup_call.xml" -s 02212345 -r "$r" -m "$n" \
     -mp 9100 -nostdin -timeout $((per + 30))s -trace_stat -stf "stat_$r.csv" -fd 1 >/dev/null 2>&1) || true
  wait "$seat" || true
  head=$(head -n 1 "$work/stat_$r.csv"); last=$(tail -n 1 "$work/stat_$r.csv")
  col() { echo "$head" | tr ';' '\n' | grep -nx "$1" | cut -d: -f1; }
  ok=$(echo "$last" | cut -d';' -f"$(col 'SuccessfulCall(C)')")
  failed=$(echo "$last" | cut -d';' -f"$(col 'FailedCall(C)')")
  printf '%8s %10s %10s %10s %8s\n' "$r" "$n" "$ok" "$failed" \
    "$(awk -v f="$failed" -v n="$n" 'BEGIN { printf "%.2f", 100 * f / n }')"
done

#!/usr/bin/env bash
# Calls into the IVR at rising rates: each call is answered by hotline, hears the welcome
# prompt for HOLD_MS, then hangs up. Prints one line per rate with successful and failed
# calls; the highest rate with < 0.1 % failures is the result (bench/README.md).
#
#   bench/sipp/ivr_rate.sh [rates...]       default rates: 50 100 200 400 800
#
# Builds the release binary, runs it on a temporary data directory (SQLite) and drives it
# with sipp (Debian package sip-tester). Environment: HOLD_MS (2000), SECONDS_PER_RATE (10).
set -euo pipefail
cd "$(dirname "$0")/../.."
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(50 100 200 400 800)
hold=${HOLD_MS:-2000}
per=${SECONDS_PER_RATE:-10}
command -v sipp >/dev/null || { echo "sipp is needed (apt-get install sip-tester)" >&2; exit 1; }

cargo build --release -p hotline --bins >/dev/null
bin=${CARGO_TARGET_DIR:-target}/release/hotline
[ -x "$bin" ] || bin="$PWD/$bin"
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" init --data-dir "$work/data" >/dev/null
cat >"$work/hotline.toml" <<TOML
[log]
filter = "warn"
[sip]
listen = "127.0.0.1:5090"
routes = [{ did = "02296077", target = "ivr" }]
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

printf '%8s %10s %10s %10s %8s\n' rate calls ok failed fail%
for r in "${rates[@]}"; do
  n=$((r * per))
  (cd "$work" && sipp 127.0.0.1:5090 -sf "$OLDPWD/bench/sipp/ivr_call.xml" -s 02296077 \
     -r "$r" -m "$n" -d "$hold" -l $((r * (hold / 1000 + 2))) -nostdin -timeout $((per + 30))s \
     -mp 6000 -trace_stat -stf "stat_$r.csv" -fd 1 >/dev/null 2>&1) || true
  last=$(tail -n 1 "$work/stat_$r.csv")
  head=$(head -n 1 "$work/stat_$r.csv")
  col() { echo "$head" | tr ';' '\n' | grep -nx "$1" | cut -d: -f1; }
  ok=$(echo "$last" | cut -d';' -f"$(col 'SuccessfulCall(C)')")
  failed=$(echo "$last" | cut -d';' -f"$(col 'FailedCall(C)')")
  printf '%8s %10s %10s %10s %8s\n' "$r" "$n" "$ok" "$failed" \
    "$(awk -v f="$failed" -v n="$n" 'BEGIN { printf "%.2f", 100 * f / n }')"
done

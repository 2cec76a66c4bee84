# Shared by the sipp load scripts: build and start a release `hotline serve` on a temporary
# data directory, and read sipp's statistics file. Source it from the repository root.
#
#   start_hotline SIP_PORT 'ROUTES'   e.g. start_hotline 5090 '[{ did = "02296077", target = "ivr" }]'
#   sipp_counts FILE.csv              prints "<successful> <failed>"
#   metric NAME                       a value from the server's /metrics (0 when absent)
# RECORDING=false runs the server without call recording (to measure what it costs).
# After start_hotline: $bin, $work, $pid (the server) and $seat_pw (seat 8001's password).

command -v sipp >/dev/null || { echo "sipp is needed (apt-get install sip-tester)" >&2; exit 1; }

start_hotline() {
  local port=$1 routes=$2
  # bench/load.sh builds everything once and says so.
  [ -n "${BENCH_BUILT:-}" ] || cargo build --release -p hotline --bins >/dev/null
  bin=${CARGO_TARGET_DIR:-target}/release/hotline
  [ -x "$bin" ] || bin="$PWD/$bin"
  work=$(mktemp -d)
  pid=
  trap '[ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$work"' EXIT
  seat_pw=$("$bin" init --data-dir "$work/data" 2>"$work/init.log" | sed -n 's/^ *seat 8001: *//p')
  cat >"$work/hotline.toml" <<TOML
[log]
filter = "warn"
[sip]
listen = "127.0.0.1:$port"
routes = $routes
qualify_interval_secs = 0
max_calls_per_second_per_source = 100000
[sip.trunk]
channels = 5000
peers = [{ name = "e1", address = "127.0.0.1/32" }]
[sip.rtp]
port_min = 20000
port_max = 59998
[recording]
enabled = ${RECORDING:-true}
TOML
  "$bin" --config "$work/hotline.toml" serve --data-dir "$work/data" --http 127.0.0.1:0 \
    >"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q "SIP (UDP+TCP)" "$work/serve.log" && break; sleep 0.1; done
}

metric() {
  local http
  http=$(sed -n 's|.*web console and API: *http://\([^/]*\)/.*|\1|p' "$work/serve.log" | head -n 1)
  curl -s "http://$http/metrics" | awk -v m="$1" '$1 == m { print $2; found = 1 } END { if (!found) print 0 }'
}

sipp_counts() {
  local head last col
  head=$(head -n 1 "$1"); last=$(tail -n 1 "$1")
  col() { echo "$head" | tr ';' '\n' | grep -nx "$1" | cut -d: -f1; }
  echo "$(echo "$last" | cut -d';' -f"$(col 'SuccessfulCall(C)')") $(echo "$last" | cut -d';' -f"$(col 'FailedCall(C)')")"
}

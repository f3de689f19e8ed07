#!/usr/bin/env bash
# Load on GET /api/v1/analyses/{id}/verdict from a separate process (wrk), over N live
# analyses served by examples/api_load_server.rs. Polls cycle through every analysis.
# wrk reports any answer other than 2xx/3xx as "Non-2xx or 3xx responses".
#
#   scripts/bench_verdict.sh            # 1000 analyses, wrk -t2 -c64 -d20s
#   N=5000 CONNS=128 DURATION=30s scripts/bench_verdict.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
DURATION=${DURATION:-20s}

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
cargo build --release --example api_load_server >&2

work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

./target/release/examples/api_load_server --analyses "$N" --ids "$work/ids" >"$work/url" &
pid=$!
# The server prints its URL once every analysis exists and it listens.
for _ in $(seq 1 1200); do
    [ -s "$work/url" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "load server exited" >&2; exit 1; }
    sleep 0.1
done
url=$(head -n1 "$work/url")
[ -n "$url" ] || { echo "load server did not start" >&2; exit 1; }

cat >"$work/verdict.lua" <<'LUA'
local ids = {}
for line in io.lines(os.getenv("AUGURY_IDS")) do ids[#ids + 1] = line end
local i = math.random(#ids)
request = function()
  i = i % #ids + 1
  return wrk.format("GET", "/api/v1/analyses/" .. ids[i] .. "/verdict")
end
LUA

echo "verdict route: $N live analyses at $url; wrk -t$THREADS -c$CONNS -d$DURATION" >&2
curl -fsS "$url/api/v1/analyses/$(head -n1 "$work/ids")/verdict" >&2 && echo >&2
AUGURY_IDS="$work/ids" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
    -s "$work/verdict.lua" "$url"

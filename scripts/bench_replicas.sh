#!/usr/bin/env bash
# Several replicas on one PostgreSQL: OTLP ingest spread across three replicas (one
# examples/otlp_load per replica) beside one replica taking it all, the partial windows
# that leaves in the database, and the time a kill -9 of the lease holder takes to be
# taken over. Needs Debian's postgresql (binaries in /usr/lib/postgresql/*/bin) and runs
# its own server in a temp directory.
#
#   scripts/bench_replicas.sh                 # 30 s of load per run, 10 s intervals
#   SECONDS_LOAD=60 LEASE_TTL=5s scripts/bench_replicas.sh
set -euo pipefail
cd "$(dirname "$0")/.."

LOAD=${SECONDS_LOAD:-30}
LEASE_TTL=${LEASE_TTL:-5s}
PG_BIN=${AUGURY_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
cargo build --release --bins --example otlp_load >&2

work=$(mktemp -d)
chmod 755 "$work"
pids=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    as_pg "$PG_BIN/pg_ctl" -D "$work/pg" stop -m immediate >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] && chown postgres "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$PG_BIN/initdb" -D "$work/pg" --auth=trust -U augury --encoding=UTF8 --locale=C --no-sync >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$work/pg" -o "-p $port -k $work -c listen_addresses=127.0.0.1" -l "$work/pg.log" -w start >/dev/null
psql() { "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U augury -At "$@"; }

# Starts replica $2 on database $1; prints "api otlp_grpc pid".
replica() {
    local log="$work/$1-$2.log"
    ./target/release/augury serve --log-format json --database "postgres://augury@127.0.0.1:$port/$1" \
        --listen 127.0.0.1:0 --otlp-grpc-listen 127.0.0.1:0 --otlp-http-listen 127.0.0.1:0 \
        --replica-id "$2" --lease-ttl "$LEASE_TTL" 2>"$log" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 1 300); do
        if grep -q '"augury serving"' "$log"; then
            local api grpc
            api=$(grep '"augury serving"' "$log" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["fields"]["api"])')
            grpc=$(grep '"augury serving"' "$log" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["fields"]["otlp_grpc"])')
            echo "$api $grpc $pid"
            return
        fi
        sleep 0.1
    done
    echo "replica $2 did not start:" >&2; cat "$log" >&2; exit 1
}
create() {
    curl -sf -X POST "http://$1/api/v1/analyses" -H 'content-type: application/json' -d '{
      "key": "bench", "model": "http-red", "interval": "10s", "lifetime": "1h",
      "baseline": {"service.name": "checkout", "service.version": "1.0.0"},
      "canary": {"service.name": "checkout", "service.version": "2.0.0"}}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
metric() { curl -sf "http://$1/metrics" | awk -v s="$2" '$1 == s {print $2}'; }
load() { # $1 grpc addr, $2 connections
    ./target/release/examples/otlp_load --grpc "$1" --seconds "$LOAD" --connections "$2" --every "$LOAD" 2>&1 |
        grep -o '[0-9,]* spans/s' | tail -1
}

echo "## one replica, one generator (4 connections), $LOAD s"
psql -d postgres -c 'CREATE DATABASE one' >/dev/null
read -r api grpc _ < <(replica one r0)
create "$api" >/dev/null
sleep 1
echo "r0: $(load "$grpc" 4)"

echo "## three replicas, one generator each (2 connections), $LOAD s"
psql -d postgres -c 'CREATE DATABASE three' >/dev/null
apis=(); grpcs=(); rpids=()
for r in r0 r1 r2; do
    read -r api grpc pid < <(replica three "$r")
    apis+=("$api"); grpcs+=("$grpc"); rpids+=("$pid")
done
id=$(create "${apis[0]}")
sleep 2 # every replica learns of the analysis within half a second
for i in 0 1 2; do (echo "r$i: $(load "${grpcs[$i]}" 2)") & done
# Partial windows live in the database between a boundary and the judgment that merges
# them: sample how many there are and how large, five times a second.
(
    end=$(( $(date +%s) + LOAD ))
    while [ "$(date +%s)" -lt "$end" ]; do
        psql -d three -c 'SELECT count(*), coalesce(max(length(data)),0) FROM partials'
        sleep 0.2
    done | awk -F'|' '$1 > r {r = $1} $2 > b {b = $2} END {print "partial windows live at once: at most " r " rows, the largest " b " bytes"}'
) &
wait
for i in 0 1 2; do
    echo "r$i partial windows written: $(metric "${apis[$i]}" 'augury_partial_windows_total{result="written"}'), leases: $(metric "${apis[$i]}" augury_leases)"
done
echo "intervals recorded: $(psql -d three -c "SELECT count(*) FROM intervals WHERE analysis_id = '$id'")"

echo "## kill -9 of the lease holder (lease TTL $LEASE_TTL)"
for i in 0 1 2; do
    if [ "$(metric "${apis[$i]}" augury_leases)" = "1" ]; then owner=$i; fi
done
kill -9 "${rpids[$owner]}"
killed=$(date +%s.%N)
while :; do
    taken=0
    for i in 0 1 2; do
        [ "$i" = "$owner" ] && continue
        t=$(metric "${apis[$i]}" augury_lease_takeovers_total)
        [ "${t:-0}" != "0" ] && taken=1
    done
    [ "$taken" = 1 ] && break
    sleep 0.05
done
echo "lease taken over $(python3 -c "print(round($(date +%s.%N) - $killed, 2))") s after kill -9 of r$owner"

#!/usr/bin/env bash
# Runs apogee-bench's DDP scenarios, each against a fresh `apogee serve` (TEST_MODE, fresh data
# dir), with the server's pid so RSS and CPU are sampled. Reports (JSON + SVG) land in $OUT.
#
# Build first (release, separate target dir):
#   export CARGO_TARGET_DIR=/var/tmp/apogee-release
#   cargo build --release -p apogee -p apogee-bench
# Then:  tools/bench/scenarios.sh [idle|fanout|chat-mix|storm|upload|all]      (default: all)
#
# Env: APOGEE_BIN, BENCH_BIN (default: $CARGO_TARGET_DIR/release/...), PORT (3500), OUT (report
#      dir), IDLE_SOCKETS ("5000 10000 19000"), IDLE_WORKERS (1), SOURCES (2), FANOUT_MEMBERS
#      ("10 1000"), FANOUT_MESSAGES (200), MIX_USERS (500), MIX_THINK (5), MIX_DURATION (30),
#      STORM_CLIENTS (1000), STORM_RATE (20), UPLOAD_USERS (20), UPLOAD_FILES (500),
#      UPLOAD_SIZE (1M), UPLOAD_CONCURRENCY (16), BCRYPT_COST (4).
set -euo pipefail

TARGET=${CARGO_TARGET_DIR:-/var/tmp/apogee-release}
APOGEE_BIN=${APOGEE_BIN:-$TARGET/release/apogee}
BENCH_BIN=${BENCH_BIN:-$TARGET/release/apogee-bench}
PORT=${PORT:-3500}
OUT=${OUT:-$(mktemp -d /var/tmp/apogee-scenarios.XXXXXX)}
IDLE_SOCKETS=${IDLE_SOCKETS:-5000 10000 19000}
IDLE_WORKERS=${IDLE_WORKERS:-1}
SOURCES=${SOURCES:-2}
FANOUT_MEMBERS=${FANOUT_MEMBERS:-10 1000}
FANOUT_MESSAGES=${FANOUT_MESSAGES:-200}
MIX_USERS=${MIX_USERS:-500}
MIX_THINK=${MIX_THINK:-5}
MIX_DURATION=${MIX_DURATION:-30}
STORM_CLIENTS=${STORM_CLIENTS:-1000}
STORM_RATE=${STORM_RATE:-20}
UPLOAD_USERS=${UPLOAD_USERS:-20}
UPLOAD_FILES=${UPLOAD_FILES:-500}
UPLOAD_SIZE=${UPLOAD_SIZE:-1M}
UPLOAD_CONCURRENCY=${UPLOAD_CONCURRENCY:-16}
URL="http://127.0.0.1:$PORT"
SERVER_PID=""
mkdir -p "$OUT"

# The server holds one descriptor per socket; 20,000 is this machine's hard limit per process.
ulimit -n "$(ulimit -Hn)"

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" && wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
trap stop_server EXIT

start_server() {
    local tries=0
    if curl -s -o /dev/null "$URL/api/info"; then
        echo "port $PORT is already in use" >&2
        exit 1
    fi
    # bcrypt cost 4 (APOGEE_BCRYPT_COST): the set-up of thousands of users is not what is measured.
    TEST_MODE=true APOGEE_DDP_IDLE_SECS=60 APOGEE_BCRYPT_COST=${BCRYPT_COST:-4} "$APOGEE_BIN" serve --port "$PORT" \
        --data-dir "$(mktemp -d "$OUT/data.XXXXXX")" >>"$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    until curl -s -o /dev/null "$URL/api/info"; do
        sleep 0.05
        tries=$((tries + 1))
        if ((tries > 400)) || ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server did not become ready; see $OUT/server.log" >&2
            exit 1
        fi
    done
}

run_idle() {
    for n in $IDLE_SOCKETS; do
        echo "== idle $n sockets (subscribed), $IDLE_WORKERS worker(s)"
        start_server
        "$BENCH_BIN" idle --url "$URL" --pid "$SERVER_PID" -n "$n" -u 100 --subscribe --settle 5 \
            --workers "$IDLE_WORKERS" --sources "$SOURCES" --json | grep -v "sockets logged in"
        stop_server
        sleep 3
    done
}

run_fanout() {
    for m in $FANOUT_MEMBERS; do
        echo "== fanout into a room of $m"
        start_server
        "$BENCH_BIN" fanout --url "$URL" --pid "$SERVER_PID" -m "$m" -k "$FANOUT_MESSAGES" --rates 20,0 \
            --sources "$SOURCES" --out "$OUT/fanout-$m"
        stop_server
    done
}

run_mix() {
    echo "== chat-mix $MIX_USERS users, think $MIX_THINK s"
    start_server
    "$BENCH_BIN" chat-mix --url "$URL" --pid "$SERVER_PID" -n "$MIX_USERS" --room-size 10 \
        --think "$MIX_THINK" --duration "$MIX_DURATION" --sources "$SOURCES" --out "$OUT/chat-mix-$MIX_USERS"
    stop_server
}

run_upload() {
    echo "== upload: $UPLOAD_USERS users, $UPLOAD_FILES files of $UPLOAD_SIZE, concurrency $UPLOAD_CONCURRENCY"
    start_server
    "$BENCH_BIN" upload --url "$URL" --pid "$SERVER_PID" -n "$UPLOAD_USERS" -k "$UPLOAD_FILES" \
        --size "$UPLOAD_SIZE" -c "$UPLOAD_CONCURRENCY" --out "$OUT/upload-$UPLOAD_SIZE"
    stop_server
}

run_storm() {
    echo "== reconnect storm: $STORM_CLIENTS clients"
    start_server
    "$BENCH_BIN" reconnect-storm --url "$URL" --pid "$SERVER_PID" -n "$STORM_CLIENTS" --rate "$STORM_RATE" \
        --before 5 --offline 3 --after 5 --sources "$SOURCES" --out "$OUT/storm-$STORM_CLIENTS"
    stop_server
}

echo "binaries: $APOGEE_BIN, $BENCH_BIN; reports: $OUT; nproc $(nproc)"
case "${1:-all}" in
idle) run_idle ;;
fanout) run_fanout ;;
chat-mix) run_mix ;;
storm) run_storm ;;
upload) run_upload ;;
all)
    run_idle
    run_fanout
    run_mix
    run_storm
    run_upload
    ;;
*)
    echo "usage: $0 [idle|fanout|chat-mix|storm|upload|all]" >&2
    exit 2
    ;;
esac

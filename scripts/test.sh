#!/usr/bin/env bash
# The whole test suite: unit tests, and end-to-end tests against real SQLite and PostgreSQL.
# PostgreSQL is required: set HOMEROOM_TEST_POSTGRES to point elsewhere than the default.
set -euo pipefail
cd "$(dirname "$0")/.."

export HOMEROOM_TEST_POSTGRES="${HOMEROOM_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}"

need() { command -v "$1" >/dev/null 2>&1 || { echo "test.sh: '$1' is missing: $2" >&2; exit 1; }; }
need cargo "install Rust (https://rustup.rs)"

# Fail loudly, before compiling anything, when PostgreSQL is not reachable.
pg_hostport="${HOMEROOM_TEST_POSTGRES#*://}"; pg_hostport="${pg_hostport#*@}"; pg_hostport="${pg_hostport%%/*}"
pg_host="${pg_hostport%%:*}"; pg_port="${pg_hostport##*:}"; [ "$pg_port" = "$pg_hostport" ] && pg_port=5432
if ! timeout 5 bash -c "exec 3<>/dev/tcp/$pg_host/$pg_port" 2>/dev/null; then
  echo "test.sh: PostgreSQL is not reachable at $pg_host:$pg_port (HOMEROOM_TEST_POSTGRES=$HOMEROOM_TEST_POSTGRES)." >&2
  echo "test.sh: start it, or point HOMEROOM_TEST_POSTGRES at a server where the user may CREATE DATABASE." >&2
  exit 1
fi

cargo test --locked --all-targets "$@"

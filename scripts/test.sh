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

# The browser tests (tests/browser) drive headless Chromium with playwright-core from npm.
if [ ! -x "${HOMEROOM_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "test.sh: Chromium is missing; installing it with apt-get for the browser tests." >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"
  if ! { $sudo_cmd apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q chromium; } >&2; then
    echo "test.sh: Chromium is missing and 'apt-get install -y chromium' failed; install it (or set HOMEROOM_CHROMIUM to a Chromium binary)." >&2
    exit 1
  fi
fi
# The network tests (tests/browser/network.rs) put a browser in a network namespace whose UDP
# is dropped by nftables: they need root (namespaces, veth pairs), iproute2 and nftables.
if ! command -v nft >/dev/null 2>&1; then
  echo "test.sh: nftables is missing; installing it with apt-get for the network tests." >&2
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"
  if ! { $sudo_cmd apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q nftables iproute2; } >&2; then
    echo "test.sh: nftables is missing and 'apt-get install -y nftables' failed; install it for the network tests." >&2
    exit 1
  fi
fi
need node "install Node.js 20 or newer (the browser tests run playwright-core)"
need npm "install npm (it installs playwright-core for the browser tests)"
if ! (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2); then
  echo "test.sh: 'npm ci' in tests/browser failed: playwright-core could not be installed." >&2
  exit 1
fi

# The API document is checked by schemathesis (tests/api/schemathesis.rs), pinned in a venv.
need python3 "install Python 3 (the API tests run schemathesis from PyPI)"
venv=tests/schemathesis/.venv
if ! cmp -s tests/schemathesis/requirements.txt "$venv/requirements.txt" 2>/dev/null; then
  echo "test.sh: installing schemathesis into $venv" >&2
  rm -rf "$venv"
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q -r tests/schemathesis/requirements.txt >&2; }; then
    echo "test.sh: could not install schemathesis (python3 -m venv, pip install -r tests/schemathesis/requirements.txt)." >&2
    exit 1
  fi
  cp tests/schemathesis/requirements.txt "$venv/requirements.txt"
fi

# With arguments (a test name filter, say), one plain run.
[ $# -gt 0 ] && exec cargo test --locked --all-targets "$@"

# Build once, then the API tests and the browser tests side by side: both mostly wait on
# servers, browsers and the network rather than on the CPU. Each line says which part it is from.
cargo test --locked --all-targets --no-run
part() {
  local name=$1; shift
  cargo test --locked "$@" 2>&1 | sed -u "s/^/[$name] /"
}
# The network tests add and remove interfaces (veth pairs) and shape links, which makes every
# Chromium on the host see a network change and abort its page loads: they run alone, after
# the other browser tests, and the API tests that put viewers in network namespaces with them.
namespaced="netns:: simulcast:: loadtest::throttled"
# The tests that count every packet of many viewers in the test process itself (20 and 50 of
# them) run last and one at a time: beside Chromium on two cores, the test's own receivers
# miss packets and the count reads as the server's loss.
heavy="live::one_publisher loadtest:: media_port::fifty_viewers media_port::a_viewer_that_stops_reading recovery::viewers_keep"
part api --lib --bins --test api -- --test-threads=3 $(printf -- '--skip %s ' $namespaced $heavy) & api=$!
browser_parts() {
  part browser --test browser -- --test-threads=2 --skip network:: --skip netns:: --skip network_simulcast:: &&
    part network --test browser -- --test-threads=1 network:: netns:: network_simulcast:: &&
    part network --test api -- --test-threads=1 $namespaced
}
browser_parts & browser=$!
status=0
wait $api || status=1
wait $browser || status=1
part media --lib --test api -- --test-threads=1 $heavy --skip loadtest::throttled || status=1
[ $status -eq 0 ] && echo "test.sh: every part passed" || echo "test.sh: a part failed (search for FAILED or panicked above)" >&2
exit $status

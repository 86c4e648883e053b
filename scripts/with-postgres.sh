#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server: installs Debian's `postgresql` package if no server binaries are
# found, creates a cluster in a temporary directory, starts it on a free loopback port (and a private socket
# directory), exports its URL as GATEWAY_TEST_DATABASE_URL, runs the command, and stops and deletes the cluster
# however the command ends. As root (CI), the server runs as the `postgres` user the package creates, since PostgreSQL
# refuses to run as root.
#
#     scripts/with-postgres.sh swift test
set -euo pipefail

find_bin() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$found" ] && [ -x "$found/initdb" ] && echo "$found"
}

PG_BIN=$(find_bin || true)
if [ -z "$PG_BIN" ]; then
    "$(dirname "$0")/install-system-deps.sh" postgresql
    PG_BIN=$(find_bin)
fi

run_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

dir=$(mktemp -d "${TMPDIR:-/tmp}/gateway-pg.XXXXXX")
chmod 755 "$dir"
[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cleanup() {
    run_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

printf '%s\n' "$password" > "$dir/pwfile"
[ "$(id -u)" -eq 0 ] && chown postgres: "$dir/pwfile"
run_as_owner "$PG_BIN/initdb" -D "$dir/data" -U gateway --pwfile="$dir/pwfile" --auth-host=scram-sha-256 \
    --auth-local=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
rm -f "$dir/pwfile"
# Durability settings off: a test cluster that is deleted afterwards need not survive a power cut.
run_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
    "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
run_as_owner "$PG_BIN/createdb" -h "$dir" -p "$port" -U gateway gateway_test

export GATEWAY_TEST_DATABASE_URL="postgres://gateway:$password@127.0.0.1:$port/gateway_test"
export GATEWAY_TEST_POSTGRES_BIN="$PG_BIN"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') for the tests on 127.0.0.1:$port"
"$@"

#!/usr/bin/env bash
# jit-ca's tests on PostgreSQL: starts a private cluster (tests/lib/pg.sh: as nobody, on a free
# loopback port, fsync off), exports JIT_TEST_POSTGRES so the kit's harness gives every test a
# fresh database, and runs jit-ca's lib, api and cli tests with the ignored ones included (the
# PostgreSQL-only tests, in modules named `pg`, among them). The cluster is stopped and
# removed whatever happens. Root (initdb and the server run as nobody).
#
#   tests/pg-tests.sh [extra cargo test arguments after --]
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=tests/lib/pg.sh
. tests/lib/pg.sh

[ "$(id -u)" = 0 ] || { echo "pg-tests.sh: run as root (the cluster runs as nobody)" >&2; exit 1; }
work=$(mktemp -d /tmp/jit-pg-tests.XXXXXX)
chmod 755 "$work"
cleanup() {
  pg_stop "$work/pg" immediate >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

port=$(pg_free_port 25400 25999) || { echo "pg-tests.sh: no free port in 25400-25999" >&2; exit 1; }
pg_start "$work/pg" "$port" || { echo "pg-tests.sh: PostgreSQL did not start" >&2; exit 1; }
export JIT_TEST_POSTGRES="$PG_URL"
echo "pg-tests.sh: PostgreSQL on port $port ($JIT_TEST_POSTGRES)"
cargo test -p jit-ca --locked --lib --test api --test cli -- --include-ignored "$@"

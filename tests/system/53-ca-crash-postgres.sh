#!/usr/bin/env bash
# Crash safety on PostgreSQL (issue 17: "the existing CA API, bad-input and crash tests run
# against both backends"): 52-ca-crash.sh with the CA's store in a private PostgreSQL
# cluster. Fewer kills than on SQLite (CRASH_ITERATIONS_PG, default 30): each restart also
# reconnects to the database, and the properties checked are the same.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export JIT_CA_BACKEND=postgres
export CRASH_ITERATIONS=${CRASH_ITERATIONS_PG:-30}
exec bash "$HERE/52-ca-crash.sh" "$@"

#!/usr/bin/env bash
# The short CI version of tests/load/run.sh: 64 concurrent clients for 10 s against jit-ca,
# zero failed calls, memory flat. The documented full run is `bash tests/load/run.sh` (60 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
LOAD_CLIENTS=${LOAD_CLIENTS:-64} LOAD_SECONDS=${LOAD_SECONDS:-10} exec bash tests/load/run.sh "$@"

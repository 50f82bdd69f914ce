#!/usr/bin/env bash
# A short run of the whole benchmark suite (tiny durations, no targets judged), so that
# bench/run.sh and bench/web.sh cannot rot: tests/run.sh runs it after the release build.
# Fails only if a step fails (a program errors, a certificate is not issued, the gate does
# not decide, a web session cannot log in or load a page, ...).
set -euo pipefail
bash "$(dirname "$0")/run.sh" --smoke
exec bash "$(dirname "$0")/web.sh" --smoke

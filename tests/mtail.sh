#!/usr/bin/env bash
# packaging/prometheus/pam_jit.mtail (the log-to-metrics program behind JitSudoDenialBurst
# and JitBreakGlassUsed) run by the real mtail on packaging/prometheus/pam_jit.test.log,
# which pam_jit_core's logline tests keep equal to what the module logs now (hostile values
# included: a reason or a user name imitating an allow or a break-glass use counts as what
# the line really is). tests/system/30-pam-module.sh also runs it on the real module's lines.
# Needs mtail (tests/install-deps.sh installs it). Usage: tests/mtail.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v mtail >/dev/null || { echo "mtail.sh: mtail is not installed (tests/install-deps.sh)" >&2; exit 1; }
prog=packaging/prometheus/pam_jit.mtail
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

# mtail_counts PROGRAM LOG: the samples mtail exports after reading LOG once, sorted. One-shot
# mode still starts the HTTP listener: on a free port on loopback. Its own log goes to
# $work, never to /tmp.
mtail_counts() {
  mtail --one_shot --one_shot_format prometheus --progs "$1" --logs "$2" \
    --address 127.0.0.1 --port 0 --log_dir "$work" --logtostderr=false >"$work/out" 2>"$work/err" \
    || { echo "mtail failed on $2:" >&2; cat "$work/err" >&2; return 1; }
  grep -v '^#' "$work/out" | sort
}

fail=0
if mtail --compile_only --progs "$prog" --log_dir "$work" --logtostderr=false >"$work/c" 2>&1; then
  echo "ok: $prog compiles"
else echo "FAILED: $prog does not compile:"; cat "$work/c"; fail=1; fi

want='pam_jit_break_glass_uses_total{prog="pam_jit.mtail"} 1
pam_jit_session_events_total{prog="pam_jit.mtail",result="bind"} 1
pam_jit_session_events_total{prog="pam_jit.mtail",result="end"} 1
pam_jit_sudo_decisions_total{prog="pam_jit.mtail",result="allow"} 3
pam_jit_sudo_decisions_total{prog="pam_jit.mtail",result="audit-allow"} 1
pam_jit_sudo_decisions_total{prog="pam_jit.mtail",result="deny"} 5
pam_jit_sudo_denials_total{prog="pam_jit.mtail"} 5'
got=$(mtail_counts "$prog" packaging/prometheus/pam_jit.test.log)
if [ "$got" = "$want" ]; then echo "ok: the fixture's lines are counted as what they are"
else echo "FAILED: counts on the fixture:"; diff <(echo "$want") <(echo "$got") || true; fail=1; fi

# Before any pam_jit line the two scalar counters exist at 0, so increase() counts the first.
: > "$work/empty.log"
want0='pam_jit_break_glass_uses_total{prog="pam_jit.mtail"} 0
pam_jit_sudo_denials_total{prog="pam_jit.mtail"} 0'
got0=$(mtail_counts "$prog" "$work/empty.log")
if [ "$got0" = "$want0" ]; then echo "ok: denials and break-glass uses start at 0"
else echo "FAILED: counts on an empty log:"; diff <(echo "$want0") <(echo "$got0") || true; fail=1; fi
exit "$fail"

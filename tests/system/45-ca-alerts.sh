#!/usr/bin/env bash
# Alerts reach syslog at alert priority (issue 15, docs/alerts.md): a real rsyslogd on a
# private /dev/log records each line's severity; a running `jit-ca serve` sees ten calls
# signed by an unknown key from one address (alert.auth_failures), and the operator command
# `jit-ca revoke-grant` (alert.break_glass) logs from its own process. Other audit lines stay
# at notice/warning. Runs in private namespaces (own loopback, own /dev/log).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter --net "$@"
sys_bins

W=$(sys_workdir)
RSYSLOG_PID=
cleanup() {
  sys_stop_ca
  [ -n "$RSYSLOG_PID" ] && kill "$RSYSLOG_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

sys_private_dev "$W"
mkdir -p "$W/log"
# Each line with its severity in front: "alert  audit seq=... event=alert ..." (rsyslog's
# %msg% keeps the space after the tag's colon; the checks allow any number of spaces).
cat > "$W/log/rsyslog.conf" <<CONF
module(load="imuxsock" SysSock.Name="/dev/log")
global(workDirectory="$W/log")
template(name="sev" type="string" string="%syslogseverity-text% %msg%\n")
authpriv.* action(type="omfile" file="$W/log/sev.log" template="sev")
CONF
rsyslogd -n -f "$W/log/rsyslog.conf" -i "$W/log/rsyslog.pid" >/dev/null 2>&1 &
RSYSLOG_PID=$!
for _ in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done
[ -S /dev/log ] || sys_die "rsyslogd did not create /dev/log"
LOG=$W/log/sev.log

CA=$W/ca
sys_ca_dir "$CA" '
[roles.ops]
hosts = ["db-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
'
PORT=18445
sys_start_ca "$CA" "$PORT" "$W/ca.log"
sys_wait_log "$LOG" "event=service_start" || sys_die "no service_start line in syslog"
if grep -qE '^notice +audit seq=[0-9]+ event=service_start ' "$LOG"; then
  t_ok "an ordinary audit line is at notice"
else
  t_bad "service_start is not at notice: $(grep service_start "$LOG")"
fi

# Ten calls signed by a key nobody registered, from 127.0.0.1 (the default threshold).
ssh-keygen -q -t ed25519 -N '' -C stranger -f "$W/stranger"
KEY=$(cut -d' ' -f1,2 "$W/stranger.pub")
for i in $(seq 10); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v1/whoami" \
    -H "x-jit-key: $KEY" -H "x-jit-timestamp: $(date +%s)" \
    -H "x-jit-nonce: $(printf '%032x' "$i")" -H "x-jit-signature: AAAA")
  [ "$code" = 401 ] || sys_die "call $i: HTTP $code (want 401)"
done
if sys_wait_log "$LOG" '"kind":"auth_failures"'; then
  if grep -E '^alert +audit seq=[0-9]+ event=alert actor=system ' "$LOG" |
      grep '"kind":"auth_failures"' | grep -q '"source":"127.0.0.1"'; then
    t_ok "alert.auth_failures is logged at alert priority"
  else
    t_bad "alert.auth_failures line: $(grep '"kind":"auth_failures"' "$LOG")"
  fi
  [ "$(grep -c '"kind":"auth_failures"' "$LOG")" = 1 ] && t_ok "one alert for ten failures" || t_bad "several auth_failures alerts"
else
  t_bad "no auth_failures alert in syslog: $(tail -3 "$LOG")"
fi
# The serving process counts its alerts by kind for Prometheus.
METRICS=$(curl -s "http://127.0.0.1:$PORT/metrics")
if grep -qx 'jit_ca_alerts_total{kind="auth_failures"} 1' <<<"$METRICS"; then
  t_ok "jit_ca_alerts_total counts the alert"
else
  t_bad "metrics: $(grep jit_ca_alerts_total <<<"$METRICS" | tr '\n' ' ')"
fi
if grep -qE '^warning +audit seq=[0-9]+ event=auth_failure ' "$LOG"; then
  t_ok "the refusals themselves stay at warning"
else
  t_bad "no auth_failure line at warning"
fi

# The operator's emergency tool, from its own process while serve runs.
"$JIT_CA" revoke-grant bg-0001 --reason "lost laptop" --dir "$CA" >/dev/null || sys_die "revoke-grant failed"
if sys_wait_log "$LOG" '"kind":"break_glass"'; then
  if grep -E '^alert +audit seq=[0-9]+ event=alert actor=system ' "$LOG" |
      grep '"kind":"break_glass"' | grep -q 'revoke-grant bg-0001'; then
    t_ok "alert.break_glass is logged at alert priority"
  else
    t_bad "alert.break_glass line: $(grep '"kind":"break_glass"' "$LOG")"
  fi
else
  t_bad "no break_glass alert in syslog"
fi
grep -qE '^notice +audit seq=[0-9]+ event=grant_revocation ' "$LOG" \
  && t_ok "grant_revocation itself stays at notice" || t_bad "grant_revocation line not at notice"

# The trail has them too, chained.
"$JIT_CA" audit verify --dir "$CA" >/dev/null && t_ok "audit verify passes" || t_bad "audit verify failed"
n=$("$JIT_CA" audit export --dir "$CA" --json | jq -s '[.[] | select(.event == "alert")] | length')
[ "$n" = 2 ] && t_ok "two alert records" || t_bad "$n alert records (want 2)"

t_summary

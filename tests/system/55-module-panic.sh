#!/usr/bin/env bash
# A panic inside pam_jit.so unwinds to the module's guard and becomes a denial (logged at
# LOG_ERR), under real sudo (1.9, C) AND sudo-rs (Rust: two Rust runtimes' panics in one
# process), in a private mount+UTS namespace like 31-sudo.sh. (Written for issue 18's static
# unwinder, since reverted for the glibc baseline: see 01-invariants.sh 2e. The proof stands
# for the shipped linkage.)
#
# The panic comes from a TEST-ONLY variant of the module: `--features panic-probe`, built
# outside the namespace by tests/build-module.sh into its own target directory
# (target/panic-probe, or JIT_PROBE_TARGET_DIR), never the shipped one; with the module
# argument `panic_probe` its account hook panics a few frames below the guard.
# tests/system/01-invariants.sh checks that the shipped pam_jit.so carries no probe.
#
# For each sudo, with user bob holding a valid grant (NOPASSWD rule, sudo -n, no tty):
#   - the shipped module allows (control), the probe variant without the argument allows
#     (it decides like the shipped one), the probe variant with `panic_probe` denies: exit
#     status 1 (not a signal: sudo did not crash or abort), the command did not run, and an
#     `err`-severity pam_jit line says it panicked;
#   - afterwards the shipped module still allows.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
if [ -z "${JIT_SYS_NS:-}" ]; then
  # Outside the namespaces (as sys_build): the probe variant, into its own target directory.
  [ "$(id -u)" = 0 ] || sys_die "must run as root (private namespaces; the host is not changed)"
  probe_target=${JIT_PROBE_TARGET_DIR:-${CARGO_TARGET_DIR:-$SYS_ROOT/target}/panic-probe}
  (cd "$SYS_ROOT" && CARGO_TARGET_DIR=$probe_target bash tests/build-module.sh -q --features panic-probe) >&2 \
    || sys_die "building the panic-probe variant of pam_jit.so failed"
  export JIT_PROBE_SO=$probe_target/release/libpam_jit.so
fi
sys_enter "$@"
sys_bins
SUDO_RS_SRC=${JIT_SUDO_RS:-/opt/jit-test-tools/bin/sudo}
[ -x "$SUDO_RS_SRC" ] || sys_die "sudo-rs not found at $SUDO_RS_SRC (run tests/install-deps.sh)"
command -v sudo >/dev/null || sys_die "sudo is not installed (run tests/install-deps.sh)"
[ -f "${JIT_PROBE_SO:-}" ] || sys_die "no panic-probe module at ${JIT_PROBE_SO:-?}"

# The probe variant is linked like the shipped module (else this proves nothing about it):
# the same libraries needed, only the six exports; and it really carries the probe.
needed_of() { readelf -d "$1" | awk '/NEEDED/ {print $5}' | sort | tr '\n' ' '; }
if [ "$(needed_of "$JIT_PROBE_SO")" = "$(needed_of "$PAM_JIT_SO")" ]; then
  t_ok "the probe module needs the same libraries as the shipped one: $(needed_of "$PAM_JIT_SO")"
else
  t_bad "the probe module needs $(needed_of "$JIT_PROBE_SO"), the shipped one $(needed_of "$PAM_JIT_SO")"
fi
grep -aq 'pam_jit panic probe' "$JIT_PROBE_SO" || sys_die "$JIT_PROBE_SO carries no panic probe (built without --features panic-probe?)"
exported=$(nm -D --defined-only "$JIT_PROBE_SO" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort | tr '\n' ' ')
[ "$exported" = "pam_sm_acct_mgmt pam_sm_authenticate pam_sm_chauthtok pam_sm_close_session pam_sm_open_session pam_sm_setcred " ] \
  && t_ok "the probe variant exports only the six pam_sm_* symbols (no _Unwind_*)" || t_bad "the probe variant exports: $exported"

hostname db-1
W=$(sys_workdir)
mount -t tmpfs -o mode=0755 jit-run /run
sys_isolate_users "$W"
sys_add_user bob 2002   # NOPASSWD rule
sys_private_dev "$W"

# syslog with the severity on each line: the panic must be logged at err (LOG_ERR).
mkdir -p "$W/log"
cat > "$W/log/rsyslog.conf" <<CONF
module(load="imuxsock" SysSock.Name="/dev/log")
global(workDirectory="$W/log")
template(name="sev" type="string" string="%syslogseverity-text% %syslogtag%%msg%\n")
authpriv.* action(type="omfile" file="$W/log/auth.log" template="sev")
CONF
rsyslogd -n -f "$W/log/rsyslog.conf" -i "$W/log/rsyslog.pid" >/dev/null 2>&1 &
SYSLOG_PID=$!
trap 'kill "$SYSLOG_PID" 2>/dev/null || true; wait "$SYSLOG_PID" 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done
[ -S /dev/log ] || sys_die "rsyslogd did not create /dev/log"
LOG=$W/log/auth.log

cp /etc/hosts "$W/hosts"; printf '127.0.1.1 db-1\n' >> "$W/hosts"; mount --bind "$W/hosts" /etc/hosts
printf 'root ALL=(ALL:ALL) ALL\nbob ALL=(ALL:ALL) NOPASSWD: ALL\n' > "$W/sudoers"
chmod 0440 "$W/sudoers"; mount --bind "$W/sudoers" /etc/sudoers
mount -t tmpfs -o mode=0755 jit-sudoers.d /etc/sudoers.d
mkdir -p "$W/pam.d" "$W/pam.d.orig"; cp -a /etc/pam.d/. "$W/pam.d/"; cp -a /etc/pam.d/. "$W/pam.d.orig/"
mount --bind "$W/pam.d" /etc/pam.d
mkdir -p "$W/bin"; install -o root -g root -m 4755 "$SUDO_RS_SRC" "$W/bin/sudo-rs"
# The probe on the same root-owned staging tmpfs as the shipped module (sys_bins).
PROBE_SO=/usr/local/sbin/libpam_jit_panic_probe.so
install -o root -g root -m 0644 "$JIT_PROBE_SO" "$PROBE_SO"

K=$W/keys; mkdir -p "$K"; host_keygen "$K/grant"
STATE=$W/state; host_state_dir "$STATE"
host_fresh_revocations "$K/grant" "$STATE"
CONF=$W/etc/host.toml
host_config "$CONF" "$STATE" "$K/grant.pub"
NOW=$(date +%s)
host_sign_grant "$K/grant" "$W/g-bob" g-bob bob dba 'db-*' $((NOW - 60)) $((NOW + 3600))
host_put_grant "$STATE" bob "$W/g-bob"

gate_with() { # MODULE [ARGS...]: sudo and sudo-i gated by MODULE, first in the account stack
  local so=$1 f; shift
  for f in sudo sudo-i; do
    [ -f "$W/pam.d.orig/$f" ] || continue
    { printf 'account requisite %s config=%s%s\n' "$so" "$CONF" "${*:+ $*}"; cat "$W/pam.d.orig/$f"; } > "/etc/pam.d/$f"
  done
}

# run CMD... as bob -> RC, OUT. No terminal (setsid), stdin /dev/null, bounded.
run() {
  set +e
  OUT=$(sys_timeout setsid -w setpriv --reuid=2002 --regid=2002 --clear-groups \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ LANG=C "$@" 2>&1 </dev/null)
  RC=$?
  set -e
}

for SUDO in /usr/bin/sudo "$W/bin/sudo-rs"; do
  S=$(basename "$SUDO")
  gate_with "$PAM_JIT_SO"
  run "$SUDO" -n id -u
  [ "$RC" = 0 ] && [ "$OUT" = 0 ] && t_ok "$S: the shipped module allows bob's grant (control)" || t_bad "$S: shipped module, rc $RC: $OUT"

  gate_with "$PROBE_SO"
  run "$SUDO" -n id -u
  [ "$RC" = 0 ] && [ "$OUT" = 0 ] && t_ok "$S: the probe variant without panic_probe decides as shipped (allow)" \
    || t_bad "$S: probe variant without the argument, rc $RC: $OUT"

  gate_with "$PROBE_SO" panic_probe
  : > "$LOG"
  run "$SUDO" -n id -u
  if [ "$RC" = 1 ] && ! grep -qx 0 <<<"$OUT"; then
    t_ok "$S: a panic inside the module denies (exit 1, the command did not run, no crash)"
  else
    t_bad "$S: a panic inside the module: rc $RC (want 1; >= 128 is a signal: a crash or abort): $OUT"
  fi
  if sys_wait_log "$LOG" "pam_jit panicked" && grep -F "pam_jit panicked" "$LOG" | grep -q '^err .*result=deny'; then
    t_ok "$S: the panic is logged at LOG_ERR as a denial"
  else
    t_bad "$S: no err-level 'pam_jit panicked' deny line: $(tail -3 "$LOG" 2>/dev/null)"
  fi
  # sudo -i (its own service on Debian) too, and the next run with the shipped module allows.
  run "$SUDO" -n -i true
  [ "$RC" = 1 ] && t_ok "$S: sudo -i: a panic inside the module denies" || t_bad "$S: sudo -i with the panic: rc $RC: $OUT"
  gate_with "$PAM_JIT_SO"
  run "$SUDO" -n true
  [ "$RC" = 0 ] && t_ok "$S: the shipped module allows again afterwards" || t_bad "$S: shipped module after the panic: rc $RC: $OUT"
done

t_summary

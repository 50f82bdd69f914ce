#!/usr/bin/env bash
# Upgrade test across a real version change (as root, Debian 12, after tests/install-deps.sh):
#
#   bash packaging/upgrade-test.sh
#
# Builds release N (this tree: target/packages, reused when fresh) and release N+1
# (packaging/next-version.sh: the next patch version, a new changelog entry and a changed
# /etc/default/jit-ca default, built with packaging/build.sh in target/upgrade-next/), signs a
# repository holding N with a throwaway key (packaging/lib/testkey.sh, packaging/repo.sh), then,
# inside `unshare --mount --uts --net --pid --fork` with overlays over /etc /usr /var:
#
#   apt       installs jit-ca jit jit-host from the repository (file://, Signed-By), sets the
#             host up like an operator (CA from the package, edited host.toml and
#             /etc/default/jit-ca, setup --sudo --sshd, a grant through request -> approve ->
#             sshd login), regenerates the repository with N and N+1 and upgrades with
#               apt-get update
#               DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::=--force-confdef \
#                 -o Dpkg::Options::=--force-confold upgrade
#             while `sudo -n true` runs under the existing grant every 0.1 s; then checks
#             versions, kept conffiles (.dpkg-dist holds the new default), zero sudo failures,
#             grants and sessions, CA data and `jit-ca audit verify`, a new grant, the timer;
#             a downgrade is refused without --allow-downgrades; jit-ca refuses a database
#             with a newer schema; an unedited conffile takes the new default.
#   rpm       a root that is an overlay of this system, whose rpmdb holds a generated package
#             providing what our RPMs require: dnf install from the repository holding N
#             (gpgcheck, repo_gpgcheck), operator edit of /etc/sysconfig/jit-ca, dnf upgrade
#             to N+1 (.rpmnew holds the new default), dnf downgrade.
#
# Prints PASS/FAIL lines and each phase's duration; exits non-zero on any FAIL. A check that
# cannot run is a FAIL unless JIT_PACKAGING_STRICT=0.
#
# Environment:
#   JIT_NEXT_PACKAGES_DIR   reuse N+1 packages built before (skips next-version.sh + build)
#   JIT_REPO_SH / JIT_TESTKEY_SH   the repository and test key scripts (default packaging/...)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"

failures=0 skips=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
skip() {
  echo "SKIP: $*"
  skips=$((skips + 1))
  if [ "${JIT_PACKAGING_STRICT:-1}" = 1 ]; then failures=$((failures + 1)); fi
}
check() { # description command...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi
}
section() { echo; echo "--- $*"; }
PHASE= PHASE_T0=
phase() { # name (ends the previous phase)
  local now; now=$(date +%s.%N)
  if [ -n "$PHASE" ]; then
    echo "TIME: $PHASE $(awk -v a="$PHASE_T0" -v b="$now" 'BEGIN { printf "%.1f", b - a }') s"
  fi
  PHASE=$1 PHASE_T0=$now
  [ -n "$1" ] && section "$1"
}

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
OUT=${JIT_PACKAGES_DIR:-$TARGET_DIR/packages}
REPO_SH=${JIT_REPO_SH:-$ROOT/packaging/repo.sh}
TESTKEY_SH=${JIT_TESTKEY_SH:-$ROOT/packaging/lib/testkey.sh}
# shellcheck source=packaging/lib/ns.sh
. "$ROOT/packaging/lib/ns.sh"

# =============================================================================================
# Inside the namespace.
# =============================================================================================
APT_UPGRADE=(apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold upgrade)
apt_q() { DEBIAN_FRONTEND=noninteractive apt-get -q "$@"; }

grants_snapshot() { find /var/lib/jit/grants -type f -printf '%P %s %U %m %T@\n' 2>/dev/null | sort; }
sessions_snapshot() { find /run/jit/sessions -mindepth 1 -printf '%P %s %U %m\n' 2>/dev/null | sort; }
audit_json() { runuser -u jit-ca -- /usr/bin/jit-ca audit verify --dir /var/lib/jit-ca --json 2>&1; }

# An engineer asks for the ops role, an approver approves, the engineer fetches the certificate.
grant_flow() { # tag -> sets GRANT_ID
  local tag=$1 out id=
  if out=$(as_user alice env JIT_SERVER="$CA_URL" jit --identity /home/alice/.ssh/id_ed25519 --json \
        request ops --duration 30m --reason "upgrade test $tag" --no-wait 2>"$T/req-$tag.err"); then
    id=$(printf '%s' "$out" | jq -r '.id // .request.id // empty' 2>/dev/null)
  fi
  [ -n "$id" ] || { fail "$tag: jit request ops"; sed 's/^/  | /' "$T/req-$tag.err"; return 1; }
  as_user bob env JIT_SERVER="$CA_URL" jit --identity /home/bob/.ssh/id_ed25519 approve "$id" \
    > "$T/approve-$tag.log" 2>&1 || { fail "$tag: jit approve $id"; sed 's/^/  | /' "$T/approve-$tag.log"; return 1; }
  rm -f /home/alice/.ssh/id_ed25519-cert.pub
  as_user alice env JIT_SERVER="$CA_URL" jit --identity /home/alice/.ssh/id_ed25519 login "$id" \
    > "$T/login-$tag.log" 2>&1 && [ -f /home/alice/.ssh/id_ed25519-cert.pub ] \
    || { fail "$tag: jit login $id"; sed 's/^/  | /' "$T/login-$tag.log"; return 1; }
  pass "$tag: request -> approve -> certificate ($id)"
  GRANT_ID=$id
}

host_setup() { # the operator's host: CA from the package, setup, a grant. Returns 1 if it cannot go on.
  runuser -u jit-ca -- /usr/bin/jit-ca init --dir /var/lib/jit-ca > "$T/ca-init.log" 2>&1 \
    || { fail "jit-ca init as jit-ca"; sed 's/^/  | /' "$T/ca-init.log"; return 1; }
  cat > /var/lib/jit-ca/policy.toml <<'POLICY'
[roles.ops]
hosts = ["jit-upg-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:sre"]
approvals = 1
auto_approve = false
require_reason = true
extensions = ["permit-pty"]
POLICY
  chown jit-ca:jit-ca /var/lib/jit-ca/policy.toml; chmod 0600 /var/lib/jit-ca/policy.toml
  local u
  install -d -m 0755 /run/jit-test
  for u in alice bob; do
    useradd -m -s /bin/bash "$u"; usermod -p '*' "$u"
    install -d -o "$u" -g "$u" -m 0700 "/home/$u/.ssh"
    as_user "$u" ssh-keygen -q -t ed25519 -N '' -f "/home/$u/.ssh/id_ed25519" -C "$u@jit-upg-test"
    install -m 0644 "/home/$u/.ssh/id_ed25519.pub" "/run/jit-test/$u.pub"
  done
  runuser -u jit-ca -- /usr/bin/jit-ca user add alice --key /run/jit-test/alice.pub --group dev --dir /var/lib/jit-ca > "$T/user.log" 2>&1 \
    && runuser -u jit-ca -- /usr/bin/jit-ca user add bob --key /run/jit-test/bob.pub --group sre --dir /var/lib/jit-ca >> "$T/user.log" 2>&1 \
    || { fail "jit-ca user add"; sed 's/^/  | /' "$T/user.log"; return 1; }
  start_ca || { fail "jit-ca serve (N)"; sed 's/^/  | /' "$T/ca.log"; return 1; }
  pass "CA initialised and served by the installed /usr/bin/jit-ca (N) as jit-ca"
  runuser -u jit-ca -- /usr/bin/jit-ca host-config --dir /var/lib/jit-ca > "$T/host.toml" 2> "$T/hc.log" \
    || { fail "jit-ca host-config"; sed 's/^/  | /' "$T/hc.log"; return 1; }
  install -o root -g root -m 0644 "$T/host.toml" /etc/jit/host.toml
  grep -q '^server' /etc/jit/host.toml || sed -i "1i server = \"$CA_URL\"" /etc/jit/host.toml
  # The operator's own edit: a comment the package must never lose.
  printf '\n# Operator: approved by change ticket OPS-1234; do not overwrite.\n' >> /etc/jit/host.toml
  cp -a /etc/jit/host.toml "$T/host.toml.operator"
  /usr/sbin/jit-host sync > "$T/sync.log" 2>&1 || { fail "jit-host sync"; sed 's/^/  | /' "$T/sync.log"; return 1; }
  /usr/sbin/jit-host setup --sudo --sshd > "$T/setup.log" 2>&1 \
    || { fail "jit-host setup --sudo --sshd"; sed 's/^/  | /' "$T/setup.log"; return 1; }
  pass "jit-host sync; jit-host setup --sudo --sshd (edited host.toml)"
  echo 'alice ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/alice; chmod 0440 /etc/sudoers.d/alice
  echo 'bob ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/bob; chmod 0440 /etc/sudoers.d/bob
  /usr/sbin/sshd -t > "$T/sshd-t.log" 2>&1 || { fail "sshd -t"; sed 's/^/  | /' "$T/sshd-t.log"; return 1; }
  start_sshd || { fail "sshd start"; return 1; }
  grant_flow before || return 1
  if ssh_as alice /home/alice/.ssh/id_ed25519 'sudo -n true && echo SUDO-OK' > "$T/ssh-before.log" 2>&1 \
     && grep -q SUDO-OK "$T/ssh-before.log"; then
    pass "alice: ssh with the certificate into real sshd, sudo -n true (grant stored)"
  else
    fail "ssh + sudo before the upgrade"; sed 's/^/  | /' "$T/ssh-before.log"; tail -20 "$T/sshd.log" | sed 's/^/  sshd| /'; return 1
  fi
  check "the grant is stored under /var/lib/jit/grants/alice" sh -c "ls /var/lib/jit/grants/alice/*.grant"
  # The operator's edit of the conffile.
  sed -i 's/^JIT_CA_OPTS=""$/JIT_CA_OPTS="--listen 127.0.0.1:8443"/' /etc/default/jit-ca
  check "operator edited /etc/default/jit-ca" grep -qx 'JIT_CA_OPTS="--listen 127.0.0.1:8443"' /etc/default/jit-ca
  cp -a /etc/default/jit-ca "$T/jit-ca.default.operator"
}

timers_enabled() {
  local u
  for u in jit-host-sync.timer jit-host-gc.timer; do
    test -L "/etc/systemd/system/timers.target.wants/$u" \
      && test -f "/var/lib/systemd/deb-systemd-helper-enabled/$u.dsh-also" || return 1
  done
}

# sudo -n true as alice every 0.1 s until $1 exists; one line per call: "EPOCH ok|FAIL msg".
sudo_loop() { # stopfile log
  local err
  while [ ! -e "$1" ]; do
    if err=$(as_user alice sudo -n true 2>&1); then
      echo "$(date +%s.%N) ok"
    else
      echo "$(date +%s.%N) FAIL ${err//$'\n'/ }"
    fi
    sleep 0.1
  done > "$2"
}

apt_side() {
  local NV=$1 NV1=$2
  # --- apt source: only the test repository ---------------------------------------------
  rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
  cat > /etc/apt/sources.list.d/jit.sources <<EOF
Types: deb
URIs: file://$T/repo/apt
Suites: stable
Components: main
Signed-By: $T/repo/jit-archive-keyring.gpg
EOF
  if apt_q update > "$T/apt-update1.log" 2>&1 && ! grep -qE '^(W|E):' "$T/apt-update1.log"; then
    pass "apt-get update: the signed repository (N only) verifies, no warnings"
  else
    fail "apt-get update (N)"; sed 's/^/  | /' "$T/apt-update1.log"; return
  fi
  check "apt sees jit-host $NV" sh -c "apt-cache policy jit-host | grep -q 'Candidate: $NV'"
  if apt_q install -y jit-ca jit jit-host > "$T/apt-install.log" 2>&1; then
    pass "apt-get install -y jit-ca jit jit-host (from the repository)"
  else
    fail "apt-get install"; sed 's/^/  | /' "$T/apt-install.log"; return
  fi
  local p
  for p in jit-ca jit jit-host; do
    check "$p $NV installed" sh -c "[ \"\$(dpkg-query -W -f='\${Version} \${Status}' $p)\" = '$NV install ok installed' ]"
  done

  phase "apt: operator sets the host up (N)"
  host_setup || { stop_daemons; return; }
  check "jit-host-sync.timer and jit-host-gc.timer enabled (deb-systemd-helper state)" timers_enabled

  # --- before --------------------------------------------------------------------------------
  local grants_before sessions_before audit_before rec_before pam_before
  grants_before=$(grants_snapshot); sessions_before=$(sessions_snapshot); pam_before=$(snapshot_pam)
  audit_before=$(audit_json)
  rec_before=$(printf '%s' "$audit_before" | jq -r 'select(.ok == true) | .records' 2>/dev/null)
  if [ -n "$rec_before" ]; then
    pass "audit verify before the upgrade: $rec_before records"
  else
    fail "audit verify before the upgrade"; echo "  | $audit_before"
  fi

  phase "apt: repository regenerated with N and N+1"
  if bash "$REPO_SH" --out "$T/repo" --key-file "$T/key/key.asc" "$OUT" "$NEXT_OUT" > "$T/repo2.log" 2>&1; then
    pass "repo.sh regenerated $T/repo with N and N+1"
  else
    fail "repo.sh (N and N+1)"; sed 's/^/  | /' "$T/repo2.log"; stop_daemons; return
  fi
  if apt_q update > "$T/apt-update2.log" 2>&1 && ! grep -qE '^(W|E):' "$T/apt-update2.log"; then
    pass "apt-get update (N and N+1)"
  else
    fail "apt-get update (N and N+1)"; sed 's/^/  | /' "$T/apt-update2.log"
  fi
  DEBIAN_FRONTEND=noninteractive "${APT_UPGRADE[@]}" -s > "$T/apt-sim.log" 2>&1
  if grep -q '^3 upgraded' "$T/apt-sim.log" && ! grep -q 'kept back' "$T/apt-sim.log"; then
    pass "apt-get -s upgrade: 3 upgraded, none kept back"
  else
    fail "apt-get -s upgrade does not upgrade all three"; sed 's/^/  | /' "$T/apt-sim.log"
  fi

  # --- the upgrade, with sudo running ---------------------------------------------------------
  phase "apt: upgrade N -> N+1 with sudo running"
  sudo_loop "$T/loop.stop" "$T/loop.log" &
  local loop_pid=$! t0 t1
  sleep 1
  t0=$(date +%s.%N)
  if DEBIAN_FRONTEND=noninteractive "${APT_UPGRADE[@]}" > "$T/apt-upgrade.log" 2>&1; then
    pass "DEBIAN_FRONTEND=noninteractive ${APT_UPGRADE[*]}"
  else
    fail "apt-get upgrade"; sed 's/^/  | /' "$T/apt-upgrade.log"
  fi
  t1=$(date +%s.%N)
  sleep 1
  touch "$T/loop.stop"; wait "$loop_pid"
  local calls during fails
  calls=$(wc -l < "$T/loop.log")
  during=$(awk -v a="$t0" -v b="$t1" '$1 >= a && $1 <= b' "$T/loop.log" | wc -l)
  fails=$(grep -c ' FAIL' "$T/loop.log")
  echo "  upgrade took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; sudo calls: $calls in all, $during during apt-get upgrade, $fails failed"
  if [ "$fails" = 0 ] && [ "$during" -gt 0 ]; then
    pass "sudo under the existing grant never failed during the upgrade ($during calls during apt-get upgrade, $calls in all)"
  else
    fail "sudo loop: $fails failure(s), $during call(s) during the upgrade"; grep ' FAIL' "$T/loop.log" | head -20 | sed 's/^/  | /'
  fi
  grep -E '^(W|E):|conffile|dpkg-dist' "$T/apt-upgrade.log" | sed 's/^/  apt| /'

  # --- after ------------------------------------------------------------------------------------
  phase "apt: checks after the upgrade"
  for p in jit-ca jit jit-host; do
    check "$p upgraded to $NV1" sh -c "[ \"\$(dpkg-query -W -f='\${Version} \${Status}' $p)\" = '$NV1 install ok installed' ]"
  done
  local v; v=$(/usr/bin/jit-ca --version 2>&1)
  case "$v" in *"${NV1%-*}"*) pass "jit-ca --version: $v" ;; *) fail "jit-ca --version says '$v', want ${NV1%-*}" ;; esac
  check "/etc/jit/host.toml byte-identical to the operator's (not a conffile: never touched)" cmp /etc/jit/host.toml "$T/host.toml.operator"
  check "/etc/default/jit-ca keeps the operator's edit (--force-confold)" cmp /etc/default/jit-ca "$T/jit-ca.default.operator"
  check "/etc/default/jit-ca.dpkg-dist holds the new default of N+1" cmp /etc/default/jit-ca.dpkg-dist "$NEXT_SRC/packaging/examples/jit-ca.default"
  [ "$(grants_snapshot)" = "$grants_before" ] && pass "grant store unchanged" || fail "grant store changed by the upgrade"
  [ "$(sessions_snapshot)" = "$sessions_before" ] && pass "session bindings (/run/jit/sessions) unchanged" || fail "sessions changed by the upgrade"
  [ "$(snapshot_pam)" = "$pam_before" ] && pass "PAM files (setup's lines) unchanged" || fail "PAM files changed by the upgrade"
  check "sync and gc timers still enabled" timers_enabled
  # The CA: the old process still runs the old binary; restart from the upgraded one.
  stop_daemons
  if start_ca; then pass "CA restarted from the upgraded /usr/bin/jit-ca serves with the same data"; else fail "upgraded jit-ca serve"; sed 's/^/  | /' "$T/ca.log"; fi
  local audit_after rec_after
  audit_after=$(audit_json)
  rec_after=$(printf '%s' "$audit_after" | jq -r 'select(.ok == true) | .records' 2>/dev/null)
  if [ -n "$rec_after" ] && [ -n "$rec_before" ] && [ "$rec_after" -ge "$rec_before" ]; then
    pass "jit-ca audit verify after the upgrade: intact, $rec_after records (>= $rec_before before)"
  else
    fail "jit-ca audit verify after the upgrade"; echo "  | $audit_after"
  fi
  start_sshd || fail "sshd restart"
  if grant_flow after && ssh_as alice /home/alice/.ssh/id_ed25519 'sudo -n true && echo SUDO-OK' > "$T/ssh-after.log" 2>&1 \
     && grep -q SUDO-OK "$T/ssh-after.log"; then
    pass "after the upgrade: a new grant, ssh with the fresh certificate and sudo work"
  else
    fail "after the upgrade: new grant + ssh + sudo"; sed 's/^/  | /' "$T/ssh-after.log" 2>/dev/null
  fi
  if as_user bob sudo -n true 2>/dev/null; then fail "bob (no grant) got sudo after the upgrade"; else pass "bob (sudoers rule, no grant) still denied"; fi

  # --- downgrade ---------------------------------------------------------------------------------
  phase "apt: downgrade"
  if apt_q install -y "jit-host=$NV" > "$T/apt-downgrade.log" 2>&1; then
    fail "apt-get install -y jit-host=$NV must refuse the downgrade without --allow-downgrades"
  else
    if grep -q '^E: Packages were downgraded and -y was used without --allow-downgrades' "$T/apt-downgrade.log"; then
      pass "apt-get install -y jit-host=$NV refused: $(grep -m1 '^E: Packages were downgraded' "$T/apt-downgrade.log")"
    else
      fail "apt-get install -y jit-host=$NV failed, but not for the downgrade"; sed 's/^/  | /' "$T/apt-downgrade.log"
    fi
  fi
  check "jit-host still at $NV1 after the refused downgrade" sh -c "[ \"\$(dpkg-query -W -f='\${Version}' jit-host)\" = '$NV1' ]"
  # A database from a newer release (one schema migration more than this jit-ca knows).
  stop_daemons
  local known
  known=$(sqlite3 /var/lib/jit-ca/jit.db 'PRAGMA user_version' 2>/dev/null)
  if [ -n "$known" ]; then
    cp -a /var/lib/jit-ca /var/lib/jit-ca.newer
    sqlite3 /var/lib/jit-ca.newer/jit.db "PRAGMA user_version = $((known + 1))"
    if runuser -u jit-ca -- timeout 20 /usr/bin/jit-ca serve --dir /var/lib/jit-ca.newer --listen 127.0.0.1:8444 > "$T/newer.log" 2>&1; then
      fail "jit-ca serve must refuse a database with a newer schema"
    elif grep -q 'newer than this jit-ca knows' "$T/newer.log"; then
      pass "jit-ca refuses a database of a newer schema ($((known + 1)) > $known): $(grep -m1 -o 'the database has schema.*' "$T/newer.log")"
    else
      fail "jit-ca on a newer schema failed without the clear error"; sed 's/^/  | /' "$T/newer.log"
    fi
    rm -rf /var/lib/jit-ca.newer
  else
    skip "sqlite3 missing or no schema version: cannot test a newer database schema"
  fi
  # --allow-downgrades: allowed by apt; documented, not promised. Same schema here: N serves.
  # The edited conffile would prompt again: the same dpkg options as for the upgrade.
  if apt_q install -y --allow-downgrades -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
       "jit-ca=$NV" "jit=$NV" "jit-host=$NV" > "$T/apt-downgrade2.log" 2>&1; then
    pass "apt-get install --allow-downgrades to $NV: done (operator's explicit choice)"
    if start_ca; then
      pass "after the downgrade, N's jit-ca serves N+1's data (same schema $known)"
    else
      fail "N's jit-ca on N+1's data"; tail -5 "$T/ca.log" | sed 's/^/  | /'
    fi
    stop_daemons
    check "after the downgrade, alice's sudo still works" as_user alice sudo -n true
  else
    fail "apt-get install --allow-downgrades"; sed 's/^/  | /' "$T/apt-downgrade2.log"
  fi

  # --- an unedited conffile takes the new default ------------------------------------------------
  phase "apt: unedited conffile"
  if apt_q purge -y jit-ca > "$T/purge.log" 2>&1 && apt_q install -y "jit-ca=$NV" > "$T/reinst.log" 2>&1 \
     && check "fresh jit-ca $NV: /etc/default/jit-ca is N's default" cmp /etc/default/jit-ca "$ROOT/packaging/examples/jit-ca.default" \
     && DEBIAN_FRONTEND=noninteractive "${APT_UPGRADE[@]}" > "$T/apt-upgrade2.log" 2>&1; then
    if cmp -s /etc/default/jit-ca "$NEXT_SRC/packaging/examples/jit-ca.default"; then
      pass "unedited /etc/default/jit-ca replaced by N+1's default"
    else
      fail "unedited /etc/default/jit-ca not replaced by N+1's default (jit-ca $(dpkg-query -W -f='${Version}' jit-ca))"
      diff /etc/default/jit-ca "$NEXT_SRC/packaging/examples/jit-ca.default" | sed 's/^/  diff| /'
      grep -E 'jit-ca|^E:|upgraded' "$T/apt-upgrade2.log" | sed 's/^/  apt| /'
    fi
    check "no .dpkg-dist for an unedited conffile" test ! -e /etc/default/jit-ca.dpkg-dist
  else
    fail "purge, reinstall $NV, upgrade (unedited conffile scenario)"; cat "$T/purge.log" "$T/reinst.log" "$T/apt-upgrade2.log" 2>/dev/null | tail -20 | sed 's/^/  | /'
  fi
}

# --- RPM: dnf install / upgrade / downgrade in an overlay of this system --------------------
rpm_side() {
  local NV1=$1 S=$T/rpmsys
  if ! command -v dnf >/dev/null || ! command -v rpmbuild >/dev/null; then
    skip "dnf or rpmbuild missing: the RPM upgrade cannot run (apt-get install dnf rpm)"; return
  fi
  mkdir -p "$T/ovl/rpmsys/upper" "$T/ovl/rpmsys/work" "$S"
  if ! mount -t overlay overlay -o "lowerdir=/,upperdir=$T/ovl/rpmsys/upper,workdir=$T/ovl/rpmsys/work" "$S"; then
    skip "overlay of / for the RPM root not possible here"; return
  fi
  mount --bind /dev "$S/dev"; mount -t proc proc "$S/proc"; mount -t tmpfs tmpfs "$S/run"; mount -t tmpfs tmpfs "$S/tmp"
  rm -rf "$S/var/lib/rpm" "$S/var/lib/dnf" "$S/etc/yum.repos.d"; mkdir -p "$S/var/lib/rpm" "$S/etc/yum.repos.d"
  rpm --root "$S" --initdb

  # A base package providing exactly what our RPMs require (from rpm -qpR), so dnf can resolve
  # them: on this Debian system the rpmdb knows nothing of glibc, pam or systemd.
  local reqs provides line name op ver spec=$T/base.spec
  reqs=$(for p in "$OUT"/*.rpm "$NEXT_OUT"/*.rpm; do rpm -qpR "$p"; done | grep -v '^rpmlib(' | sort -u)
  provides=$(for p in "$OUT"/*.rpm "$NEXT_OUT"/*.rpm; do rpm -qp --provides "$p"; done | awk '{ print $1 }' | sort -u)
  {
    printf 'Name: jit-test-base\nVersion: 1\nRelease: 1\nSummary: the base system our RPMs need (generated for the upgrade test)\n'
    printf 'License: MIT\nBuildArch: noarch\n'
    while IFS= read -r line; do
      [ -n "$line" ] || continue
      name=${line%% *}
      grep -qxF "$name" <<<"$provides" && continue
      read -r name op ver <<<"$line"
      case "$op" in '>='|'='|'<='|'') ;; *) echo "# unsupported requirement: $line"; continue ;; esac
      if [ -n "$ver" ]; then printf 'Provides: %s = %s\n' "$name" "$ver"; else printf 'Provides: %s\n' "$name"; fi
    done <<<"$reqs"
    printf '%%description\nGenerated by packaging/upgrade-test.sh.\n%%files\n'
  } > "$spec"
  if rpmbuild --quiet --define "_topdir $T/rpmbuild" -bb "$spec" > "$T/rpmbuild.log" 2>&1 \
     && rpm -i --root "$S" "$T"/rpmbuild/RPMS/noarch/jit-test-base-1-1.noarch.rpm > "$T/base-i.log" 2>&1; then
    pass "rpmdb of the root holds jit-test-base, providing $(grep -c '^Provides' "$spec") requirements of our RPMs"
  else
    fail "generated base package"; cat "$T/rpmbuild.log" "$T/base-i.log" | sed 's/^/  | /'; umount -R "$S"; return
  fi
  cat > "$T/dnf.conf" <<EOF
[main]
gpgcheck=1
repo_gpgcheck=1
install_weak_deps=0
reposdir=$T/yum.repos.d
cachedir=$T/dnf-cache
keepcache=0
EOF
  mkdir -p "$T/yum.repos.d"
  cat > "$T/yum.repos.d/jit.repo" <<EOF
[jit]
name=jit (upgrade test)
baseurl=file://$T/repo/rpm
enabled=1
gpgcheck=1
repo_gpgcheck=1
gpgkey=file://$T/repo/jit-archive-keyring.asc
EOF
  DNF=(dnf -y --config "$T/dnf.conf" --installroot "$S" --releasever 9 --setopt=reposdir="$T/yum.repos.d")
  # The repository holds only N at this point (regenerated with N+1 by the apt side later).
  if "${DNF[@]}" install jit-ca jit jit-host > "$T/dnf-install.log" 2>&1; then
    pass "dnf --installroot install jit-ca jit jit-host (gpgcheck=1, repo_gpgcheck=1; scriptlets run)"
  else
    fail "dnf install"; tail -30 "$T/dnf-install.log" | sed 's/^/  | /'; umount -R "$S"; return
  fi
  RPM_NV=$(rpm --root "$S" -q --qf '%{VERSION}-%{RELEASE}' jit-host)
  check "rpm: jit-ca jit jit-host at $RPM_NV" sh -c "rpm --root '$S' -q jit-ca jit jit-host"
  check "rpm: %post enabled jit-host-sync.timer" test -L "$S/etc/systemd/system/timers.target.wants/jit-host-sync.timer"
  sed -i 's/^JIT_CA_OPTS=""$/JIT_CA_OPTS="--listen 127.0.0.1:8443"/' "$S/etc/sysconfig/jit-ca"
  cp -a "$S/etc/sysconfig/jit-ca" "$T/sysconfig.operator"
  RPM_ROOT=$S
}

rpm_upgrade() {
  local NV1=$1 S=$RPM_ROOT
  if "${DNF[@]}" --refresh upgrade > "$T/dnf-upgrade.log" 2>&1; then
    pass "dnf --installroot ROOT --refresh upgrade -y"
  else
    fail "dnf upgrade"; tail -30 "$T/dnf-upgrade.log" | sed 's/^/  | /'
  fi
  local p
  for p in jit-ca jit jit-host; do
    check "rpm: $p upgraded to $NV1-1" sh -c "[ \"\$(rpm --root '$S' -q --qf '%{VERSION}-%{RELEASE}' $p)\" = '$NV1-1' ]"
  done
  check "%config(noreplace) /etc/sysconfig/jit-ca keeps the operator's edit" cmp "$S/etc/sysconfig/jit-ca" "$T/sysconfig.operator"
  check "/etc/sysconfig/jit-ca.rpmnew holds the new default of N+1" cmp "$S/etc/sysconfig/jit-ca.rpmnew" "$NEXT_SRC/packaging/examples/jit-ca.default"
  check "rpm: jit-host-sync.timer still enabled" test -L "$S/etc/systemd/system/timers.target.wants/jit-host-sync.timer"
  check "rpm: jit and jit-ca system users kept" sh -c "chroot '$S' getent passwd jit && chroot '$S' getent passwd jit-ca"
  # dnf never downgrades on `upgrade`; `dnf downgrade` is the explicit request.
  if "${DNF[@]}" downgrade jit-ca jit jit-host > "$T/dnf-downgrade.log" 2>&1; then
    local back; back=$(rpm --root "$S" -q --qf '%{VERSION}-%{RELEASE}' jit-host)
    if [ "$back" = "$RPM_NV" ]; then
      pass "dnf downgrade (explicit) goes back to $back; documented, not promised"
    else
      fail "dnf downgrade left jit-host at $back"
    fi
  else
    fail "dnf downgrade"; tail -20 "$T/dnf-downgrade.log" | sed 's/^/  | /'
  fi
  # An unedited %config(noreplace) file takes the new default (no .rpmnew).
  cp "$ROOT/packaging/examples/jit-ca.default" "$S/etc/sysconfig/jit-ca"
  rm -f "$S/etc/sysconfig/jit-ca.rpmnew"
  if "${DNF[@]}" upgrade > "$T/dnf-upgrade2.log" 2>&1; then
    check "rpm: an unedited /etc/sysconfig/jit-ca takes N+1's default" cmp "$S/etc/sysconfig/jit-ca" "$NEXT_SRC/packaging/examples/jit-ca.default"
    check "rpm: no .rpmnew for an unedited config file" test ! -e "$S/etc/sysconfig/jit-ca.rpmnew"
  else
    fail "dnf upgrade (unedited config file)"; tail -20 "$T/dnf-upgrade2.log" | sed 's/^/  | /'
  fi
  umount -R "$S" 2>/dev/null || umount -l "$S"
}

inner() {
  local NV NV1 NV1_RPM
  NV=$(dpkg-deb -f "$OUT"/jit-host_*.deb Version)
  NV1=$(dpkg-deb -f "$NEXT_OUT"/jit-host_*.deb Version)
  NV1_RPM=${NV1%-*}
  phase "namespace: isolation"
  ns_isolate "$T" jit-upg-test || { fail "namespace: overlays over /etc /usr /var"; return; }
  pass "namespace: overlays over /etc /usr /var, private /run /home, hostname $(hostname)"
  [ ! -d /run/systemd/system ] && pass "no systemd visible: maintainer scripts cannot start host daemons"
  phase "rpm: dnf install N into an overlay root"
  RPM_ROOT=
  rpm_side "$NV1_RPM"
  phase "apt: install N from the signed repository"
  apt_side "$NV" "$NV1"
  stop_daemons
  if [ -n "$RPM_ROOT" ]; then
    phase "rpm: dnf upgrade to N+1, dnf downgrade"
    rpm_upgrade "$NV1_RPM"
  fi
  phase ""
}

if [ "${1:-}" = --inside ]; then
  T=$2
  inner
  stop_daemons
  echo "inside: $failures failure(s), $skips skip(s)"
  exit $((failures > 0 ? 1 : 0))
fi

# =============================================================================================
# Outside: build N and N+1, the key and the repository holding N; then the namespace.
# =============================================================================================
[ "$(id -u)" = 0 ] || { echo "packaging/upgrade-test.sh must run as root (it uses mount namespaces)"; exit 1; }
T0=$(date +%s)
T=$(mktemp -d /tmp/jit-upgrade.XXXXXX)
chmod 0755 "$T"     # apt's _apt user reads the file:// repository
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/ovl"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

for tool in apt-ftparchive gpg dpkg-deb jq sqlite3; do
  command -v "$tool" >/dev/null || skip "$tool is missing (tests/install-deps.sh)"
done
for s in "$REPO_SH" "$TESTKEY_SH"; do
  [ -f "$s" ] || { fail "$s is missing (packaging/repo.sh and packaging/lib/testkey.sh make the signed repository)"; exit 1; }
done

phase "build N (this tree)"
RELEASE=$TARGET_DIR/release
fresh() { # dir
  local oldest
  oldest=$(ls -tr "$1"/*.deb "$1"/*.rpm 2>/dev/null | head -1)
  [ -n "$oldest" ] || return 1
  [ "$(ls "$1"/*.deb "$1"/*.rpm | wc -l)" -eq 6 ] || return 1
  [ -z "$(find "$RELEASE"/jit-ca "$RELEASE"/jit "$RELEASE"/jit-host "$RELEASE"/libpam_jit.so \
           packaging Cargo.toml Cargo.lock ssh-ca/client/Cargo.toml ssh-ca/server/Cargo.toml pam_jit/host/Cargo.toml \
           -type f -not -name '*test.sh' -not -name next-version.sh -not -name repo.sh -not -name ns.sh \
           -not -name testkey.sh -not -name repro.sh -newer "$oldest" -print -quit 2>/dev/null)" ]
}
if fresh "$OUT"; then
  pass "reusing fresh packages in $OUT"
else
  skip_build=0
  [ -x "$RELEASE/jit-ca" ] && [ -x "$RELEASE/jit-host" ] && [ -x "$RELEASE/jit" ] && skip_build=1
  if JIT_SKIP_BUILD=$skip_build bash packaging/build.sh > "$T/build.log" 2>&1; then
    pass "packaging/build.sh (N)"
  else
    fail "packaging/build.sh (N)"; tail -40 "$T/build.log" | sed 's/^/  | /'; exit 1
  fi
fi

phase "build N+1 (packaging/next-version.sh, packaging/build.sh)"
if [ -n "${JIT_NEXT_PACKAGES_DIR:-}" ]; then
  NEXT_OUT=$JIT_NEXT_PACKAGES_DIR
  NEXT_SRC=$(cd "$NEXT_OUT/../.." && pwd)
  pass "reusing N+1 packages in $NEXT_OUT"
else
  # One level deeper than target/upgrade-next: cargo-generate-rpm resolves an asset's
  # relative source ("../../packaging/examples/...") against the current directory first, and
  # from target/upgrade-next that is this tree's packaging/, which would put release N's files
  # into N+1's RPMs (found by the .rpmnew check).
  NEXT_SRC=$TARGET_DIR/upgrade-next/tree
  NEXT_OUT=$NEXT_SRC/target/packages
  rm -rf "$TARGET_DIR/upgrade-next"; mkdir -p "$TARGET_DIR/upgrade-next"
  if bash packaging/next-version.sh "$ROOT" "$NEXT_SRC" > "$T/next-version.log" 2>&1; then
    sed 's/^/  /' "$T/next-version.log"
    pass "packaging/next-version.sh: release N+1 in $NEXT_SRC"
  else
    fail "packaging/next-version.sh"; sed 's/^/  | /' "$T/next-version.log"; exit 1
  fi
  b0=$(date +%s)
  # Only the packaged programs (not the benchmark and test kit of the workspace), with the
  # workspace's feature resolution like packaging/build.sh (`--workspace --bin ...`: the
  # dependencies compiled for release N are reused), then packaging/build.sh on those
  # binaries (it builds pam_jit.so on its own).
  if (cd "$NEXT_SRC" && unset CARGO_TARGET_DIR JIT_PACKAGES_DIR \
        && . packaging/release-env.sh \
        && jit_release_build --workspace --bin jit-ca --bin jit --bin jit-host \
        && JIT_SKIP_BUILD=1 bash packaging/build.sh) > "$T/build-next.log" 2>&1; then
    pass "packaging/build.sh in the N+1 tree: $(( $(date +%s) - b0 )) s (recompiles the workspace crates)"
  else
    fail "packaging/build.sh (N+1)"; tail -40 "$T/build-next.log" | sed 's/^/  | /'; exit 1
  fi
fi
NV=$(dpkg-deb -f "$OUT"/jit-host_*.deb Version)
NV1=$(dpkg-deb -f "$NEXT_OUT"/jit-host_*.deb Version)
if dpkg --compare-versions "$NV1" gt "$NV"; then
  pass "N = $NV, N+1 = $NV1"
else
  fail "N+1 ($NV1) is not newer than N ($NV)"; exit 1
fi

phase "signed repository holding N"
if FPR=$(bash "$TESTKEY_SH" "$T/key" 2> "$T/testkey.log"); then
  pass "throwaway signing key $FPR"
else
  fail "packaging/lib/testkey.sh"; sed 's/^/  | /' "$T/testkey.log"; exit 1
fi
if bash "$REPO_SH" --out "$T/repo" --key-file "$T/key/key.asc" "$OUT" > "$T/repo1.log" 2>&1; then
  pass "repo.sh: $T/repo (apt and rpm) with N"
else
  fail "repo.sh (N)"; sed 's/^/  | /' "$T/repo1.log"; exit 1
fi
chmod -R a+rX "$T/repo"

phase "namespace"
export OUT NEXT_OUT NEXT_SRC REPO_SH
unshare --mount --propagation private --net --uts --pid --fork --mount-proc \
  bash "$ROOT/packaging/upgrade-test.sh" --inside "$T" 2>&1 | tee "$T/inner.log"
inner_rc=${PIPESTATUS[0]}
failures=$((failures + $(grep -c '^FAIL: ' "$T/inner.log")))
inner_skips=$(grep -c '^SKIP: ' "$T/inner.log")
skips=$((skips + inner_skips))
if [ "${JIT_PACKAGING_STRICT:-1}" = 1 ]; then failures=$((failures + inner_skips)); fi
if [ "$inner_rc" != 0 ] && ! grep -q -e '^FAIL: ' -e '^SKIP: ' "$T/inner.log"; then fail "namespace run exited $inner_rc"; fi
phase ""

echo
echo "TIME: total $(( $(date +%s) - T0 )) s"
echo "packaging/upgrade-test.sh: $failures failure(s), $skips skip(s)"
((failures == 0))

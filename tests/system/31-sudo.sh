#!/usr/bin/env bash
# Real sudo (1.9) AND sudo-rs with pam_jit.so in the account stack, in a private mount+UTS
# namespace: test users, sudoers, /etc/pam.d, /run and the jit state are private copies or
# tmpfs; the host is untouched. The PAM lines are put in place by `jit-host setup --sudo`.
#
# For each sudo: plain sudo, sudo -i (Debian's separate sudo-i service), a NOPASSWD rule,
# a cached timestamp after the grant is removed (must deny), sudo -n, no tty and a tty,
# another user's grant, another host's grant (hostname in --uts), expired, revoked, stale
# revocation list, tampered file, symlinked file, world-writable dir; the user sees the
# one-line reason.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter "$@"
sys_bins
SUDO_RS_SRC=${JIT_SUDO_RS:-/opt/jit-test-tools/bin/sudo}
[ -x "$SUDO_RS_SRC" ] || sys_die "sudo-rs not found at $SUDO_RS_SRC (run tests/install-deps.sh)"
command -v sudo >/dev/null || sys_die "sudo is not installed (run tests/install-deps.sh)"

hostname db-1
W=$(sys_workdir)
# /run privately: sudo's and sudo-rs's timestamp dirs (/run/sudo, /var/run/sudo-rs).
mount -t tmpfs -o mode=0755 jit-run /run
sys_isolate_users "$W"
HASH=$(openssl passwd -6 secret)
sys_add_user --hash "$HASH" alice 2001   # password rule (timestamps)
sys_add_user bob 2002             # NOPASSWD rule
sys_add_user jitw 2003            # grant writer

cp /etc/hosts "$W/hosts"; printf '127.0.1.1 db-1 web-1\n' >> "$W/hosts"; mount --bind "$W/hosts" /etc/hosts
printf 'root ALL=(ALL:ALL) ALL\nalice ALL=(ALL:ALL) ALL\nbob ALL=(ALL:ALL) NOPASSWD: ALL\n' > "$W/sudoers"
chmod 0440 "$W/sudoers"; mount --bind "$W/sudoers" /etc/sudoers
mount -t tmpfs -o mode=0755 jit-sudoers.d /etc/sudoers.d
mkdir -p "$W/pam.d"; cp -a /etc/pam.d/. "$W/pam.d/"; mount --bind "$W/pam.d" /etc/pam.d

mkdir -p "$W/bin"; install -o root -g root -m 4755 "$SUDO_RS_SRC" "$W/bin/sudo-rs"
SUDOS=("/usr/bin/sudo" "$W/bin/sudo-rs")

K=$W/keys; mkdir -p "$K"; host_keygen "$K/grant"; host_keygen "$K/other"
STATE=$W/state
CONF=$W/etc/host.toml
config() { host_config "$CONF" "$STATE" "$K/grant.pub" 'grant_writer = "jitw"' "$@"; }
config
# Setup refuses to enforce on a host that has no revocation list (no `server` here for its
# first sync), then proceeds once one is installed (as `jit-host sync` would).
if out=$("$JIT_HOST" --config "$CONF" setup --sudo --module "$PAM_JIT_SO" 2>&1); then
  t_bad "setup enforced without any revocation list: $out"
else
  grep -q "refusing to set up enforcement: this host has no revocation list" <<<"$out" && ! grep -q pam_jit /etc/pam.d/sudo \
    && t_ok "setup refuses to enforce without a revocation list, PAM untouched" || t_bad "setup without a list: $out"
fi
mkdir -p "$STATE"; chmod 0755 "$STATE"
host_fresh_revocations "$K/grant" "$STATE"
out=$("$JIT_HOST" --config "$CONF" setup --sudo --module "$PAM_JIT_SO" 2>&1) || sys_die "setup failed: $out"
for f in sudo sudo-i; do
  grep -qx "account requisite $PAM_JIT_SO config=$CONF" "/etc/pam.d/$f" || sys_die "setup did not gate /etc/pam.d/$f: $(cat "/etc/pam.d/$f")"
done
[ "$(stat -c %U "$STATE/grants")" = jitw ] || sys_die "setup did not give grants/ to the grant writer"
t_ok "jit-host setup --sudo gated sudo and sudo-i"

NOW=$(date +%s)
G=$W/g; mkdir -p "$G"
host_sign_grant "$K/grant" "$G/bob" g-bob bob dba 'db-*' $((NOW - 60)) $((NOW + 3600)) true 500
host_sign_grant "$K/grant" "$G/alice" g-alice alice dba 'db-*' $((NOW - 60)) $((NOW + 3600)) true 501
host_sign_grant "$K/grant" "$G/bob-expired" g-bob-old bob dba 'db-*' $((NOW - 7200)) $((NOW - 3600))
host_sign_grant "$K/grant" "$G/bob-web" g-bob-web bob web 'web-*' $((NOW - 60)) $((NOW + 3600))
reset_store() { rm -rf "$STATE/grants/"* "$STATE/verified"; host_fresh_revocations "$K/grant" "$STATE"; config; hostname db-1; }

# run USER CMD... -> RC, OUT. No controlling terminal (setsid), stdin /dev/null.
run() {
  local user=$1; shift
  set +e
  OUT=$(sys_timeout setsid -w setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --clear-groups \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ LANG=C "$@" 2>&1 </dev/null)
  RC=$?
  set -e
}
# expect NAME allow|deny NEEDLE -- USER CMD...
# sudo-rs shows PAM conversation messages only on a terminal (or with -S), so its denials
# are checked on a pty (script); C sudo prints them on stderr even without one.
expect() {
  local name=$1 want=$2 needle=$3; shift 3; [ "$1" = -- ] && shift
  if [ "$want" = deny ] && [ "$S" = sudo-rs ]; then
    local user=$1; shift
    run "$user" script -qec "$(printf '%q ' "$@")" /dev/null
    OUT=$(tr -d '\r' <<<"$OUT")
  else
    run "$@"
  fi
  local got=deny; [ $RC = 0 ] && got=allow
  if [ "$got" != "$want" ]; then t_bad "$name: expected $want, got $got (rc $RC): $OUT"; return; fi
  if [ -n "$needle" ] && ! grep -qF -- "$needle" <<<"$OUT"; then t_bad "$name: no \"$needle\" in: $OUT"; return; fi
  if [ "$want" = allow ] && grep -q 'jit:' <<<"$OUT"; then t_bad "$name: printed on success: $OUT"; return; fi
  if [ "$want" = deny ] && [ "$(grep -c 'jit: sudo denied' <<<"$OUT")" != 1 ]; then t_bad "$name: reason not shown exactly once: $OUT"; return; fi
  t_ok "$name"
}

for SUDO in "${SUDOS[@]}"; do
  S=$(basename "$SUDO")
  reset_store
  # NOPASSWD user bob, sudo -n, no tty.
  expect "$S: no grant denies NOPASSWD sudo -n, with the reason" deny "jit: sudo denied for bob on db-1: no grant for this user on this host; run: jit request ROLE" -- bob "$SUDO" -n true
  expect "$S: no grant denies sudo -i (service sudo-i)" deny "jit: sudo denied for bob on db-1" -- bob "$SUDO" -n -i true
  run bob "$SUDO" -n true
  [ $RC != 0 ] && t_ok "$S: no grant denies without a tty too" || t_bad "$S: allowed without a grant (no tty): $OUT"
  host_put_grant "$STATE" bob "$G/bob"
  expect "$S: grant allows NOPASSWD sudo -n (no tty)" allow "" -- bob "$SUDO" -n true
  expect "$S: grant allows sudo -i" allow "" -- bob "$SUDO" -n -i true
  run bob "$SUDO" -n id -u
  [ "$OUT" = 0 ] && t_ok "$S: the command really ran as root" || t_bad "$S: id -u gave $OUT"
  run bob script -qec "$SUDO -n true && echo TTY-OK" /dev/null
  grep -q TTY-OK <<<"$OUT" && t_ok "$S: grant allows sudo on a tty" || t_bad "$S: tty run: $OUT"

  # Another user's grant, another host's grant, expired, revoked, stale, tampered, symlink, modes.
  reset_store
  mkdir -p "$STATE/grants/bob"; install -m 0644 "$G/alice" "$STATE/grants/bob/g-alice.grant"
  expect "$S: another user's grant denies" deny "is for user alice" -- bob "$SUDO" -n true
  reset_store
  host_put_grant "$STATE" bob "$G/bob-web"
  expect "$S: another host's grant denies" deny "grant g-bob-web covers hosts web-*, not this one" -- bob "$SUDO" -n true
  hostname web-1
  expect "$S: the same grant allows on web-1 (UTS hostname)" allow "" -- bob "$SUDO" -n true
  hostname db-1
  reset_store
  host_put_grant "$STATE" bob "$G/bob-expired"
  expect "$S: expired grant denies" deny "grant g-bob-old expired at" -- bob "$SUDO" -n true
  reset_store
  host_put_grant "$STATE" bob "$G/bob"
  host_sign_revocations "$K/grant" "$W/rev" 3 "$NOW" "g-bob" ""
  install -m 0644 "$W/rev" "$STATE/revocations"
  expect "$S: revoked grant denies" deny "grant g-bob was revoked" -- bob "$SUDO" -n true
  host_sign_revocations "$K/grant" "$W/rev" 4 $((NOW - 7200)) "" ""
  install -m 0644 "$W/rev" "$STATE/revocations"
  config "revocation_max_age_secs = 3600"
  expect "$S: stale revocation list denies" deny "older than 1h" -- bob "$SUDO" -n true
  reset_store
  mkdir -p "$STATE/grants/bob"
  sed 's/system test/system TEST/' "$G/bob" > "$STATE/grants/bob/g-bob.grant"; chmod 0644 "$STATE/grants/bob/g-bob.grant"
  expect "$S: tampered grant denies" deny "altered" -- bob "$SUDO" -n true
  reset_store
  mkdir -p "$STATE/grants/bob" "$W/elsewhere"; install -m 0644 "$G/bob" "$W/elsewhere/g-bob.grant"
  ln -s "$W/elsewhere/g-bob.grant" "$STATE/grants/bob/g-bob.grant"
  expect "$S: symlinked grant file denies" deny "symbolic link" -- bob "$SUDO" -n true
  reset_store
  host_put_grant "$STATE" bob "$G/bob"; chmod 0777 "$STATE/grants/bob"
  expect "$S: world-writable grant dir denies" deny "writable by group or others" -- bob "$SUDO" -n true

  # Root's verified-grant records: the grant writer stores a grant (as principals does at
  # login), root's index (gc, like the sync timer) records it, sudo allows through the record.
  reset_store
  mkdir -p "$STATE/grants/bob"; chown jitw "$STATE/grants/bob"; chmod 0755 "$STATE/grants/bob"
  setpriv --reuid=2003 --regid=2003 --clear-groups cp "$G/bob" "$STATE/grants/bob/g-bob.grant"
  out=$("$JIT_HOST" --config "$CONF" gc 2>&1) || t_bad "$S: jit-host gc: $out"
  BOB_SHA=$(sha256sum "$G/bob" | awk '{print $1}')
  [ "$(stat -c %u "$STATE/verified/$BOB_SHA" 2>/dev/null)" = 0 ] \
    && t_ok "$S: root's index recorded the grant the grant writer stored" || t_bad "$S: no record: $out"
  expect "$S: a recorded grant allows" allow "" -- bob "$SUDO" -n true
  # sudo really takes the record for the signature: a root-owned record (written here by the
  # test, as root) makes it accept bytes signed by an untrusted key...
  host_sign_grant "$K/other" "$G/bob-other" g-bob-other bob dba 'db-*' $((NOW - 60)) $((NOW + 3600))
  rm -f "$STATE/grants/bob/g-bob.grant"
  setpriv --reuid=2003 --regid=2003 --clear-groups cp "$G/bob-other" "$STATE/grants/bob/g-bob-other.grant"
  OTHER_SHA=$(sha256sum "$G/bob-other" | awk '{print $1}')
  printf 'jit-verified v1\nkind grant\nsha256 %s\nkeyring %s\nring grant\nsigner %s\n' "$OTHER_SHA" \
    "$(awk '/^keyring /{print $2}' "$STATE/verified/$BOB_SHA")" "$(host_fingerprint "$K/other.pub")" > "$W/rec"
  expect "$S: without a record the untrusted grant denies" deny "not a trusted key" -- bob "$SUDO" -n true
  install -m 0644 -o root "$W/rec" "$STATE/verified/$OTHER_SHA"
  expect "$S: sudo uses root's record instead of the signature check" allow "" -- bob "$SUDO" -n true
  # ...but never a record the grant writer wrote: its forged grant stays denied.
  chown jitw "$STATE/verified/$OTHER_SHA"
  expect "$S: the grant writer's forged grant with its own record denies" deny "not a trusted key" -- bob "$SUDO" -n true
  rm -f "$STATE/verified/$OTHER_SHA"

  # Password rule: a cached timestamp does not outlive the grant (account runs every time).
  for keep in yes no; do
    reset_store
    host_put_grant "$STATE" alice "$G/alice"
    rm -f "$W/go"; mkfifo -m 0666 "$W/go"; : > "$W/ts.out"; chmod 0666 "$W/ts.out"
    SYS_PAM_TIMEOUT=120 sys_timeout setsid -w setpriv --reuid=2001 --regid=2001 --clear-groups env -i PATH=/usr/bin:/bin HOME=/ LANG=C \
      script -qec "echo secret | $SUDO -S -p '' true && echo FIRST-OK; read x < $W/go; $SUDO -n true; echo SECOND-RC=\$?" /dev/null \
      > "$W/ts.out" 2>&1 </dev/null &
    pid=$!
    for i in $(seq 100); do grep -q -e FIRST-OK -e SECOND-RC "$W/ts.out" && break; sleep 0.1; done
    [ "$keep" = no ] && rm -f "$STATE/grants/alice/g-alice.grant"
    echo go > "$W/go"
    wait "$pid" || true
    out=$(tr -d '\r' < "$W/ts.out")
    if ! grep -q FIRST-OK <<<"$out"; then t_bad "$S: password sudo with a grant failed: $out"
    elif [ "$keep" = yes ]; then
      grep -q 'SECOND-RC=0' <<<"$out" && t_ok "$S: cached timestamp works while the grant lasts" || t_bad "$S: timestamp not cached: $out"
    else
      if grep -q 'SECOND-RC=0' <<<"$out"; then t_bad "$S: cached timestamp outlived the grant: $out"
      elif grep -q 'jit: sudo denied for alice on db-1: no grant' <<<"$out"; then t_ok "$S: cached timestamp denied after the grant was removed"
      else t_bad "$S: unexpected: $out"; fi
    fi
  done
done

t_summary

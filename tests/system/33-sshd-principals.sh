#!/usr/bin/env bash
# A host prepared with `jit-host setup --sudo --sshd` (private copies of /etc/ssh, /etc/pam.d,
# users and sudoers; private network), real sshd whose AuthorizedPrincipalsCommand is
# `jit-host principals`, certificates made by stock `ssh-keygen -s` carrying a grant in the
# `jit-grant@jit` extension. Logging in with plain ssh stores the grant; sudo works inside
# the session until the grant ends and not a second longer. Hostile certificates are refused
# and store nothing.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter --net "$@"
sys_bins
hostname db-1

W=$(sys_workdir)
sys_isolate_users "$W"
sys_add_user jitw 2003
sys_add_user bob 2002
# alice: a login shell, a home, and a shadow field that is not locked (sshd runs UsePAM=no).
echo "alice:x:2001:2001:jit test user:/home/alice:/bin/bash" >> /etc/passwd
echo "alice:x:2001:" >> /etc/group
echo "alice:jit-test-no-password:19000:0:99999:7:::" >> /etc/shadow
mkdir -p /home/alice; chown 2001:2001 /home/alice; chmod 0700 /home/alice

cp /etc/hosts "$W/hosts"; printf '127.0.1.1 db-1\n' >> "$W/hosts"; mount --bind "$W/hosts" /etc/hosts
printf 'root ALL=(ALL:ALL) ALL\nalice ALL=(ALL:ALL) NOPASSWD: ALL\n' > "$W/sudoers"
chmod 0440 "$W/sudoers"; mount --bind "$W/sudoers" /etc/sudoers
mount -t tmpfs -o mode=0755 jit-sudoers.d /etc/sudoers.d
mkdir -p "$W/pam.d" "$W/ssh"
cp -a /etc/pam.d/. "$W/pam.d/"; mount --bind "$W/pam.d" /etc/pam.d
cp -a /etc/ssh/. "$W/ssh/"; mount --bind "$W/ssh" /etc/ssh
for k in /etc/ssh/ssh_host_*_key; do [ -e "$k" ] && chmod 0600 "$k"; done
[ -e /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key

K=$W/keys; mkdir -p "$K"
host_keygen "$K/userca"; host_keygen "$K/grant"; host_keygen "$K/otherca"
host_keygen "$K/alice"; chown 2001 "$K/alice" "$K/alice.pub"
STATE=$W/state
CONF=$W/etc/host.toml
host_config "$CONF" "$STATE" "$K/grant.pub" 'grant_writer = "jitw"' 'clock_skew_secs = 0' \
  "user_ca_keys = [\"$(cat "$K/userca.pub")\"]"
mkdir -p "$STATE"; chmod 0755 "$STATE"
host_fresh_revocations "$K/grant" "$STATE"   # as the first sync would (no CA in this test)
out=$("$JIT_HOST" --config "$CONF" setup --sudo --sshd --module "$PAM_JIT_SO" 2>&1) || sys_die "setup: $out"
t_ok "jit-host setup --sudo --sshd"

SSHD_LOG=$W/sshd.log
/usr/sbin/sshd -t -o UsePAM=no || sys_die "sshd -t failed"
/usr/sbin/sshd -D -e -o UsePAM=no -o PidFile=none -o LogLevel=VERBOSE -o ListenAddress=127.0.0.1 2>>"$SSHD_LOG" &
SSHD_PID=$!
trap 'kill $SSHD_PID 2>/dev/null || true' EXIT
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null && break; sleep 0.1; done

NOW=$(date +%s)
# cert NAME SIGNER PRINCIPALS SERIAL [GRANT_FILE]
cert() {
  local name=$1 signer=$2 principals=$3 serial=$4 grant=${5:-}
  cp "$K/alice.pub" "$W/$name.pub"
  local ext=()
  if [ -n "$grant" ]; then
    local doc; doc=$(cat "$grant"; echo x); doc=${doc%x}   # keep the final newline
    ext=(-O "extension:jit-grant@jit=$doc")
  fi
  ssh-keygen -q -s "$signer" -I "jit:r-$serial:alice" -n "$principals" -z "$serial" -V -1m:+10m "${ext[@]}" "$W/$name.pub"
  cp "$W/$name-cert.pub" "$K/alice-cert.pub"; chown 2001 "$K/alice-cert.pub"
}
# login CMD -> RC, OUT (as alice, with her key + current certificate)
login() {
  set +e
  OUT=$(sys_timeout setpriv --reuid=2001 --regid=2001 --clear-groups env -i HOME=/home/alice PATH=/usr/bin:/bin \
    ssh -F /dev/null -i "$K/alice" -o CertificateFile="$K/alice-cert.pub" -o BatchMode=yes -o IdentitiesOnly=yes \
    -o IdentityAgent=none -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o ConnectTimeout=10 alice@127.0.0.1 "$@" 2>&1)
  RC=$?
  set -e
}

# 1. A certificate with a grant: login stores it, sudo works inside the session.
host_sign_grant "$K/grant" "$W/g1" g-1 alice dba 'db-*' $((NOW - 60)) $((NOW + 600)) true 101
cert c1 "$K/userca" alice 101 "$W/g1"
login 'sudo -n id -u'
if [ $RC = 0 ] && [ "$(tail -1 <<<"$OUT")" = 0 ]; then t_ok "ssh login with the certificate, then sudo -n in the session runs as root"
else t_bad "login/sudo: rc $RC: $OUT $(tail -5 "$SSHD_LOG")"; fi
if cmp -s "$STATE/grants/alice/g-1.grant" "$W/g1" && [ "$(stat -c %U "$STATE/grants/alice/g-1.grant")" = jitw ]; then
  t_ok "the principals hook (as jitw) stored the grant atomically in grants/alice"
else t_bad "grant not stored: $(ls -l "$STATE/grants/alice" 2>&1)"; fi
ls -A "$STATE/grants/alice" | grep -q '^\.' && t_bad "temporary files left behind" || t_ok "no temporary files left"

# 2. A certificate whose grant does not allow sudo (a role without sudo): login works, sudo
#    is denied with the reason. (Before issue 11 this case was a certificate with no grant at
#    all; such a certificate is now refused at login, see 3.)
rm -rf "$STATE/grants/alice"
host_sign_grant "$K/grant" "$W/g2" g-2 alice dbread 'db-*' $((NOW - 60)) $((NOW + 600)) false 102
cert c2 "$K/userca" alice 102 "$W/g2"
login 'sudo -n true'
if [ $RC != 0 ] && grep -q "jit: sudo denied for alice on db-1: grant g-2 (role dbread) does not allow sudo" <<<"$OUT"; then t_ok "grant without sudo: login works, sudo denied with the one-line reason"
else t_bad "no-sudo case: rc $RC: $OUT"; fi
rm -rf "$STATE/grants/alice"

# 3. Hostile or wrong certificates: login refused, nothing stored.
refused() { # NAME
  login true
  if [ $RC != 0 ] && [ ! -e "$STATE/grants/alice" ]; then t_ok "$1: login refused, nothing stored"
  else t_bad "$1: rc $RC, store: $(ls -R "$STATE/grants" 2>&1)"; fi
}
cert c3 "$K/otherca" alice 103 "$W/g1"; refused "certificate from another CA"
cert c3b "$K/userca" alice 109; refused "certificate of the user CA that carries no grant (no scope)"
host_sign_grant "$K/grant" "$W/g10" g-10 alice web 'web-*' $((NOW - 60)) $((NOW + 600)) true 110
cert c10 "$K/userca" alice 110 "$W/g10"; refused "certificate whose grant covers web-*, not db-1"
cert c4 "$K/userca" bob 104 "$W/g1"; refused "certificate for another principal"
sed 's/system test/system TEST/' "$W/g1" > "$W/g1-tampered"
cert c5 "$K/userca" alice 105 "$W/g1-tampered"; refused "certificate carrying a tampered grant"
cert c6 "$K/userca" alice 106 "$W/g1"; refused "grant naming another certificate serial"
host_sign_grant "$K/grant" "$W/g7" g-7 alice dba 'db-*' $((NOW - 60)) $((NOW + 600)) true 107
host_sign_revocations "$K/grant" "$W/rev" 1 "$NOW" "" "107"
install -m 0644 "$W/rev" "$STATE/revocations"
cert c7 "$K/userca" alice 107 "$W/g7"; refused "certificate whose serial is in the signed revocation list"
host_sign_grant "$K/grant" "$W/g11" g-11 alice dba 'db-*' $((NOW - 60)) $((NOW + 600)) true 111
host_sign_revocations "$K/grant" "$W/rev" 2 "$NOW" "g-11" ""
install -m 0644 "$W/rev" "$STATE/revocations"
cert c11 "$K/userca" alice 111 "$W/g11"; refused "certificate whose grant id is in the signed revocation list"
rm -f "$STATE/revocations"
cert c7b "$K/userca" alice 108; refused "any certificate while the host has no revocation list (never synced)"
host_sign_revocations "$K/grant" "$W/rev" 2 $((NOW - 13 * 3600)) "" ""
install -m 0644 "$W/rev" "$STATE/revocations"
cert c7c "$K/userca" alice 109; refused "any certificate while the revocation list is stale (13 h, bound 12 h)"
host_fresh_revocations "$K/grant" "$STATE" 3

# 4. Not a second longer: a grant that ends during the session.
END=$(( $(date +%s) + 5 ))
host_sign_grant "$K/grant" "$W/g8" g-8 alice dba 'db-*' $((NOW - 60)) "$END" true 108
cert c8 "$K/userca" alice 108 "$W/g8"
login "sudo -n true && echo FIRST-OK; while [ \$(date +%s) -lt $END ]; do sleep 0.2; done; sudo -n true; echo SECOND-RC=\$?"
if grep -q FIRST-OK <<<"$OUT" && grep -q 'SECOND-RC=1' <<<"$OUT" && grep -q "grant g-8 expired at" <<<"$OUT"; then
  t_ok "sudo works until the grant ends, then is denied in the same session"
else t_bad "expiry in session: $OUT"; fi

t_summary

#!/usr/bin/env bash
# The whole product on real programs, in private mount/UTS/net/PID namespaces:
#   jit-ca (policy with a sudo role) -> `jit request` / `jit approve` / `jit login`
#   -> plain `ssh` into a real sshd prepared by `jit-host setup --sudo --sshd`, whose
#      AuthorizedPrincipalsCommand (`jit-host principals`) stores the grant from the certificate
#   -> `sudo -n true` inside the session succeeds (C sudo, pam_jit.so in the account stack)
#   -> a short grant: denied in the same session once it ends
#   -> `jit revoke` + `jit-host sync`: denied in the still-open session, new logins refused
#   -> sync: ETags (second run fetches nothing), a lower revocation sequence is refused,
#      a full disk leaves the installed files intact.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter --net "$@"
sys_bins
hostname db-1

W=$(sys_workdir)
sys_isolate_users "$W"
sys_add_user jitw 2003
for u in alice:2001 bob:2002; do
  n=${u%:*} id=${u#*:}
  echo "$n:x:$id:$id:jit test user:/home/$n:/bin/bash" >> /etc/passwd
  echo "$n:x:$id:" >> /etc/group
  echo "$n:jit-test-no-password:19000:0:99999:7:::" >> /etc/shadow
  install -d -o "$id" -g "$id" -m 0700 "/home/$n" "/home/$n/.ssh" "/home/$n/.config" "/home/$n/.config/jit"
done
as() { local u=$1; shift; setpriv --reuid="$(id -u "$u")" --regid="$(id -g "$u")" --clear-groups \
  env -i HOME="/home/$u" USER="$u" PATH=/usr/bin:/bin "$@"; }

cp /etc/hosts "$W/hosts"; printf '127.0.1.1 db-1\n' >> "$W/hosts"; mount --bind "$W/hosts" /etc/hosts
printf 'root ALL=(ALL:ALL) ALL\nalice ALL=(ALL:ALL) NOPASSWD: ALL\n' > "$W/sudoers"
chmod 0440 "$W/sudoers"; mount --bind "$W/sudoers" /etc/sudoers
mount -t tmpfs -o mode=0755 jit-sudoers.d /etc/sudoers.d
mkdir -p "$W/pam.d" "$W/ssh"
cp -a /etc/pam.d/. "$W/pam.d/"; mount --bind "$W/pam.d" /etc/pam.d
cp -a /etc/ssh/. "$W/ssh/"; mount --bind "$W/ssh" /etc/ssh
for k in /etc/ssh/ssh_host_*_key; do [ -e "$k" ] && chmod 0600 "$k"; done
[ -e /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key

# 1. The CA.
CA=$W/ca; CA_PORT=18443; URL=http://127.0.0.1:$CA_PORT
"$JIT_CA" init --dir "$CA" >/dev/null
cat > "$CA/policy.toml" <<'TOML'
[roles.dba]
principals = []
hosts = ["db-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
approvals = 1
require_reason = true
extensions = ["permit-pty"]
TOML
"$JIT_CA" policy check --dir "$CA" >/dev/null || sys_die "policy check failed"
for u in alice bob; do as "$u" ssh-keygen -q -t ed25519 -N '' -C "$u" -f "/home/$u/.ssh/id_ed25519"; done
"$JIT_CA" user add alice --key /home/alice/.ssh/id_ed25519.pub --group dev --dir "$CA" >/dev/null
"$JIT_CA" user add bob --key /home/bob/.ssh/id_ed25519.pub --group dba --dir "$CA" >/dev/null
"$JIT_CA" serve --dir "$CA" --listen "127.0.0.1:$CA_PORT" >"$W/ca.log" 2>&1 &
CA_PID=$!
SSHD_PID=
cleanup() { for p in $SSHD_PID $CA_PID; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$CA_PORT) 2>/dev/null && break; sleep 0.1; done
for u in alice bob; do
  echo "server = \"$URL\"" > "/home/$u/.config/jit/config.toml"; chown "$u" "/home/$u/.config/jit/config.toml"
done

# 2. The host: host.toml from the CA, then jit-host setup.
STATE=$W/state
CONF=$W/etc/host.toml; mkdir -p "$W/etc"
"$JIT_CA" host-config --dir "$CA" \
  | sed -e "s|^server = .*|server = \"$URL\"|" -e "s|^state_dir = .*|state_dir = \"$STATE\"|" \
        -e 's|^grant_writer = .*|grant_writer = "jitw"|' -e 's|^clock_skew_secs = .*|clock_skew_secs = 0|' > "$CONF"
chmod 0644 "$CONF"
"$JIT_HOST" --config "$CONF" check alice >/dev/null 2>&1 && t_bad "check allowed before any grant" || true
out=$("$JIT_HOST" --config "$CONF" setup --sudo --sshd --module "$PAM_JIT_SO" 2>&1) && t_ok "host.toml from jit-ca host-config accepted; jit-host setup done" || sys_die "setup: $out"
/usr/sbin/sshd -D -e -o UsePAM=no -o PidFile=none -o LogLevel=VERBOSE -o ListenAddress=127.0.0.1 2>>"$W/sshd.log" &
SSHD_PID=$!
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null && break; sleep 0.1; done

jit_alice() { as alice "$JIT" "$@"; }
jit_bob() { as bob "$JIT" "$@"; }
ssh_alice() { # CMD -> RC, OUT
  set +e
  OUT=$(as alice timeout --kill-after=5 "$SYS_PAM_TIMEOUT" ssh -F /dev/null -i /home/alice/.ssh/id_ed25519 -o BatchMode=yes -o IdentitiesOnly=yes \
    -o IdentityAgent=none -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o ConnectTimeout=10 alice@127.0.0.1 "$@" 2>&1)
  RC=$?
  set -e
}
grant_request() { # DURATION -> ID (requested, approved, certificate installed)
  local id
  id=$(jit_alice request dba --duration "$1" --reason "e2e test" --no-wait --json | jq -r .id)
  [ -n "$id" ] && [ "$id" != null ] || sys_die "request failed"
  [ "$(jit_bob approve "$id" --json | jq -r .state)" = approved ] || sys_die "approve failed"
  jit_alice login "$id" >/dev/null 2>&1 || sys_die "jit login failed"
  echo "$id"
}

# 3. Request, approve, login, ssh, sudo.
ssh_alice true
[ $RC != 0 ] && t_ok "no certificate: ssh refused" || t_bad "ssh accepted without a certificate"
ID=$(grant_request 30m)
GID=$(jit_alice show "$ID" --json | jq -r .grant_id)
ssh_alice 'sudo -n id -u'
if [ $RC = 0 ] && [ "$(tail -1 <<<"$OUT")" = 0 ]; then t_ok "approved request: plain ssh, then sudo -n in the session runs as root"
else t_bad "ssh+sudo: rc $RC: $OUT $(tail -5 "$W/sshd.log")"; fi
[ -f "$STATE/grants/alice/$GID.grant" ] && t_ok "the grant $GID from the certificate is in the store" || t_bad "grant $GID not stored: $(ls -R "$STATE/grants")"
"$JIT_HOST" --config "$CONF" check alice >/dev/null && t_ok "jit-host check alice: allowed" || t_bad "check denies"
# Done with it: revoke, so that `sync` below does not bring it back.
jit_alice revoke "$ID" --reason "e2e step done" >/dev/null

# 4. A short grant ends during the session: denied, not a second later.
rm -rf "$STATE/grants/alice"
ID2=$(grant_request 20s)
END=$(jit_alice show "$ID2" --json | jq -r .valid_before)
SYS_PAM_TIMEOUT=$((END - $(date +%s) + 60)) ssh_alice "sudo -n true && echo FIRST-OK; while [ \$(date +%s) -lt $END ]; do sleep 0.2; done; sudo -n true; echo SECOND-RC=\$?"
if grep -q FIRST-OK <<<"$OUT" && grep -q 'SECOND-RC=1' <<<"$OUT" && grep -q "jit: sudo denied for alice on db-1: grant .* expired at" <<<"$OUT"; then
  t_ok "20 s grant: sudo works, then is denied in the same session with the reason"
else t_bad "short grant: $OUT"; fi
ssh_alice true
[ $RC != 0 ] && t_ok "after expiry the certificate no longer logs in" || t_bad "expired certificate accepted"

# 5. Revoke + sync: denied in the open session, new logins refused.
rm -rf "$STATE/grants/alice"
ID3=$(grant_request 30m)
rm -f "$W/go"
( SYS_PAM_TIMEOUT=120 ssh_alice "sudo -n true && echo FIRST-OK; while [ ! -e $W/go ]; do sleep 0.2; done; sudo -n true; echo SECOND-RC=\$?"
  printf '%s\n' "$OUT" > "$W/session.out" ) &
SSH_BG=$!
for i in $(seq 100); do [ -n "$(ls "$STATE/grants/alice" 2>/dev/null)" ] && break; sleep 0.1; done
sleep 1
[ "$(jit_alice revoke "$ID3" --reason "e2e done" --json | jq -r .state)" = revoked ] && t_ok "jit revoke" || t_bad "revoke failed"
out=$("$JIT_HOST" --config "$CONF" sync 2>&1) && t_ok "jit-host sync: $out" || t_bad "sync failed: $out"
touch "$W/go"
wait "$SSH_BG" || true
out=$(cat "$W/session.out")
if grep -q FIRST-OK <<<"$out" && grep -q 'SECOND-RC=1' <<<"$out" && grep -q "jit: sudo denied for alice on db-1: grant .* was revoked" <<<"$out"; then
  t_ok "revoke + sync: sudo denied in the session that was already open, with the reason"
else t_bad "open session after revoke: $out"; fi
ssh_alice true
[ $RC != 0 ] && t_ok "after revoke + sync, the certificate is refused by sshd (KRL)" || t_bad "revoked certificate still logs in"
out=$("$JIT_HOST" --config "$CONF" check alice 2>&1) && t_bad "check allows a revoked grant" \
  || { grep -q "was revoked" <<<"$out" && t_ok "after revoke + sync, sudo is denied: $(grep reason <<<"$out" | head -1)" || t_bad "check: $out"; }

# 6. sync: ETags, sequence guard, full disk.
out=$("$JIT_HOST" --config "$CONF" sync 2>&1) && grep -q "up to date" <<<"$out" && t_ok "second sync: up to date (304s)" || t_bad "second sync: $out"
SEQ=$(sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$STATE/revocations" | jq .sequence)
cp "$STATE/revocations" "$W/ca-rev"
cp "$CA/keys/grant" "$W/cagrant"; ssh-keygen -y -f "$W/cagrant" > "$W/cagrant.pub"
host_sign_revocations "$W/cagrant" "$W/rev-high" $((SEQ + 100)) "$(date +%s)" "" ""
install -m 0644 "$W/rev-high" "$STATE/revocations"
rm -f "$STATE/sync-state.json"   # forget ETags: the CA's list (lower sequence) comes back
out=$("$JIT_HOST" --config "$CONF" sync 2>&1) && t_bad "sync installed a lower sequence: $out" \
  || { grep -q "refusing revocation list #$SEQ: #$((SEQ + 100)) was already installed" <<<"$out" && cmp -s "$W/rev-high" "$STATE/revocations" \
       && t_ok "a lower revocation sequence is refused, the installed list kept" || t_bad "sequence guard: $out"; }
cp "$W/ca-rev" "$W/keep"   # the CA's list #SEQ; the CA is about to publish #SEQ+1
rm -f "$STATE/revocations" "$STATE/sync-state.json"
ID4=$(grant_request 30m); jit_alice revoke "$ID4" --reason full >/dev/null   # a new list to install
mkdir -p "$W/small"; cp -a "$STATE/." "$W/small/"; install -m 0644 "$W/keep" "$W/small/revocations"
mount -t tmpfs -o size=64k,mode=0755 jit-small "$STATE"; cp -a "$W/small/." "$STATE/"
dd if=/dev/zero of="$STATE/filler" bs=4k 2>/dev/null || true
out=$("$JIT_HOST" --config "$CONF" sync 2>&1) && t_bad "sync succeeded on a full disk" \
  || { grep -q "No space left on device" <<<"$out" && cmp -s "$W/keep" "$STATE/revocations" && ! ls -A "$STATE" | grep -q '\.tmp\.' \
       && t_ok "full disk: clear error, installed list intact, no temp files: $(head -1 <<<"$out")" || t_bad "full disk: $out"; }
rm -f "$STATE/filler"

t_summary

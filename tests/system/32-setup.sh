#!/usr/bin/env bash
# `jit-host setup --sudo --sshd` on private copies of /etc/pam.d and /etc/ssh (mount
# namespace): dry-run changes nothing, setup gates sudo and sudo-i and writes a drop-in
# that `sshd -t` accepts, a second run changes nothing, a config sshd rejects is never
# applied, and `--undo` leaves both trees byte-identical to the originals, including a
# pre-existing jit.conf that setup had to back up. Setup performs the first sync (from a
# stand-in CA serving a signed revocation list, a KRL and the host's grants) and refuses to
# enforce when no fresh revocation list could be installed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter --net "$@"
sys_bins
hostname db-1

W=$(sys_workdir)
sys_isolate_users "$W"
sys_add_user jitw 2003
mkdir -p "$W/pam.d" "$W/ssh"
cp -a /etc/pam.d/. "$W/pam.d/"; mount --bind "$W/pam.d" /etc/pam.d
cp -a /etc/ssh/. "$W/ssh/"; mount --bind "$W/ssh" /etc/ssh
[ -d /etc/ssh/sshd_config.d ] || sys_die "no /etc/ssh/sshd_config.d"

K=$W/keys; mkdir -p "$K"; host_keygen "$K/grant"; host_keygen "$K/userca"
STATE=$W/state
CONF=$W/etc/host.toml
# A stand-in CA (static files over HTTP): what `jit-host sync` fetches.
FAKE=$W/fake; mkdir -p "$FAKE/v1/hosts/db-1"
host_sign_revocations "$K/grant" "$FAKE/v1/revocations" 5 "$(date +%s)" "" ""
ssh-keygen -q -k -f "$FAKE/v1/krl" -z 7 -s "$K/userca.pub" /dev/null 2>/dev/null || ssh-keygen -q -k -f "$FAKE/v1/krl" -z 7
echo '{"host": "db-1", "grants": []}' > "$FAKE/v1/hosts/db-1/grants"
FPORT=18447
python3 -m http.server "$FPORT" --bind 127.0.0.1 --directory "$FAKE" >/dev/null 2>&1 &
FAKE_PID=$!
trap 'kill $FAKE_PID 2>/dev/null || true' EXIT
for i in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$FPORT/" && break; sleep 0.1; done
conf() { host_config "$CONF" "$STATE" "$K/grant.pub" 'grant_writer = "jitw"' "user_ca_keys = [\"$(cat "$K/userca.pub")\"]" "$@"; }
conf "server = \"http://127.0.0.1:$FPORT\""

snapshot() { # everything about the two trees: names, types, modes, owners, contents
  (cd /etc && find pam.d ssh/sshd_config.d -printf '%p %y %m %U %G %s\n' | sort
   find pam.d ssh/sshd_config.d -type f -print0 | sort -z | xargs -0 sha256sum)
}
ORIG=$(snapshot)

setup() { "$JIT_HOST" --config "$CONF" setup "$@" 2>&1; }

# 1. Dry run: diffs shown, nothing changed.
out=$(setup --sudo --sshd --dry-run --module "$W/pam_jit.so") || t_bad "dry-run failed: $out"
if grep -q "^+account requisite $W/pam_jit.so config=$CONF" <<<"$out" && grep -q '^+AuthorizedPrincipalsCommandUser jitw' <<<"$out" \
   && grep -q "would sync from http://127.0.0.1:$FPORT" <<<"$out"; then
  t_ok "dry-run shows the PAM line and the drop-in as diffs, and the first sync it would run"
else t_bad "dry-run output: $out"; fi
[ "$(snapshot)" = "$ORIG" ] && [ ! -e "$STATE" ] && t_ok "dry-run changed nothing" || t_bad "dry-run changed files"

# 2. Setup.
out=$(setup --sudo --sshd) || t_bad "setup failed: $out"
for f in sudo sudo-i; do
  if awk -v line="account requisite pam_jit.so config=$CONF" '
       $0 == line {found = NR} /^@include common-account/ && !acct {acct = NR}
       END {exit !(found && acct && found < acct)}' "/etc/pam.d/$f"; then
    t_ok "/etc/pam.d/$f: pam_jit line before common-account"
  else t_bad "/etc/pam.d/$f: $(cat "/etc/pam.d/$f")"; fi
done
D=/etc/ssh/sshd_config.d/jit.conf
if grep -qx "TrustedUserCAKeys $STATE/ca.pub" $D && grep -qx "RevokedKeys $STATE/krl" $D \
   && grep -qx "AuthorizedPrincipalsCommand $(readlink -f "$JIT_HOST") --config $CONF principals %u %k" $D \
   && grep -qx "AuthorizedPrincipalsCommandUser jitw" $D; then t_ok "sshd drop-in has the four settings"
else t_bad "drop-in: $(cat $D)"; fi
if /usr/sbin/sshd -t && T=$(/usr/sbin/sshd -T 2>/dev/null) && grep -qi "^authorizedprincipalscommanduser jitw" <<<"$T"; then
  t_ok "sshd -t accepts the result and sshd -T shows it"
else t_bad "sshd rejects the result"; fi
cmp -s "$STATE/ca.pub" "$K/userca.pub" && t_ok "ca.pub written from host.toml" || t_bad "ca.pub: $(cat "$STATE/ca.pub")"
cmp -s "$STATE/revocations" "$FAKE/v1/revocations" && grep -q "revocation list #5 installed" <<<"$out" \
  && t_ok "setup ran the first sync: the CA's revocation list is installed" || t_bad "no first sync: $out"
cmp -s "$STATE/krl" "$FAKE/v1/krl" && ssh-keygen -Q -f "$STATE/krl" "$K/grant.pub" >/dev/null 2>&1 \
  && t_ok "the CA's KRL was installed by the first sync (not replaced by an empty one)" || t_bad "krl: not the CA's"
[ "$(stat -c '%U %a' "$STATE")" = "root 755" ] && [ "$(stat -c '%U %a' "$STATE/grants")" = "jitw 755" ] \
  && t_ok "state dirs: root 0755, grants owned by the grant writer" || t_bad "state dirs: $(stat -c '%n %U %a' "$STATE" "$STATE/grants")"

# 3. Idempotent.
AFTER=$(snapshot)
out=$(setup --sudo --sshd) || t_bad "second setup failed: $out"
[ "$(snapshot)" = "$AFTER" ] && grep -q "nothing to change" <<<"$out" && t_ok "a second setup changes nothing" || t_bad "second setup: $out"

# 4. Undo: byte-identical.
out=$(setup --sudo --sshd --undo) || t_bad "undo failed: $out"
if [ "$(snapshot)" = "$ORIG" ]; then t_ok "--undo restores /etc/pam.d and sshd_config.d byte-identically"
else t_bad "undo left differences: $(diff <(echo "$ORIG") <(snapshot))"; fi

# 5. A configuration sshd rejects is never applied.
printf 'ThisIsNotAnOption yes\n' > /etc/ssh/sshd_config.d/broken.conf
BROKEN=$(snapshot)
if out=$(setup --sshd); then t_bad "setup applied a config sshd -t rejects: $out"
elif grep -q "sshd -t rejected" <<<"$out" && [ "$(snapshot)" = "$BROKEN" ]; then t_ok "sshd -t failure: nothing changed, clear error"
else t_bad "sshd -t failure handling: $out"; fi
rm /etc/ssh/sshd_config.d/broken.conf

# 6. A pre-existing jit.conf (not ours) is backed up and restored.
printf '# hand-made\nLogLevel VERBOSE\n' > $D; chmod 0600 $D
ORIG2=$(snapshot)
out=$(setup --sshd) || t_bad "setup over a hand-made jit.conf failed: $out"
grep -q '^# jit: written by jit-host setup' $D && [ -f $D.jit-orig ] && t_ok "hand-made jit.conf backed up" || t_bad "no backup: $out"
out=$(setup --sshd --undo) || t_bad "undo failed: $out"
[ "$(snapshot)" = "$ORIG2" ] && t_ok "--undo restores the hand-made jit.conf (content and mode)" || t_bad "undo: $(diff <(echo "$ORIG2") <(snapshot))"

# 7. Clear errors.
if out=$(setup 2>&1); then t_bad "setup without flags succeeded: $out"
elif grep -q -- "--sudo" <<<"$out"; then t_ok "setup without flags says what to pass"
else t_bad "setup without flags: no hint to pass --sudo/--sshd: $out"; fi

# 8. No fresh revocation list after the first sync: enforcement is refused, nothing changed.
setup --sudo --sshd --undo >/dev/null
CLEAN=$(snapshot)
rm -f "$STATE/revocations" "$STATE/sync-state.json"
kill $FAKE_PID 2>/dev/null; wait $FAKE_PID 2>/dev/null || true
if out=$(setup --sudo --sshd); then t_bad "setup enforced with the CA down and no revocation list: $out"
elif grep -q "refusing to set up enforcement: this host has no revocation list" <<<"$out" && [ "$(snapshot)" = "$CLEAN" ]; then
  t_ok "CA unreachable and no list: setup refuses to enforce, says why, changes nothing"
else t_bad "setup without a list: $out"; fi
host_sign_revocations "$K/grant" "$W/rev-old" 4 $(( $(date +%s) - 13 * 3600 )) "" ""
install -m 0644 "$W/rev-old" "$STATE/revocations"
if out=$(setup --sudo); then t_bad "setup enforced with a stale list: $out"
else grep -q "stale" <<<"$out" && t_ok "a stale list: setup refuses to enforce" || t_bad "stale: $out"; fi
conf 'mode = "audit"'
out=$(setup --sudo) && grep -q "audit mode allows sudo anyway" <<<"$out" \
  && t_ok "audit mode: setup proceeds with a warning" || t_bad "audit: $out"
setup --sudo --undo >/dev/null
t_summary

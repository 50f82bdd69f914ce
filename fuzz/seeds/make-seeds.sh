#!/usr/bin/env bash
# Regenerates the committed seed corpus in fuzz/corpus/ from common's grant test vectors,
# plus revocation lists signed here with stock `ssh-keygen -Y sign` and the same TEST ONLY
# key (so the seeds are also an interop check: ssh-keygen's signatures must verify).
# Run on purpose only (when the formats change): bash fuzz/seeds/make-seeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
V=../common/tests/vectors
C=corpus
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
install -m 600 "$V/test-grant-key" "$work/key"
fp=$(ssh-keygen -lf "$V/test-grant-key.pub" | awk '{print $2}')

mkdir -p "$C"/{grant_parse_verify,grant_signed_body,revocation_parse,revocation_signed_body,host_match}
for f in "$V"/*.grant; do
  n=$(basename "$f" .grant)
  [ "$n" = oversized ] && continue          # 17 KiB; the size check is a unit test
  cp "$f" "$C/grant_parse_verify/$n"
  # The body (everything before the signature block) with a host-name line in front.
  { printf 'db-1\n'; sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$f"; } > "$C/grant_signed_body/$n"
done

# Revocation lists, in the exact layout RevocationList::sign writes (serde_json pretty).
rl() { # name sequence issued_at grants(json lines) serials(json lines)
  local name=$1 seq=$2 at=$3 grants=$4 serials=$5
  {
    printf '{\n  "version": 1,\n  "sequence": %s,\n  "issued_at": %s,\n' "$seq" "$at"
    printf '  "revoked_grants": %s,\n  "revoked_serials": %s,\n' "$grants" "$serials"
    printf '  "key_id": "%s"\n}\n' "$fp"
  } > "$work/$name"
  cp "$work/$name" "$C/revocation_signed_body/$name"
  ssh-keygen -q -Y sign -f "$work/key" -n jit-revocations@jit "$work/$name" >/dev/null 2>&1
  cat "$work/$name" "$work/$name.sig" > "$C/revocation_parse/$name"
}
rl empty 1 1800000000 '[]' '[]'
rl one-grant 2 1800000000 $'[\n    "g-0001"\n  ]' '[]'
rl grants-and-serials 7 1799990000 $'[\n    "g-0001",\n    "g-0002",\n    "r.x_y-z"\n  ]' $'[\n    7,\n    18446744073709551615\n  ]'
# Not canonical (compact JSON): parses, verifies only if the fuzz invariant is wrong.
printf '{"version":1,"sequence":3,"issued_at":1,"revoked_grants":[],"revoked_serials":[],"key_id":"%s"}\n' "$fp" \
  > "$C/revocation_signed_body/compact"

# Host selectors: SELECTOR\nHOST.
hm() { printf '%s\n%s' "$1" "$2" > "$C/host_match/$3"; }
hm 'db-*' 'db-10' star
hm 'web-[0-9]?' 'web-7a' class
hm 'web-[!0-9]' 'WEB-a' negated
hm '*.prod.example.com' 'db1.prod.example.com' suffix
hm '*a*a*a*b' 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' backtrack
hm '[a-]x' '-x' dash-literal
hm '[]' 'a' empty-class
# host.toml: the shape `jit-ca host-config` writes, plus variants.
mkdir -p "$C"/{host_toml,policy_toml,principals_cert,principals_signed_cert,api_request}
gk=$(cat "$V/test-grant-key.pub")
ssh-keygen -q -t ed25519 -N '' -C ca -f "$work/ca"
ck=$(cat "$work/ca.pub")
cat > "$C/host_toml/full" <<TOML
server = "http://ca.example.com:8443"
mode = "enforce"
services = ["sudo", "sudo-i"]
clock_skew_secs = 60
revocation_max_age_secs = 43200
state_dir = "/var/lib/jit"
grant_writer = "jit"
hostnames = ["db-1.example.com"]
user_ca_keys = ["$ck"]
grant_keys = ["$gk"]
break_glass_keys = []
break_glass_max_window_secs = 86400
TOML
printf 'grant_keys = ["%s"]\n' "$gk" > "$C/host_toml/minimal"
printf 'mode = "audit"\nclock_skew_secs = 3600\nrevocation_max_age_secs = 600\nbreak_glass_keys = ["%s"]\n' "$gk" > "$C/host_toml/audit-break-glass"
printf 'grant_keys = ["%s"]\nsurprise = 1\n' "$gk" > "$C/host_toml/unknown-key"

# policy.toml: every key of a role, an auto-approval rule, a broken role.
cat > "$C/policy_toml/full" <<'TOML'
[roles.db-admin]
principals = ["dbadmin"]
hosts = ["db-*", "backup-[0-9]"]
sudo = true
max_duration = "1h"
requesters = ["group:dev", "alice"]
approvers = ["group:dba"]
approvals = 2
auto_approve = false
require_reason = true
extensions = ["permit-pty"]
critical_options = { "source-address" = "10.0.0.0/8", "force-command" = "/bin/true" }

[roles.quick]
hosts = ["web-*"]
max_duration = "4h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
[[roles.quick.auto_approve_rules]]
name = "oncall"
groups = ["oncall"]
users = ["bob"]
max_duration = "15m"
TOML
printf '[roles.x]\nhosts = []\nmax_duration = "0s"\napprovals = 0\n' > "$C/policy_toml/broken"

# A real user certificate (ssh-keygen -s), as the raw wire blob sshd's %k base64-encodes.
ssh-keygen -q -t ed25519 -N '' -C user -f "$work/user"
ssh-keygen -q -s "$work/ca" -I 'jit:r-1:alice' -n alice,dbadmin -z 7 -V -5m:+1h "$work/user.pub"
awk '{print $2}' "$work/user-cert.pub" | base64 -d > "$C/principals_cert/user-cert"
ssh-keygen -q -s "$work/ca" -h -I host -n db-1 -z 8 "$work/user.pub"
awk '{print $2}' "$work/user-cert.pub" | base64 -d > "$C/principals_cert/host-cert"
{ printf '\0'; awk '{print $2}' "$work/user-cert.pub"; } > "$C/principals_cert/as-text"

# PRINCIPAL\nSERIAL\nFLAGS\nGRANT BODY (the grant vectors' bodies).
for n in valid expired no-sudo unknown-field; do
  { printf 'alice\n7\n0\n'; sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$V/$n.grant"; } > "$C/principals_signed_cert/$n"
done
{ printf 'bob\n7\n0\n'; sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$V/valid.grant"; } > "$C/principals_signed_cert/other-user"
{ printf 'alice\n8\n0\n'; sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' "$V/valid.grant"; } > "$C/principals_signed_cert/serial-mismatch"
printf 'alice\n7\n8\n' > "$C/principals_signed_cert/no-grant"

# OP byte then body: 0 create, 1 deny, 2 revoke, 3 extend, 4 approve, 5 show, 6 list.
uk=$(cat "$work/user.pub")
printf '\0{"role":"db-admin","duration_secs":600,"reason":"INC-1","hosts":["db-1"],"public_key":"%s"}' "$uk" > "$C/api_request/create"
printf '\0{"role":"quick","duration_secs":60,"reason":"","public_key":"%s"}' "$uk" > "$C/api_request/create-auto"
printf '\1{"reason":"no"}' > "$C/api_request/deny"
printf '\2{"reason":"done"}' > "$C/api_request/revoke"
printf '\3{"duration_secs":600}' > "$C/api_request/extend"
printf '\4{}' > "$C/api_request/approve"
printf '\5r-0000' > "$C/api_request/show"
printf '\6filter=pending' > "$C/api_request/list"
echo "seeds written under fuzz/$C/"

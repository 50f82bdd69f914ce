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
echo "seeds written under fuzz/$C/"

#!/usr/bin/env bash
# Root never follows the grant writer's links (issue 11, item 8). The grant writer owns
# <state>/grants/ and may swap grants/<user> between a directory and a symlink at any moment.
# A hostile writer (a real unprivileged process, uid 2003) does exactly that in a tight loop
# while root runs `jit-host install` (which creates grants/<user>, fixes its owner and mode
# and writes the grant) and `jit-host gc` (which removes expired grants) hundreds of times.
# The symlink points at root-owned directories outside the store. Afterwards:
#  - no root-owned directory outside the store changed owner or mode (the old code chowned
#    and chmodded through the symlink: the writer took ownership of a root directory);
#  - nothing was written into them (no grant file or temp file);
#  - nothing was deleted from them (gc removed a root-owned expired grant through the link).
# Private mount + UTS namespace; nothing on the host changes.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_enter "$@"
sys_bins
hostname db-1
ROUNDS=${RACE_ROUNDS:-400}
RACE_GC=${RACE_GC:-1}   # 0: installs only (shows the chown race alone)

W=$(sys_workdir)
sys_isolate_users "$W"
sys_add_user alice 2001
sys_add_user jitw 2003   # the grant writer, hostile here

K=$W/keys; mkdir -p "$K"; host_keygen "$K/grant"
STATE=$W/state; host_state_dir "$STATE"
chown jitw:jitw "$STATE/grants"
CONF=$W/etc/host.toml
host_config "$CONF" "$STATE" "$K/grant.pub" 'grant_writer = "jitw"'
NOW=$(date +%s)
host_sign_grant "$K/grant" "$W/g-live" g-live alice dba 'db-*' $((NOW - 60)) $((NOW + 3600))
host_sign_grant "$K/grant" "$W/g-old" g-old alice dba 'db-*' $((NOW - 7200)) $((NOW - 3600))

# Root-owned directories outside the store, the symlink targets.
T1=$W/root-secret; mkdir -m 0700 "$T1"; echo secret > "$T1/keep"
T2=$W/root-gc; mkdir -m 0755 "$T2"; cp "$W/g-old" "$T2/g-old.grant"; chmod 0644 "$T2/g-old.grant"
snapshot() { # DIR -> owner, mode, sorted listing with owners
  stat -c '%u %g %a' "$1"; (cd "$1" && ls -la --time-style=+ | awk 'NR > 1 {print $1, $3, $NF}' | sort)
}
before1=$(snapshot "$T1"); before2=$(snapshot "$T2")

# The hostile writer: whenever grants/alice is a real directory, empty it, remove it and put a
# symlink to a root directory in its place; a moment later remove the symlink again (so the
# next install creates the directory anew). For gc: keep an expired grant in the real
# directory so gc classifies it, then swap in the link to T2 which has a file of that name.
cat > "$W/writer.pl" <<'PERL'
use strict; use warnings;
my ($d, $t1, $t2, $old) = @ARGV;
my $n = 0;
while (1) {
  $n++;
  my $t = ($n % 2) ? $t1 : $t2;
  if (-d $d && ! -l $d) {
    if (opendir(my $h, $d)) {
      for my $f (readdir $h) { next if $f eq '.' || $f eq '..'; unlink "$d/$f"; }
      closedir $h;
    }
    if (rmdir $d) { symlink $t, $d; }
  } elsif (-l $d) {
    for (1 .. 200) { }   # leave the link in place for a moment
    unlink $d;
    if (mkdir $d, 0755) {
      if (open(my $o, '<', $old)) { local $/; my $b = <$o>; close $o;
        if (open(my $w, '>', "$d/g-old.grant")) { print $w $b; close $w; } }
    }
  } else {
    mkdir $d, 0755;
  }
}
PERL
cp "$W/g-old" "$W/g-old-copy"; chmod 0644 "$W/g-old-copy"
setpriv --reuid=2003 --regid=2003 --clear-groups perl "$W/writer.pl" \
  "$STATE/grants/alice" "$T1" "$T2" "$W/g-old-copy" &
WRITER=$!
trap 'kill $WRITER 2>/dev/null || true' EXIT

installs=0 gcs=0 ok_gcs=0 ok_installs=0
for i in $(seq "$ROUNDS"); do
  if "$JIT_HOST" --config "$CONF" install "$W/g-live" >/dev/null 2>&1; then ok_installs=$((ok_installs + 1)); fi
  installs=$((installs + 1))
  if [ "$RACE_GC" = 1 ] && ((i % 2 == 0)); then
    # gc may refuse a swapped-in link (that is the point); only runs that completed count.
    if "$JIT_HOST" --config "$CONF" gc >/dev/null 2>&1; then ok_gcs=$((ok_gcs + 1)); fi
    gcs=$((gcs + 1))
  fi
  if [ "$(snapshot "$T1")" != "$before1" ] || [ "$(snapshot "$T2")" != "$before2" ]; then
    break
  fi
done
kill $WRITER 2>/dev/null || true; wait $WRITER 2>/dev/null || true
echo "ran $installs installs ($ok_installs succeeded) and $gcs gc runs ($ok_gcs succeeded) against the swapping writer"

after1=$(snapshot "$T1"); after2=$(snapshot "$T2")
if [ "$after1" = "$before1" ]; then
  t_ok "root-owned 0700 directory behind the link: owner, mode and contents unchanged"
else
  t_bad "root directory changed through the writer's link (after $installs installs):"$'\n'"before: $before1"$'\n'"after:  $after1"
fi
if [ "$after2" = "$before2" ]; then
  t_ok "root-owned directory behind the link: nothing written, nothing removed by gc"
else
  t_bad "second root directory changed through the writer's link (after $installs installs, $gcs gc):"$'\n'"before: $before2"$'\n'"after:  $after2"
fi
[ "$ok_installs" -gt 0 ] && t_ok "install still works between the writer's swaps ($ok_installs/$installs)" \
  || t_bad "no install succeeded at all"
if [ "$RACE_GC" = 1 ]; then
  [ "$ok_gcs" -gt 0 ] && t_ok "gc ran to completion between the writer's swaps ($ok_gcs/$gcs)" \
    || t_bad "no gc run completed ($gcs tried): the gc half of the race was never exercised"
fi

# Without the hostile writer, install creates the user's directory for the writer, 0755.
rm -rf "$STATE/grants/alice"
"$JIT_HOST" --config "$CONF" install "$W/g-live" >/dev/null
[ "$(stat -c '%u %a' "$STATE/grants/alice")" = "2003 755" ] \
  && t_ok "install creates grants/<user> owned by the grant writer, 0755" \
  || t_bad "grants/alice: $(stat -c '%u %a' "$STATE/grants/alice")"
# A symlinked user directory is refused, never followed.
rm -rf "$STATE/grants/alice"; ln -s "$T1" "$STATE/grants/alice"
if out=$("$JIT_HOST" --config "$CONF" install "$W/g-live" 2>&1); then
  t_bad "install through a symlinked user directory succeeded: $out"
else
  grep -q "symbolic link\|symlink" <<<"$out" && t_ok "install refuses a symlinked user directory: $out" \
    || t_bad "install failed without naming the link: $out"
fi
rm -f "$STATE/grants/alice"
t_summary

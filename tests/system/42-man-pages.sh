#!/usr/bin/env bash
# The man pages: what the packages ship is complete, renders cleanly, and documents every key.
#
#   - the pages: each program's `generate-docs` (jit(1), jit-ca(1), jit-host(8) and one per
#     subcommand) and the hand-written ones in packaging/man/ (pam_jit(8), host.toml(5),
#     policy.toml(5)), which packaging/build.sh installs in the .deb and .rpm
#   - every page named anywhere (SUBCOMMANDS, SEE ALSO, text) exists among them, or is one
#     of the system's own pages listed in EXTERNAL below (a page that does not exist, such as
#     clap's jit-help(1), fails)
#   - every page has a SEE ALSO section, and the three programs' pages and the three files'
#     pages an EXAMPLES (or clap's EXTRA examples) section
#   - `groff -man -ww` renders each page with no warning, and `man -l` renders it
#   - every key the parsers accept appears in its page, read from the parsers' raw structs
#     (RawConfig in pam_jit/core/src/config.rs; every `struct Raw*` in any file under
#     ssh-ca/server/src/policy/ and webhook/), so a key added to the code without its documentation fails
#   - the policy.toml(5) examples pass `jit-ca policy check`
# Changes nothing on the machine (no root needed; run by tests/run.sh with the others).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/sys.sh"
sys_build
BIN=$JIT_BIN_DIR
MAN_SRC=$SYS_ROOT/packaging/man
# Pages of other packages that ours name (OpenSSH, sudo, PAM).
EXTERNAL="ssh.1 ssh-agent.1 ssh-keygen.1 sshd_config.5 sudo.8 pam.7 pam.d.5 pam_syslog.3"

T=$(mktemp -d /tmp/jit-man.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/pages"
for b in jit jit-ca jit-host; do
  "$BIN/$b" generate-docs --out "$T/$b" >/dev/null || sys_die "$b generate-docs failed"
  cp "$T/$b"/man/* "$T/pages/"
done
for p in pam_jit.8 host.toml.5 policy.toml.5; do
  [ -f "$MAN_SRC/$p" ] && cp "$MAN_SRC/$p" "$T/pages/" || t_bad "packaging/man/$p is missing"
done
n=$(ls "$T/pages" | wc -l)
t_ok "$n pages: generate-docs of jit, jit-ca, jit-host and packaging/man/"

# Every page named exists (roff: `name(N)`, `\fBname\fR(N)`, `.BR name (N)`).
refs() { # PAGE: the page names it mentions, as name.N
  sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/^\.[A-Z][A-Z]* //' "$1" \
    | grep -oE '[a-z][a-z0-9_.-]*[a-z0-9] ?\([1-8]\)' | sed -E 's/ ?\(([1-8])\)$/.\1/' | sort -u
}
missing=0
for page in "$T"/pages/*; do
  for r in $(refs "$page"); do
    [ "$r" = "$(basename "$page")" ] && continue
    [ -e "$T/pages/$r" ] && continue
    case " $EXTERNAL " in *" $r "*) continue ;; esac
    t_bad "$(basename "$page") names ${r%.*}(${r##*.}), which no package ships"; missing=1
  done
done
((missing)) || t_ok "every page named in any page (SUBCOMMANDS, SEE ALSO, text) exists or is the system's ($EXTERNAL)"

nosee=0
for page in "$T"/pages/*; do
  grep -qE '^\.SH "?SEE ALSO"?$' "$page" || { t_bad "$(basename "$page") has no SEE ALSO section"; nosee=1; }
done
((nosee)) || t_ok "every page has a SEE ALSO section"
for p in jit.1 jit-ca.1 jit-host.8 pam_jit.8 host.toml.5 policy.toml.5; do
  if grep -q '^\.SH EXAMPLES' "$T/pages/$p" || grep -A1 '^\.SH EXTRA' "$T/pages/$p" | grep -qi '^examples\?:'; then
    t_ok "$p has examples"
  else
    t_bad "$p has no EXAMPLES section"
  fi
done

# Rendering: no groff warning at all (-ww), and man-db renders it.
bad=0
for page in "$T"/pages/*; do
  warn=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || true
  if [ -n "$warn" ]; then t_bad "groff warns on $(basename "$page"): $warn"; bad=1; fi
  [ -n "$(MANWIDTH=80 MAN_KEEP_FORMATTING=0 man -l "$page" 2>/dev/null)" ] || { t_bad "man -l $(basename "$page") rendered nothing"; bad=1; }
done
((bad)) || t_ok "groff -man -ww: no warnings on any of the $n pages; man -l renders each"

# Key coverage, from the parsers' raw structs.
raw_keys() { # FILE...: the field names (or serde renames) of every `struct Raw*`
  awk '
    /^[[:space:]]*(pub(\([a-z]+\))? )?struct Raw[A-Za-z]* \{/ { inside = 1; rename = ""; next }
    inside && /^[[:space:]]*\}/ { inside = 0; next }
    inside && /#\[serde\(.*rename = "/ { r = $0; sub(/.*rename = "/, "", r); sub(/".*/, "", r); rename = r; next }
    inside && /^[[:space:]]*(pub(\([a-z]+\))? )?[a-z_][a-z0-9_]*:/ {
      k = $0; sub(/^[[:space:]]*(pub(\([a-z]+\))? )?/, "", k); sub(/:.*/, "", k)
      print (rename != "" ? rename : k); rename = ""
    }' "$@" | sort -u
}
check_keys() { # PAGE SOURCE...: each key is a bold term of the page (`.B key`, `.TP` item)
  local page=$1 keys k src miss=()
  shift
  keys=$(raw_keys "$@")
  [ -n "$keys" ] || { t_bad "no keys found in $* (the raw structs moved?)"; return; }
  src=$(sed 's/\\-/-/g' "$T/pages/$page")
  for k in $keys; do
    grep -qE "^\.B[RI]? \[{0,2}$k([] .]|\$)" <<<"$src" || miss+=("$k")
  done
  if ((${#miss[@]})); then
    t_bad "$page does not document: ${miss[*]} (keys of the raw structs in $*)"
  else
    t_ok "$page documents all $(wc -w <<<"$keys") keys of the raw structs in $(for f in "$@"; do printf '%s ' "${f#"$SYS_ROOT"/}"; done)"
  fi
}
check_keys host.toml.5 "$SYS_ROOT/pam_jit/core/src/config.rs"
mapfile -t POLICY_SRC < <(find "$SYS_ROOT/ssh-ca/server/src/policy" "$SYS_ROOT/ssh-ca/server/src/webhook" -name '*.rs' | sort)
check_keys policy.toml.5 "${POLICY_SRC[@]}"
grep -q 'config=' "$T/pages/pam_jit.8" && t_ok "pam_jit.8 documents the module argument config=PATH" \
  || t_bad "pam_jit.8 does not document config=PATH"

# The policy.toml(5) examples are valid policies.
awk '/^\.SH EXAMPLES/ { on = 1; next } /^\.SH / { on = 0 } on && /^\.EX/ { ex = 1; n++; next } on && /^\.EE/ { ex = 0; next }
     ex { print > (dir "/example-" n ".roff") }' dir="$T" "$T/pages/policy.toml.5"
"$BIN/jit-ca" init --dir "$T/ca" >/dev/null
checked=0
for ex in "$T"/example-*.roff; do
  sed -e 's/\\-/-/g' -e 's/\\(dq/"/g' -e "s/\\\\(aq/'/g" -e 's/\\e/\\/g' "$ex" > "$ex.toml"
  grep -q '^\[roles\.' "$ex.toml" || continue
  cp "$ex.toml" "$T/ca/policy.toml"
  if out=$("$BIN/jit-ca" policy check --dir "$T/ca" 2>&1); then
    checked=$((checked + 1))
  else
    t_bad "policy.toml(5) example $(basename "$ex" .roff) is refused: $out"
  fi
done
[ "$checked" -ge 2 ] && t_ok "the $checked policy examples of policy.toml(5) pass jit-ca policy check" \
  || t_bad "only $checked policy examples checked"

t_summary

#!/usr/bin/env bash
# Checks the architecture invariants that a compiler cannot: what pam_jit.so exports and
# links, and where unsafe code may live. See ARCHITECTURE.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${JIT_BIN_DIR:-target/release}
fail=0
bad() { echo "FAIL: $*"; fail=1; }

[ -f "$BIN/libpam_jit.so" ] || cargo build --release -p pam_jit --locked
so=$BIN/libpam_jit.so

# 1. Exactly the six PAM service functions are exported.
exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort | tr '\n' ' ')
want="pam_sm_acct_mgmt pam_sm_authenticate pam_sm_chauthtok pam_sm_close_session pam_sm_open_session pam_sm_setcred "
[ "$exported" = "$want" ] || bad "pam_jit.so exports: $exported"

# 2. No async runtime, HTTP, SQL or threading crate in the module's dependency tree.
deps=$(cargo tree -p pam_jit -e normal --prefix none --locked 2>/dev/null | awk '{print $1}' | sort -u)
for forbidden in tokio hyper axum ureq reqwest rusqlite libsqlite3-sys rayon crossbeam mio rustls; do
  if grep -qx "$forbidden" <<<"$deps"; then bad "pam_jit depends on $forbidden"; fi
done

# 3. The module links libpam and libc only (plus the loader's own libraries).
needed=$(readelf -d "$so" | awk '/NEEDED/ {gsub(/[\[\]]/, "", $5); print $5}' | sort | tr '\n' ' ')
for lib in $needed; do
  case $lib in libpam.so.*|libc.so.*|libgcc_s.so.*|libm.so.*|ld-linux*) ;; *) bad "pam_jit.so links $lib";; esac
done

# 4. unsafe only in the PAM FFI room, and every unsafe block explained.
while IFS= read -r hit; do bad "unsafe outside pam_jit/src/pam: $hit"; done < <(
  grep -rn --include='*.rs' -E '\bunsafe\b' common ssh-ca pam_jit | grep -v '^pam_jit/src/pam/' |
    grep -vE '^\S+:\s*//|unsafe_code|unsafe_op_in_unsafe_fn|undocumented_unsafe_blocks' || true)

# 5. No sockets, threads, environment reads or stdio in the module's code.
while IFS= read -r hit; do bad "pam_jit does something it must not: $hit"; done < <(
  grep -rn --include='*.rs' -E 'std::net|TcpStream|UdpSocket|UnixStream|thread::spawn|std::env::var|env::var|println!|eprintln!|print!\(|openlog' \
    pam_jit/src || true)

if ((fail)); then exit 1; fi
echo "invariants: exports=6 pam_sm_* symbols, deps ok, links: $needed"

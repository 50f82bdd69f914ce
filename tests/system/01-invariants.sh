#!/usr/bin/env bash
# Checks the architecture invariants that a compiler cannot: what pam_jit.so exports and
# links, and where unsafe code may live. See ARCHITECTURE.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${JIT_BIN_DIR:-target/release}
fail=0
bad() { echo "FAIL: $*"; fail=1; }

[ -f "$BIN/libpam_jit.so" ] || bash tests/build-module.sh
so=$BIN/libpam_jit.so

# 1. Exactly the six PAM service functions are exported.
exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort | tr '\n' ' ')
want="pam_sm_acct_mgmt pam_sm_authenticate pam_sm_chauthtok pam_sm_close_session pam_sm_open_session pam_sm_setcred "
[ "$exported" = "$want" ] || bad "pam_jit.so exports: $exported"

# 2. No async runtime, HTTP, SQL or threading crate in the module's dependency tree, and
#    no crate that writes the grant store: the module is pam_jit (the C boundary) over
#    pam_jit_core (read side) and jit-common, nothing else of ours.
tree() { cargo tree -p "$1" -e normal --prefix none --locked 2>/dev/null | awk '{print $1}' | sort -u; }
deps=$(tree pam_jit)
[ -n "$deps" ] || bad "cargo tree -p pam_jit printed nothing"
for forbidden in tokio hyper axum ureq reqwest rusqlite libsqlite3-sys rayon crossbeam mio rustls \
    jit-host jit-api jit-ca jit clap; do
  if grep -qx "$forbidden" <<<"$deps"; then bad "pam_jit depends on $forbidden"; fi
done
ours=$(grep -xE 'jit.*|pam_jit.*' <<<"$deps" | tr '\n' ' ')
[ "$ours" = "jit-common pam_jit pam_jit_core " ] || bad "pam_jit's own crates are: $ours"

# 2b. The engineers' client links no server crate (no SQLite, no axum, no tokio).
deps=$(tree jit)
[ -n "$deps" ] || bad "cargo tree -p jit printed nothing"
for forbidden in jit-ca tokio axum hyper-util rusqlite libsqlite3-sys pam_jit pam_jit_core jit-host; do
  if grep -qx "$forbidden" <<<"$deps"; then bad "jit depends on $forbidden"; fi
done
# The host tool links neither the server nor an async runtime either.
deps=$(tree jit-host)
[ -n "$deps" ] || bad "cargo tree -p jit-host printed nothing"
for forbidden in jit-ca jit tokio axum rusqlite libsqlite3-sys; do
  if grep -qx "$forbidden" <<<"$deps"; then bad "jit-host depends on $forbidden"; fi
done

# 2c. The module's jit-common has neither the `write` feature (secure_file::write_atomic,
#     the verified-record writers and prune) nor `syslog` (it logs through pam_syslog): the
#     writing code is not even compiled into pam_jit.so. (`cargo build --workspace` unifies
#     features, so the shipped module is built on its own: `cargo build -p pam_jit`.)
features=$(cargo tree -p pam_jit -e features --prefix none --locked 2>/dev/null || true)
grep -q '^jit-common v' <<<"$features" || bad "cargo tree -p pam_jit -e features shows no jit-common"
if grep -E '^jit-common feature "(write|syslog|default)"' <<<"$features"; then
  bad "pam_jit builds jit-common with a writing/syslog feature"
fi

# 2d. The module imports no libc function that writes the file system, makes a socket,
#     logs through syslog(3), starts a thread or runs a program. (read/write on descriptors
#     it opened read-only and stderr are not file-system writes.) The limit of this check:
#     open(2) with O_CREAT and raw syscall(2) look the same as reads here, and rustix (the
#     session binding writer's file calls, issue 14) makes raw system calls that import
#     nothing; 2c and 6 (no writer in the tree, and writing code only in the session
#     writer, reached only from the session hooks) are what rule those out.
imports=$(nm -D --undefined-only "$so" | awk '{print $NF}' | sed 's/@.*//' | sort -u)
[ -n "$imports" ] || bad "nm -D --undefined-only $so printed nothing"
if forbidden_imports=$(grep -xE 'rename|renameat.*|unlink.*|rmdir|mkdir.*|link|linkat|symlink.*|chmod|fchmod.*|chown|fchown.*|lchown|truncate.*|ftruncate.*|socket|connect|bind|sendto|sendmsg|openlog|syslog|vsyslog|pthread_create|fork|vfork|execve.*|system|posix_spawn.*|creat.*|utimensat|futimens|utimes|mknod.*|setxattr|lsetxattr|fsetxattr|removexattr|lremovexattr|fremovexattr|clone|clone3|socketpair|sendmmsg|pwrite.*' <<<"$imports"); then
  bad "pam_jit.so imports: $(tr '\n' ' ' <<<"$forbidden_imports")"
fi

# 2e. The module loads on the documented glibc baseline (README: Installing; RHEL 9 has
#     2.34): no symbol version above GLIBC_2.34 is needed. (Issue 18 tried GCC's static
#     unwinder, libgcc_eh, to keep libgcc_s.so.1 out of sudo; libgcc_eh imports
#     _dl_find_object@GLIBC_2.35, and packaging/test.sh caught it: reverted, this guards it.)
glibc_max=$(objdump -T "$so" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
if [ -n "$glibc_max" ] && [ "$(printf '%s\n2.34\n' "$glibc_max" | sort -V | tail -1)" != 2.34 ]; then
  bad "pam_jit.so needs GLIBC_$glibc_max, above the 2.34 baseline: $(objdump -T "$so" | grep -E "GLIBC_$glibc_max" | awk '{print $NF}' | tr '\n' ' ')"
fi

# 2f. The shipped module carries no test-only code: the panic probe (feature panic-probe,
#     built only by tests/system/55-module-panic.sh into its own target directory) is absent.
if grep -aqE 'pam_jit panic probe|panic_probe' "$so"; then
  bad "the shipped pam_jit.so contains the test-only panic probe (built with --features panic-probe?)"
fi
grep -q '^panic-probe = \[\]' pam_jit/module/Cargo.toml || bad "pam_jit's panic-probe feature moved (check 2f is stale)"

# 3. The module links libpam and libc only (plus the loader's own libraries and GCC's
#    unwinder, which carries a panic to the module's guard).
needed=$(readelf -d "$so" | awk '/NEEDED/ {gsub(/[\[\]]/, "", $5); print $5}' | sort | tr '\n' ' ')
for lib in $needed; do
  case $lib in libpam.so.*|libc.so.*|libgcc_s.so.*|libm.so.*|ld-linux*) ;; *) bad "pam_jit.so links $lib";; esac
done

# 4. unsafe only in the FFI room (the PAM boundary pam_jit/module, and the libc wrappers
#    pam_jit/core/src/sys.rs), and every unsafe block explained.
while IFS= read -r hit; do bad "unsafe outside the FFI room: $hit"; done < <(
  grep -rn --include='*.rs' -E '\bunsafe\b' common ssh-ca pam_jit tests/kit |
    grep -vE '^(pam_jit/module/src/|pam_jit/core/src/sys\.rs:)' |
    grep -vE '^\S+:\s*//|unsafe_code|unsafe_op_in_unsafe_fn|undocumented_unsafe_blocks' || true)

# 5. No sockets, threads, environment reads or stdio in the module's code or its core.
while IFS= read -r hit; do bad "pam_jit does something it must not: $hit"; done < <(
  grep -rn --include='*.rs' -E 'std::net|TcpStream|UdpSocket|UnixStream|thread::spawn|std::env::var|env::var|println!|eprintln!|print!\(|openlog' \
    pam_jit/module/src pam_jit/core/src || true)

# 6. The module and its core write no file except session bindings (issue 14): no
#    write-capable open, create, rename, unlink, mkdir or chmod in their code (unit tests,
#    after `#[cfg(test)]`, may make fixtures) outside the one session writer,
#    pam_jit/core/src/session/write.rs. The grant store's writer is jit-host, which the
#    module does not link (2.).
writer=pam_jit/core/src/session/write.rs
nontest() { # files...: FILE:LINE:TEXT up to each file's first #[cfg(test)]
  awk '/^#\[cfg\(test\)\]/ {nextfile} {print FILENAME ":" FNR ":" $0}' "$@"
}
[ -f "$writer" ] || bad "$writer is missing (the session writer moved? update this check)"
grep -qE 'renameat|OFlags::CREATE' "$writer" || bad "$writer does not write (check 6 is looking at the wrong file)"
while IFS= read -r hit; do bad "pam_jit/core or module writes: $hit"; done < <(
  nontest $(find pam_jit/module/src pam_jit/core/src -name '*.rs' ! -name tests.rs ! -path "$writer") |
    grep -E 'File::create|\.write\(true\)|\.append\(true\)|\.create\(true\)|fs::(write|rename|remove_file|remove_dir|create_dir|set_permissions)|OFlags::(WRONLY|RDWR|CREATE|TRUNC)|renameat|unlinkat|mkdirat|fchmod|chmod|chown|symlinkat|linkat' |
    grep -vE '^\S+:[0-9]+:\s*//' || true)

# 6b. The account (sudo) path cannot reach the session writer: in the module and its core,
#     only the module's session hooks (pam_jit/module/src/session.rs) name it; the core
#     only declares it (session/mod.rs: `pub mod write;`). And in the module's lib.rs the
#     session hooks' code (session::open_once, session::close) is called only from
#     pam_sm_open_session and pam_sm_close_session.
while IFS= read -r hit; do bad "the session writer is named outside the session hooks: $hit"; done < <(
  nontest $(find pam_jit/module/src pam_jit/core/src -name '*.rs' ! -name tests.rs ! -path "$writer") |
    grep -E '\bwrite::|\b(write_binding|mark_ended|remove_binding)\b|session::\{[^}]*\bwrite\b' |
    grep -vE '^\S+:[0-9]+:\s*//' |
    grep -vE '^pam_jit/module/src/session\.rs:|^pam_jit/core/src/session/mod\.rs:[0-9]+:pub mod write;$' || true)
grep -qE '\bwrite::(write_binding|mark_ended)\b' pam_jit/module/src/session.rs ||
  bad "pam_jit/module/src/session.rs does not call the session writer (check 6b is looking at the wrong file)"
while IFS= read -r hit; do bad "session hook code called outside pam_sm_open_session/pam_sm_close_session: $hit"; done < <(
  awk '/(^|[^a-z_])fn [a-z_]+/ { match($0, /fn [a-z_]+/); f = substr($0, RSTART + 3, RLENGTH - 3) }
       /session::(open|open_once|close)\(/ && f != "sm_open_session" && f != "sm_close_session" { print FILENAME ":" FNR ":" $0 }' \
    pam_jit/module/src/lib.rs)
grep -q 'session::open_once(' pam_jit/module/src/lib.rs || bad "pam_jit/module/src/lib.rs does not call session::open_once (check 6b is stale)"

# 7. The session hooks never return PAM_SUCCESS (always PAM_IGNORE, the outcome is logged):
#    with `session sufficient pam_jit.so` or `[success=done]` a success would skip the rest
#    of sshd's session stack (pam_selinux, pam_namespace, pam_limits, pam_systemd).
while IFS= read -r hit; do bad "a session hook can return PAM_SUCCESS: $hit"; done < <(
  nontest pam_jit/module/src/session.rs | grep -E 'PAM_SUCCESS' | grep -vE '^\S+:[0-9]+:\s*//' || true)
while IFS= read -r hit; do bad "a session hook can return something else than its body's PAM_IGNORE: $hit"; done < <(
  awk '/(^|[^a-z_])fn [a-z_]+/ { match($0, /fn [a-z_]+/); f = substr($0, RSTART + 3, RLENGTH - 3) }
       /PamResultCode::PAM_[A-Z_]+/ && (f == "sm_open_session" || f == "sm_close_session") && !/PAM_IGNORE/ { print FILENAME ":" FNR ":" $0 }' \
    pam_jit/module/src/lib.rs)

if ((fail)); then exit 1; fi
echo "invariants: exports=6 pam_sm_* symbols, deps ok, links: $needed"

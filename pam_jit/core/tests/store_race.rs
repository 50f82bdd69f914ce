//! Issue 11, item 8 (found by review): the module reads `grants/<user>` relative to opened
//! directories and never follows a link, so a grant writer swapping the directory for a
//! symlink between root's checks and reads cannot make root (sudo) read a root-only
//! directory. An integration test (not in `src/`) because it races with a thread, and the
//! module's own code must never start one (`tests/system/01-invariants.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use pam_jit_core::store::read_user_grants;

fn mode(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

/// A state dir inside a fresh 0755 temp dir (root-owned: the test runs as root).
fn state() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    mode(t.path(), 0o755);
    let s = t.path().join("state");
    fs::create_dir_all(s.join("grants/alice")).unwrap();
    for d in ["", "grants", "grants/alice"] {
        mode(&s.join(d), 0o755);
    }
    (t, s)
}

fn put(s: &Path, rel: &str, body: &[u8]) {
    let p = s.join(rel);
    fs::write(&p, body).unwrap();
    mode(&p, 0o644);
}

#[test]
#[ignore = "needs root"]
fn never_reads_through_a_user_directory_swapped_for_a_symlink() {
    // The grant writer owns grants/ and may swap grants/<user> for a symlink between
    // root's checks and reads: the module (root, under sudo) must never read a file from
    // the directory behind the link (a root-only one, holding what root keeps there).
    let (t, s) = state();
    put(&s, "grants/alice/g-1.grant", b"writer's");
    let secret = t.path().join("root-only");
    fs::create_dir(&secret).unwrap();
    mode(&secret, 0o700);
    fs::write(secret.join("g-1.grant"), b"root's").unwrap();
    mode(&secret.join("g-1.grant"), 0o600);
    let dir = s.join("grants/alice");
    let aside = s.join("grants/.alice");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (dir, aside, secret, stop) = (dir.clone(), aside.clone(), secret.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                fs::rename(&dir, &aside).unwrap();
                symlink(&secret, &dir).unwrap();
                fs::remove_file(&dir).unwrap();
                fs::rename(&aside, &dir).unwrap();
            }
        })
    };
    let start = std::time::Instant::now();
    let mut leaked = 0;
    let mut reads = 0;
    while start.elapsed() < std::time::Duration::from_secs(3) {
        if let Ok(got) = read_user_grants(&s, "alice", None) {
            reads += 1;
            leaked += got.files.iter().filter(|f| f.bytes == b"root's").count();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(reads > 0);
    assert_eq!(
        leaked, 0,
        "read a root-only file through the link ({reads} reads)"
    );
}

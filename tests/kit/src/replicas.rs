//! Two in-process replicas of one CA on one fresh PostgreSQL database (issue 17): two data
//! directories sharing keys, config.toml (but `replica_name`) and policy.toml, each with its
//! own `Ca`, router and replica threads, on one fixed clock. Needs `JIT_TEST_POSTGRES`
//! (tests/pg-tests.sh): without it [`pair`] panics, so a test marked
//! `#[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]` fails when run anyway, never passes
//! by skipping.

use std::path::Path;
use std::sync::Arc;

use jit_ca::clock::FixedClock;
use jit_ca::service::{Ca, ReplicaThreads};

use crate::harness::{Harness, T0, USERS, data_dir};
use crate::keys;

/// Two replicas of one CA.
pub struct Pair {
    pub a: Harness,
    pub b: Harness,
    /// The database both use (libpq conninfo, as in their config.toml).
    pub database: String,
    threads: Vec<ReplicaThreads>,
}

/// The conninfo of the test cluster; panics (the test fails) without one.
pub fn require_postgres() -> String {
    std::env::var("JIT_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "needs PostgreSQL: set JIT_TEST_POSTGRES to the libpq conninfo of a cluster where \
             tests may CREATE DATABASE (tests/pg-tests.sh does)"
        )
    })
}

/// [`pair_with`] without extra config or files.
pub fn pair(policy: &str) -> Pair {
    pair_with(policy, "", &[])
}

/// Two replicas: `config_extra` is appended to config.toml and `files` (path relative to
/// the data directory, contents; mode 0600) written before the directory is copied.
pub fn pair_with(policy: &str, config_extra: &str, files: &[(&str, &str)]) -> Pair {
    require_postgres();
    let database = fresh_database();
    let tmp_a = tempfile::tempdir().unwrap();
    let tmp_b = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (data_dir(&tmp_a), data_dir(&tmp_b));
    jit_ca::admin::init(&dir_a).unwrap();
    std::fs::remove_file(dir_a.join("policy.toml")).unwrap();
    std::fs::write(dir_a.join("policy.toml"), policy).unwrap();
    for (path, text) in files {
        crate::fixtures::write_mode(&dir_a.join(path), text.as_bytes(), 0o600);
    }
    let cfg = dir_a.join("config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text = format!(
        "database = {}\n{text}\n{config_extra}\n",
        toml_string(&database)
    );
    std::fs::remove_file(&cfg).unwrap();
    std::fs::write(&cfg, &text).unwrap();
    // B: what docs/ha.md says to distribute (keys, config, policy).
    copy_dir(&dir_a, &dir_b);
    for (dir, name) in [(&dir_a, "a"), (&dir_b, "b")] {
        let cfg = dir.join("config.toml");
        // First, so a table (`[[notify]]`) in config_extra does not take it.
        let t = format!(
            "replica_name = \"{name}\"\n{}",
            std::fs::read_to_string(&cfg).unwrap()
        );
        std::fs::remove_file(&cfg).unwrap();
        std::fs::write(&cfg, t).unwrap();
    }
    // Users go in through A's directory: the database is shared.
    let mut users = std::collections::HashMap::new();
    for (name, groups) in USERS {
        let key = keys::user(name);
        let (_, pub_path) = keys::write_pair(tmp_a.path(), name, &key);
        let groups: Vec<String> = groups.iter().map(|s| s.to_string()).collect();
        jit_ca::admin::user_add(&dir_a, name, &pub_path, &groups, T0).unwrap();
        users.insert(name.to_string(), key);
    }
    let clock = Arc::new(FixedClock::new(T0));
    let open = |tmp: tempfile::TempDir| {
        let ca = Arc::new(Ca::open(&data_dir(&tmp), clock.clone()).unwrap());
        Harness {
            app: jit_ca::api::router(ca.clone()),
            ca,
            clock: clock.clone(),
            keys: users.clone(),
            dir: tmp,
        }
    };
    let a = open(tmp_a);
    let b = open(tmp_b);
    Pair {
        a,
        b,
        database,
        threads: Vec::new(),
    }
}

impl Pair {
    /// Starts both replicas' threads (change listener, poll, heartbeat), as `serve` does.
    pub fn start_threads(&mut self) {
        self.threads
            .push(ReplicaThreads::start(&self.a.ca).unwrap());
        self.threads
            .push(ReplicaThreads::start(&self.b.ca).unwrap());
    }

    /// Runs SQL on the shared database with `psql` (returns its unaligned output).
    pub fn psql(&self, sql: &str) -> String {
        let out = std::process::Command::new("psql")
            .args([self.database.as_str(), "-qAtc", sql])
            .output()
            .expect("psql must be installed (tests/install-deps.sh)");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Both replicas' CAs.
    pub fn cas(&self) -> [&Arc<Ca>; 2] {
        [&self.a.ca, &self.b.ca]
    }
}

/// A new, empty database on the test cluster (its conninfo); panics without one.
pub fn fresh_database() -> String {
    require_postgres();
    crate::pg::fresh_database().expect("JIT_TEST_POSTGRES names a cluster")
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn copy_dir(from: &Path, to: &Path) {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(to)
        .unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        let (src, dst) = (e.path(), to.join(&name));
        let meta = std::fs::symlink_metadata(&src).unwrap();
        if meta.is_dir() {
            copy_dir(&src, &dst);
        } else if meta.is_file() && !name.to_string_lossy().starts_with("jit.db") {
            std::fs::copy(&src, &dst).unwrap();
            std::fs::set_permissions(
                &dst,
                std::fs::Permissions::from_mode(meta.permissions().mode() & 0o777),
            )
            .unwrap();
        }
    }
}

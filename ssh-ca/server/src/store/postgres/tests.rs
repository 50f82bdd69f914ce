//! PostgreSQL-only tests. Every test that needs PostgreSQL lives in a module named `pg`
//! (the plain `cargo test` run of tests/run.sh passes `--skip pg::`; tests/pg-tests.sh runs
//! them with `JIT_TEST_POSTGRES` set). Those that stop and start a server or need TLS run
//! their own private cluster (as `nobody`, like tests/lib/pg.sh; root only).

#[test]
fn the_pg_schema_version_follows_sqlites_migrations() {
    // A SQLite migration without its PostgreSQL twin (schema::LATER) fails here.
    let sqlite = crate::store::sqlite::Store::open_in_memory()
        .unwrap()
        .schema_version()
        .unwrap();
    assert_eq!(i64::from(super::schema::known()), sqlite);
}

#[test]
fn commit_turns_the_statement_timeout_off_first() {
    let sql = super::conn::COMMIT_SQL;
    let off = sql.find("SET LOCAL statement_timeout = 0").expect(sql);
    assert!(off < sql.find("COMMIT").unwrap(), "{sql}");
    assert!(sql.trim_end().ends_with("COMMIT"), "{sql}");
}

#[test]
fn a_hostaddr_is_reached_over_tcp_so_tls_is_never_skipped() {
    use super::testdb::settings_of;
    let t = |c: &str| super::conn::Target::new(&settings_of(c.into(), "t")).unwrap();
    assert!(t("host=/run/postgresql dbname=jit").unix_only());
    for c in [
        "host=/run/postgresql hostaddr=10.0.0.5 dbname=jit",
        "postgres://jit@%2Frun%2Fpostgresql/jit?hostaddr=10.0.0.5",
    ] {
        assert!(!t(c).unix_only(), "{c}");
    }
}

#[test]
fn change_kinds_round_trip() {
    use super::Change;
    for c in [Change::Revocation, Change::Grants, Change::External] {
        assert_eq!(Change::parse(c.as_str()), Some(c));
    }
    assert_eq!(Change::parse("other"), None);
}

#[test]
fn a_lost_commit_is_answered_as_unknown_never_as_unavailable() {
    use crate::error::{ApiError, CaError};
    use jit_api::wire::ErrorCode;
    let a: ApiError = CaError::CommitUnknown("connection reset".into()).into();
    assert_eq!((a.status, a.code), (500, ErrorCode::Internal));
    assert!(
        a.message.contains("may or may not be stored"),
        "{}",
        a.message
    );
    assert!(a.message.contains("jit list"), "{}", a.message);
    assert!(
        !a.message.contains("connection reset"),
        "details stay in the log"
    );
}

#[cfg(test)]
mod pg {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::HashSet;
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    use super::super::testdb::{base, fresh, settings_of, sql, store};
    use super::super::*;
    use crate::store::StoreOps;

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn connects_migrates_and_transacts() {
        let (pg, _) = store();
        assert_eq!(pg.schema_version().unwrap(), schema::known());
        pg.transact(|c| c.meta_set("k", "v")).unwrap();
        assert_eq!(
            pg.read(|c| c.meta_get("k")).unwrap().unwrap(),
            Some("v".to_string())
        );
        assert!(pg.claim_nonce("n1", 5).unwrap());
        assert!(!pg.claim_nonce("n1", 6).unwrap());
        assert!(pg.healthy());
        // A read snapshot cannot write.
        let e = pg.read(|c| c.meta_set("k", "w")).unwrap().unwrap_err();
        assert!(e.to_string().contains("read-only"), "{e}");
        assert_eq!(
            pg.read(|c| c.meta_get("k")).unwrap().unwrap(),
            Some("v".to_string())
        );
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn migrations_are_idempotent_locked_and_refuse_a_newer_database() {
        let s = fresh();
        // Four replicas starting at once: one migrates, the others wait and find it done.
        let barrier = Arc::new(Barrier::new(4));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (s, b) = (s.clone(), barrier.clone());
                std::thread::spawn(move || {
                    b.wait();
                    PgStore::connect(&s, "test").map(|p| p.schema_version().unwrap())
                })
            })
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap().unwrap(), schema::known());
        }
        let again = PgStore::connect(&s, "test").unwrap();
        assert_eq!(again.schema_version().unwrap(), schema::known());
        // While another session holds the migration lock, a connect waits for it.
        let other = fresh();
        let holder = conn::Target::new(&other)
            .unwrap()
            .connect("holder", None)
            .unwrap();
        holder
            .exec("SELECT pg_advisory_lock($1)", &[&schema::MIGRATE_LOCK])
            .unwrap();
        let waiting = {
            let other = other.clone();
            std::thread::spawn(move || PgStore::connect(&other, "test").map(|_| ()))
        };
        std::thread::sleep(Duration::from_millis(700));
        assert!(!waiting.is_finished(), "migrated without the lock");
        holder
            .exec("SELECT pg_advisory_unlock($1)", &[&schema::MIGRATE_LOCK])
            .unwrap();
        waiting.join().unwrap().unwrap();
        // A database newer than this build is refused, naming both versions.
        sql(
            &s,
            &format!("UPDATE jit_schema SET version = {}", schema::known() + 1),
        )
        .unwrap();
        let e = PgStore::connect(&s, "test").unwrap_err();
        assert!(
            e.to_string().contains("newer than this jit-ca knows"),
            "{e}"
        );
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn the_audit_trail_is_append_only_truncate_included() {
        let (pg, s) = store();
        pg.transact(|c| {
            c.append_audit(
                1,
                "a",
                crate::audit::event::USER_ADD,
                &serde_json::json!({}),
            )
        })
        .unwrap();
        for stmt in [
            "UPDATE audit SET time = 2",
            "DELETE FROM audit",
            "TRUNCATE audit",
        ] {
            let e = sql(&s, stmt).unwrap_err();
            assert!(e.to_string().contains("append-only"), "{stmt}: {e}");
        }
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn serial_blocks_are_unique_across_replicas() {
        let s = fresh();
        let a = PgStore::connect(&s, "a").unwrap();
        let b = PgStore::connect(&s, "b").unwrap();
        let hs: Vec<_> = [a, b]
            .into_iter()
            .map(|p| {
                std::thread::spawn(move || {
                    (0..50)
                        .map(|_| p.transact(|c| c.reserve_serial_block(1024)).unwrap())
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut firsts: Vec<u64> = hs.into_iter().flat_map(|h| h.join().unwrap()).collect();
        firsts.sort();
        for w in firsts.windows(2) {
            assert!(w[1] >= w[0] + 1024, "overlapping blocks {w:?}");
        }
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn a_nonce_is_claimed_once_across_replicas() {
        let s = fresh();
        let stores = [
            PgStore::connect(&s, "a").unwrap(),
            PgStore::connect(&s, "b").unwrap(),
        ];
        let barrier = Arc::new(Barrier::new(2));
        let hs: Vec<_> = stores
            .into_iter()
            .map(|p| {
                let b = barrier.clone();
                std::thread::spawn(move || {
                    b.wait();
                    (0..200)
                        .filter(|n| p.claim_nonce(&format!("nonce-{n}"), 7).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let won: Vec<Vec<i32>> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        let a: HashSet<_> = won[0].iter().collect();
        let b: HashSet<_> = won[1].iter().collect();
        assert!(a.is_disjoint(&b), "a nonce claimed twice");
        assert_eq!(a.len() + b.len(), 200, "every nonce claimed once");
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn two_replicas_appending_at_once_keep_one_valid_chain() {
        let s = fresh();
        let hs: Vec<_> = (0..2)
            .map(|r| {
                let p = PgStore::connect(&s, "r").unwrap();
                std::thread::spawn(move || {
                    for n in 0..40 {
                        // Half through transact, half through the group commit's runner.
                        p.transact(|c| {
                            c.append_audit(
                                n,
                                &format!("replica-{r}"),
                                crate::audit::event::USER_ADD,
                                &serde_json::json!({"n": n}),
                            )
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let p = PgStore::connect(&s, "check").unwrap();
        let recs = p.read(|c| c.audit_records()).unwrap().unwrap();
        assert_eq!(crate::audit::verify(recs), Ok(80));
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn a_listener_hears_other_replicas_changes_at_commit_only() {
        let s = fresh();
        let a = PgStore::connect(&s, "a").unwrap();
        let b = PgStore::connect(&s, "b").unwrap();
        let mut l = a.listener().unwrap();
        assert_eq!(l.recv_timeout(Duration::from_millis(100)).unwrap(), None);
        // Rolled back: nothing heard.
        let _ = b.transact(|c| {
            c.meta_set("revocation_sequence", "1")?;
            Err::<(), _>(CaError::Input("no".into()))
        });
        assert_eq!(l.recv_timeout(Duration::from_millis(300)).unwrap(), None);
        b.transact(|c| c.meta_set("revocation_sequence", "2"))
            .unwrap();
        assert_eq!(
            l.recv_timeout(Duration::from_secs(5)).unwrap(),
            Some(Change::Revocation)
        );
        b.transact(|c| c.meta_set("external_generation", "3"))
            .unwrap();
        assert_eq!(
            l.recv_timeout(Duration::from_secs(5)).unwrap(),
            Some(Change::External)
        );
        b.transact(|c| c.meta_set("other", "3")).unwrap();
        assert_eq!(l.recv_timeout(Duration::from_millis(300)).unwrap(), None);
        // Its connection killed: the next calls reconnect and report every kind once (what
        // was sent meanwhile is lost).
        sql(
            &s,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'jit-ca/test/a/listen'",
        )
        .unwrap();
        let mut got = HashSet::new();
        for _ in 0..20 {
            if let Ok(Some(c)) = l.recv_timeout(Duration::from_millis(200)) {
                got.insert(c);
            }
            if got.len() == 3 {
                break;
            }
        }
        assert_eq!(got.len(), 3, "{got:?}");
        b.transact(|c| c.meta_set("revocation_sequence", "4"))
            .unwrap();
        assert_eq!(
            l.recv_timeout(Duration::from_secs(5)).unwrap(),
            Some(Change::Revocation)
        );
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn leadership_is_exclusive_and_moves_when_the_holders_connection_dies() {
        let s = fresh();
        let a = PgStore::connect(&settings_of(s.conninfo.clone(), "ra"), "test").unwrap();
        let b = PgStore::connect(&settings_of(s.conninfo.clone(), "rb"), "test").unwrap();
        let mut la = a.leader().unwrap();
        let mut lb = b.leader().unwrap();
        assert!(la.holds(Job::Sweep));
        assert!(!lb.holds(Job::Sweep));
        assert!(lb.holds(Job::Notify), "one lock per job");
        assert!(la.holds(Job::Sweep), "kept");
        assert!(!la.holds(Job::Notify));
        sql(
            &s,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'jit-ca/ra/test/leader'",
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // The dead session's lock is free at once: the other replica takes it, and the
        // first (reconnected) no longer holds it.
        assert!(lb.holds(Job::Sweep), "the lock moved");
        assert!(!la.holds(Job::Sweep), "a lost connection holds nothing");
        assert!(!la.holds(Job::Notify) && lb.holds(Job::Notify));
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn group_commit_runs_jobs_in_savepoints_and_notifies_only_committed_changes() {
        use crate::service::Entry;
        struct J(bool, &'static str, Option<bool>);
        impl Entry for J {
            fn run(&mut self, c: &dyn StoreOps) -> bool {
                let r = c.meta_set(self.1, "x").and_then(|_| {
                    if self.0 {
                        Ok(())
                    } else {
                        Err(CaError::Input("fails".into()))
                    }
                });
                r.is_ok()
            }
            fn finish(mut self: Box<Self>, e: Option<&CaError>) {
                self.2 = Some(e.is_none());
            }
        }
        let s = fresh();
        let a = PgStore::connect(&s, "a").unwrap();
        let b = PgStore::connect(&s, "b").unwrap();
        let mut l = b.listener().unwrap();
        let mut runner = a.batch_runner().unwrap();
        let mut jobs: Vec<Box<dyn Entry>> = vec![
            Box::new(J(true, "one", None)),
            Box::new(J(false, "revocation_sequence", None)),
            Box::new(J(true, "two", None)),
        ];
        runner.run(&mut jobs).unwrap();
        let got = a
            .read(|c| {
                (
                    c.meta_get("one").unwrap(),
                    c.meta_get("revocation_sequence").unwrap(),
                    c.meta_get("two").unwrap(),
                )
            })
            .unwrap();
        assert_eq!(got, (Some("x".into()), None, Some("x".into())));
        // The failed job's change kind was rolled back with it: nothing to hear.
        assert_eq!(l.recv_timeout(Duration::from_millis(300)).unwrap(), None);
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn nothing_listening_is_unavailable() {
        let _ = base();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let s = settings_of(
            format!("host=127.0.0.1 port={port} user=jit dbname=x sslmode=disable"),
            "t",
        );
        let e = PgStore::connect(&s, "test").unwrap_err();
        assert!(matches!(e, CaError::Unavailable(_)), "{e:?}");
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn a_lost_connection_is_unavailable_then_reconnects() {
        let (pg, s) = store();
        pg.transact(|c| c.meta_set("k", "1")).unwrap();
        pg.read(|c| c.meta_get("k")).unwrap().unwrap();
        sql(
            &s,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name LIKE 'jit-ca/test/test/%' AND pid <> pg_backend_pid()",
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // The next use reconnects.
        pg.transact(|c| c.meta_set("k", "2")).unwrap();
        assert_eq!(
            pg.read(|c| c.meta_get("k")).unwrap().unwrap(),
            Some("2".into())
        );
        assert!(pg.claim_nonce("x", 1).unwrap());
        assert!(pg.healthy());
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn operator_commands_never_migrate_an_older_schema_and_status_reads_any() {
        let s = fresh();
        let known = schema::known();
        // An empty database: an operator command creates the schema (no replica uses it).
        let pg = PgStore::connect_admin(&s, "admin").unwrap();
        assert_eq!(pg.schema_version().unwrap(), known);
        drop(pg);
        // An older schema (a rolling upgrade: old replicas still serve it).
        sql(
            &s,
            &format!("UPDATE jit_schema SET version = {}", known - 1),
        )
        .unwrap();
        let e = PgStore::connect_admin(&s, "admin").unwrap_err();
        let m = e.to_string();
        assert!(m.contains("jit-ca serve") && m.contains("db copy"), "{m}");
        assert!(m.contains(&format!("{}", known - 1)), "{m}");
        let st = PgStore::connect_unchecked(&s, "admin").unwrap();
        assert_eq!(st.schema_version().unwrap(), known - 1, "not migrated");
        // A newer schema: refused by the commands, still reported by status.
        sql(
            &s,
            &format!("UPDATE jit_schema SET version = {}", known + 1),
        )
        .unwrap();
        let e = PgStore::connect_admin(&s, "admin").unwrap_err();
        assert!(e.to_string().contains("upgrade jit-ca"), "{e}");
        let st = PgStore::connect_unchecked(&s, "admin").unwrap();
        assert_eq!(st.schema_version().unwrap(), known + 1);
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn a_nonce_claim_that_times_out_on_a_lock_is_busy_not_a_database_error() {
        let (pg, s) = store();
        // Another session inserted the same nonce and has not committed: the claim waits
        // for it until lock_timeout (5 s).
        let other = super::super::conn::Target::new(&s)
            .unwrap()
            .connect("other", None)
            .unwrap();
        other
            .batch("BEGIN; INSERT INTO nonce_log (nonce, seen_at) VALUES ('held', 1)")
            .unwrap();
        let e = pg.claim_nonce("held", 2).unwrap_err();
        assert!(matches!(e, crate::error::CaError::Busy(_)), "{e:?}");
        other.rollback();
        assert!(pg.claim_nonce("held", 3).unwrap());
    }

    /// `base()` with its host replaced by the loopback TCP address (the test cluster of
    /// tests/lib/pg.sh listens on 127.0.0.1 too).
    fn over_tcp(base: &str) -> String {
        base.split_whitespace()
            .map(|kv| {
                if kv.starts_with("host=") {
                    "host=127.0.0.1".to_string()
                } else {
                    kv.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn tcp_sessions_end_within_a_minute_of_a_silent_peer() {
        // A dead or partitioned replica's session (and its job leadership) must not live
        // for the kernel's 2 h keepalive default on the server.
        let s = fresh();
        let tcp = settings_of(
            format!(
                "{} {}",
                over_tcp(&base()),
                s.conninfo.split_whitespace().last().unwrap()
            ),
            "test",
        );
        // Every pooled, listener and leader connection comes from Target::connect.
        let c = super::super::conn::Target::new(&tcp)
            .unwrap()
            .connect("read", None)
            .unwrap();
        for (k, v) in [
            ("tcp_keepalives_idle", "10"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"),
            ("tcp_user_timeout", "30000"),
        ] {
            let row = c.one(&format!("SHOW {k}"), &[]).unwrap();
            assert_eq!(
                super::super::conn::get::<String>(&row, 0).unwrap(),
                v,
                "{k}"
            );
        }
    }
}

/// Tests on a private cluster of their own (stopped and started, TLS): root only, like
/// tests/lib/pg.sh (initdb and the server run as `nobody`).
#[cfg(test)]
mod cluster {
    #[cfg(test)]
    mod pg {
        #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

        use std::os::unix::fs::PermissionsExt as _;
        use std::path::{Path, PathBuf};
        use std::process::Command;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use super::super::super::testdb::settings_of;
        use super::super::super::*;

        struct Cluster {
            dir: PathBuf,
            bin: PathBuf,
            port: u16,
            opts: String,
        }

        fn nobody() -> (u32, u32) {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
            let line = passwd
                .lines()
                .find(|l| l.starts_with("nobody:"))
                .expect("no user nobody");
            let f: Vec<&str> = line.split(':').collect();
            (f[2].parse().unwrap(), f[3].parse().unwrap())
        }

        fn run(cmd: &mut Command) {
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{cmd:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }

        impl Cluster {
            /// initdb and start on a free port, with `-c` options `opts`; `prepare` runs on the
            /// directory before the first start (certificates, pg_hba.conf).
            fn start(opts: &str, prepare: impl FnOnce(&Path, &Path)) -> Self {
                let _ = super::super::super::testdb::base();
                assert_eq!(
                    crate::files::euid(),
                    0,
                    "this test starts its own PostgreSQL as nobody: run it as root (tests/pg-tests.sh)"
                );
                static N: AtomicUsize = AtomicUsize::new(0);
                let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                    .unwrap()
                    .map(|e| e.unwrap().path().join("bin"))
                    .filter(|p| p.join("initdb").exists())
                    .collect();
                bins.sort();
                let bin = bins.pop().expect("no PostgreSQL server installed");
                let dir = std::env::temp_dir().join(format!(
                    "jit-pg-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir(&dir).unwrap();
                let (uid, gid) = nobody();
                std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
                let data = dir.join("data");
                run(Command::new("runuser")
                    .args(["-u", "nobody", "--"])
                    .arg(bin.join("initdb"))
                    .arg("-D")
                    .arg(&data)
                    .args([
                        "-U",
                        "jit",
                        "-A",
                        "trust",
                        "-E",
                        "UTF8",
                        "--locale=C",
                        "--no-sync",
                    ]));
                prepare(&dir, &data);
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port();
                let c = Self {
                    dir,
                    bin,
                    port,
                    opts: opts.into(),
                };
                c.up();
                c
            }

            fn up(&self) {
                run(Command::new("runuser")
                    .args(["-u", "nobody", "--"])
                    .arg(self.bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(self.dir.join("data"))
                    .arg("-l")
                    .arg(self.dir.join("log"))
                    .args(["-w", "-t", "30", "-o"])
                    .arg(format!(
                        "-k {} -c listen_addresses=127.0.0.1 -p {} -c fsync=off {}",
                        self.dir.display(),
                        self.port,
                        self.opts
                    ))
                    .arg("start"));
            }

            fn down(&self, mode: &str) {
                run(Command::new("runuser")
                    .args(["-u", "nobody", "--"])
                    .arg(self.bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(self.dir.join("data"))
                    .args(["-m", mode, "-w", "stop"]));
            }

            /// Over its socket, as the superuser.
            fn socket(&self, db: &str) -> PgSettings {
                settings_of(
                    format!(
                        "host={} port={} user=jit dbname={db}",
                        self.dir.display(),
                        self.port
                    ),
                    "private",
                )
            }
        }

        impl Drop for Cluster {
            fn drop(&mut self) {
                let _ = Command::new("runuser")
                    .args(["-u", "nobody", "--"])
                    .arg(self.bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(self.dir.join("data"))
                    .args(["-m", "immediate", "-w", "stop"])
                    .output();
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }

        #[test]
        #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
        fn a_stopped_server_is_unavailable_and_a_restarted_one_is_used_again() {
            let c = Cluster::start("", |_, _| {});
            let pg = PgStore::connect(&c.socket("postgres"), "test").unwrap();
            pg.transact(|t| t.meta_set("k", "1")).unwrap();
            let mut leader = pg.leader().unwrap();
            assert!(leader.holds(Job::Sweep));
            c.down("fast");
            let e = pg.transact(|t| t.meta_set("k", "2")).unwrap_err();
            assert!(matches!(e, CaError::Unavailable(_)), "{e:?}");
            let e = pg.read(|t| t.meta_get("k")).unwrap_err();
            assert!(matches!(e, CaError::Unavailable(_)), "{e:?}");
            let e = pg.claim_nonce("n", 1).unwrap_err();
            assert!(matches!(e, CaError::Unavailable(_)), "{e:?}");
            assert!(!pg.healthy());
            assert!(!leader.holds(Job::Sweep), "no database, no leadership");
            c.up();
            pg.transact(|t| t.meta_set("k", "3")).unwrap();
            assert!(pg.healthy());
            assert_eq!(
                pg.read(|t| t.meta_get("k")).unwrap().unwrap(),
                Some("3".into())
            );
            assert!(leader.holds(Job::Sweep));
            // A crash (immediate stop) too.
            c.down("immediate");
            assert!(pg.transact(|t| t.meta_set("k", "4")).is_err());
            c.up();
            pg.transact(|t| t.meta_set("k", "5")).unwrap();
        }

        #[test]
        #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
        fn a_commit_cancelled_while_waiting_for_a_synchronous_standby_is_never_success() {
            use std::time::Duration;
            let c = Cluster::start("", |_, _| {});
            let pg = PgStore::connect(&c.socket("postgres"), "test").unwrap();
            pg.transact(|t| t.meta_set("k", "1")).unwrap();
            // A synchronous standby that never answers: every COMMIT waits for it.
            let admin = conn::Target::new(&c.socket("postgres"))
                .unwrap()
                .connect("admin", None)
                .unwrap();
            admin
                .batch("ALTER SYSTEM SET synchronous_standby_names = 'absent'")
                .unwrap();
            admin.batch("SELECT pg_reload_conf()").unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let waiting = std::thread::spawn(move || pg.transact(|t| t.meta_set("k", "2")));
            let pid = loop {
                let rows = admin
                    .rows(
                        "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep' \
                         AND application_name LIKE 'jit-ca/%/transact'",
                        &[],
                    )
                    .unwrap();
                if let Some(r) = rows.first() {
                    break conn::get::<i32>(r, 0).unwrap();
                }
                assert!(!waiting.is_finished(), "COMMIT returned without a standby");
                std::thread::sleep(Duration::from_millis(50));
            };
            // The statement timeout is off while COMMIT waits.
            let row = admin
                .one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'SyncRep'",
                    &[&pid],
                )
                .unwrap();
            assert_eq!(conn::get::<i64>(&row, 0).unwrap(), 1);
            // An operator (or statement_timeout on the old code) cancels the wait: PostgreSQL
            // answers success with a WARNING ("might not have been replicated").
            admin.one("SELECT pg_cancel_backend($1)", &[&pid]).unwrap();
            let e = waiting.join().unwrap().unwrap_err();
            assert!(matches!(e, CaError::CommitUnknown(_)), "{e:?}");
        }

        #[test]
        #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
        fn a_server_lost_before_commit_is_never_success() {
            let c = Cluster::start("", |_, _| {});
            let pg = PgStore::connect(&c.socket("postgres"), "test").unwrap();
            let e = pg
                .transact(|t| {
                    t.meta_set("k", "1")?;
                    c.down("immediate");
                    Ok(())
                })
                .unwrap_err();
            assert!(
                matches!(e, CaError::CommitUnknown(_) | CaError::Unavailable(_)),
                "{e:?}"
            );
            c.up();
            assert_eq!(pg.read(|t| t.meta_get("k")).unwrap().unwrap(), None);
        }

        #[test]
        #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
        fn tls_with_a_scram_password_from_a_file() {
            let work = tempfile::tempdir().unwrap();
            let (cert, key) = (work.path().join("cert.pem"), work.path().join("key.pem"));
            // A CA and a server certificate it signed (a self-signed CA certificate is not
            // accepted as the server's own).
            let w = |n: &str| work.path().join(n);
            let ossl = |args: &[&str]| {
                run(Command::new("openssl").current_dir(work.path()).args(args));
            };
            ossl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=jit test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ]);
            ossl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ]);
            std::fs::write(
                w("ext"),
                "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
            )
            .unwrap();
            ossl(&[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "ext",
                "-out",
                "cert.pem",
            ]);
            let ca = w("ca.pem");
            let c = Cluster::start(
                "-c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key",
                |_, data| {
                    let (uid, gid) = nobody();
                    for (from, to) in [(&cert, "server.crt"), (&key, "server.key")] {
                        let p = data.join(to);
                        std::fs::copy(from, &p).unwrap();
                        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
                        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                            .unwrap();
                    }
                    let hba = data.join("pg_hba.conf");
                    std::fs::write(
                        &hba,
                        "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
                    )
                    .unwrap();
                },
            );
            let admin = conn::Target::new(&c.socket("postgres")).unwrap();
            let ac = admin.connect("admin", None).unwrap();
            ac.batch("CREATE ROLE app LOGIN PASSWORD 'correct horse'")
                .unwrap();
            ac.batch("CREATE DATABASE app OWNER app").unwrap();
            let pw = work.path().join("db.password");
            std::fs::write(&pw, "correct horse\n").unwrap();
            std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
            let tcp = |ssl: &str, password: Option<&Path>, ca: Option<&Path>| PgSettings {
                conninfo: format!("postgres://app@127.0.0.1:{}/app?sslmode={ssl}", c.port),
                password_file: password.map(Path::to_path_buf),
                ca_file: ca.map(Path::to_path_buf),
                replica: "tls".into(),
            };
            let pg = PgStore::connect(&tcp("require", Some(&pw), Some(&ca)), "test").unwrap();
            pg.transact(|t| t.meta_set("k", "v")).unwrap();
            assert_eq!(pg.schema_version().unwrap(), schema::known());
            // Not the server's CA: refused (never unverified).
            let e = PgStore::connect(&tcp("require", Some(&pw), None), "test").unwrap_err();
            assert!(matches!(e, CaError::Unavailable(_)), "{e:?}");
            // A wrong password: refused.
            let bad = work.path().join("bad.password");
            std::fs::write(&bad, "wrong").unwrap();
            std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
            let e = PgStore::connect(&tcp("require", Some(&bad), Some(&ca)), "test").unwrap_err();
            assert!(e.to_string().contains("password"), "{e}");
            assert!(
                !e.to_string().contains("wrong"),
                "the password is never shown: {e}"
            );
            // A password file others may read: refused.
            std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = PgStore::connect(&tcp("require", Some(&pw), Some(&ca)), "test").unwrap_err();
            assert!(e.to_string().contains("chmod 600"), "{e}");
            // A password in the connection string: refused, naming the key to use.
            let mut inline = tcp("require", None, Some(&ca));
            inline.conninfo = format!("postgres://app:secret@127.0.0.1:{}/app", c.port);
            let e = PgStore::connect(&inline, "test").unwrap_err();
            assert!(e.to_string().contains("database_password_file"), "{e}");
        }
    }
}

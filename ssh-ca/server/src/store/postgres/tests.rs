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
fn change_kinds_round_trip() {
    use super::Change;
    for c in [Change::Revocation, Change::Grants, Change::External] {
        assert_eq!(Change::parse(c.as_str()), Some(c));
    }
    assert_eq!(Change::parse("other"), None);
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
            match l.recv_timeout(Duration::from_millis(200)) {
                Ok(Some(c)) => {
                    got.insert(c);
                }
                Ok(None) | Err(_) => {}
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
        assert!(la.holds(Job::Notify) == false && lb.holds(Job::Notify));
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
}

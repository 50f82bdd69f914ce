//! PostgreSQL-only tests (each needs `JIT_TEST_POSTGRES`: tests/pg-tests.sh). Every test
//! that needs PostgreSQL lives in a module named `pg` (so `--skip pg::` leaves them out of
//! the plain `cargo test` run, and tests/pg-tests.sh runs them).

#[cfg(test)]
mod pg {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::super::testdb::{fresh, sql, store};
    use super::super::*;
    use crate::store::StoreOps;

    const NEEDS: &str = "needs PostgreSQL (JIT_TEST_POSTGRES)";
    fn _needs() -> &'static str {
        NEEDS
    }

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
        let _ = sql;
    }
}

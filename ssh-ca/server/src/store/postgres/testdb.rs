//! Test databases: `JIT_TEST_POSTGRES` (libpq key=value conninfo of a cluster where tests
//! may CREATE DATABASE) gets a fresh database per call. A test that needs PostgreSQL fails,
//! never skips, when the variable is unset.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use super::conn::Target;
use super::{PgSettings, PgStore};

/// The cluster's conninfo (panics, naming the variable, when unset).
pub(crate) fn base() -> String {
    match std::env::var("JIT_TEST_POSTGRES") {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "this test needs PostgreSQL: set JIT_TEST_POSTGRES to the libpq conninfo of a cluster \
             where tests may CREATE DATABASE (e.g. \"host=/tmp/pg port=25432 user=jit\"), or run \
             tests/pg-tests.sh"
        ),
    }
}

/// Settings of `conninfo` for replica `name`.
pub(crate) fn settings_of(conninfo: String, name: &str) -> PgSettings {
    PgSettings {
        conninfo,
        password_file: None,
        ca_file: None,
        replica: name.into(),
    }
}

/// A fresh, empty database: its settings.
pub(crate) fn fresh() -> PgSettings {
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = base();
    let name = format!(
        "jit_u{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let admin = Target::new(&settings_of(format!("{base} dbname=postgres"), "test")).unwrap();
    let c = admin.connect("create", None).unwrap();
    c.batch(&format!("CREATE DATABASE {name}")).unwrap();
    settings_of(format!("{base} dbname={name}"), "test")
}

/// A fresh database, connected and migrated.
pub(crate) fn store() -> (PgStore, PgSettings) {
    let s = fresh();
    (PgStore::connect(&s, "test").unwrap(), s)
}

/// Raw SQL on the database of `s` (autocommit), for what no StoreOps method does.
pub(crate) fn sql(s: &PgSettings, stmt: &str) -> crate::error::Result<()> {
    let t = Target::new(s).unwrap();
    t.connect("sql", None).unwrap().batch(stmt)
}

//! The database of a data directory, whichever backend `config.toml` names: what the
//! operator commands open ([`Db::open`]) and what [`crate::service::Ca`] is built on.

use crate::config::Config;
use crate::error::{CaError, Result};
use crate::store::postgres::PgStore;
use crate::store::{Store, StoreOps};

/// An open database: SQLite's `jit.db` (no `database` in config.toml, or `"sqlite"`) or
/// PostgreSQL.
#[derive(Debug)]
pub enum Db {
    /// The data directory's `jit.db`.
    Sqlite(Store),
    /// A PostgreSQL database shared by the replicas.
    Postgres(PgStore),
}

impl Db {
    /// Opens (and migrates) the database `config` names, for an operator command.
    pub fn open(config: &Config) -> Result<Self> {
        Self::open_as(config, "admin")
    }

    /// [`Db::open`], naming what opens it (`serve`, `admin`: PostgreSQL's
    /// `application_name`). On PostgreSQL only `serve` migrates an older schema; the
    /// operator commands create an empty database's schema but refuse an older one (a newer
    /// build's command must not migrate under older replicas during a rolling upgrade).
    pub fn open_as(config: &Config, role: &'static str) -> Result<Self> {
        match &config.database {
            None => Ok(Self::Sqlite(Store::open(&config.db_path())?)),
            Some(s) if role == "serve" => Ok(Self::Postgres(PgStore::connect(s, role)?)),
            Some(s) => Ok(Self::Postgres(PgStore::connect_admin(s, role)?)),
        }
    }

    /// Opens for `db status`: PostgreSQL's schema is neither migrated nor checked (the
    /// status reports the database's and this build's versions).
    pub fn open_for_status(config: &Config) -> Result<Self> {
        match &config.database {
            None => Ok(Self::Sqlite(Store::open(&config.db_path())?)),
            Some(s) => Ok(Self::Postgres(PgStore::connect_unchecked(s, "admin")?)),
        }
    }

    /// Runs `f` in one write transaction (SQLite: `BEGIN IMMEDIATE`); commits when it
    /// returns Ok, rolls back otherwise.
    pub fn with_tx<R, E: From<CaError>>(
        &mut self,
        f: impl FnOnce(&dyn StoreOps) -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E> {
        match self {
            Self::Sqlite(st) => {
                let tx = st.tx()?;
                let r = f(&*tx)?;
                tx.commit().map_err(CaError::from)?;
                Ok(r)
            }
            Self::Postgres(pg) => pg.transact(f),
        }
    }

    /// Runs a read (SQLite: on the connection, outside a transaction; PostgreSQL: one
    /// snapshot).
    pub fn read<R>(&self, f: impl FnOnce(&dyn StoreOps) -> R) -> Result<R> {
        match self {
            Self::Sqlite(st) => Ok(f(st.conn())),
            Self::Postgres(pg) => pg.read(f),
        }
    }

    /// The schema version (the number of migrations applied).
    pub fn schema_version(&self) -> Result<u32> {
        match self {
            Self::Sqlite(st) => u32::try_from(st.schema_version()?).map_err(|_| {
                CaError::Db("the database's schema version (user_version) is out of range".into())
            }),
            Self::Postgres(pg) => pg.schema_version(),
        }
    }

    /// The SQLite store, or an error naming `what` for a command that only works on
    /// SQLite's file (e.g. `jit-ca backup`: on PostgreSQL use `pg_dump`).
    pub fn sqlite(&mut self, what: &str) -> Result<&mut Store> {
        match self {
            Self::Sqlite(st) => Ok(st),
            Self::Postgres(_) => Err(CaError::Input(format!(
                "{what} works on the SQLite database (jit.db) only; this data directory's \
                 config.toml names a PostgreSQL database: {}",
                postgres_hint(what)
            ))),
        }
    }

    /// Which backend: "sqlite" or "postgresql".
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgresql",
        }
    }
}

fn postgres_hint(what: &str) -> &'static str {
    if what.contains("backup") {
        "back it up with pg_dump (docs/ha.md)"
    } else {
        "use PostgreSQL's own tools"
    }
}

//! `jit-ca db copy --dir DIR --to URL`: the embedded store of a data directory into an empty
//! PostgreSQL database, in one transaction under the audit lock, then verified on both sides.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio_postgres::types::ToSql;

use super::tables::{self, PG_ONLY_COLUMNS, RowDigest, TABLES, Table, Val, q};
use crate::audit;
use crate::config::Config;
use crate::error::{CaError, Result};
use crate::store::Store;
use crate::store::postgres::conn::{PgConn, Target, get};
use crate::store::postgres::{AUDIT_LOCK, PgSettings, PgStore};

/// Rows per INSERT statement.
const BATCH_ROWS: usize = 200;

/// One table, compared after the copy.
#[derive(Debug, Clone, Serialize)]
pub struct TableCheck {
    pub table: String,
    pub sqlite_rows: u64,
    pub postgres_rows: u64,
    pub sqlite_digest: String,
    pub postgres_digest: String,
    pub same: bool,
}

/// The audit chain on one side.
#[derive(Debug, Clone, Serialize)]
pub struct ChainCheck {
    /// Records that verified (0 with `error`).
    pub records: u64,
    pub head: String,
    /// Why `audit verify` failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `jit-ca db copy` did and found.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    pub dir: PathBuf,
    pub schema_version: u32,
    pub tables: Vec<TableCheck>,
    pub audit_sqlite: ChainCheck,
    pub audit_postgres: ChainCheck,
    /// The next certificate serial PostgreSQL hands out is above this (every serial SQLite
    /// ever reserved).
    pub serials_above: u64,
    /// The next outbox sequence is above this.
    pub outbox_above: u64,
    /// Everything is the same on both sides.
    pub ok: bool,
}

fn pg_text(e: &CaError) -> String {
    e.to_string()
}

/// `--to`, `--password-file`, `--ca` checked as config.toml's `database` keys are (no
/// password in the URL, TLS towards a remote host).
fn target_settings(
    dir: &Path,
    to: &str,
    password_file: Option<&Path>,
    ca: Option<&Path>,
) -> Result<PgSettings> {
    use crate::config::database::{RawDatabase, validate};
    let abs = |p: &Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    let raw = RawDatabase {
        database: Some(to.to_string()),
        password_file: password_file.map(abs),
        ca: ca.map(abs),
        replica_name: Some("db-copy".into()),
    };
    let mut errs = Vec::new();
    let settings = validate(dir, raw, 0, &mut errs);
    let flags = |e: &str| {
        e.replace("database_password_file", "--password-file")
            .replace("database_ca", "--ca")
            .replacen("database:", "--to:", 1)
    };
    match settings {
        Some(s) if errs.is_empty() => Ok(s),
        Some(_) => Err(CaError::Input(
            errs.iter().map(|e| flags(e)).collect::<Vec<_>>().join("; "),
        )),
        None if errs.is_empty() => Err(CaError::Input(format!(
            "--to {to:?}: name a PostgreSQL database (postgres://USER@HOST/DB?sslmode=verify-full or \"host=... dbname=... user=...\")"
        ))),
        None => Err(CaError::Input(
            errs.iter().map(|e| flags(e)).collect::<Vec<_>>().join("; "),
        )),
    }
}

/// `jit-ca db copy`.
pub fn db_copy(
    dir: &Path,
    to: &str,
    password_file: Option<&Path>,
    ca: Option<&Path>,
) -> Result<CopyReport> {
    let cfg = Config::load(dir)?;
    if !dir.join(crate::config::CONFIG_FILE).exists() {
        return Err(CaError::NotFound(dir.join(crate::config::CONFIG_FILE)));
    }
    if cfg.database.is_some() {
        return Err(CaError::Input(format!(
            "{}: config.toml already names a PostgreSQL database (database = ...); db copy \
             copies a data directory's embedded store (jit.db) into PostgreSQL",
            dir.display()
        )));
    }
    let settings = target_settings(dir, to, password_file, ca)?;
    // No service may write while the copy runs (and none may start).
    let _lock = crate::server::lock_data_dir(dir)?;
    let mut st = Store::open(&cfg.db_path())?;
    let version = u32::try_from(st.schema_version()?)
        .map_err(|_| CaError::Db("schema version out of range".into()))?;
    // Connects and migrates the target to this program's version.
    let pg = PgStore::connect(&settings, "db-copy")?;
    let pg_version = pg.schema_version()?;
    if pg_version != version {
        return Err(CaError::Db(format!(
            "the target database has schema version {pg_version}, {} has {version}",
            cfg.db_path().display()
        )));
    }
    let raw = Target::new(&settings)?.connect("db-copy", None)?;
    // The SQLite side stays still: BEGIN IMMEDIATE keeps other operator commands out.
    let tx = st.tx()?;
    let sqlite: &rusqlite::Connection = &tx;
    let (serials_above, outbox_above) = copy_all(sqlite, &raw)?;
    let mut checks = Vec::with_capacity(TABLES.len());
    for t in TABLES {
        checks.push(compare(sqlite, &raw, t)?);
    }
    let audit_sqlite = chain(crate::store::StoreOps::audit_records(sqlite));
    let audit_postgres = chain(pg.read(|c| c.audit_records()).and_then(|r| r));
    drop(tx); // read only: rolled back
    let ok = checks.iter().all(|c| c.same)
        && audit_sqlite.error.is_none()
        && audit_postgres.error.is_none()
        && audit_sqlite.records == audit_postgres.records
        && audit_sqlite.head == audit_postgres.head;
    Ok(CopyReport {
        dir: dir.to_path_buf(),
        schema_version: version,
        tables: checks,
        audit_sqlite,
        audit_postgres,
        serials_above,
        outbox_above,
        ok,
    })
}

fn chain(records: Result<Vec<audit::Record>>) -> ChainCheck {
    let records = match records {
        Ok(r) => r,
        Err(e) => {
            return ChainCheck {
                records: 0,
                head: String::new(),
                error: Some(pg_text(&e)),
            };
        }
    };
    let head = records
        .last()
        .map_or_else(|| audit::GENESIS.to_string(), |r| r.hash.clone());
    match audit::verify(records) {
        Ok(n) => ChainCheck {
            records: n,
            head,
            error: None,
        },
        Err(e) => ChainCheck {
            records: 0,
            head,
            error: Some(e.to_string()),
        },
    }
}

/// The PostgreSQL columns of `table` and their types, in SQLite's column order; an error
/// when the two schemas disagree (a migration without its PostgreSQL twin).
fn pg_columns(raw: &PgConn, table: &str, sqlite_cols: &[String]) -> Result<Vec<(String, bool)>> {
    let rows = raw.rows(
        "SELECT column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1",
        &[&table],
    )?;
    let mut pg: Vec<(String, String)> = Vec::with_capacity(rows.len());
    for r in &rows {
        pg.push((get(r, 0)?, get(r, 1)?));
    }
    let extra: Vec<&str> = pg
        .iter()
        .map(|(c, _)| c.as_str())
        .filter(|c| !sqlite_cols.iter().any(|s| s == c))
        .filter(|c| !PG_ONLY_COLUMNS.contains(&(table, *c)))
        .collect();
    let mut out = Vec::with_capacity(sqlite_cols.len());
    for c in sqlite_cols {
        let Some((_, ty)) = pg.iter().find(|(n, _)| n == c) else {
            return Err(CaError::Db(format!(
                "the PostgreSQL table {table} has no column {c} (the two schemas differ: is this \
                 jit-ca the one that created the database?)"
            )));
        };
        let int = match ty.as_str() {
            "bigint" | "integer" | "smallint" => true,
            "text" => false,
            other => {
                return Err(CaError::Db(format!(
                    "the PostgreSQL column {table}.{c} is of type {other}; db copy knows bigint and text"
                )));
            }
        };
        out.push((c.clone(), int));
    }
    if !extra.is_empty() {
        return Err(CaError::Db(format!(
            "the PostgreSQL table {table} has columns SQLite does not: {}",
            extra.join(", ")
        )));
    }
    Ok(out)
}

fn copy_all(sqlite: &rusqlite::Connection, raw: &PgConn) -> Result<(u64, u64)> {
    raw.batch("BEGIN")?;
    let r = copy_in_tx(sqlite, raw);
    match r {
        Ok(v) => {
            raw.batch("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            let _ = raw.batch("ROLLBACK");
            Err(e)
        }
    }
}

fn copy_in_tx(sqlite: &rusqlite::Connection, raw: &PgConn) -> Result<(u64, u64)> {
    raw.one("SELECT pg_advisory_xact_lock($1)::text", &[&AUDIT_LOCK])?;
    for t in TABLES {
        let row = raw.one(&format!("SELECT EXISTS (SELECT 1 FROM {})", q(t.name)), &[])?;
        let has: bool = get(&row, 0)?;
        if has {
            return Err(CaError::Input(format!(
                "the target database is not empty (table {} has rows); db copy only fills an \
                 empty database: create a new one (createdb -O jit-ca jit)",
                t.name
            )));
        }
    }
    for t in TABLES {
        let cols = tables::sqlite_columns(sqlite, t.name)?;
        let types = pg_columns(raw, t.name, &cols)?;
        let list = cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
        let mut batch: Vec<Vec<Val>> = Vec::with_capacity(BATCH_ROWS);
        let flush = |batch: &mut Vec<Vec<Val>>| -> Result<()> {
            if batch.is_empty() {
                return Ok(());
            }
            insert(raw, t.name, &list, &types, batch)?;
            batch.clear();
            Ok(())
        };
        tables::sqlite_rows(sqlite, t, &cols, |row| {
            batch.push(row);
            if batch.len() == BATCH_ROWS {
                flush(&mut batch)?;
            }
            Ok(())
        })?;
        flush(&mut batch)?;
    }
    // Sequences above everything SQLite ever handed out (deleted rows included).
    let max = |sql: &str| -> Result<i64> {
        let v: Option<i64> = sqlite.query_row(sql, [], |r| r.get(0))?;
        Ok(v.unwrap_or(0))
    };
    let serial =
        max("SELECT MAX(serial) FROM certs")?.max(tables::sqlite_sequence(sqlite, "certs")?);
    let outbox = max("SELECT MAX(seq) FROM notify_outbox")?
        .max(tables::sqlite_sequence(sqlite, "notify_outbox")?);
    if serial > 0 {
        raw.one("SELECT setval('cert_serial_blocks', $1)::text", &[&serial])?;
    }
    if outbox > 0 {
        raw.one("SELECT setval('outbox_seq', $1)::text", &[&outbox])?;
    }
    Ok((
        u64::try_from(serial).unwrap_or(0),
        u64::try_from(outbox).unwrap_or(0),
    ))
}

fn insert(
    raw: &PgConn,
    table: &str,
    list: &str,
    types: &[(String, bool)],
    rows: &[Vec<Val>],
) -> Result<()> {
    let n = types.len();
    let mut sql = format!("INSERT INTO {} ({list}) VALUES ", q(table));
    let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(rows.len() * n);
    for (ri, row) in rows.iter().enumerate() {
        if ri > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (ci, (v, (col, int))) in row.iter().zip(types).enumerate() {
            if ci > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", params.len() + 1));
            let p: Box<dyn ToSql + Sync> = match (v, int) {
                (Val::Null, true) => Box::new(None::<i64>),
                (Val::Null, false) => Box::new(None::<String>),
                (Val::Int(i), true) => Box::new(*i),
                (Val::Text(s), false) => Box::new(s.clone()),
                (Val::Int(i), false) => {
                    return Err(CaError::Input(format!(
                        "table {table}, column {col}: the number {i} in a text column; fix the row in jit.db"
                    )));
                }
                (Val::Text(s), true) => {
                    return Err(CaError::Input(format!(
                        "table {table}, column {col}: the text {s:?} in an integer column; fix the row in jit.db"
                    )));
                }
            };
            params.push(p);
        }
        sql.push(')');
    }
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| &**b).collect();
    raw.exec(&sql, &refs)?;
    Ok(())
}

fn compare(sqlite: &rusqlite::Connection, raw: &PgConn, t: &Table) -> Result<TableCheck> {
    let cols = tables::sqlite_columns(sqlite, t.name)?;
    let types = pg_columns(raw, t.name, &cols)?;
    let mut a = RowDigest::default();
    tables::sqlite_rows(sqlite, t, &cols, |row| {
        a.add(&row);
        Ok(())
    })?;
    let list = cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let rows = raw.rows(
        &format!("SELECT {list} FROM {} ORDER BY {}", q(t.name), t.pg_order),
        &[],
    )?;
    let mut b = RowDigest::default();
    for r in &rows {
        let mut vals = Vec::with_capacity(types.len());
        for (i, (_, int)) in types.iter().enumerate() {
            vals.push(if *int {
                get::<Option<i64>>(r, i)?.map_or(Val::Null, Val::Int)
            } else {
                get::<Option<String>>(r, i)?.map_or(Val::Null, Val::Text)
            });
        }
        b.add(&vals);
    }
    let (sqlite_rows, sqlite_digest) = a.finish();
    let (postgres_rows, postgres_digest) = b.finish();
    Ok(TableCheck {
        table: t.name.to_string(),
        same: sqlite_rows == postgres_rows && sqlite_digest == postgres_digest,
        sqlite_rows,
        postgres_rows,
        sqlite_digest,
        postgres_digest,
    })
}

/// The text of the copy report.
pub fn render_copy(r: &CopyReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "copied {} (schema version {}) into PostgreSQL:",
        r.dir.display(),
        r.schema_version
    );
    let _ = writeln!(
        out,
        "  {:<16} {:>9} {:>9}  digest",
        "table", "sqlite", "postgres"
    );
    for t in &r.tables {
        let _ = writeln!(
            out,
            "  {:<16} {:>9} {:>9}  {}",
            t.table,
            t.sqlite_rows,
            t.postgres_rows,
            if t.same { "same" } else { "DIFFERENT" }
        );
    }
    for (side, c) in [("sqlite", &r.audit_sqlite), ("postgres", &r.audit_postgres)] {
        match &c.error {
            None => {
                let _ = writeln!(
                    out,
                    "audit verify ({side}): {} records, head {}",
                    c.records, c.head
                );
            }
            Some(e) => {
                let _ = writeln!(out, "audit verify ({side}): FAILED: {e}");
            }
        }
    }
    let _ = writeln!(
        out,
        "serials continue above {}; notification events above {}",
        r.serials_above, r.outbox_above
    );
    if r.ok {
        let _ = writeln!(
            out,
            "ok: both sides are the same. Next: set database = ... in config.toml (docs/ha.md) and start jit-ca serve."
        );
    } else {
        let _ = writeln!(
            out,
            "FAILED: the two sides differ (above); do not switch to this database"
        );
    }
    out
}

//! The tables `jit-ca db copy` copies, in foreign-key order, and how their rows are read,
//! compared and digested on both sides. A unit test ties [`TABLES`] to SQLite's schema (and,
//! with PostgreSQL, to its schema): a migration that adds a table cannot be forgotten here.

use sha2::{Digest as _, Sha256};

use crate::error::{CaError, Result};

/// One table to copy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Table {
    pub name: &'static str,
    /// The rows in a stable order, the same on both sides (SQLite and PostgreSQL with
    /// `COLLATE "C"` both compare text bytewise).
    pub sqlite_order: &'static str,
    pub pg_order: &'static str,
    /// The SQLite rows to copy, when not `SELECT cols FROM name`: nonce_log may hold one
    /// nonce twice (it is a log there; PostgreSQL keys it by the nonce).
    pub sqlite_source: Option<&'static str>,
}

const fn t(name: &'static str, order: &'static str) -> Table {
    Table {
        name,
        sqlite_order: order,
        pg_order: order,
        sqlite_source: None,
    }
}

/// Every table of the schema, parents first.
pub(crate) const TABLES: &[Table] = &[
    t("users", "name"),
    t("user_keys", "key"),
    t("requests", "id"),
    // SQLite's rowid order is the order approvals were made; PostgreSQL keeps it in `ord`.
    Table {
        name: "approvals",
        sqlite_order: "rowid",
        pg_order: "ord",
        sqlite_source: None,
    },
    t("certs", "serial"),
    Table {
        name: "nonce_log",
        sqlite_order: "nonce",
        pg_order: "nonce",
        sqlite_source: Some("SELECT MAX(seen_at) AS seen_at, nonce FROM nonce_log GROUP BY nonce"),
    },
    t("meta", "k"),
    t("audit", "seq"),
    t("notify_outbox", "seq"),
    t("notify_delivery", "seq, sink"),
    t("web_logins", "token_hash"),
    t("web_sessions", "id"),
];

/// Tables only PostgreSQL has (not copied): its schema version and the replicas' heartbeats.
#[cfg(test)]
pub(crate) const PG_ONLY: &[&str] = &["jit_schema", "replicas"];
/// Columns only PostgreSQL has (generated there).
pub(crate) const PG_ONLY_COLUMNS: &[(&str, &str)] = &[("approvals", "ord")];

/// A value of a row, as both databases hold it (INTEGER/BIGINT, TEXT, NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Text(String),
}

impl Val {
    fn digest_into(&self, h: &mut Sha256) {
        match self {
            Self::Null => h.update(b"N;"),
            Self::Int(i) => h.update(format!("I{i};").as_bytes()),
            Self::Text(s) => {
                h.update(format!("T{}:", s.len()).as_bytes());
                h.update(s.as_bytes());
                h.update(b";");
            }
        }
    }
}

/// Row count and SHA-256 of the rows in order (every value, typed and length-prefixed).
#[derive(Debug, Default)]
pub(crate) struct RowDigest {
    hash: Sha256,
    pub rows: u64,
}

impl RowDigest {
    pub fn add(&mut self, row: &[Val]) {
        for v in row {
            v.digest_into(&mut self.hash);
        }
        self.hash.update(b"\n");
        self.rows += 1;
    }

    pub fn finish(self) -> (u64, String) {
        (self.rows, hex::encode(self.hash.finalize()))
    }
}

/// The column names of a SQLite table, in table order.
pub(crate) fn sqlite_columns(c: &rusqlite::Connection, table: &str) -> Result<Vec<String>> {
    let mut st = c.prepare(&format!(
        "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
    ))?;
    let cols = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if cols.is_empty() {
        return Err(CaError::Db(format!(
            "the SQLite database has no table {table}"
        )));
    }
    Ok(cols)
}

/// The tables of a SQLite database (its own bookkeeping excluded).
#[cfg(test)]
pub(crate) fn sqlite_tables(c: &rusqlite::Connection) -> Result<Vec<String>> {
    let mut st = c.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let names = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(names)
}

/// Quotes an identifier (`user` is reserved in PostgreSQL).
pub(crate) fn q(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Reads every row of `table` from SQLite in key order, calling `each` per row. A value
/// PostgreSQL cannot hold in the same column type (a REAL or BLOB, text with a NUL byte) is
/// an error naming the table, the row's key and the column.
pub(crate) fn sqlite_rows(
    c: &rusqlite::Connection,
    table: &Table,
    cols: &[String],
    mut each: impl FnMut(Vec<Val>) -> Result<()>,
) -> Result<()> {
    let list = cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let sql = match table.sqlite_source {
        Some(src) => format!("SELECT {list} FROM ({src}) ORDER BY {}", table.sqlite_order),
        None => format!(
            "SELECT {list} FROM {} ORDER BY {}",
            table.name, table.sqlite_order
        ),
    };
    let mut st = c.prepare(&sql)?;
    let mut rows = st.query([])?;
    let mut n = 0u64;
    while let Some(r) = rows.next()? {
        n += 1;
        let mut out = Vec::with_capacity(cols.len());
        for (i, col) in cols.iter().enumerate() {
            use rusqlite::types::ValueRef;
            let bad = |what: &str| {
                CaError::Input(format!(
                    "table {}, row {n} (in {} order), column {col}: {what}; PostgreSQL cannot \
                     hold it: fix the row in jit.db (sqlite3) and copy again",
                    table.name, table.sqlite_order
                ))
            };
            let v = match r.get_ref(i)? {
                ValueRef::Null => Val::Null,
                ValueRef::Integer(i) => Val::Int(i),
                ValueRef::Text(t) => {
                    let s = std::str::from_utf8(t).map_err(|_| bad("text that is not UTF-8"))?;
                    if s.contains('\0') {
                        return Err(bad("text with a NUL byte"));
                    }
                    Val::Text(s.to_string())
                }
                ValueRef::Real(_) => return Err(bad("a floating-point value")),
                ValueRef::Blob(_) => return Err(bad("a binary value (BLOB)")),
            };
            out.push(v);
        }
        each(out)?;
    }
    Ok(())
}

/// The highest value `sqlite_sequence` holds for `table` (AUTOINCREMENT: what was ever
/// handed out, deleted rows included), 0 when none.
pub(crate) fn sqlite_sequence(c: &rusqlite::Connection, table: &str) -> Result<i64> {
    let has: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence')",
        [],
        |r| r.get(0),
    )?;
    if !has {
        return Ok(0);
    }
    let v: Option<i64> = c.query_row(
        "SELECT MAX(seq) FROM sqlite_sequence WHERE name = ?1",
        [table],
        |r| r.get(0),
    )?;
    Ok(v.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_list_is_sqlite_schema_exactly() {
        let st = crate::store::Store::open_in_memory().unwrap();
        let mut have = sqlite_tables(st.conn()).unwrap();
        have.sort();
        let mut listed: Vec<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
        listed.sort();
        assert_eq!(
            have, listed,
            "a migration added or dropped a table: add it to admin/db/tables.rs TABLES (in \
             foreign-key order) so `jit-ca db copy` copies it"
        );
        // Every table reads (its order columns exist).
        for t in TABLES {
            let cols = sqlite_columns(st.conn(), t.name).unwrap();
            sqlite_rows(st.conn(), t, &cols, |_| Ok(())).unwrap();
        }
    }

    #[test]
    fn the_table_list_is_postgresql_schema_exactly() {
        use crate::store::postgres::schema::{BASELINE, LATER};
        let mut created: Vec<String> = Vec::new();
        for sql in std::iter::once(BASELINE.1).chain(LATER.iter().copied()) {
            for line in sql.lines() {
                let l = line.trim();
                if let Some(rest) = l.strip_prefix("CREATE TABLE ") {
                    let name = rest
                        .trim_start_matches("IF NOT EXISTS ")
                        .split([' ', '('])
                        .next()
                        .unwrap()
                        .to_string();
                    created.push(name);
                }
                if let Some(rest) = l.strip_prefix("DROP TABLE ") {
                    let name = rest.trim_end_matches(';').trim();
                    created.retain(|t| t != name);
                }
            }
        }
        created.retain(|t| !PG_ONLY.contains(&t.as_str()));
        created.sort();
        let mut listed: Vec<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
        listed.sort();
        assert_eq!(
            created, listed,
            "the PostgreSQL schema (store/postgres/schema.rs) and db copy's TABLES disagree: add \
             the table to TABLES, or to PG_ONLY if SQLite has no such table"
        );
    }

    #[test]
    fn digests_tell_values_apart() {
        let d = |rows: &[&[Val]]| {
            let mut g = RowDigest::default();
            for r in rows {
                g.add(r);
            }
            g.finish()
        };
        let a = d(&[&[Val::Int(1), Val::Text("ab".into())]]);
        assert_eq!(a, d(&[&[Val::Int(1), Val::Text("ab".into())]]));
        assert_ne!(a, d(&[&[Val::Int(1), Val::Text("a".into())]]));
        assert_ne!(a, d(&[&[Val::Text("1".into()), Val::Text("ab".into())]]));
        assert_ne!(
            d(&[&[Val::Null]]),
            d(&[&[Val::Text(String::new())]]),
            "NULL is not the empty text"
        );
        assert_ne!(
            d(&[&[Val::Text("a".into())], &[Val::Text("b".into())]]),
            d(&[&[Val::Text("a".into()), Val::Text("b".into())]]),
            "row boundaries count"
        );
    }

    #[test]
    fn a_nul_byte_is_refused_by_name() {
        let st = crate::store::Store::open_in_memory().unwrap();
        st.conn()
            .execute(
                "INSERT INTO meta (k, v) VALUES ('x', 'a' || char(0) || 'b')",
                [],
            )
            .unwrap();
        let t = TABLES.iter().find(|t| t.name == "meta").unwrap();
        let cols = sqlite_columns(st.conn(), "meta").unwrap();
        let e = sqlite_rows(st.conn(), t, &cols, |_| Ok(())).unwrap_err();
        assert!(
            e.to_string().contains("table meta") && e.to_string().contains("NUL"),
            "{e}"
        );
    }
}

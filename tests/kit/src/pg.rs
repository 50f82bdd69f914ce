//! The existing CA tests on PostgreSQL (issue 17), and raw SQL on whichever database a data
//! directory uses.
//!
//! * [`fresh_database`]: with `JIT_TEST_POSTGRES` set (the libpq key=value conninfo of a
//!   cluster where the tests may `CREATE DATABASE`, e.g. `host=/tmp/x port=25432 user=jit`),
//!   a new database `jit_t<pid>_<n>` and its conninfo; `None` when unset. The harness
//!   ([`crate::harness::setup_dir_in`]) and [`crate::running`] write it into config.toml
//!   (`database = "..."`) before the first store open, so every test built on them runs on
//!   PostgreSQL in `tests/pg-tests.sh`.
//! * [`Sql`]: raw statements on a data directory's database (tests that damage or inspect
//!   rows): SQLite's `jit.db` through rusqlite, or PostgreSQL through `psql`, the statement
//!   translated (`?N` -> the parameter as a literal, the column `user` -> `"user"`).
//! * [`sqlite_only`]: the one way a test about SQLite internals (PRAGMAs, WAL, column
//!   types) stops early on PostgreSQL; [`SQLITE_ONLY`] lists every such reason.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The variable naming the test cluster.
pub const VAR: &str = "JIT_TEST_POSTGRES";

/// Every reason a test runs on SQLite only: the one list ([`sqlite_only`] refuses any other).
pub const SQLITE_ONLY: &[&str] = &[
    "PRAGMA journal_mode and synchronous of jit.db (SQLite's durability settings)",
    "SQLite column types of stored values (typeof)",
    "jit.db and its WAL file on disk (bytes of SQLite's files)",
    "SQLite's own file: jit-ca backup copies jit.db with VACUUM INTO (PostgreSQL: pg_dump)",
    "a rusqlite Store opened on jit.db next to the service (SQLite's locking)",
];

/// The cluster's conninfo when the tests run on PostgreSQL.
pub fn cluster() -> Option<String> {
    std::env::var(VAR).ok().filter(|v| !v.trim().is_empty())
}

/// Whether this run is on PostgreSQL (`JIT_TEST_POSTGRES` set).
pub fn enabled() -> bool {
    cluster().is_some()
}

/// A test about SQLite internals: true (print why, the caller returns) when this run is on
/// PostgreSQL. `reason` must be one of [`SQLITE_ONLY`].
pub fn sqlite_only(reason: &str) -> bool {
    assert!(
        SQLITE_ONLY.contains(&reason),
        "sqlite_only({reason:?}): add the reason to jit_test_kit::pg::SQLITE_ONLY (the one list)"
    );
    if enabled() {
        eprintln!("SQLite only, not run on PostgreSQL: {reason}");
        return true;
    }
    false
}

/// A fresh, empty database `jit_t<pid>_<n>` on the `JIT_TEST_POSTGRES` cluster, as a
/// conninfo (the cluster's with `dbname=`); None when the variable is unset.
pub fn fresh_database() -> Option<String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let base = cluster()?;
    assert!(
        !base.contains("://"),
        "{VAR} must be libpq key=value settings (host=DIR port=N user=U), not a URL: {base}"
    );
    let name = format!(
        "jit_t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    psql(
        &format!("{base} dbname=postgres"),
        &format!("CREATE DATABASE {name}"),
    )
    .unwrap_or_else(|e| panic!("{VAR}: cannot create the test database {name}: {e}"));
    Some(format!("{base} dbname={name}"))
}

/// The `database = "..."` line for config.toml.
pub fn config_line(conninfo: &str) -> String {
    format!(
        "\ndatabase = \"{}\"\n",
        conninfo.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

/// Appends `database = "<fresh database>"` to `dir/config.toml` when the tests run on
/// PostgreSQL (before anything opens the store); returns the conninfo.
pub fn use_fresh_database(dir: &Path) -> Option<String> {
    let conninfo = fresh_database()?;
    let cfg = dir.join("config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&config_line(&conninfo));
    // Replaced, not rewritten in place: init makes it read-only for some.
    std::fs::remove_file(&cfg).unwrap();
    std::fs::write(&cfg, text).unwrap();
    Some(conninfo)
}

/// Runs `sql` with `psql` on `conninfo`: rows of fields (NULL as None).
fn psql(conninfo: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    const FS: char = '\u{1f}';
    const RS: char = '\u{1e}';
    const NULL: &str = "\u{1d}NULL\u{1d}";
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t"])
        .arg(format!("--field-separator={FS}"))
        .arg(format!("--record-separator={RS}"))
        .arg(format!("--pset=null={NULL}"))
        .arg("-d")
        .arg(conninfo)
        .arg("-c")
        .arg(sql)
        .output()
        .map_err(|e| format!("psql: {e} (is the PostgreSQL client installed?)"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let text = String::from_utf8(out.stdout).map_err(|e| e.to_string())?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text
        .split(RS)
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.split(FS)
                .map(|f| (f != NULL).then(|| f.to_string()))
                .collect()
        })
        .collect())
}

/// A parameter of [`Sql`] statements.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int(i64),
    Text(String),
    Null,
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<u64> for Val {
    fn from(v: u64) -> Self {
        Val::Int(i64::try_from(v).unwrap())
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Self {
        Val::Int(v.into())
    }
}
impl From<i32> for Val {
    fn from(v: i32) -> Self {
        Val::Int(v.into())
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(v.clone())
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

impl Val {
    fn literal(&self) -> String {
        match self {
            Val::Int(i) => i.to_string(),
            Val::Text(s) => format!("'{}'", s.replace('\'', "''")),
            Val::Null => "NULL".into(),
        }
    }
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value};
        Ok(ToSqlOutput::Owned(match self {
            Val::Int(i) => Value::Integer(*i),
            Val::Text(s) => Value::Text(s.clone()),
            Val::Null => Value::Null,
        }))
    }
}

/// The params of [`Sql`] statements: `params![a, b]`-like, `&[Val]`.
#[macro_export]
macro_rules! sql_params {
    ($($v:expr),* $(,)?) => { &[$($crate::pg::Val::from($v)),*][..] };
}

/// A data directory's database, for raw statements in tests.
#[derive(Debug, Clone)]
pub enum Sql {
    /// `jit.db`.
    Sqlite(PathBuf),
    /// A PostgreSQL conninfo.
    Postgres(String),
}

impl Sql {
    /// The database `dir/config.toml` names (`database = "..."`), else `dir/jit.db`.
    pub fn of_dir(dir: &Path) -> Self {
        let text = std::fs::read_to_string(dir.join("config.toml")).unwrap_or_default();
        for line in text.lines() {
            let Some(v) = line.trim().strip_prefix("database") else {
                continue;
            };
            let Some(v) = v.trim_start().strip_prefix('=') else {
                continue;
            };
            let v = v.trim();
            if let Some(s) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                let s = s.replace("\\\"", "\"").replace("\\\\", "\\");
                if s != "sqlite" {
                    return Self::Postgres(s);
                }
            }
        }
        Self::Sqlite(dir.join("jit.db"))
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Runs one statement; its rows as text (integers in decimal), NULL as None. An error
    /// is the database's message (a trigger's refusal, a constraint).
    pub fn try_run(&self, stmt: &str, params: &[Val]) -> Result<Vec<Vec<Option<String>>>, String> {
        match self {
            Self::Sqlite(path) => {
                let c = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
                c.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(|e| e.to_string())?;
                let mut st = c.prepare(stmt).map_err(|e| e.to_string())?;
                let n = st.column_count();
                let params = rusqlite::params_from_iter(params.iter());
                if n == 0 {
                    st.execute(params).map_err(|e| e.to_string())?;
                    return Ok(Vec::new());
                }
                let rows = st
                    .query_map(params, |r| {
                        (0..n)
                            .map(|i| {
                                use rusqlite::types::ValueRef;
                                Ok(match r.get_ref(i)? {
                                    ValueRef::Null => None,
                                    ValueRef::Integer(v) => Some(v.to_string()),
                                    ValueRef::Real(v) => Some(v.to_string()),
                                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                                        Some(String::from_utf8_lossy(t).into_owned())
                                    }
                                })
                            })
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(|e| e.to_string())?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(|e| e.to_string())
            }
            Self::Postgres(conninfo) => psql(conninfo, &translate(stmt, params)),
        }
    }

    /// [`Sql::try_run`], panicking on an error.
    pub fn run(&self, stmt: &str, params: &[Val]) -> Vec<Vec<Option<String>>> {
        self.try_run(stmt, params)
            .unwrap_or_else(|e| panic!("{stmt}: {e}"))
    }

    /// The first column of the one row `stmt` returns, parsed.
    pub fn one<T: std::str::FromStr>(&self, stmt: &str, params: &[Val]) -> T
    where
        T::Err: std::fmt::Debug,
    {
        let rows = self.run(stmt, params);
        assert_eq!(rows.len(), 1, "{stmt}: expected one row, got {rows:?}");
        let v = rows[0][0]
            .as_deref()
            .unwrap_or_else(|| panic!("{stmt}: NULL"));
        v.parse()
            .unwrap_or_else(|e| panic!("{stmt}: {v:?} does not parse: {e:?}"))
    }

    /// The first column of the first row, or None (no row or NULL).
    pub fn opt(&self, stmt: &str, params: &[Val]) -> Option<String> {
        self.run(stmt, params)
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
    }
}

/// `stmt` for PostgreSQL: `?N` replaced by parameter N as a literal, the column `user`
/// quoted (a reserved word there). String literals are left alone.
pub fn translate(stmt: &str, params: &[Val]) -> String {
    let mut out = String::with_capacity(stmt.len());
    let b: Vec<char> = stmt.chars().collect();
    let mut i = 0;
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    while i < b.len() {
        let c = b[i];
        if c == '\'' {
            // A string literal, copied as is ('' inside stays).
            out.push(c);
            i += 1;
            while i < b.len() {
                out.push(b[i]);
                if b[i] == '\'' {
                    if b.get(i + 1) == Some(&'\'') {
                        out.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            continue;
        }
        if c == '?' {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let n: usize = b[i + 1..j]
                .iter()
                .collect::<String>()
                .parse()
                .unwrap_or_else(|_| panic!("{stmt}: use numbered parameters (?1, ?2, ...)"));
            let v = params
                .get(n - 1)
                .unwrap_or_else(|| panic!("{stmt}: no parameter ?{n}"));
            out.push_str(&v.literal());
            i = j;
            continue;
        }
        if is_ident(c) {
            let mut j = i;
            while j < b.len() && is_ident(b[j]) {
                j += 1;
            }
            let word: String = b[i..j].iter().collect();
            if word == "user" {
                out.push_str("\"user\"");
            } else {
                out.push_str(&word);
            }
            i = j;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_translated_for_postgres() {
        assert_eq!(
            translate(
                "UPDATE users SET groups = ?2 WHERE name = ?1 AND r.user = 'user''s'",
                crate::sql_params!["o'k", 7u64]
            ),
            "UPDATE users SET groups = 7 WHERE name = 'o''k' AND r.\"user\" = 'user''s'"
        );
        assert_eq!(
            translate("DELETE FROM user_keys WHERE user = 'bob'", &[]),
            "DELETE FROM user_keys WHERE \"user\" = 'bob'"
        );
        assert_eq!(
            translate("SELECT ?1", crate::sql_params![None::<i64>]),
            "SELECT NULL"
        );
    }

    #[test]
    fn a_sqlite_only_reason_must_be_listed() {
        let r = std::panic::catch_unwind(|| sqlite_only("not listed"));
        assert!(r.is_err());
        assert_eq!(sqlite_only(SQLITE_ONLY[0]), enabled());
    }

    #[test]
    fn the_database_of_a_data_directory() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(Sql::of_dir(d.path()), Sql::Sqlite(p) if p == d.path().join("jit.db")));
        std::fs::write(
            d.path().join("config.toml"),
            format!(
                "listen = \"x\"{}",
                config_line("host=/tmp/a b dbname=\"x\"")
            ),
        )
        .unwrap();
        match Sql::of_dir(d.path()) {
            Sql::Postgres(c) => assert_eq!(c, "host=/tmp/a b dbname=\"x\""),
            other => panic!("{other:?}"),
        }
        let s = Sql::Sqlite(d.path().join("t.db"));
        s.run("CREATE TABLE t (user TEXT, n INTEGER)", &[]);
        s.run(
            "INSERT INTO t VALUES (?1, ?2)",
            crate::sql_params!["a", 3u64],
        );
        assert_eq!(
            s.one::<u64>("SELECT n FROM t WHERE user = ?1", crate::sql_params!["a"]),
            3
        );
        assert_eq!(s.opt("SELECT user FROM t WHERE n = 4", &[]), None);
        assert!(s.try_run("SELECT nope FROM t", &[]).is_err());
    }
}

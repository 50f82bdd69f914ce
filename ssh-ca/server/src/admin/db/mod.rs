//! `jit-ca db status` and `jit-ca db copy` (issue 17): the database behind a data directory,
//! and the way from one embedded SQLite store to a PostgreSQL database shared by replicas.

mod copy;
mod tables;

use std::path::Path;

use serde::Serialize;

use crate::config::Config;
use crate::error::{CaError, Result};
use crate::store::{Db, Store};

pub use copy::{CopyReport, TableCheck, db_copy, render_copy};

/// Replicas whose heartbeat is older than this are not listed.
pub const REPLICAS_WINDOW_SECS: u64 = 300;
/// A replica not seen for this long is marked as silent (its heartbeat is every 5 s).
pub const SILENT_AFTER_SECS: u64 = 15;
/// `--check` fails when a replica's lag is above this.
pub const MAX_LAG: u64 = 2;

/// The audit trail's newest record.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: String,
}

/// The SQLite files of a data directory.
#[derive(Debug, Clone, Serialize)]
pub struct SqliteFiles {
    pub path: String,
    pub size_bytes: u64,
    pub wal_bytes: u64,
}

/// One replica as `db status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaStatus {
    pub name: String,
    pub host: String,
    pub version: String,
    pub started_at: u64,
    pub last_seen: u64,
    /// Seconds since its last heartbeat.
    pub age_secs: u64,
    /// No heartbeat for [`SILENT_AFTER_SECS`]: stopped or cut off.
    pub silent: bool,
    pub served_revocation_sequence: u64,
    /// Stored minus served revocation sequence.
    pub revocation_lag: u64,
    pub loaded_audit_seq: u64,
    /// Audit head minus the head it loaded (under load, records written since its last
    /// heartbeat count too: informational).
    pub audit_lag: u64,
    pub policy_digest: String,
    pub keys_digest: String,
    /// Its policy or keys differ from the other replicas' (the most common pair).
    pub mismatch: bool,
    /// The background jobs it leads (`sweep`, `notify`).
    pub jobs: Vec<String>,
}

/// `jit-ca db status`.
#[derive(Debug, Clone, Serialize)]
pub struct DbStatus {
    /// "sqlite" or "postgresql".
    pub backend: &'static str,
    /// The database's schema version.
    pub schema_version: u32,
    /// The schema version this program writes.
    pub binary_schema_version: u32,
    pub audit_head: Option<AuditHead>,
    /// The sequence of the stored (signed) revocation list.
    pub revocation_sequence: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlite: Option<SqliteFiles>,
    /// PostgreSQL: the replicas seen in the last 5 minutes.
    pub replicas: Vec<ReplicaStatus>,
    /// What `--check` fails on (empty: all well).
    pub problems: Vec<String>,
}

/// The schema version this build writes (the number of its migrations).
pub fn binary_schema_version() -> Result<u32> {
    let v = Store::open_in_memory()?.schema_version()?;
    u32::try_from(v).map_err(|_| CaError::Db("schema version out of range".into()))
}

/// `jit-ca db status --dir DIR`.
pub fn db_status(dir: &Path, now: u64) -> Result<DbStatus> {
    let cfg = Config::load(dir)?;
    if !dir.join(crate::config::CONFIG_FILE).exists() {
        return Err(CaError::NotFound(dir.join(crate::config::CONFIG_FILE)));
    }
    let db = Db::open_for_status(&cfg)?;
    let schema_version = db.schema_version()?;
    let binary_schema_version = binary_schema_version()?;
    let read = db.read(|c| {
        Ok::<_, CaError>((
            c.audit_head()?,
            crate::store::meta_counter(c, "revocation_sequence")?,
        ))
    });
    // A schema of another version may not have what this build reads: the versions are
    // still reported (with the mismatch as a problem).
    let (head, sequence) = match read {
        Ok(Ok(v)) => v,
        _ if schema_version != binary_schema_version => (None, 0),
        Ok(Err(e)) | Err(e) => return Err(e),
    };
    let mut problems = Vec::new();
    if schema_version != binary_schema_version {
        problems.push(format!(
            "the database has schema version {schema_version}, this program {binary_schema_version}"
        ));
    }
    let audit_head = head.map(|(seq, hash)| AuditHead { seq, hash });
    let head_seq = audit_head.as_ref().map_or(0, |h| h.seq);
    let (sqlite, replicas) = match &db {
        Db::Sqlite(_) => {
            let path = cfg.db_path();
            let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
            let mut wal = path.clone().into_os_string();
            wal.push("-wal");
            let files = SqliteFiles {
                path: path.display().to_string(),
                size_bytes: size(&path),
                wal_bytes: size(Path::new(&wal)),
            };
            (Some(files), Vec::new())
        }
        Db::Postgres(pg) => {
            let rows = match pg.replicas(now.saturating_sub(REPLICAS_WINDOW_SECS)) {
                Ok(r) => r,
                Err(_) if schema_version != binary_schema_version => Vec::new(),
                Err(e) => return Err(e),
            };
            (None, replica_statuses(rows, now, sequence, head_seq))
        }
    };
    for r in &replicas {
        if r.revocation_lag > MAX_LAG {
            problems.push(format!(
                "replica {} serves revocation list #{} but #{sequence} is stored (lag {})",
                r.name, r.served_revocation_sequence, r.revocation_lag
            ));
        }
        if r.mismatch {
            problems.push(format!(
                "replica {} runs with a policy or keys that differ from the other replicas' \
                 (distribute keys/, config.toml and policy.toml again: docs/ha.md)",
                r.name
            ));
        }
    }
    Ok(DbStatus {
        backend: db.kind(),
        schema_version,
        binary_schema_version,
        audit_head,
        revocation_sequence: sequence,
        sqlite,
        replicas,
        problems,
    })
}

fn replica_statuses(
    rows: Vec<crate::store::postgres::ReplicaRow>,
    now: u64,
    sequence: u64,
    head: u64,
) -> Vec<ReplicaStatus> {
    // The most common (policy, keys) pair is the reference; a tie flags every replica.
    let mut counts: Vec<((String, String), usize)> = Vec::new();
    for r in &rows {
        let pair = (r.policy_digest.clone(), r.keys_digest.clone());
        match counts.iter_mut().find(|(p, _)| *p == pair) {
            Some((_, n)) => *n += 1,
            None => counts.push((pair, 1)),
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let leaders: Vec<&(String, String)> = counts
        .iter()
        .filter(|(_, n)| *n == best)
        .map(|(p, _)| p)
        .collect();
    let reference = if leaders.len() == 1 {
        leaders.first().copied().cloned()
    } else {
        None
    };
    let single = counts.len() <= 1;
    rows.into_iter()
        .map(|r| {
            let pair = (r.policy_digest.clone(), r.keys_digest.clone());
            let mismatch = !single && reference.as_ref() != Some(&pair);
            let age = now.saturating_sub(r.last_seen);
            ReplicaStatus {
                revocation_lag: sequence.saturating_sub(r.served_revocation_sequence),
                audit_lag: head.saturating_sub(r.loaded_audit_seq),
                age_secs: age,
                silent: age >= SILENT_AFTER_SECS,
                mismatch,
                jobs: r
                    .jobs
                    .split(',')
                    .map(str::trim)
                    .filter(|j| !j.is_empty())
                    .map(str::to_string)
                    .collect(),
                name: r.name,
                host: r.host,
                version: r.version,
                started_at: r.started_at,
                last_seen: r.last_seen,
                served_revocation_sequence: r.served_revocation_sequence,
                loaded_audit_seq: r.loaded_audit_seq,
                policy_digest: r.policy_digest,
                keys_digest: r.keys_digest,
            }
        })
        .collect()
}

/// The text of `jit-ca db status`.
pub fn render_status(s: &DbStatus) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "backend: {}", s.backend);
    let _ = writeln!(
        out,
        "schema version: {} (this program: {})",
        s.schema_version, s.binary_schema_version
    );
    match &s.audit_head {
        Some(h) => {
            let _ = writeln!(out, "audit head: record {} ({})", h.seq, h.hash);
        }
        None => {
            let _ = writeln!(out, "audit head: none (empty trail)");
        }
    }
    let _ = writeln!(out, "revocation sequence: {}", s.revocation_sequence);
    if let Some(f) = &s.sqlite {
        let _ = writeln!(
            out,
            "file: {} ({} bytes, WAL {} bytes)",
            f.path, f.size_bytes, f.wal_bytes
        );
    }
    if s.backend == "postgresql" {
        if s.replicas.is_empty() {
            let _ = writeln!(out, "replicas: none seen in the last 5 minutes");
        } else {
            let _ = writeln!(
                out,
                "replicas seen in the last 5 minutes:\n  {:<20} {:<10} {:>9} {:>8} {:>9}  {:<12} jobs",
                "name", "version", "last seen", "rev lag", "audit lag", "config"
            );
            for r in &s.replicas {
                let seen = if r.silent {
                    format!("{}s SILENT", r.age_secs)
                } else {
                    format!("{}s", r.age_secs)
                };
                let _ = writeln!(
                    out,
                    "  {:<20} {:<10} {:>9} {:>8} {:>9}  {:<12} {}",
                    r.name,
                    r.version,
                    seen,
                    r.revocation_lag,
                    r.audit_lag,
                    if r.mismatch { "MISMATCH" } else { "same" },
                    if r.jobs.is_empty() {
                        "-".to_string()
                    } else {
                        r.jobs.join(",")
                    }
                );
            }
        }
    }
    for p in &s.problems {
        let _ = writeln!(out, "problem: {p}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::ReplicaRow;

    fn row(name: &str, policy: &str, served: u64, seen: u64) -> ReplicaRow {
        ReplicaRow {
            name: name.into(),
            host: "h".into(),
            version: "1".into(),
            started_at: 1,
            last_seen: seen,
            served_revocation_sequence: served,
            loaded_audit_seq: 10,
            policy_digest: policy.into(),
            keys_digest: "k".into(),
            jobs: "sweep, notify".into(),
        }
    }

    #[test]
    fn lag_silence_and_mismatch_against_the_most_common_config() {
        let rows = vec![
            row("a", "p1", 7, 100),
            row("b", "p1", 4, 100),
            row("c", "p2", 7, 80),
        ];
        let s = replica_statuses(rows, 100, 7, 12);
        assert_eq!(s[0].revocation_lag, 0);
        assert_eq!(s[1].revocation_lag, 3);
        assert_eq!(s[0].audit_lag, 2);
        assert!(!s[0].mismatch && !s[1].mismatch && s[2].mismatch);
        assert!(!s[0].silent && s[2].silent);
        assert_eq!(s[0].jobs, ["sweep", "notify"]);
        // Two replicas that disagree: neither is the reference, both flagged.
        let s = replica_statuses(vec![row("a", "p1", 1, 1), row("b", "p2", 1, 1)], 1, 1, 0);
        assert!(s[0].mismatch && s[1].mismatch);
        // One replica, or all the same: nothing flagged.
        let s = replica_statuses(vec![row("a", "p1", 1, 1)], 1, 1, 0);
        assert!(!s[0].mismatch);
    }

    #[test]
    fn status_of_a_sqlite_directory() {
        let d = tempfile::tempdir().unwrap();
        crate::admin::init(d.path()).unwrap();
        let s = db_status(d.path(), 100).unwrap();
        assert_eq!(s.backend, "sqlite");
        assert_eq!(s.schema_version, s.binary_schema_version);
        assert!(s.replicas.is_empty() && s.problems.is_empty());
        assert!(s.sqlite.as_ref().unwrap().path.ends_with("jit.db"));
        let text = render_status(&s);
        assert!(text.contains("backend: sqlite"), "{text}");
    }
}

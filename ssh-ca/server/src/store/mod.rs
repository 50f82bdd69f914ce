//! SQLite storage: users and their keys, requests, approvals, issued certificates, seen
//! nonces, published revocation state, and the audit chain.
//!
//! Durability: WAL mode with `synchronous=FULL`, so a transaction reported committed survives
//! power loss (serials are never reused; approvals and revocations are never lost). Schema
//! changes are numbered migrations recorded in `PRAGMA user_version`. Every function here is
//! blocking: the HTTP layer calls them from `spawn_blocking`, never on async threads.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension as _, Transaction, params};

use crate::audit::{self, GENESIS, Record};
use crate::error::{CaError, Result};
use jit_api::wire::{ApprovalView, RequestState};

const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    r#"
CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    groups     TEXT NOT NULL,          -- JSON array of group names
    created_at INTEGER NOT NULL
);
CREATE TABLE user_keys (
    key  TEXT PRIMARY KEY,             -- "ssh-ed25519 AAAA..." without comment
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE
);
CREATE TABLE requests (
    id                 TEXT PRIMARY KEY,
    user               TEXT NOT NULL,
    role               TEXT NOT NULL,
    reason             TEXT NOT NULL,
    duration_secs      INTEGER NOT NULL,
    hosts              TEXT NOT NULL,  -- JSON array
    principals         TEXT NOT NULL,  -- JSON array
    sudo               INTEGER NOT NULL,
    public_key         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    pending_expires_at INTEGER NOT NULL,
    approvals_required INTEGER NOT NULL,
    state              TEXT NOT NULL,
    denied_by          TEXT,
    denial_reason      TEXT,
    approved_at        INTEGER,
    revoked_at         INTEGER,
    revoked_by         TEXT
);
CREATE INDEX requests_state ON requests(state);
CREATE INDEX requests_user ON requests(user);
CREATE TABLE approvals (
    request_id TEXT NOT NULL REFERENCES requests(id),
    user       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (request_id, user)
);
-- AUTOINCREMENT: serials strictly increase and are never reused, even after deletes.
CREATE TABLE certs (
    serial       INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id   TEXT NOT NULL REFERENCES requests(id),
    user         TEXT NOT NULL,
    grant_id     TEXT,
    valid_after  INTEGER NOT NULL,
    valid_before INTEGER NOT NULL,
    issued_at    INTEGER NOT NULL,
    certificate  TEXT NOT NULL,
    grant_doc    TEXT,
    grant_hosts  TEXT,                 -- JSON array, for host grant queries
    revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX certs_request ON certs(request_id);
CREATE TABLE nonces (
    nonce   TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
);
CREATE TABLE meta (
    k TEXT PRIMARY KEY,
    v TEXT NOT NULL
);
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    time      INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    event     TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"#,
    // 2: nonces become an append-only log. The service checks uniqueness in memory (loading
    // the replay window from here at startup); the old primary key put every nonce at a
    // random place in its index, one more page written per call at every commit.
    r#"
CREATE TABLE nonce_log (
    seen_at INTEGER NOT NULL,
    nonce   TEXT NOT NULL
);
CREATE INDEX nonce_log_seen ON nonce_log(seen_at);
INSERT INTO nonce_log (seen_at, nonce) SELECT seen_at, nonce FROM nonces ORDER BY seen_at;
DROP TABLE nonces;
"#,
    // 3: how each request was approved, and approval keys.
    //   approval_basis: JSON {"auto_rule": "auto:NAME"} or {"approvers": ["bob", ...]}: who
    //                   approved the window;
    //   approved_until: the end of the window that approval covered (an extension beyond it
    //                   needs the approvals the role asks for);
    //   user_keys.purpose: "login" (requests, everything) or "approval" (only approving,
    //                   denying, listing: never requesting).
    //   approvals.key_flags: what signed the approval (KEY_* bits), so approvals that no
    //                   longer meet a role's approval_key do not count.
    //   certs_user: the active-grants bound counts a user's live certificates.
    r#"
ALTER TABLE requests ADD COLUMN approval_basis TEXT;
ALTER TABLE requests ADD COLUMN approved_until INTEGER;
ALTER TABLE user_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'login';
ALTER TABLE approvals ADD COLUMN key_flags INTEGER NOT NULL DEFAULT 0;
CREATE INDEX certs_user ON certs(user, valid_before, revoked, request_id);
"#,
];

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Public keys (`ssh-ed25519 AAAA...`).
    pub keys: Vec<String>,
    /// Approval-only keys (`jit-ca user add-key NAME --key FILE --approval`).
    pub approval_keys: Vec<String>,
    /// When registered.
    pub created_at: u64,
}

/// A request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub id: String,
    pub user: String,
    pub role: String,
    pub reason: String,
    pub duration_secs: u64,
    pub hosts: Vec<String>,
    pub principals: Vec<String>,
    pub sudo: bool,
    pub public_key: String,
    pub created_at: u64,
    pub pending_expires_at: u64,
    pub approvals_required: u32,
    pub state: RequestState,
    pub denied_by: Option<String>,
    pub denial_reason: Option<String>,
    pub approved_at: Option<u64>,
    pub revoked_at: Option<u64>,
    pub revoked_by: Option<String>,
    /// How the request was approved (JSON, see migration 3); None before approval and for
    /// requests approved before migration 3.
    pub approval_basis: Option<String>,
    /// The end of the window the approval covered.
    pub approved_until: Option<u64>,
}

/// An issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRow {
    pub serial: u64,
    pub request_id: String,
    pub user: String,
    pub grant_id: Option<String>,
    pub valid_after: u64,
    pub valid_before: u64,
    pub issued_at: u64,
    pub certificate: String,
    pub grant_doc: Option<String>,
    pub grant_hosts: Vec<String>,
    pub revoked: bool,
}

/// The database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: Option<std::path::PathBuf>,
}

fn state_str(s: RequestState) -> &'static str {
    match s {
        RequestState::Pending => "pending",
        RequestState::Approved => "approved",
        RequestState::Denied => "denied",
        RequestState::Expired => "expired",
        RequestState::Revoked => "revoked",
    }
}

fn parse_state(s: &str) -> RequestState {
    match s {
        "approved" => RequestState::Approved,
        "denied" => RequestState::Denied,
        "expired" => RequestState::Expired,
        "revoked" => RequestState::Revoked,
        _ => RequestState::Pending,
    }
}

fn json_vec(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

fn to_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const REQUEST_COLS: &str = "id, user, role, reason, duration_secs, hosts, principals, sudo, public_key, created_at, \
     pending_expires_at, approvals_required, state, denied_by, denial_reason, approved_at, revoked_at, revoked_by, \
     approval_basis, approved_until";

fn request_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: r.get(0)?,
        user: r.get(1)?,
        role: r.get(2)?,
        reason: r.get(3)?,
        duration_secs: u(r.get(4)?),
        hosts: json_vec(&r.get::<_, String>(5)?),
        principals: json_vec(&r.get::<_, String>(6)?),
        sudo: r.get::<_, i64>(7)? != 0,
        public_key: r.get(8)?,
        created_at: u(r.get(9)?),
        pending_expires_at: u(r.get(10)?),
        approvals_required: u32::try_from(r.get::<_, i64>(11)?).unwrap_or(1),
        state: parse_state(&r.get::<_, String>(12)?),
        denied_by: r.get(13)?,
        denial_reason: r.get(14)?,
        approved_at: r.get::<_, Option<i64>>(15)?.map(u),
        revoked_at: r.get::<_, Option<i64>>(16)?.map(u),
        revoked_by: r.get(17)?,
        approval_basis: r.get(18)?,
        approved_until: r.get::<_, Option<i64>>(19)?.map(u),
    })
}

const CERT_COLS: &str = "serial, request_id, user, grant_id, valid_after, valid_before, issued_at, certificate, grant_doc, grant_hosts, revoked";

fn cert_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CertRow> {
    Ok(CertRow {
        serial: u(r.get(0)?),
        request_id: r.get(1)?,
        user: r.get(2)?,
        grant_id: r.get(3)?,
        valid_after: u(r.get(4)?),
        valid_before: u(r.get(5)?),
        issued_at: u(r.get(6)?),
        certificate: r.get(7)?,
        grant_doc: r.get(8)?,
        grant_hosts: r
            .get::<_, Option<String>>(9)?
            .map(|s| json_vec(&s))
            .unwrap_or_default(),
        revoked: r.get::<_, i64>(10)? != 0,
    })
}

impl Store {
    /// Opens (creating if needed, mode 0600) and migrates the database.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            crate::files::create_new(path, b"", 0o600)?;
        }
        let conn = Connection::open(path)?;
        let mut store = Self::init(conn)?;
        store.path = Some(path.to_path_buf());
        Ok(store)
    }

    /// Leaves checkpoints to a background connection (`service::commit::Checkpointer`).
    pub fn disable_auto_checkpoint(&self) -> Result<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When the WAL starts over, truncate the file back to this instead of keeping its
        // largest size.
        self.conn
            .pragma_update(None, "journal_size_limit", 32 * 1024 * 1024)?;
        Ok(())
    }

    /// The database file (None in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// An in-memory database (tests).
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Savepoints inside a transaction (one per change of a group commit) need a statement
        // journal; in memory it is not a temporary file created and unlinked per commit.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut store = Self { conn, path: None };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(CaError::Db(format!(
                "the database has schema version {version}, newer than this jit-ca knows ({known}); upgrade jit-ca"
            )));
        }
        for (n, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", n as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The schema version.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    /// Starts a write transaction (IMMEDIATE: takes the write lock at once, so concurrent
    /// CLI and service writers serialise instead of failing mid-way).
    pub fn tx(&mut self) -> Result<Transaction<'_>> {
        Ok(self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
    }

    /// Read access.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// A connection for reads only (`query_only`), to a database [`Store::open`] created.
pub fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "query_only", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// The connection of the background checkpointer (see `service::commit::Checkpointer`).
pub fn open_checkpointer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // A RESTART checkpoint holds off new writes while it waits for readers: give up after a
    // few milliseconds (the next round retries) rather than stall the writer for long.
    conn.busy_timeout(std::time::Duration::from_millis(5))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

// ---- users ----

/// Adds a user with keys. Errors if the name or a key is taken.
pub fn add_user(
    c: &Connection,
    name: &str,
    groups: &[String],
    keys: &[String],
    now: u64,
) -> Result<()> {
    let exists: Option<String> = c
        .prepare_cached("SELECT name FROM users WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    if exists.is_some() {
        return Err(CaError::Input(format!(
            "user {name:?} already exists (jit-ca user remove {name} first to replace it)"
        )));
    }
    c.prepare_cached("INSERT INTO users (name, groups, created_at) VALUES (?1, ?2, ?3)")?
        .execute(params![name, to_json(groups), i(now)])?;
    for k in keys {
        let owner: Option<String> = c
            .prepare_cached("SELECT user FROM user_keys WHERE key = ?1")?
            .query_row([k], |r| r.get(0))
            .optional()?;
        if let Some(o) = owner {
            return Err(CaError::Input(format!(
                "this key is already registered to user {o:?}; each key identifies one user"
            )));
        }
        c.prepare_cached("INSERT INTO user_keys (key, user) VALUES (?1, ?2)")?
            .execute(params![k, name])?;
    }
    Ok(())
}

/// Removes a user and their keys; false if there was none.
pub fn remove_user(c: &Connection, name: &str) -> Result<bool> {
    c.prepare_cached("DELETE FROM user_keys WHERE user = ?1")?
        .execute([name])?;
    let n = c
        .prepare_cached("DELETE FROM users WHERE name = ?1")?
        .execute([name])?;
    Ok(n > 0)
}

/// All users, by name.
pub fn list_users(c: &Connection) -> Result<Vec<User>> {
    let mut st = c.prepare_cached("SELECT name, groups, created_at FROM users ORDER BY name")?;
    let rows = st
        .query_map([], |r| {
            Ok(User {
                name: r.get(0)?,
                groups: json_vec(&r.get::<_, String>(1)?),
                keys: Vec::new(),
                approval_keys: Vec::new(),
                created_at: u(r.get(2)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(rows.len());
    let mut kst = c.prepare_cached(
        "SELECT key FROM user_keys WHERE user = ?1 AND purpose = ?2 ORDER BY key",
    )?;
    for mut user in rows {
        user.keys = kst
            .query_map(params![&user.name, KeyPurpose::Login.as_str()], |r| {
                r.get(0)
            })?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        user.approval_keys = kst
            .query_map(params![&user.name, KeyPurpose::Approval.as_str()], |r| {
                r.get(0)
            })?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        out.push(user);
    }
    Ok(out)
}

/// What a registered key may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// The user's key: every call (requests, approvals, ...).
    Login,
    /// A dedicated approval key: approving, denying, listing and reading; never requesting
    /// or extending (a role's `approval_key` may require one for approvals).
    Approval,
}

impl KeyPurpose {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Approval => "approval",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "approval" {
            Self::Approval
        } else {
            Self::Login
        }
    }
}

/// The user a key belongs to, with groups and the key's purpose.
pub fn user_by_key(c: &Connection, key: &str) -> Result<Option<(String, Vec<String>, KeyPurpose)>> {
    Ok(c.prepare_cached(
        "SELECT u.name, u.groups, k.purpose FROM user_keys k JOIN users u ON u.name = k.user WHERE k.key = ?1",
    )?
    .query_row([key], |r| {
        Ok((
            r.get::<_, String>(0)?,
            json_vec(&r.get::<_, String>(1)?),
            KeyPurpose::parse(&r.get::<_, String>(2)?),
        ))
    })
    .optional()?)
}

/// Registers one more key for an existing user. Errors if the user does not exist or the
/// key is registered already (to anyone, for any purpose: a login key cannot double as an
/// approval key).
pub fn add_user_key(c: &Connection, name: &str, key: &str, purpose: KeyPurpose) -> Result<()> {
    if user_groups(c, name)?.is_none() {
        return Err(CaError::Input(format!(
            "there is no user {name:?} (jit-ca user add {name} --key FILE first)"
        )));
    }
    let owner: Option<(String, String)> = c
        .prepare_cached("SELECT user, purpose FROM user_keys WHERE key = ?1")?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((o, p)) = owner {
        return Err(CaError::Input(format!(
            "this key is already registered to user {o:?} as a {p} key; an approval key must be a \
             separate key that is not used to log in (ssh-keygen -t ed25519-sk -f ~/.ssh/id_jit_approval)"
        )));
    }
    c.prepare_cached("INSERT INTO user_keys (key, user, purpose) VALUES (?1, ?2, ?3)")?
        .execute(params![key, name, purpose.as_str()])?;
    Ok(())
}

/// A user's groups, or None if the user does not exist.
pub fn user_groups(c: &Connection, name: &str) -> Result<Option<Vec<String>>> {
    Ok(
        c.prepare_cached("SELECT groups FROM users WHERE name = ?1")?
            .query_row([name], |r| Ok(json_vec(&r.get::<_, String>(0)?)))
            .optional()?,
    )
}

// ---- nonces ----

/// Records a nonce the service accepted (it checks uniqueness in memory, against the
/// nonces it loaded with [`recent_nonces`] at startup and those it accepted since).
pub fn log_nonce(c: &Connection, nonce: &str, now: u64) -> Result<()> {
    c.prepare_cached("INSERT INTO nonce_log (seen_at, nonce) VALUES (?1, ?2)")?
        .execute(params![i(now), nonce])?;
    Ok(())
}

/// The nonces seen at or after `since`.
pub fn recent_nonces(c: &Connection, since: u64) -> Result<Vec<(String, u64)>> {
    let mut st = c.prepare_cached("SELECT nonce, seen_at FROM nonce_log WHERE seen_at >= ?1")?;
    let rows = st.query_map([i(since)], |r| Ok((r.get::<_, String>(0)?, u(r.get(1)?))))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Forgets nonces seen before `cutoff` (they would fail the timestamp check anyway).
pub fn expire_nonces(c: &Connection, cutoff: u64) -> Result<usize> {
    Ok(
        c.prepare_cached("DELETE FROM nonce_log WHERE seen_at < ?1")?
            .execute([i(cutoff)])?,
    )
}

// ---- requests ----

/// Inserts a new request.
pub fn insert_request(c: &Connection, r: &RequestRow) -> Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO requests ({REQUEST_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"
    ))?
    .execute(params![
        r.id,
        r.user,
        r.role,
        r.reason,
        i(r.duration_secs),
        to_json(&r.hosts),
        to_json(&r.principals),
        r.sudo as i64,
        r.public_key,
        i(r.created_at),
        i(r.pending_expires_at),
        i64::from(r.approvals_required),
        state_str(r.state),
        r.denied_by,
        r.denial_reason,
        r.approved_at.map(i),
        r.revoked_at.map(i),
        r.revoked_by,
        r.approval_basis,
        r.approved_until.map(i),
    ])?;
    Ok(())
}

/// Writes the mutable fields of a request.
pub fn update_request(c: &Connection, r: &RequestRow) -> Result<()> {
    c.prepare_cached(
        "UPDATE requests SET state = ?2, denied_by = ?3, denial_reason = ?4, approved_at = ?5, \
         revoked_at = ?6, revoked_by = ?7, duration_secs = ?8, approval_basis = ?9, \
         approved_until = ?10 WHERE id = ?1",
    )?
    .execute(params![
        r.id,
        state_str(r.state),
        r.denied_by,
        r.denial_reason,
        r.approved_at.map(i),
        r.revoked_at.map(i),
        r.revoked_by,
        i(r.duration_secs),
        r.approval_basis,
        r.approved_until.map(i),
    ])?;
    Ok(())
}

/// One request.
pub fn get_request(c: &Connection, id: &str) -> Result<Option<RequestRow>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {REQUEST_COLS} FROM requests WHERE id = ?1"
    ))?
    .query_row([id], request_from_row)
    .optional()?)
}

/// Requests, newest first, optionally only in one state; at most `limit`.
pub fn list_requests(
    c: &Connection,
    state: Option<RequestState>,
    limit: u32,
) -> Result<Vec<RequestRow>> {
    let rows = match state {
        Some(s) => c
            .prepare_cached(&format!(
                "SELECT {REQUEST_COLS} FROM requests WHERE state = ?1 ORDER BY created_at DESC, id LIMIT ?2"
            ))?
            .query_map(params![state_str(s), limit], request_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
        None => c
            .prepare_cached(&format!(
                "SELECT {REQUEST_COLS} FROM requests ORDER BY created_at DESC, id LIMIT ?1"
            ))?
            .query_map(params![limit], request_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    };
    Ok(rows)
}

/// One user's requests, newest first; at most `limit`.
pub fn list_requests_of(c: &Connection, user: &str, limit: u32) -> Result<Vec<RequestRow>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {REQUEST_COLS} FROM requests WHERE user = ?1 ORDER BY created_at DESC, id LIMIT ?2"
    ))?
    .query_map(params![user, limit], request_from_row)?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Pending requests whose expiry has passed, and approved ones whose window has ended.
pub fn due_for_expiry(c: &Connection, now: u64) -> Result<Vec<RequestRow>> {
    Ok(c
        .prepare_cached(&format!(
            "SELECT {REQUEST_COLS} FROM requests r WHERE (state = 'pending' AND pending_expires_at <= ?1) \
             OR (state = 'approved' AND NOT EXISTS \
                 (SELECT 1 FROM certs c WHERE c.request_id = r.id AND c.valid_before > ?1))"
        ))?
        .query_map([i(now)], request_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// `approvals.key_flags`: signed with a registered approval key.
pub const KEY_APPROVAL: u32 = 1;
/// `approvals.key_flags`: signed with a FIDO (`sk-`) key.
pub const KEY_SK: u32 = 2;
/// `approvals.key_flags`: the FIDO signature asserted user presence (a touch).
pub const KEY_TOUCHED: u32 = 4;

/// Records an approval (`key_flags`: KEY_* bits of the key that signed it); false if this
/// user already approved.
pub fn add_approval(
    c: &Connection,
    request_id: &str,
    user: &str,
    at: u64,
    key_flags: u32,
) -> Result<bool> {
    let n = c
        .prepare_cached(
            "INSERT OR IGNORE INTO approvals (request_id, user, at, key_flags) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![request_id, user, i(at), i64::from(key_flags)])?;
    Ok(n == 1)
}

/// Approvals of a request with the KEY_* flags of the key that signed each, oldest first.
pub fn approvals_with_keys(c: &Connection, request_id: &str) -> Result<Vec<(ApprovalView, u32)>> {
    Ok(c.prepare_cached(
        "SELECT user, at, key_flags FROM approvals WHERE request_id = ?1 ORDER BY at, rowid",
    )?
    .query_map([request_id], |r| {
        Ok((
            ApprovalView {
                user: r.get(0)?,
                at: u(r.get(1)?),
            },
            u32::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
        ))
    })?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Approvals of a request, oldest first.
pub fn approvals(c: &Connection, request_id: &str) -> Result<Vec<ApprovalView>> {
    Ok(
        c.prepare_cached(
            "SELECT user, at FROM approvals WHERE request_id = ?1 ORDER BY at, rowid",
        )?
        .query_map([request_id], |r| {
            Ok(ApprovalView {
                user: r.get(0)?,
                at: u(r.get(1)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?,
    )
}

// ---- certificates ----

/// Reserves the next serial (strictly greater than every serial ever issued).
pub fn reserve_serial(c: &Connection, request_id: &str, user: &str, now: u64) -> Result<u64> {
    c.prepare_cached(
        "INSERT INTO certs (request_id, user, valid_after, valid_before, issued_at, certificate) \
         VALUES (?1, ?2, 0, 0, ?3, '')",
    )?
    .execute(params![request_id, user, i(now)])?;
    Ok(u(c.last_insert_rowid()))
}

/// Reserves `n` serials at once for certificates signed before their transaction (the
/// issuance fast path): returns the first; the block is `first..first + n`. AUTOINCREMENT's
/// counter is moved past the block in the same (committed) transaction, so
/// [`reserve_serial`] and later blocks never hand out these numbers, even after a restart
/// (unused serials of a block are skipped, never reused).
pub fn reserve_serial_block(c: &Connection, n: u64) -> Result<u64> {
    let seq: i64 = c
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'certs'")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let max: i64 = c
        .prepare_cached("SELECT COALESCE(MAX(serial), 0) FROM certs")?
        .query_row([], |r| r.get(0))?;
    let first = u(seq.max(max)) + 1;
    let last = first + n - 1;
    let updated = c
        .prepare_cached("UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'certs'")?
        .execute([i(last)])?;
    if updated == 0 {
        c.prepare_cached("INSERT INTO sqlite_sequence (name, seq) VALUES ('certs', ?1)")?
            .execute([i(last)])?;
    }
    Ok(first)
}

/// Stores a certificate under a serial from [`reserve_serial_block`].
pub fn insert_cert(c: &Connection, cert: &CertRow) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO certs (serial, request_id, user, grant_id, valid_after, valid_before, \
         issued_at, certificate, grant_doc, grant_hosts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        i(cert.serial),
        cert.request_id,
        cert.user,
        cert.grant_id,
        i(cert.valid_after),
        i(cert.valid_before),
        i(cert.issued_at),
        cert.certificate,
        cert.grant_doc,
        cert.grant_doc.as_ref().map(|_| to_json(&cert.grant_hosts)),
    ])?;
    Ok(())
}

/// Stores what was issued under a reserved serial.
pub fn complete_cert(c: &Connection, cert: &CertRow) -> Result<()> {
    c.prepare_cached(
        "UPDATE certs SET grant_id = ?2, valid_after = ?3, valid_before = ?4, certificate = ?5, \
         grant_doc = ?6, grant_hosts = ?7 WHERE serial = ?1",
    )?
    .execute(params![
        i(cert.serial),
        cert.grant_id,
        i(cert.valid_after),
        i(cert.valid_before),
        cert.certificate,
        cert.grant_doc,
        cert.grant_doc.as_ref().map(|_| to_json(&cert.grant_hosts)),
    ])?;
    Ok(())
}

/// The newest certificate of a request.
pub fn latest_cert(c: &Connection, request_id: &str) -> Result<Option<CertRow>> {
    Ok(c
        .prepare_cached(&format!(
            "SELECT {CERT_COLS} FROM certs WHERE request_id = ?1 AND certificate != '' ORDER BY serial DESC LIMIT 1"
        ))?
        .query_row([request_id], cert_from_row)
        .optional()?)
}

/// Marks the unrevoked certificates of a request revoked (an extension supersedes them);
/// returns those it revoked.
pub fn revoke_live_certs(c: &Connection, request_id: &str) -> Result<Vec<CertRow>> {
    let rows = c
        .prepare_cached(&format!(
            "SELECT {CERT_COLS} FROM certs WHERE request_id = ?1 AND revoked = 0 AND certificate != '' ORDER BY serial"
        ))?
        .query_map([request_id], cert_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    c.prepare_cached("UPDATE certs SET revoked = 1 WHERE request_id = ?1 AND revoked = 0")?
        .execute([request_id])?;
    Ok(rows)
}

/// How many of `user`'s requests have an unrevoked certificate valid after `now`.
pub fn active_grant_count(c: &Connection, user: &str, now: u64) -> Result<u64> {
    let n: i64 = c
        .prepare_cached(
            "SELECT COUNT(DISTINCT request_id) FROM certs WHERE user = ?1 AND valid_before > ?2 \
             AND revoked = 0",
        )?
        .query_row(params![user, i(now)], |r| r.get(0))?;
    Ok(u(n))
}

/// Marks every certificate of a request revoked; returns them.
pub fn revoke_certs(c: &Connection, request_id: &str) -> Result<Vec<CertRow>> {
    c.prepare_cached("UPDATE certs SET revoked = 1 WHERE request_id = ?1")?
        .execute([request_id])?;
    Ok(c.prepare_cached(&format!(
        "SELECT {CERT_COLS} FROM certs WHERE request_id = ?1 ORDER BY serial"
    ))?
    .query_map([request_id], cert_from_row)?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Revoked certificates whose window ended after `since` (older ones need no listing).
pub fn revoked_certs(c: &Connection, since: u64) -> Result<Vec<CertRow>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {CERT_COLS} FROM certs WHERE revoked = 1 AND valid_before > ?1 ORDER BY serial"
    ))?
    .query_map([i(since)], cert_from_row)?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Unrevoked certificates with a grant whose window has not ended at `now`.
pub fn active_grants(c: &Connection, now: u64) -> Result<Vec<CertRow>> {
    Ok(c
        .prepare_cached(&format!(
            "SELECT {CERT_COLS} FROM certs WHERE revoked = 0 AND grant_doc IS NOT NULL AND valid_before > ?1 ORDER BY serial"
        ))?
        .query_map([i(now)], cert_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

// ---- meta ----

/// A meta value.
pub fn meta_get(c: &Connection, k: &str) -> Result<Option<String>> {
    Ok(c.prepare_cached("SELECT v FROM meta WHERE k = ?1")?
        .query_row([k], |r| r.get(0))
        .optional()?)
}

/// Sets a meta value.
pub fn meta_set(c: &Connection, k: &str, v: &str) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
    )?
    .execute([k, v])?;
    Ok(())
}

// ---- audit ----

/// Appends an audit record (in the caller's transaction) and returns it.
pub fn append_audit(
    c: &Connection,
    time: u64,
    actor: &str,
    event: &str,
    details: &serde_json::Value,
) -> Result<Record> {
    let last: Option<(i64, String)> = c
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((s, h)) => (u(s) + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let details = details.to_string();
    let hash = audit::hash(&prev_hash, seq, time, actor, event, &details);
    c.prepare_cached(
        "INSERT INTO audit (seq, time, actor, event, details, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![i(seq), i(time), actor, event, details, prev_hash, hash])?;
    Ok(Record {
        seq,
        time,
        actor: actor.to_string(),
        event: event.to_string(),
        details,
        prev_hash,
        hash,
    })
}

/// Every audit record in storage order (rowid), for verification and export.
pub fn audit_records(c: &Connection) -> Result<Vec<Record>> {
    Ok(c.prepare(
        "SELECT seq, time, actor, event, details, prev_hash, hash FROM audit ORDER BY rowid",
    )?
    .query_map([], |r| {
        Ok(Record {
            seq: u(r.get(0)?),
            time: u(r.get(1)?),
            actor: r.get(2)?,
            event: r.get(3)?,
            details: r.get(4)?,
            prev_hash: r.get(5)?,
            hash: r.get(6)?,
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_and_chains() {
        let mut s = Store::open_in_memory().unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let tx = s.tx().unwrap();
        add_user(
            &tx,
            "alice",
            &["dev".into()],
            &["ssh-ed25519 AAAA".into()],
            1,
        )
        .unwrap();
        assert!(add_user(&tx, "alice", &[], &[], 1).is_err());
        assert!(add_user(&tx, "bob", &[], &["ssh-ed25519 AAAA".into()], 1).is_err());
        append_audit(&tx, 5, "a", "x", &serde_json::json!({})).unwrap();
        append_audit(&tx, 6, "a", "y", &serde_json::json!({"k": 1})).unwrap();
        tx.commit().unwrap();
        assert_eq!(audit::verify(audit_records(s.conn()).unwrap()), Ok(2));
        assert!(
            s.conn().execute("DELETE FROM audit", []).is_err(),
            "trigger refuses deletes"
        );
        log_nonce(s.conn(), "n1", 10).unwrap();
        log_nonce(s.conn(), "n2", 11).unwrap();
        assert_eq!(
            recent_nonces(s.conn(), 11).unwrap(),
            vec![("n2".to_string(), 11)]
        );
        assert_eq!(expire_nonces(s.conn(), 11).unwrap(), 1);
    }

    #[test]
    fn a_version_1_database_keeps_its_nonces_through_migration_2() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(MIGRATIONS[0]).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        c.execute(
            "INSERT INTO nonces (nonce, seen_at) VALUES ('aa', 100), ('bb', 200)",
            [],
        )
        .unwrap();
        let s = Store::init(c).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let mut got = recent_nonces(s.conn(), 0).unwrap();
        got.sort();
        assert_eq!(got, vec![("aa".into(), 100), ("bb".into(), 200)]);
    }
}

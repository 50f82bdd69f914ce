//! The PostgreSQL schema: SQLite's (store/sqlite/migrations.rs) at its latest version, in
//! PostgreSQL's terms, and its migrations. The version numbering is SQLite's: [`BASELINE`]
//! is the whole schema of SQLite version `BASELINE.0`; [`LATER`] holds one entry per later
//! SQLite migration (a unit test fails when SQLite gains a migration without its twin here).
//!
//! Differences from SQLite, each on purpose: `BIGINT` for INTEGER; every TEXT column
//! `COLLATE "C"` (SQLite compares bytes; PostgreSQL would follow the database's locale);
//! `"user"` quoted (reserved); serials from the sequence `cert_serial_blocks` (INCREMENT BY
//! 1024: a block and a single serial are each one `nextval`, unique across replicas, not
//! dense); approvals ordered by an identity column (SQLite's rowid); the outbox `seq` from
//! the sequence `outbox_seq`, allocated under the audit lock (commit order = seq order);
//! `nonce_log` keyed by the nonce (the cross-replica authority on replays); the audit table
//! append-only by triggers on UPDATE, DELETE and TRUNCATE; the PG-only `replicas` table
//! (heartbeats) and `jit_schema(version)` (SQLite's `PRAGMA user_version`). Audit details,
//! grant documents and payloads stay TEXT (the hashes and signatures cover exact bytes).

use super::conn::{PgConn, get};
use crate::error::{CaError, Result};

/// Advisory lock held (session level) while migrating.
pub(crate) const MIGRATE_LOCK: i64 = 0x6a69_7400_0002;

/// The schema as of SQLite migration `BASELINE.0`.
pub(crate) const BASELINE: (u32, &str) = (
    8,
    r#"
CREATE TABLE users (
    name       TEXT COLLATE "C" PRIMARY KEY,
    groups     TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    contact    TEXT COLLATE "C"
);
CREATE TABLE user_keys (
    key     TEXT COLLATE "C" PRIMARY KEY,
    "user"  TEXT COLLATE "C" NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    purpose TEXT COLLATE "C" NOT NULL DEFAULT 'login'
);
CREATE INDEX user_keys_user ON user_keys("user");
CREATE TABLE requests (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    "user"             TEXT COLLATE "C" NOT NULL,
    role               TEXT COLLATE "C" NOT NULL,
    reason             TEXT COLLATE "C" NOT NULL,
    duration_secs      BIGINT NOT NULL,
    hosts              TEXT COLLATE "C" NOT NULL,
    principals         TEXT COLLATE "C" NOT NULL,
    sudo               BIGINT NOT NULL,
    public_key         TEXT COLLATE "C" NOT NULL,
    created_at         BIGINT NOT NULL,
    pending_expires_at BIGINT NOT NULL,
    approvals_required BIGINT NOT NULL,
    state              TEXT COLLATE "C" NOT NULL,
    denied_by          TEXT COLLATE "C",
    denial_reason      TEXT COLLATE "C",
    approved_at        BIGINT,
    revoked_at         BIGINT,
    revoked_by         TEXT COLLATE "C",
    approval_basis     TEXT COLLATE "C",
    approved_until     BIGINT,
    ticket             TEXT COLLATE "C",
    not_before         BIGINT,
    revocation_reason  TEXT COLLATE "C",
    cancelled_at       BIGINT,
    cancel_reason      TEXT COLLATE "C",
    denied_at          BIGINT,
    session_bound      BIGINT NOT NULL DEFAULT 0,
    reminded_until     BIGINT
);
CREATE INDEX requests_state ON requests(state);
CREATE INDEX requests_user ON requests("user");
CREATE INDEX requests_role ON requests(role, state, created_at);
CREATE TABLE approvals (
    ord        BIGINT GENERATED ALWAYS AS IDENTITY,
    request_id TEXT COLLATE "C" NOT NULL REFERENCES requests(id),
    "user"     TEXT COLLATE "C" NOT NULL,
    at         BIGINT NOT NULL,
    key_flags  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, "user")
);
CREATE INDEX approvals_user ON approvals("user");
CREATE SEQUENCE cert_serial_blocks INCREMENT BY 1024 START 1;
CREATE TABLE certs (
    serial       BIGINT PRIMARY KEY,
    request_id   TEXT COLLATE "C" NOT NULL REFERENCES requests(id),
    "user"       TEXT COLLATE "C" NOT NULL,
    grant_id     TEXT COLLATE "C",
    valid_after  BIGINT NOT NULL,
    valid_before BIGINT NOT NULL,
    issued_at    BIGINT NOT NULL,
    certificate  TEXT COLLATE "C" NOT NULL,
    grant_doc    TEXT COLLATE "C",
    grant_hosts  TEXT COLLATE "C",
    revoked      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX certs_request ON certs(request_id);
CREATE INDEX certs_user ON certs("user", valid_before, revoked, request_id);
CREATE INDEX certs_grant ON certs(grant_id);
CREATE TABLE nonce_log (
    nonce   TEXT COLLATE "C" PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
CREATE INDEX nonce_log_seen ON nonce_log(seen_at);
CREATE TABLE meta (
    k TEXT COLLATE "C" PRIMARY KEY,
    v TEXT COLLATE "C" NOT NULL
);
CREATE TABLE audit (
    seq       BIGINT PRIMARY KEY,
    time      BIGINT NOT NULL,
    actor     TEXT COLLATE "C" NOT NULL,
    event     TEXT COLLATE "C" NOT NULL,
    details   TEXT COLLATE "C" NOT NULL,
    prev_hash TEXT COLLATE "C" NOT NULL,
    hash      TEXT COLLATE "C" NOT NULL
);
CREATE FUNCTION jit_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only';
END
$f$;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    FOR EACH ROW EXECUTE FUNCTION jit_audit_append_only();
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION jit_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION jit_audit_append_only();
-- A JSON object's text field (json_extract's role): NULL for text that is not JSON (only a
-- hand-edited row), never an error. Indexed for the request page (SQLite migration 8).
CREATE FUNCTION jit_json_text(d TEXT, k TEXT) RETURNS TEXT
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$
BEGIN
    IF left(ltrim(d), 1) <> '{' THEN
        RETURN NULL;
    END IF;
    RETURN (d::json ->> k) COLLATE "C";
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$f$;
CREATE INDEX audit_request ON audit(jit_json_text(details, 'request_id'), seq);
CREATE SEQUENCE outbox_seq;
CREATE TABLE notify_outbox (
    seq        BIGINT PRIMARY KEY DEFAULT nextval('outbox_seq'),
    id         TEXT COLLATE "C" NOT NULL,
    type       TEXT COLLATE "C" NOT NULL,
    request_id TEXT COLLATE "C",
    time       BIGINT NOT NULL,
    payload    TEXT COLLATE "C" NOT NULL
);
ALTER SEQUENCE outbox_seq OWNED BY notify_outbox.seq;
CREATE TABLE notify_delivery (
    seq         BIGINT NOT NULL REFERENCES notify_outbox(seq),
    sink        TEXT COLLATE "C" NOT NULL,
    state       TEXT COLLATE "C" NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    next_at     BIGINT NOT NULL,
    last_status BIGINT,
    last_error  TEXT COLLATE "C",
    done_at     BIGINT,
    since       BIGINT,
    PRIMARY KEY (seq, sink)
);
CREATE INDEX notify_delivery_due ON notify_delivery(state, next_at);
CREATE INDEX notify_outbox_request ON notify_outbox(request_id, seq);
CREATE TABLE web_logins (
    token_hash      TEXT COLLATE "C" PRIMARY KEY,
    "user"          TEXT COLLATE "C" NOT NULL,
    key_fingerprint TEXT COLLATE "C" NOT NULL,
    key_flags       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    audit_seq       BIGINT
);
CREATE INDEX web_logins_expires ON web_logins(expires_at);
CREATE INDEX web_logins_user ON web_logins("user", used_at);
CREATE TABLE web_sessions (
    id                TEXT COLLATE "C" PRIMARY KEY,
    secret_hash       TEXT COLLATE "C" UNIQUE NOT NULL,
    "user"            TEXT COLLATE "C" NOT NULL,
    key_fingerprint   TEXT COLLATE "C" NOT NULL,
    key_flags         BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    last_seen         BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    idle_timeout_secs BIGINT NOT NULL,
    ended_at          BIGINT,
    ended_by          TEXT COLLATE "C"
);
CREATE INDEX web_sessions_user ON web_sessions("user", ended_at);
CREATE TABLE replicas (
    name                       TEXT COLLATE "C" PRIMARY KEY,
    host                       TEXT COLLATE "C" NOT NULL,
    version                    TEXT COLLATE "C" NOT NULL,
    started_at                 BIGINT NOT NULL,
    last_seen                  BIGINT NOT NULL,
    served_revocation_sequence BIGINT NOT NULL,
    loaded_audit_seq           BIGINT NOT NULL,
    policy_digest              TEXT COLLATE "C" NOT NULL,
    keys_digest                TEXT COLLATE "C" NOT NULL,
    jobs                       TEXT COLLATE "C" NOT NULL
);
"#,
);

/// The migrations after [`BASELINE`], one per SQLite migration after `BASELINE.0` (never
/// edit one that has shipped; add one with each SQLite migration).
pub(crate) const LATER: &[&str] = &[
    // 9: `requests.window_end` (the latest `valid_before` of the request's certificates, 0
    //    for none), kept by triggers on certs, and the indexes that let the expiry sweep find
    //    what is due in O(due) (SQLite's migration 9).
    r#"
ALTER TABLE requests ADD COLUMN window_end BIGINT NOT NULL DEFAULT 0;
UPDATE requests r SET window_end =
    COALESCE((SELECT MAX(c.valid_before) FROM certs c WHERE c.request_id = r.id), 0);
CREATE INDEX requests_window_due ON requests(state, window_end);
CREATE INDEX requests_pending_due ON requests(state, pending_expires_at);
CREATE FUNCTION jit_window_end_of(req TEXT) RETURNS void LANGUAGE sql AS $f$
    UPDATE requests SET window_end =
        COALESCE((SELECT MAX(c.valid_before) FROM certs c WHERE c.request_id = req), 0)
     WHERE id = req;
$f$;
CREATE FUNCTION jit_certs_window() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE requests SET window_end = NEW.valid_before
         WHERE id = NEW.request_id AND window_end < NEW.valid_before;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM jit_window_end_of(NEW.request_id);
        IF OLD.request_id IS DISTINCT FROM NEW.request_id THEN
            PERFORM jit_window_end_of(OLD.request_id);
        END IF;
    ELSE
        PERFORM jit_window_end_of(OLD.request_id);
    END IF;
    RETURN NULL;
END;
$f$;
CREATE TRIGGER certs_window_insert AFTER INSERT ON certs
    FOR EACH ROW EXECUTE FUNCTION jit_certs_window();
CREATE TRIGGER certs_window_update AFTER UPDATE OF valid_before, request_id ON certs
    FOR EACH ROW EXECUTE FUNCTION jit_certs_window();
CREATE TRIGGER certs_window_delete AFTER DELETE ON certs
    FOR EACH ROW EXECUTE FUNCTION jit_certs_window();
"#,
];

/// The schema version this build knows.
pub(crate) fn known() -> u32 {
    BASELINE.0 + LATER.len() as u32
}

/// The stored schema version (0: none yet).
pub(crate) fn version(c: &PgConn) -> Result<u32> {
    let exists: bool = get(
        &c.one("SELECT to_regclass('jit_schema') IS NOT NULL", &[])?,
        0,
    )?;
    if !exists {
        return Ok(0);
    }
    let v: Option<i64> = match c.opt("SELECT max(version) FROM jit_schema", &[])? {
        Some(row) => get(&row, 0)?,
        None => None,
    };
    Ok(v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0))
}

/// How far [`migrate`] may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Migrate {
    /// Create the schema or bring an older one up to date (`serve`, `db copy`).
    Upgrade,
    /// Create the schema of an empty database (no older replica can be using it), but
    /// refuse an older schema: an operator command of a newer build must not migrate a
    /// database older replicas are still serving during a rolling upgrade.
    CreateOnly,
}

/// Brings the schema to [`known`] under a session advisory lock (replicas starting together
/// migrate one after the other; the second finds nothing to do). A database newer than this
/// build is refused; so is an older one with [`Migrate::CreateOnly`].
pub(crate) fn migrate(c: &PgConn, how: Migrate) -> Result<u32> {
    // Another replica's migration may take a while: wait for it longer than lock_timeout.
    c.batch("SET lock_timeout = '120s'")?;
    c.exec("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK])?;
    let r = migrate_locked(c, how);
    let unlocked = c.exec("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK]);
    let reset = c.batch("SET lock_timeout = '5s'");
    let v = r?;
    unlocked?;
    reset?;
    Ok(v)
}

fn migrate_locked(c: &PgConn, how: Migrate) -> Result<u32> {
    let known = known();
    let mut v = version(c)?;
    if v > known {
        return Err(CaError::Db(format!(
            "the database has schema version {v}, newer than this jit-ca knows ({known}); upgrade jit-ca"
        )));
    }
    if how == Migrate::CreateOnly && v != 0 && v < known {
        return Err(CaError::Input(format!(
            "the database has schema version {v}, older than this jit-ca's ({known}); run \
             `jit-ca serve` (or `jit-ca db copy`) of this version to migrate it (once every \
             replica is ready for it: docs/ha.md), or use the jit-ca that matches the database"
        )));
    }
    if v == 0 {
        let r = c.batch(&format!(
            "BEGIN; {} CREATE TABLE jit_schema (version BIGINT NOT NULL); \
             INSERT INTO jit_schema (version) VALUES ({}); COMMIT;",
            BASELINE.1, BASELINE.0
        ));
        if let Err(e) = r {
            let _ = c.batch("ROLLBACK");
            return Err(e);
        }
        v = BASELINE.0;
    }
    for (n, sql) in LATER.iter().enumerate() {
        let to = BASELINE.0 + n as u32 + 1;
        if to <= v {
            continue;
        }
        let r = c.batch(&format!(
            "BEGIN; {sql} UPDATE jit_schema SET version = {to}; COMMIT;"
        ));
        if let Err(e) = r {
            let _ = c.batch("ROLLBACK");
            return Err(e);
        }
        v = to;
    }
    Ok(v)
}

#[cfg(test)]
mod pg {
    #![allow(clippy::unwrap_used)]
    use super::super::PgStore;
    use super::super::testdb::{fresh, sql};
    use super::*;

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn a_version_8_database_gets_window_end_for_the_rows_it_has() {
        let s = fresh();
        sql(
            &s,
            &format!(
                "BEGIN; {} CREATE TABLE jit_schema (version BIGINT NOT NULL); \
                 INSERT INTO jit_schema (version) VALUES ({}); COMMIT;",
                BASELINE.1, BASELINE.0
            ),
        )
        .unwrap();
        let cols = "id, \"user\", role, reason, duration_secs, hosts, principals, sudo, \
                    public_key, created_at, pending_expires_at, approvals_required, state";
        for (id, state) in [
            ("r-two", "approved"),
            ("r-none", "approved"),
            ("r-pending", "pending"),
        ] {
            sql(
                &s,
                &format!(
                    "INSERT INTO requests ({cols}) VALUES ('{id}', 'alice', 'db', 'r', 60, '[]', \
                     '[]', 1, 'k', 10, 610, 1, '{state}')"
                ),
            )
            .unwrap();
        }
        sql(
            &s,
            "INSERT INTO certs (serial, request_id, \"user\", valid_after, valid_before, issued_at, \
             certificate) VALUES (1, 'r-two', 'alice', 1, 800, 1, 'c'), \
             (2, 'r-two', 'alice', 1, 1300, 1, 'c')",
        )
        .unwrap();
        let pg = PgStore::connect(&s, "test").unwrap();
        assert_eq!(pg.schema_version().unwrap(), known());
        let due = |now| -> Vec<String> {
            pg.read(|c| c.due_ids_for_expiry(now, 10))
                .unwrap()
                .unwrap()
                .into_iter()
                .map(|(id, _)| id)
                .collect()
        };
        assert_eq!(due(600), ["r-none"], "r-two's window ends at 1300");
        assert_eq!(due(1299), ["r-pending", "r-none"]);
        assert_eq!(due(1300), ["r-pending", "r-none", "r-two"]);
        // The triggers work on the migrated database.
        sql(
            &s,
            "INSERT INTO certs (serial, request_id, \"user\", valid_after, valid_before, issued_at, \
             certificate) VALUES (3, 'r-none', 'alice', 1, 2000, 1, 'c')",
        )
        .unwrap();
        assert_eq!(due(1300), ["r-pending", "r-two"]);
        sql(&s, "UPDATE certs SET valid_before = 1250 WHERE serial = 2").unwrap();
        assert_eq!(due(1299), ["r-pending", "r-two"], "shortened to 1250");
        sql(&s, "DELETE FROM certs WHERE serial = 3").unwrap();
        assert_eq!(due(1299), ["r-pending", "r-none", "r-two"]);
    }
}

//! Schema changes: numbered migrations recorded in `PRAGMA user_version`. Add one at the end;
//! never edit one that has shipped.

pub(crate) const MIGRATIONS: &[&str] = &[
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
    // 4: the requester's workflow (issue 13).
    //   ticket:     what the role's reason_pattern matched in the reason (the whole match, or
    //               its capture group `ticket`); NULL without a pattern;
    //   not_before: the requested start of a later window (`jit request --start`); NULL: the
    //               window starts at approval;
    //   revocation_reason, cancelled_at, cancel_reason, denied_at: what `jit show` says about
    //               how a request ended (revoked_by / revoked_at, denied_by exist since 1);
    //   requests_role: approvers' lists are filtered by role before their limit.
    r#"
ALTER TABLE requests ADD COLUMN ticket TEXT;
ALTER TABLE requests ADD COLUMN not_before INTEGER;
ALTER TABLE requests ADD COLUMN revocation_reason TEXT;
ALTER TABLE requests ADD COLUMN cancelled_at INTEGER;
ALTER TABLE requests ADD COLUMN cancel_reason TEXT;
ALTER TABLE requests ADD COLUMN denied_at INTEGER;
CREATE INDEX requests_role ON requests(role, state, created_at);
"#,
    // 5: session-bound elevation (issue 14): the role's `session_bound` when the request was
    //    made (like hosts and sudo); issuance turns it on when the role says so then, never
    //    off. Existing requests were made under roles without the key: 0.
    r#"
ALTER TABLE requests ADD COLUMN session_bound INTEGER NOT NULL DEFAULT 0;
"#,
    // 6: notifications (issue 15). The outbox: one row per event, written by append_audit's
    //    hook in the transaction of the change; deliveries: one row per (event, sink), made by
    //    the worker's fan-out (so config changes apply to events not yet fanned out).
    //    users.contact: the requester's handle shown in notifications (`--contact`);
    //    requests.reminded_until: the window end an expiry reminder was sent for.
    //    `id` has no UNIQUE index on purpose: ids are hash-derived (unique by construction,
    //    the audit chain's hash plus `-N`), so an index on them puts every insert on a random
    //    page (measured: 8-26 % of issuance throughput, like the nonces of migration 2); the
    //    one lookup by id, `jit-ca notify retry`, scans the pruned outbox instead.
    r#"
CREATE TABLE notify_outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL,            -- evt_...: webhook-id, the idempotency key
    type       TEXT NOT NULL,            -- notify::event::Kind::as_str
    request_id TEXT,                     -- deliveries of one request go in seq order
    time       INTEGER NOT NULL,
    payload    TEXT NOT NULL             -- Event::payload(): the exact bytes signed and sent
);
CREATE TABLE notify_delivery (
    seq         INTEGER NOT NULL REFERENCES notify_outbox(seq),
    sink        TEXT NOT NULL,
    state       TEXT NOT NULL,           -- pending | delivered | dead
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,        -- due time of the next attempt
    last_status INTEGER,                 -- HTTP status of the last answer
    last_error  TEXT,                    -- FailKind::as_str + detail (never the URL)
    done_at     INTEGER,
    since       INTEGER,                 -- a resend's time (jit-ca notify retry): retried
                                         -- for notify_max_age from then, not the event
    PRIMARY KEY (seq, sink)
);
CREATE INDEX notify_delivery_due ON notify_delivery(state, next_at);
CREATE INDEX notify_outbox_request ON notify_outbox(request_id, seq);
ALTER TABLE users ADD COLUMN contact TEXT;
ALTER TABLE requests ADD COLUMN reminded_until INTEGER;
"#,
    // 7: web sessions (issue 16). A one-time login link and a session store only the SHA-256
    //    (hex) of their secret, never the secret: a copy of the database logs nobody in.
    //    web_logins: one row per `jit web` (token valid 60 s, used_at set when consumed:
    //    single use); audit_seq: the `web_login_link` record that keeps the signed call.
    //    web_sessions: id `ws-...` is public (audit records, page footer); ended_at/ended_by
    //    when logged out or ended by an operator; expires_at = created_at + session_max_age
    //    and idle_timeout_secs = session_idle_timeout, both as configured at login (a session
    //    is judged by the shorter of these and the current settings).
    r#"
CREATE TABLE web_logins (
    token_hash      TEXT PRIMARY KEY,
    user            TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    key_flags       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER,
    audit_seq       INTEGER
);
CREATE INDEX web_logins_expires ON web_logins(expires_at);
CREATE INDEX web_logins_user ON web_logins(user, used_at);
CREATE TABLE web_sessions (
    id              TEXT PRIMARY KEY,
    secret_hash     TEXT UNIQUE NOT NULL,
    user            TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    key_flags       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    idle_timeout_secs INTEGER NOT NULL,
    ended_at        INTEGER,
    ended_by        TEXT
);
CREATE INDEX web_sessions_user ON web_sessions(user, ended_at);
"#,
    // 8: a request's audit records by index (issue 16, the request page): the expression is
    //    spelled exactly as `views::REQUEST_ID` so SQLite uses it (no scan of the trail per
    //    page view; `request_audit_queries_use_the_index_not_a_scan`). Guarded by
    //    json_valid: a record whose details are not JSON (only a hand-edited database) must
    //    neither fail this migration nor any later insert.
    r#"
CREATE INDEX audit_request ON audit((CASE WHEN json_valid(details) THEN json_extract(details, '$.request_id') END), seq);
"#,
    // 9: the expiry sweep finds what is due by index, in O(due) rather than by a scan of
    //    every approved request with a probe into certs each (issue 18). `window_end` is the
    //    latest `valid_before` of any certificate of the request (0: none), kept by triggers
    //    on certs, so every writer of a certificate (issuance, extension, the reserved-serial
    //    path, `db copy`, any replica) keeps it without knowing of it (a certificate cannot
    //    precede its request: certs.request_id is a foreign key). An approved request
    //    is due when `window_end <= now` (the same as "no certificate valid after now");
    //    a pending one when `pending_expires_at <= now`.
    r#"
ALTER TABLE requests ADD COLUMN window_end INTEGER NOT NULL DEFAULT 0;
UPDATE requests SET window_end =
    COALESCE((SELECT MAX(c.valid_before) FROM certs c WHERE c.request_id = requests.id), 0);
CREATE INDEX requests_window_due ON requests(state, window_end);
CREATE INDEX requests_pending_due ON requests(state, pending_expires_at);
CREATE TRIGGER certs_window_insert AFTER INSERT ON certs
BEGIN
    UPDATE requests SET window_end = NEW.valid_before
     WHERE id = NEW.request_id AND window_end < NEW.valid_before;
END;
CREATE TRIGGER certs_window_update AFTER UPDATE OF valid_before, request_id ON certs
BEGIN
    UPDATE requests SET window_end =
        COALESCE((SELECT MAX(c.valid_before) FROM certs c WHERE c.request_id = requests.id), 0)
     WHERE id IN (OLD.request_id, NEW.request_id);
END;
CREATE TRIGGER certs_window_delete AFTER DELETE ON certs
BEGIN
    UPDATE requests SET window_end =
        COALESCE((SELECT MAX(c.valid_before) FROM certs c WHERE c.request_id = requests.id), 0)
     WHERE id = OLD.request_id;
END;
"#,
];

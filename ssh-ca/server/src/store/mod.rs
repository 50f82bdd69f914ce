//! Storage: users and their keys, requests, approvals, issued certificates, seen nonces,
//! published revocation state, and the audit chain.
//!
//! **The seam.** What the service does with its records goes through [`StoreOps`]: the
//! operations one transaction (or one read snapshot) offers. The request lifecycle
//! (`service::lifecycle`) never sees the store at all; the service's orchestration code
//! calls `StoreOps` methods. SQLite ([`sqlite`]) implements it on `rusqlite::Connection`
//! (a transaction derefs to one); PostgreSQL ([`postgres`]) implements the same trait and
//! its own transaction runners (`PgStore::transact`, `PgStore::batch_runner`). [`Db`] is
//! the database a data directory's config.toml names (operator commands open it);
//! `service::backend` runs the service on either.
//!
//! **Parse at the boundary.** A row read from storage comes back typed or as an error: a
//! request's state is a [`RequestState`] (an unknown spelling is
//! [`CaError::UnknownRequestState`], never `Pending`), its public key an
//! [`ssh_key::PublicKey`].
//!
//! Durability (SQLite): WAL mode with `synchronous=FULL`, so a transaction reported committed
//! survives power loss (serials are never reused; approvals and revocations are never lost).
//! Every function here is blocking: the HTTP layer calls the service from `spawn_blocking`.

pub mod audit;
mod db;
pub mod operator;
pub mod postgres;
pub mod sqlite;
pub mod views;
mod web;

use std::collections::HashMap;

use ssh_key::PublicKey;

use crate::audit::Record;
use crate::error::{CaError, Result};
use jit_api::wire::{ApprovalView, RequestState};

pub use db::Db;
pub use web::{WebLoginRow, WebSessionRow};

// SQLite's store and its runners' connections. What operator commands do with users, keys
// and the audit trail are `StoreOps` methods (on either database, through `Db`).
pub use sqlite::{Store, open_checkpointer, open_reader};

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
    /// The handle notifications show for the user (`--contact`, `user set-contact`).
    pub contact: Option<String>,
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
    /// Whether the grant is bound to the SSH connection that presents the certificate: the
    /// role's `session_bound` when the request was made (migration 5), turned on at issuance
    /// when the role says so then (binding only narrows a grant).
    pub session_bound: bool,
    /// The key to certify: parsed once, at admission (stored as its line without comment).
    pub public_key: PublicKey,
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
    /// What the role's `reason_pattern` matched in the reason (migration 4).
    pub ticket: Option<String>,
    /// The requested start of a later window (`--start`); None: the window starts at
    /// approval.
    pub not_before: Option<u64>,
    /// Why it was revoked.
    pub revocation_reason: Option<String>,
    /// When its requester cancelled it.
    pub cancelled_at: Option<u64>,
    /// Why its requester cancelled it (None: no reason given).
    pub cancel_reason: Option<String>,
    /// When it was denied.
    pub denied_at: Option<u64>,
}

/// What [`StoreOps::list_visible`] returns: the requests of `roles` (those the caller may
/// approve) and the caller's own; with `pending_at`, only the pending requests of `roles`
/// not expired at that time, not the caller's own.
#[derive(Debug, Clone, Copy)]
pub struct ListQuery<'a> {
    /// The caller.
    pub user: &'a str,
    /// The roles the caller may approve (as the policy is now).
    pub roles: &'a [&'a str],
    /// Only pending requests not expired at this time (`jit list --pending`).
    pub pending_at: Option<u64>,
    /// At most this many.
    pub limit: u32,
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

/// An active grant without its texts (see [`StoreOps::active_grants_lean`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeanGrant {
    pub serial: u64,
    pub grant_hosts: Vec<String>,
    pub valid_before: u64,
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

    /// From storage: an unknown purpose is an error (fail closed: never a login key).
    /// `user` is whose key it is (named in the error, to say which row to repair).
    pub(crate) fn parse(s: &str, user: &str) -> crate::error::Result<Self> {
        match s {
            "login" => Ok(Self::Login),
            "approval" => Ok(Self::Approval),
            other => Err(crate::error::CaError::UnknownKeyPurpose {
                user: user.to_string(),
                purpose: other.to_string(),
            }),
        }
    }
}

/// `approvals.key_flags`: signed with a registered approval key.
pub const KEY_APPROVAL: u32 = 1;
/// `approvals.key_flags`: signed with a FIDO (`sk-`) key.
pub const KEY_SK: u32 = 2;
/// `approvals.key_flags`: the FIDO signature asserted user presence (a touch).
pub const KEY_TOUCHED: u32 = 4;
/// `approvals.key_flags`: a click on a web page (a session's form), not a signed call: it
/// never counts for a role whose approvals need the key itself
/// (`Role::needs_key_to_approve`), whenever that became true.
pub const KEY_WEB: u32 = 8;

/// What `revoke-grant` finds for a serial or grant id this CA issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRef {
    pub serial: u64,
    pub grant_id: Option<String>,
    pub request_id: String,
    pub revoked: bool,
}

/// A certificate as revocation sees it: only the columns the KRL and the revocation list
/// need. Reading it parses none of the display or publication columns (`grant_hosts`), so a
/// damaged one never stops a revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedCert {
    pub serial: u64,
    pub grant_id: Option<String>,
    pub user: String,
    pub valid_before: u64,
    pub revoked: bool,
}

/// A counter kept in the meta table (`revocation_sequence`, the operator-change generation):
/// 0 while it was never stored; one that does not parse is an error, never 0 (a sequence
/// read as 0 would be published again from 1).
pub fn meta_counter(c: &dyn StoreOps, key: &'static str) -> Result<u64> {
    match c.meta_get(key)? {
        None => Ok(0),
        Some(s) => s.trim().parse().map_err(|e| CaError::BadStoredValue {
            what: key,
            detail: format!("meta key {key}: {s:?}: {e}"),
        }),
    }
}

/// A delivery made dead by the fan-out ([`StoreOps::notify_fan_out_with`]): a row of a
/// type this build does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOutDead {
    /// The event id.
    pub id: String,
    /// The stored type, as stored.
    pub kind: String,
    /// The request it concerns, if any.
    pub request_id: Option<String>,
    /// The sink.
    pub sink: String,
    /// Why (the delivery's `last_error`).
    pub error: String,
}

/// A delivery due to a sink ([`StoreOps::notify_due`]): the outbox row and its attempts so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The outbox sequence number (deliveries are identified by `seq` and sink).
    pub seq: u64,
    /// The event id (`evt_...`): `webhook-id`, the same on every attempt.
    pub id: String,
    /// The event type (`notify::event::Kind::as_str`).
    pub kind: String,
    /// The request concerned, for `request.*` events (ordered per request and sink).
    pub request_id: Option<String>,
    /// When the change happened (Unix seconds).
    pub time: u64,
    /// The exact bytes signed and sent (`notify::event::Event::payload`).
    pub payload: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Where its retry horizon (`notify_max_age`) starts: the event's `time`, or, after a
    /// resend (`jit-ca notify retry`), the resend's time (a fresh schedule).
    pub since: u64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum DeliveryState {
    /// Not delivered yet: the next attempt is due at `next_at`.
    Pending { next_at: u64 },
    /// A receiver accepted it (2xx).
    Delivered,
    /// Given up (`notify_max_age` passed); `jit-ca notify retry` sends it again.
    Dead,
}

impl DeliveryState {
    /// As stored (`notify_delivery.state`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending { .. } => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

/// The outcome of one attempt ([`StoreOps::notify_record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The delivery's outbox sequence number ([`Due::seq`]).
    pub seq: u64,
    /// Attempts made, this one included.
    pub attempts: u32,
    /// The delivery's attempts when it was read ([`Due::attempts`]): the outcome is
    /// recorded only if they are still that (with several replicas, a notify leader that
    /// lost its lock mid-tick and the new one may attempt the same delivery; only the first
    /// to record it counts). `None`: recorded whatever they are (tests, tools).
    pub expected_attempts: Option<u32>,
    /// What the delivery becomes.
    pub state: DeliveryState,
    /// When the attempt was made (Unix seconds).
    pub at: u64,
    /// The HTTP status of the answer, if there was one.
    pub status: Option<u16>,
    /// Why it failed (never the URL); None when delivered.
    pub error: Option<String>,
}

/// The last failed attempt of a sink.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LastError {
    /// When the attempt was made.
    pub at: u64,
    /// The event it was for.
    pub id: String,
    /// The HTTP status of the answer, if there was one.
    pub status: Option<u16>,
    /// Why it failed.
    pub error: String,
}

/// One sink's undelivered deliveries, as stored (sinks that have pending or dead ones; the
/// caller adds the configured sinks that have none).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SinkStatus {
    /// The sink's name.
    pub sink: String,
    /// Deliveries not made yet.
    pub pending: u64,
    /// Deliveries given up.
    pub dead: u64,
    /// The time of the oldest event still pending for this sink.
    pub oldest_undelivered: Option<u64>,
    /// Its age at `now`, seconds.
    pub oldest_undelivered_secs: Option<u64>,
    /// The most recent failed attempt of a delivery still pending or dead, if any.
    pub last_error: Option<LastError>,
}

/// A dead letter: a delivery given up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    /// The event id (`jit-ca notify retry ID`).
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request concerned, if any.
    pub request_id: Option<String>,
    /// The sink.
    pub sink: String,
    /// Attempts made.
    pub attempts: u32,
    /// The HTTP status of the last answer.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the event happened.
    pub time: u64,
    /// When it was given up.
    pub dead_at: Option<u64>,
}

/// What [`StoreOps::notify_status`] reports.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct NotifyStatus {
    /// Per sink, by name.
    pub sinks: Vec<SinkStatus>,
    /// The most recent dead letters (at most [`DEAD_LETTERS_SHOWN`]), oldest first.
    pub dead: Vec<DeadLetter>,
    /// How many dead letters are stored in all.
    pub dead_total: u64,
    /// Outbox rows not fanned out yet (past the meta counter `notify_fanout_seq`): they
    /// have no deliveries, so no sink counts them (a stuck fan-out shows here).
    pub backlog: u64,
    /// The time of the oldest of them.
    pub backlog_oldest: Option<u64>,
}

/// At most this many dead letters are listed by [`StoreOps::notify_status`].
pub const DEAD_LETTERS_SHOWN: usize = 1000;

/// A serial or a grant id (`jit-ca revoke-grant`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertKey {
    Serial(u64),
    Grant(String),
}

/// The operations the service runs inside one transaction (or on one read snapshot): the
/// seam a second storage backend implements. Every method is blocking.
pub trait StoreOps {
    // ---- users ----
    /// The user a key line belongs to, with groups and the key's purpose.
    fn user_by_key(&self, key: &str) -> Result<Option<(String, Vec<String>, KeyPurpose)>>;
    /// A user's groups, or None if the user does not exist.
    fn user_groups(&self, name: &str) -> Result<Option<Vec<String>>>;
    /// Whether the user exists (parses nothing of the row: works on a damaged one).
    fn user_exists(&self, name: &str) -> Result<bool>;
    /// Removes a user and their keys; false if there was none.
    fn remove_user(&self, name: &str) -> Result<bool>;
    /// Adds a user with keys. Errors if the name or a key is taken.
    fn add_user(&self, name: &str, groups: &[String], keys: &[String], now: u64) -> Result<()>;
    /// Adds a key (login or approval-only) to an existing user; errors if the key is taken.
    fn add_user_key(&self, name: &str, key: &str, purpose: KeyPurpose) -> Result<()>;
    /// Removes one key of a user; false if the user had no such key.
    fn remove_user_key(&self, name: &str, key: &str) -> Result<bool>;
    /// Sets (or clears) a user's contact handle; false if there is no such user.
    fn set_contact(&self, name: &str, contact: Option<&str>) -> Result<bool>;
    /// Every user with groups and keys, by name.
    fn list_users(&self) -> Result<Vec<User>>;
    /// A user's keys with their purposes, by key.
    fn user_keys(&self, name: &str) -> Result<Vec<(String, KeyPurpose)>>;
    /// The user's requests with a certificate for `key` (a stored key line) that is neither
    /// revoked nor expired at `now`, by id: what a removed key can still be used for.
    fn requests_with_live_certs_for_key(
        &self,
        name: &str,
        key: &str,
        now: u64,
    ) -> Result<Vec<String>>;

    // ---- requests ----
    /// Inserts a new request.
    fn insert_request(&self, r: &RequestRow) -> Result<()>;
    /// Writes the mutable fields of a request.
    fn update_request(&self, r: &RequestRow) -> Result<()>;
    /// One request.
    fn get_request(&self, id: &str) -> Result<Option<RequestRow>>;
    /// Requests, newest first, optionally only in one state; at most `limit`.
    fn list_requests(&self, state: Option<RequestState>, limit: u32) -> Result<Vec<RequestRow>>;
    /// One user's requests, newest first; at most `limit`.
    fn list_requests_of(&self, user: &str, limit: u32) -> Result<Vec<RequestRow>>;
    /// The requests a caller may see ([`ListQuery`]), filtered before the limit applies.
    fn list_visible(&self, q: &ListQuery<'_>) -> Result<Vec<RequestRow>>;
    /// Ids of `user`'s requests in one of `states`, by id.
    fn request_ids_of(&self, user: &str, states: &[RequestState]) -> Result<Vec<String>>;
    /// `user`'s pending requests not expired at `now`, as (id, role), oldest first.
    fn pending_requests_of(&self, user: &str, now: u64) -> Result<Vec<(String, String)>>;
    /// Pending requests whose expiry has passed, and approved ones whose window has ended.
    fn due_for_expiry(&self, now: u64) -> Result<Vec<RequestRow>>;
    /// Approved requests whose window has begun and ends within `within` seconds of `now`,
    /// not reminded of that end yet, and whose end was further than `within` from the
    /// issuance of its certificate: (id, window end).
    fn due_for_reminder(&self, now: u64, within: u64) -> Result<Vec<(String, u64)>>;
    /// Records that a request was reminded of the window end `until` (`reminded_until`).
    fn set_reminded(&self, id: &str, until: u64) -> Result<()>;
    /// At most `limit` requests due for expiry at `now`, as (id, state), by index (the
    /// sweep's batches): pending ones past their expiry, then approved ones whose window
    /// ended (`window_end <= now`), each oldest due first.
    fn due_ids_for_expiry(&self, now: u64, limit: usize) -> Result<Vec<(String, RequestState)>>;
    /// Sets request `id` to expired if it is still in state `was`; true if it was.
    fn expire_request(&self, id: &str, was: RequestState) -> Result<bool>;
    /// [`StoreOps::due_for_reminder`], at most `limit`, by id.
    fn due_reminders(&self, now: u64, within: u64, limit: usize) -> Result<Vec<(String, u64)>>;

    // ---- approvals ----
    /// Records an approval (`key_flags`: KEY_* bits); false if this user already approved.
    fn add_approval(&self, request_id: &str, user: &str, at: u64, key_flags: u32) -> Result<bool>;
    /// Approvals of a request, oldest first.
    fn approvals(&self, request_id: &str) -> Result<Vec<ApprovalView>>;
    /// Approvals of a request with the KEY_* flags of the key that signed each, oldest first.
    fn approvals_with_keys(&self, request_id: &str) -> Result<Vec<(ApprovalView, u32)>>;
    /// Approvals of every request in `ids`, oldest first, in one query (a page of a list).
    fn approvals_of(&self, ids: &[&str]) -> Result<HashMap<String, Vec<ApprovalView>>>;
    /// Withdraws `user`'s approvals of pending requests; returns those requests' ids.
    fn withdraw_pending_approvals(&self, user: &str) -> Result<Vec<String>>;

    // ---- certificates ----
    /// Reserves the next serial (strictly greater than every serial ever issued).
    fn reserve_serial(&self, request_id: &str, user: &str, now: u64) -> Result<u64>;
    /// Reserves `n` serials at once; returns the first of `first..first + n`.
    fn reserve_serial_block(&self, n: u64) -> Result<u64>;
    /// Stores a certificate under a serial from [`StoreOps::reserve_serial_block`].
    fn insert_cert(&self, cert: &CertRow) -> Result<()>;
    /// Stores what was issued under a serial from [`StoreOps::reserve_serial`].
    fn complete_cert(&self, cert: &CertRow) -> Result<()>;
    /// The serial of the newest certificate of a request (parses nothing else).
    fn latest_serial(&self, request_id: &str) -> Result<Option<u64>>;
    /// The newest certificate of a request.
    fn latest_cert(&self, request_id: &str) -> Result<Option<CertRow>>;
    /// The newest certificate of every request in `ids` that has one, in one query.
    fn latest_certs_of(&self, ids: &[&str]) -> Result<HashMap<String, CertRow>>;
    /// Marks the unrevoked certificates of a request revoked; returns those it revoked.
    fn revoke_live_certs(&self, request_id: &str) -> Result<Vec<CertRow>>;
    /// Marks every certificate of a request revoked; returns them.
    fn revoke_certs(&self, request_id: &str) -> Result<Vec<RevokedCert>>;
    /// Marks one certificate revoked.
    fn revoke_cert(&self, serial: u64) -> Result<()>;
    /// Marks every unrevoked certificate of `user` still valid at `now` revoked, whatever
    /// its request's state; returns them.
    fn revoke_user_certs(&self, user: &str, now: u64) -> Result<Vec<RevokedCert>>;
    /// The certificate with this serial or grant id.
    fn find_cert(&self, key: &CertKey) -> Result<Option<CertRef>>;
    /// How many of `user`'s requests have an unrevoked certificate valid after `now`.
    fn active_grant_count(&self, user: &str, now: u64) -> Result<u64>;
    /// Revoked certificates whose window ended after `since`.
    fn revoked_certs(&self, since: u64) -> Result<Vec<RevokedCert>>;
    /// Unrevoked certificates with a grant whose window has not ended at `now`.
    fn active_grants(&self, now: u64) -> Result<Vec<CertRow>>;
    /// The same certificates as [`StoreOps::active_grants`] without their certificate and
    /// grant texts (serial, grant hosts, end), each handed to `each` in serial order as read
    /// (not collected first on SQLite): what the in-memory grant index is rebuilt from.
    fn active_grants_lean(
        &self,
        now: u64,
        each: &mut dyn FnMut(LeanGrant) -> Result<()>,
    ) -> Result<()>;
    /// The grant documents of the certificates among `serials` that are still active at
    /// `now` (unrevoked, with a grant, window not ended), in serial order, each handed to
    /// `each` with its serial and end (`valid_before`). Unknown or inactive serials are
    /// skipped.
    fn grant_docs_by_serials(
        &self,
        serials: &[u64],
        now: u64,
        each: &mut dyn FnMut(u64, u64, &str) -> Result<()>,
    ) -> Result<()>;

    // ---- meta, nonces, audit ----
    /// A meta value.
    fn meta_get(&self, k: &str) -> Result<Option<String>>;
    /// Sets a meta value.
    fn meta_set(&self, k: &str, v: &str) -> Result<()>;
    /// Records an accepted nonce.
    fn log_nonce(&self, nonce: &str, now: u64) -> Result<()>;
    /// The nonces seen at or after `since`.
    fn recent_nonces(&self, since: u64) -> Result<Vec<(String, u64)>>;
    /// Forgets nonces seen before `cutoff`.
    fn expire_nonces(&self, cutoff: u64) -> Result<usize>;
    /// Appends an audit record (in this transaction) and returns it.
    fn append_audit(
        &self,
        time: u64,
        actor: &str,
        event: &crate::audit::event::Event,
        details: &serde_json::Value,
    ) -> Result<Record>;
    /// The newest audit record's (seq, hash).
    fn audit_head(&self) -> Result<Option<(u64, String)>>;
    /// Every audit record, in chain order (`jit-ca audit verify`, exports).
    fn audit_records(&self) -> Result<Vec<Record>>;
    /// Claims a nonce durably, across replicas: false when it was claimed before (a
    /// replay). PostgreSQL only (its own committed statement); SQLite logs it and answers
    /// true (never called there: SQLite's nonces travel with the next write).
    fn claim_nonce(&self, nonce: &str, now: u64) -> Result<bool>;

    // audit search (issue 16)
    /// The records of one window matching the filters, newest first (the audit page).
    fn audit_search(
        &self,
        filter: &audit::AuditFilter,
        window: &audit::AuditWindow,
    ) -> Result<Vec<Record>>;
    /// Up to `limit` records with seq above `after`, in chain order (incremental
    /// verification).
    fn audit_after(&self, after: u64, limit: u32) -> Result<Vec<Record>>;
    /// The record with this seq.
    fn audit_record(&self, seq: u64) -> Result<Option<Record>>;

    // ---- notifications (the outbox rows are written by `append_audit`) ----
    /// Makes the deliveries of the outbox rows past the meta counter `notify_fanout_seq`
    /// (at most one batch of rows per call: the caller calls again while
    /// [`StoreOps::notify_backlog`] is not empty): one per sink whose filter matches the
    /// row's type, pending, due at `now`; rows no sink wants get none (with no sinks, the
    /// counter still advances). Advances the counter; returns the deliveries made.
    ///
    /// The cursor relies on outbox `seq` order being commit order (no row with a lower
    /// `seq` commits after one with a higher `seq` was read): SQLite gives it (one writer,
    /// `seq` allocated under the write lock); any later backend must give the same
    /// guarantee (a sequence allocated outside the write lock does not).
    fn notify_fan_out(
        &self,
        sinks: &[(&str, &crate::notify::filter::Filter)],
        now: u64,
    ) -> Result<usize> {
        self.notify_fan_out_with(sinks, now, &mut Vec::new())
    }
    /// [`StoreOps::notify_fan_out`], also telling which deliveries it made dead at once: a
    /// row of a type this build does not know is dead for each sink whose filter could take
    /// it (`*` or its family), pushed to `dead` for the caller to count and audit.
    fn notify_fan_out_with(
        &self,
        sinks: &[(&str, &crate::notify::filter::Filter)],
        now: u64,
        dead: &mut Vec<FanOutDead>,
    ) -> Result<usize>;
    /// The outbox rows not fanned out yet: how many, and the oldest one's time.
    fn notify_backlog(&self) -> Result<(u64, Option<u64>)>;
    /// A sink's pending deliveries due at `now`, in outbox order, at most `limit`; a
    /// delivery waits while an earlier delivery of the same request to the same sink is
    /// pending (alerts, which concern no request, are not ordered).
    fn notify_due(&self, sink: &str, now: u64, limit: usize) -> Result<Vec<Due>>;
    /// Records attempts' outcomes (deliveries still pending, with the attempts the outcome
    /// expects, only); per outcome, whether it was recorded (a row changed).
    fn notify_record(&self, sink: &str, outcomes: &[Outcome]) -> Result<Vec<bool>>;
    /// Per sink: pending, oldest undelivered, last error; and the dead letters.
    fn notify_status(&self, now: u64) -> Result<NotifyStatus>;
    /// Makes the dead deliveries of event `id` (to `sink`, or to every sink) pending again,
    /// due at `now`, attempts 0; returns the (event id, sink) pairs (none when nothing of it
    /// is dead, for that sink). An unknown id is [`CaError::UnknownEvent`].
    /// (It finds the id with a scan: inside a write transaction use [`notify_event_seq`]
    /// on a read first, then [`notify_retry_seq`].)
    ///
    /// [`notify_event_seq`]: StoreOps::notify_event_seq
    /// [`notify_retry_seq`]: StoreOps::notify_retry_seq
    fn notify_retry(&self, id: &str, sink: Option<&str>, now: u64)
    -> Result<Vec<(String, String)>>;
    /// The outbox row of event `id`, if stored (a scan: call it on a read connection,
    /// outside any write transaction).
    fn notify_event_seq(&self, id: &str) -> Result<Option<u64>>;
    /// [`StoreOps::notify_retry`] for the row `seq` found by [`StoreOps::notify_event_seq`]
    /// (by primary key only: cheap under the write lock); the row is re-checked to be event
    /// `id` ([`CaError::UnknownEvent`] when it was pruned meanwhile).
    fn notify_retry_seq(
        &self,
        seq: u64,
        id: &str,
        sink: Option<&str>,
        now: u64,
    ) -> Result<Vec<(String, String)>>;
    /// Deletes outbox rows (and their deliveries) delivered everywhere (or wanted by no
    /// sink) for a week, and every row older than 30 days; returns how many.
    fn notify_prune(&self, now: u64) -> Result<usize>;

    // web sessions (issue 16)
    /// Stores a new one-time login link.
    fn web_login_insert(&self, row: &WebLoginRow) -> Result<()>;
    /// A login link by its token's hash (used or not, expired or not).
    fn web_login_get(&self, token_hash: &str) -> Result<Option<WebLoginRow>>;
    /// Consumes a login link: marks it used at `now` if it is unused and `now <
    /// expires_at`, in one statement (two transactions racing for it: one wins). Returns the
    /// row when this call consumed it, None otherwise.
    fn web_login_consume(&self, token_hash: &str, now: u64) -> Result<Option<WebLoginRow>>;
    /// Stores a new session.
    fn web_session_insert(&self, row: &WebSessionRow) -> Result<()>;
    /// A session by its secret's hash (ended or not).
    fn web_session_by_secret(&self, secret_hash: &str) -> Result<Option<WebSessionRow>>;
    /// Records a session's use at `now` (`last_seen`).
    fn web_session_touch(&self, id: &str, now: u64) -> Result<()>;
    /// A session by its id (ended or not).
    fn web_session_by_id(&self, id: &str) -> Result<Option<WebSessionRow>>;
    /// Ends every one of `user`'s sessions not ended yet, idle or not (only those
    /// established with the key `key_fingerprint`, when given; only session `id`, when
    /// given): ended_at = now, ended_by = `by`. Returns the ids of those not past their
    /// absolute end, oldest first.
    fn web_sessions_end(
        &self,
        user: &str,
        key_fingerprint: Option<&str>,
        id: Option<&str>,
        now: u64,
        by: &str,
    ) -> Result<Vec<String>>;
    /// Withdraws `user`'s unused, unexpired login links (only those of the key
    /// `key_fingerprint`, when given): they expire at `now`. Returns how many.
    fn web_logins_withdraw(
        &self,
        user: &str,
        key_fingerprint: Option<&str>,
        now: u64,
    ) -> Result<usize>;
    /// How many of `user`'s login links are unused and unexpired at `now`.
    fn web_logins_outstanding(&self, user: &str, now: u64) -> Result<u64>;
    /// Whether `user` exists and still holds a registered key with this fingerprint.
    fn web_key_registered(&self, user: &str, key_fingerprint: &str) -> Result<bool>;
    /// Deletes login links expired (or used: a used link expired too by now) before
    /// `cutoff` and sessions ended, expired or idle (by their stored idle timeout) before
    /// `cutoff`; returns how many rows.
    fn web_prune(&self, cutoff: u64) -> Result<usize>;

    // web pages (issue 16)
    /// Elevations in force at `now` (approved, newest certificate unrevoked and valid).
    fn active_elevations(&self, now: u64) -> Result<Vec<views::Elevation>>;
    /// One page of the elevations in force that `q`'s viewer may see, filtered in SQL, in the
    /// order of [`StoreOps::active_elevations`], with the number matching in all (one read
    /// snapshot).
    fn access_page(&self, q: &views::AccessQuery) -> Result<views::AccessPage>;
    /// The newest `limit` audit records naming request `id`, in chain order, and their total.
    fn request_audit(&self, id: &str, limit: u32) -> Result<views::RequestAudit>;
}

//! The SQLite backend: the database file, its migrations, and [`StoreOps`] on a
//! `rusqlite::Connection` (a `Transaction` derefs to one). The functions of the submodules
//! are also exported as free functions, for the admin commands.

mod audit_search;
mod certs;
mod log;
mod migrations;
pub mod outbox;
mod requests;
mod users;
mod views;
mod web;

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, Transaction};

use super::{
    CertKey, CertRef, CertRow, Due, KeyPurpose, NotifyStatus, Outcome, RequestRow, RevokedCert,
    StoreOps, WebLoginRow, WebSessionRow,
};
use crate::audit::Record;
use crate::error::{CaError, Result};
use jit_api::wire::{ApprovalView, RequestState};
use migrations::MIGRATIONS;

pub use certs::*;
pub use log::*;
pub use requests::*;
pub use users::*;
pub use views::*;

/// The database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: Option<std::path::PathBuf>,
}

/// A stored value that does not parse, as the error of a row closure: `From<rusqlite::Error>
/// for CaError` unpacks it again (so it reaches the caller as `e`, never as a default).
fn stored_error(col: usize, e: CaError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
}

/// A stored JSON list of strings (column `col`, `what` names it, `row` names the row, e.g.
/// `request ID`, so the error says what to repair); one that does not parse is an error,
/// never an empty list.
fn json_vec(col: usize, what: &'static str, row: &str, s: &str) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| {
        stored_error(
            col,
            CaError::BadStoredValue {
                what,
                detail: format!("{row}: {e}"),
            },
        )
    })
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
        views::register_functions(&conn)?;
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
    views::register_functions(&conn)?;
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

impl StoreOps for Connection {
    fn user_by_key(&self, key: &str) -> Result<Option<(String, Vec<String>, KeyPurpose)>> {
        users::user_by_key(self, key)
    }
    fn user_groups(&self, name: &str) -> Result<Option<Vec<String>>> {
        users::user_groups(self, name)
    }
    fn user_exists(&self, name: &str) -> Result<bool> {
        users::user_exists(self, name)
    }
    fn remove_user(&self, name: &str) -> Result<bool> {
        users::remove_user(self, name)
    }
    fn add_user(&self, name: &str, groups: &[String], keys: &[String], now: u64) -> Result<()> {
        users::add_user(self, name, groups, keys, now)
    }
    fn add_user_key(&self, name: &str, key: &str, purpose: KeyPurpose) -> Result<()> {
        users::add_user_key(self, name, key, purpose)
    }
    fn remove_user_key(&self, name: &str, key: &str) -> Result<bool> {
        users::remove_user_key(self, name, key)
    }
    fn set_contact(&self, name: &str, contact: Option<&str>) -> Result<bool> {
        users::set_contact(self, name, contact)
    }
    fn list_users(&self) -> Result<Vec<super::User>> {
        users::list_users(self)
    }
    fn user_keys(&self, name: &str) -> Result<Vec<(String, KeyPurpose)>> {
        users::user_keys(self, name)
    }
    fn requests_with_live_certs_for_key(
        &self,
        name: &str,
        key: &str,
        now: u64,
    ) -> Result<Vec<String>> {
        users::requests_with_live_certs_for_key(self, name, key, now)
    }
    fn insert_request(&self, r: &RequestRow) -> Result<()> {
        requests::insert_request(self, r)
    }
    fn update_request(&self, r: &RequestRow) -> Result<()> {
        requests::update_request(self, r)
    }
    fn get_request(&self, id: &str) -> Result<Option<RequestRow>> {
        requests::get_request(self, id)
    }
    fn list_requests(&self, state: Option<RequestState>, limit: u32) -> Result<Vec<RequestRow>> {
        requests::list_requests(self, state, limit)
    }
    fn list_requests_of(&self, user: &str, limit: u32) -> Result<Vec<RequestRow>> {
        requests::list_requests_of(self, user, limit)
    }
    fn list_visible(&self, q: &crate::store::ListQuery<'_>) -> Result<Vec<RequestRow>> {
        requests::list_visible(self, q)
    }
    fn request_ids_of(&self, user: &str, states: &[RequestState]) -> Result<Vec<String>> {
        requests::request_ids_of(self, user, states)
    }
    fn pending_requests_of(&self, user: &str, now: u64) -> Result<Vec<(String, String)>> {
        requests::pending_requests_of(self, user, now)
    }
    fn due_for_expiry(&self, now: u64) -> Result<Vec<RequestRow>> {
        requests::due_for_expiry(self, now)
    }
    fn due_for_reminder(&self, now: u64, within: u64) -> Result<Vec<(String, u64)>> {
        requests::due_for_reminder(self, now, within)
    }
    fn set_reminded(&self, id: &str, until: u64) -> Result<()> {
        requests::set_reminded(self, id, until)
    }
    fn due_ids_for_expiry(&self, now: u64, limit: usize) -> Result<Vec<(String, RequestState)>> {
        requests::due_ids_for_expiry(self, now, limit)
    }
    fn expire_request(&self, id: &str, was: RequestState) -> Result<bool> {
        requests::expire_request(self, id, was)
    }
    fn due_reminders(&self, now: u64, within: u64, limit: usize) -> Result<Vec<(String, u64)>> {
        requests::due_reminders(self, now, within, limit)
    }
    fn add_approval(&self, request_id: &str, user: &str, at: u64, key_flags: u32) -> Result<bool> {
        requests::add_approval(self, request_id, user, at, key_flags)
    }
    fn approvals(&self, request_id: &str) -> Result<Vec<ApprovalView>> {
        requests::approvals(self, request_id)
    }
    fn approvals_with_keys(&self, request_id: &str) -> Result<Vec<(ApprovalView, u32)>> {
        requests::approvals_with_keys(self, request_id)
    }
    fn approvals_of(&self, ids: &[&str]) -> Result<HashMap<String, Vec<ApprovalView>>> {
        requests::approvals_of(self, ids)
    }
    fn withdraw_pending_approvals(&self, user: &str) -> Result<Vec<String>> {
        requests::withdraw_pending_approvals(self, user)
    }
    fn reserve_serial(&self, request_id: &str, user: &str, now: u64) -> Result<u64> {
        certs::reserve_serial(self, request_id, user, now)
    }
    fn reserve_serial_block(&self, n: u64) -> Result<u64> {
        certs::reserve_serial_block(self, n)
    }
    fn insert_cert(&self, cert: &CertRow) -> Result<()> {
        certs::insert_cert(self, cert)
    }
    fn complete_cert(&self, cert: &CertRow) -> Result<()> {
        certs::complete_cert(self, cert)
    }
    fn latest_serial(&self, request_id: &str) -> Result<Option<u64>> {
        certs::latest_serial(self, request_id)
    }
    fn latest_cert(&self, request_id: &str) -> Result<Option<CertRow>> {
        certs::latest_cert(self, request_id)
    }
    fn latest_certs_of(&self, ids: &[&str]) -> Result<HashMap<String, CertRow>> {
        certs::latest_certs_of(self, ids)
    }
    fn revoke_live_certs(&self, request_id: &str) -> Result<Vec<CertRow>> {
        certs::revoke_live_certs(self, request_id)
    }
    fn revoke_certs(&self, request_id: &str) -> Result<Vec<RevokedCert>> {
        certs::revoke_certs(self, request_id)
    }
    fn revoke_user_certs(&self, user: &str, now: u64) -> Result<Vec<RevokedCert>> {
        certs::revoke_user_certs(self, user, now)
    }
    fn revoke_cert(&self, serial: u64) -> Result<()> {
        certs::revoke_cert(self, serial)
    }
    fn find_cert(&self, key: &CertKey) -> Result<Option<CertRef>> {
        certs::find_cert(self, key)
    }
    fn active_grant_count(&self, user: &str, now: u64) -> Result<u64> {
        certs::active_grant_count(self, user, now)
    }
    fn revoked_certs(&self, since: u64) -> Result<Vec<RevokedCert>> {
        certs::revoked_certs(self, since)
    }
    fn active_grants(&self, now: u64) -> Result<Vec<CertRow>> {
        certs::active_grants(self, now)
    }
    fn active_grants_lean(
        &self,
        now: u64,
        each: &mut dyn FnMut(crate::store::LeanGrant) -> Result<()>,
    ) -> Result<()> {
        certs::active_grants_lean(self, now, each)
    }
    fn grant_docs_by_serials(
        &self,
        serials: &[u64],
        now: u64,
        each: &mut dyn FnMut(u64, u64, &str) -> Result<()>,
    ) -> Result<()> {
        certs::grant_docs_by_serials(self, serials, now, each)
    }
    fn meta_get(&self, k: &str) -> Result<Option<String>> {
        log::meta_get(self, k)
    }
    fn meta_set(&self, k: &str, v: &str) -> Result<()> {
        log::meta_set(self, k, v)
    }
    fn log_nonce(&self, nonce: &str, now: u64) -> Result<()> {
        log::log_nonce(self, nonce, now)
    }
    fn recent_nonces(&self, since: u64) -> Result<Vec<(String, u64)>> {
        log::recent_nonces(self, since)
    }
    fn expire_nonces(&self, cutoff: u64) -> Result<usize> {
        log::expire_nonces(self, cutoff)
    }
    fn append_audit(
        &self,
        time: u64,
        actor: &str,
        event: &crate::audit::event::Event,
        details: &serde_json::Value,
    ) -> Result<Record> {
        log::append_audit(self, time, actor, event, details)
    }
    fn audit_head(&self) -> Result<Option<(u64, String)>> {
        log::audit_head(self)
    }
    fn audit_records(&self) -> Result<Vec<Record>> {
        log::audit_records(self)
    }
    fn claim_nonce(&self, nonce: &str, now: u64) -> Result<bool> {
        log::log_nonce(self, nonce, now)?;
        Ok(true)
    }
    // audit search (issue 16)
    fn audit_search(
        &self,
        filter: &crate::store::audit::AuditFilter,
        window: &crate::store::audit::AuditWindow,
    ) -> Result<Vec<Record>> {
        audit_search::audit_search(self, filter, window)
    }
    fn audit_after(&self, after: u64, limit: u32) -> Result<Vec<Record>> {
        audit_search::audit_after(self, after, limit)
    }
    fn audit_record(&self, seq: u64) -> Result<Option<Record>> {
        audit_search::audit_record(self, seq)
    }
    fn notify_fan_out_with(
        &self,
        sinks: &[(&str, &crate::notify::filter::Filter)],
        now: u64,
        dead: &mut Vec<crate::store::FanOutDead>,
    ) -> Result<usize> {
        outbox::fan_out(self, sinks, now, dead)
    }
    fn notify_backlog(&self) -> Result<(u64, Option<u64>)> {
        outbox::backlog(self)
    }
    fn notify_due(&self, sink: &str, now: u64, limit: usize) -> Result<Vec<Due>> {
        outbox::due(self, sink, now, limit)
    }
    fn notify_record(&self, sink: &str, outcomes: &[Outcome]) -> Result<Vec<bool>> {
        outbox::record(self, sink, outcomes)
    }
    fn notify_status(&self, now: u64) -> Result<NotifyStatus> {
        outbox::status(self, now)
    }
    fn notify_retry(
        &self,
        id: &str,
        sink: Option<&str>,
        now: u64,
    ) -> Result<Vec<(String, String)>> {
        outbox::retry(self, id, sink, now)
    }
    fn notify_event_seq(&self, id: &str) -> Result<Option<u64>> {
        outbox::event_seq(self, id)
    }
    fn notify_retry_seq(
        &self,
        seq: u64,
        id: &str,
        sink: Option<&str>,
        now: u64,
    ) -> Result<Vec<(String, String)>> {
        outbox::retry_seq(self, seq, id, sink, now)
    }
    fn notify_prune(&self, now: u64) -> Result<usize> {
        outbox::prune(self, now)
    }
    fn web_login_insert(&self, row: &WebLoginRow) -> Result<()> {
        web::login_insert(self, row)
    }
    fn web_login_get(&self, token_hash: &str) -> Result<Option<WebLoginRow>> {
        web::login_get(self, token_hash)
    }
    fn web_login_consume(&self, token_hash: &str, now: u64) -> Result<Option<WebLoginRow>> {
        web::login_consume(self, token_hash, now)
    }
    fn web_session_insert(&self, row: &WebSessionRow) -> Result<()> {
        web::session_insert(self, row)
    }
    fn web_session_by_secret(&self, secret_hash: &str) -> Result<Option<WebSessionRow>> {
        web::session_by_secret(self, secret_hash)
    }
    fn web_session_touch(&self, id: &str, now: u64) -> Result<()> {
        web::session_touch(self, id, now)
    }
    fn web_session_by_id(&self, id: &str) -> Result<Option<WebSessionRow>> {
        web::session_by_id(self, id)
    }
    fn web_sessions_end(
        &self,
        user: &str,
        key_fingerprint: Option<&str>,
        id: Option<&str>,
        now: u64,
        by: &str,
    ) -> Result<Vec<String>> {
        web::sessions_end(self, user, key_fingerprint, id, now, by)
    }
    fn web_logins_withdraw(
        &self,
        user: &str,
        key_fingerprint: Option<&str>,
        now: u64,
    ) -> Result<usize> {
        web::logins_withdraw(self, user, key_fingerprint, now)
    }
    fn web_logins_outstanding(&self, user: &str, now: u64) -> Result<u64> {
        web::logins_outstanding(self, user, now)
    }
    fn web_key_registered(&self, user: &str, key_fingerprint: &str) -> Result<bool> {
        web::key_registered(self, user, key_fingerprint)
    }
    fn web_prune(&self, cutoff: u64) -> Result<usize> {
        web::prune(self, cutoff)
    }

    // web pages (issue 16)
    fn active_elevations(&self, now: u64) -> Result<Vec<crate::store::views::Elevation>> {
        views::active_elevations(self, now)
    }
    fn access_page(
        &self,
        q: &crate::store::views::AccessQuery,
    ) -> Result<crate::store::views::AccessPage> {
        views::access_page(self, q)
    }
    fn request_audit(&self, id: &str, limit: u32) -> Result<crate::store::views::RequestAudit> {
        views::request_audit(self, id, limit)
    }
}

#[cfg(test)]
mod due_tests;
#[cfg(test)]
mod outbox_tests;
#[cfg(test)]
mod tests;

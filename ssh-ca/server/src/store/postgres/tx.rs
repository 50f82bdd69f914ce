//! [`StoreOps`] on a PostgreSQL connection inside a transaction (or a read snapshot), and
//! which kinds of change the transaction made (sent as `pg_notify('jit', kind)` before its
//! COMMIT, so other replicas' listeners pick them up at commit).

use std::cell::Cell;
use std::collections::HashMap;

use super::conn::PgConn;
use super::{Change, ops_certs, ops_log, ops_outbox, ops_requests, ops_users, ops_web};
use crate::audit::Record;
use crate::error::Result;
use crate::store::{
    CertKey, CertRef, CertRow, Due, FanOutDead, KeyPurpose, ListQuery, NotifyStatus, Outcome,
    RequestRow, RevokedCert, StoreOps, WebLoginRow, WebSessionRow, audit, views,
};
use jit_api::wire::{ApprovalView, RequestState};

/// The kinds of change of one transaction, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Changes(u8);

impl Changes {
    fn bit(c: Change) -> u8 {
        match c {
            Change::Revocation => 1,
            Change::Grants => 2,
            Change::External => 4,
        }
    }
    pub(crate) fn add(&mut self, c: Change) {
        self.0 |= Self::bit(c);
    }
    /// The kinds made, in a fixed order.
    pub(crate) fn kinds(self) -> Vec<Change> {
        [Change::Revocation, Change::Grants, Change::External]
            .into_iter()
            .filter(|c| self.0 & Self::bit(*c) != 0)
            .collect()
    }
}

/// One transaction (or read snapshot) on a connection.
pub(crate) struct PgTx<'a> {
    pub(crate) conn: &'a PgConn,
    pub(crate) changed: Cell<Changes>,
}

impl<'a> PgTx<'a> {
    pub(crate) fn new(conn: &'a PgConn) -> Self {
        Self {
            conn,
            changed: Cell::new(Changes::default()),
        }
    }

    fn mark(&self, kinds: &[Change]) {
        let mut c = self.changed.get();
        for k in kinds {
            c.add(*k);
        }
        self.changed.set(c);
    }
}

impl StoreOps for PgTx<'_> {
    // ---- admin operations ----
    fn add_user(&self, name: &str, groups: &[String], keys: &[String], now: u64) -> Result<()> {
        ops_users::add_user(self.conn, name, groups, keys, now)
    }
    fn add_user_key(&self, name: &str, key: &str, purpose: KeyPurpose) -> Result<()> {
        ops_users::add_user_key(self.conn, name, key, purpose)
    }
    fn remove_user_key(&self, name: &str, key: &str) -> Result<bool> {
        ops_users::remove_user_key(self.conn, name, key)
    }
    fn set_contact(&self, name: &str, contact: Option<&str>) -> Result<bool> {
        ops_users::set_contact(self.conn, name, contact)
    }
    fn list_users(&self) -> Result<Vec<crate::store::User>> {
        ops_users::list_users(self.conn)
    }
    fn user_keys(&self, name: &str) -> Result<Vec<(String, KeyPurpose)>> {
        ops_users::user_keys(self.conn, name)
    }
    fn requests_with_live_certs_for_key(
        &self,
        name: &str,
        key: &str,
        now: u64,
    ) -> Result<Vec<String>> {
        ops_users::requests_with_live_certs_for_key(self.conn, name, key, now)
    }
    fn audit_records(&self) -> Result<Vec<Record>> {
        ops_log::audit_records(self.conn)
    }
    fn claim_nonce(&self, nonce: &str, now: u64) -> Result<bool> {
        ops_log::claim_nonce(self.conn, nonce, now)
    }
    fn user_by_key(&self, key: &str) -> Result<Option<(String, Vec<String>, KeyPurpose)>> {
        ops_users::user_by_key(self.conn, key)
    }
    fn user_groups(&self, name: &str) -> Result<Option<Vec<String>>> {
        ops_users::user_groups(self.conn, name)
    }
    fn user_exists(&self, name: &str) -> Result<bool> {
        ops_users::user_exists(self.conn, name)
    }
    fn remove_user(&self, name: &str) -> Result<bool> {
        ops_users::remove_user(self.conn, name)
    }
    fn insert_request(&self, r: &RequestRow) -> Result<()> {
        ops_requests::insert_request(self.conn, r)
    }
    fn update_request(&self, r: &RequestRow) -> Result<()> {
        self.mark(&[Change::Grants]);
        ops_requests::update_request(self.conn, r)
    }
    fn get_request(&self, id: &str) -> Result<Option<RequestRow>> {
        ops_requests::get_request(self.conn, id)
    }
    fn list_requests(&self, state: Option<RequestState>, limit: u32) -> Result<Vec<RequestRow>> {
        ops_requests::list_requests(self.conn, state, limit)
    }
    fn list_requests_of(&self, user: &str, limit: u32) -> Result<Vec<RequestRow>> {
        ops_requests::list_requests_of(self.conn, user, limit)
    }
    fn list_visible(&self, q: &ListQuery<'_>) -> Result<Vec<RequestRow>> {
        ops_requests::list_visible(self.conn, q)
    }
    fn request_ids_of(&self, user: &str, states: &[RequestState]) -> Result<Vec<String>> {
        ops_requests::request_ids_of(self.conn, user, states)
    }
    fn pending_requests_of(&self, user: &str, now: u64) -> Result<Vec<(String, String)>> {
        ops_requests::pending_requests_of(self.conn, user, now)
    }
    fn due_for_expiry(&self, now: u64) -> Result<Vec<RequestRow>> {
        ops_requests::due_for_expiry(self.conn, now)
    }
    fn due_for_reminder(&self, now: u64, within: u64) -> Result<Vec<(String, u64)>> {
        ops_requests::due_for_reminder(self.conn, now, within)
    }
    fn set_reminded(&self, id: &str, until: u64) -> Result<()> {
        ops_requests::set_reminded(self.conn, id, until)
    }
    fn due_ids_for_expiry(&self, now: u64, limit: usize) -> Result<Vec<(String, RequestState)>> {
        ops_requests::due_ids_for_expiry(self.conn, now, limit)
    }
    fn expire_request(&self, id: &str, was: RequestState) -> Result<bool> {
        ops_requests::expire_request(self.conn, id, was)
    }
    fn due_reminders(&self, now: u64, within: u64, limit: usize) -> Result<Vec<(String, u64)>> {
        ops_requests::due_reminders(self.conn, now, within, limit)
    }
    fn add_approval(&self, request_id: &str, user: &str, at: u64, key_flags: u32) -> Result<bool> {
        ops_requests::add_approval(self.conn, request_id, user, at, key_flags)
    }
    fn approvals(&self, request_id: &str) -> Result<Vec<ApprovalView>> {
        ops_requests::approvals(self.conn, request_id)
    }
    fn approvals_with_keys(&self, request_id: &str) -> Result<Vec<(ApprovalView, u32)>> {
        ops_requests::approvals_with_keys(self.conn, request_id)
    }
    fn approvals_of(&self, ids: &[&str]) -> Result<HashMap<String, Vec<ApprovalView>>> {
        ops_requests::approvals_of(self.conn, ids)
    }
    fn withdraw_pending_approvals(&self, user: &str) -> Result<Vec<String>> {
        ops_requests::withdraw_pending_approvals(self.conn, user)
    }
    fn reserve_serial(&self, request_id: &str, user: &str, now: u64) -> Result<u64> {
        ops_certs::reserve_serial(self.conn, request_id, user, now)
    }
    fn reserve_serial_block(&self, n: u64) -> Result<u64> {
        ops_certs::reserve_serial_block(self.conn, n)
    }
    fn insert_cert(&self, cert: &CertRow) -> Result<()> {
        self.mark(&[Change::Grants]);
        ops_certs::insert_cert(self.conn, cert)
    }
    fn complete_cert(&self, cert: &CertRow) -> Result<()> {
        self.mark(&[Change::Grants]);
        ops_certs::complete_cert(self.conn, cert)
    }
    fn latest_serial(&self, request_id: &str) -> Result<Option<u64>> {
        ops_certs::latest_serial(self.conn, request_id)
    }
    fn latest_cert(&self, request_id: &str) -> Result<Option<CertRow>> {
        ops_certs::latest_cert(self.conn, request_id)
    }
    fn latest_certs_of(&self, ids: &[&str]) -> Result<HashMap<String, CertRow>> {
        ops_certs::latest_certs_of(self.conn, ids)
    }
    fn revoke_live_certs(&self, request_id: &str) -> Result<Vec<CertRow>> {
        self.mark(&[Change::Revocation, Change::Grants]);
        ops_certs::revoke_live_certs(self.conn, request_id)
    }
    fn revoke_certs(&self, request_id: &str) -> Result<Vec<RevokedCert>> {
        self.mark(&[Change::Revocation, Change::Grants]);
        ops_certs::revoke_certs(self.conn, request_id)
    }
    fn revoke_cert(&self, serial: u64) -> Result<()> {
        self.mark(&[Change::Revocation, Change::Grants]);
        ops_certs::revoke_cert(self.conn, serial)
    }
    fn revoke_user_certs(&self, user: &str, now: u64) -> Result<Vec<RevokedCert>> {
        self.mark(&[Change::Revocation, Change::Grants]);
        ops_certs::revoke_user_certs(self.conn, user, now)
    }
    fn find_cert(&self, key: &CertKey) -> Result<Option<CertRef>> {
        ops_certs::find_cert(self.conn, key)
    }
    fn active_grant_count(&self, user: &str, now: u64) -> Result<u64> {
        ops_certs::active_grant_count(self.conn, user, now)
    }
    fn revoked_certs(&self, since: u64) -> Result<Vec<RevokedCert>> {
        ops_certs::revoked_certs(self.conn, since)
    }
    fn active_grants(&self, now: u64) -> Result<Vec<CertRow>> {
        ops_certs::active_grants(self.conn, now)
    }
    fn active_grants_lean(
        &self,
        now: u64,
        each: &mut dyn FnMut(crate::store::LeanGrant) -> Result<()>,
    ) -> Result<()> {
        ops_certs::active_grants_lean(self.conn, now, each)
    }
    fn grant_docs_by_serials(
        &self,
        serials: &[u64],
        now: u64,
        each: &mut dyn FnMut(u64, u64, &str) -> Result<()>,
    ) -> Result<()> {
        ops_certs::grant_docs_by_serials(self.conn, serials, now, each)
    }
    fn meta_get(&self, k: &str) -> Result<Option<String>> {
        ops_log::meta_get(self.conn, k)
    }
    fn meta_set(&self, k: &str, v: &str) -> Result<()> {
        match k {
            "revocation_sequence" | "operator_revocations" => self.mark(&[Change::Revocation]),
            "external_generation" => self.mark(&[Change::External]),
            _ => {}
        }
        ops_log::meta_set(self.conn, k, v)
    }
    fn log_nonce(&self, nonce: &str, now: u64) -> Result<()> {
        ops_log::log_nonce(self.conn, nonce, now)
    }
    fn recent_nonces(&self, since: u64) -> Result<Vec<(String, u64)>> {
        ops_log::recent_nonces(self.conn, since)
    }
    fn expire_nonces(&self, cutoff: u64) -> Result<usize> {
        ops_log::expire_nonces(self.conn, cutoff)
    }
    fn append_audit(
        &self,
        time: u64,
        actor: &str,
        event: &crate::audit::event::Event,
        details: &serde_json::Value,
    ) -> Result<Record> {
        ops_log::append_audit(self.conn, time, actor, event, details)
    }
    fn audit_head(&self) -> Result<Option<(u64, String)>> {
        ops_log::audit_head(self.conn)
    }
    fn audit_search(
        &self,
        filter: &audit::AuditFilter,
        window: &audit::AuditWindow,
    ) -> Result<Vec<Record>> {
        ops_log::audit_search(self.conn, filter, window)
    }
    fn audit_after(&self, after: u64, limit: u32) -> Result<Vec<Record>> {
        ops_log::audit_after(self.conn, after, limit)
    }
    fn audit_record(&self, seq: u64) -> Result<Option<Record>> {
        ops_log::audit_record(self.conn, seq)
    }
    fn notify_fan_out_with(
        &self,
        sinks: &[(&str, &crate::notify::filter::Filter)],
        now: u64,
        dead: &mut Vec<FanOutDead>,
    ) -> Result<usize> {
        ops_outbox::fan_out(self.conn, sinks, now, dead)
    }
    fn notify_backlog(&self) -> Result<(u64, Option<u64>)> {
        ops_outbox::backlog(self.conn)
    }
    fn notify_due(&self, sink: &str, now: u64, limit: usize) -> Result<Vec<Due>> {
        ops_outbox::due(self.conn, sink, now, limit)
    }
    fn notify_record(&self, sink: &str, outcomes: &[Outcome]) -> Result<Vec<bool>> {
        ops_outbox::record(self.conn, sink, outcomes)
    }
    fn notify_status(&self, now: u64) -> Result<NotifyStatus> {
        ops_outbox::status(self.conn, now)
    }
    fn notify_retry(
        &self,
        id: &str,
        sink: Option<&str>,
        now: u64,
    ) -> Result<Vec<(String, String)>> {
        ops_outbox::retry(self.conn, id, sink, now)
    }
    fn notify_event_seq(&self, id: &str) -> Result<Option<u64>> {
        ops_outbox::event_seq(self.conn, id)
    }
    fn notify_retry_seq(
        &self,
        seq: u64,
        id: &str,
        sink: Option<&str>,
        now: u64,
    ) -> Result<Vec<(String, String)>> {
        ops_outbox::retry_seq(self.conn, seq, id, sink, now)
    }
    fn notify_prune(&self, now: u64) -> Result<usize> {
        ops_outbox::prune(self.conn, now)
    }
    fn web_login_insert(&self, row: &WebLoginRow) -> Result<()> {
        ops_web::login_insert(self.conn, row)
    }
    fn web_login_get(&self, token_hash: &str) -> Result<Option<WebLoginRow>> {
        ops_web::login_get(self.conn, token_hash)
    }
    fn web_login_consume(&self, token_hash: &str, now: u64) -> Result<Option<WebLoginRow>> {
        ops_web::login_consume(self.conn, token_hash, now)
    }
    fn web_session_insert(&self, row: &WebSessionRow) -> Result<()> {
        ops_web::session_insert(self.conn, row)
    }
    fn web_session_by_secret(&self, secret_hash: &str) -> Result<Option<WebSessionRow>> {
        ops_web::session_by_secret(self.conn, secret_hash)
    }
    fn web_session_touch(&self, id: &str, now: u64) -> Result<()> {
        ops_web::session_touch(self.conn, id, now)
    }
    fn web_session_by_id(&self, id: &str) -> Result<Option<WebSessionRow>> {
        ops_web::session_by_id(self.conn, id)
    }
    fn web_sessions_end(
        &self,
        user: &str,
        key_fingerprint: Option<&str>,
        id: Option<&str>,
        now: u64,
        by: &str,
    ) -> Result<Vec<String>> {
        ops_web::sessions_end(self.conn, user, key_fingerprint, id, now, by)
    }
    fn web_logins_withdraw(
        &self,
        user: &str,
        key_fingerprint: Option<&str>,
        now: u64,
    ) -> Result<usize> {
        ops_web::logins_withdraw(self.conn, user, key_fingerprint, now)
    }
    fn web_logins_outstanding(&self, user: &str, now: u64) -> Result<u64> {
        ops_web::logins_outstanding(self.conn, user, now)
    }
    fn web_key_registered(&self, user: &str, key_fingerprint: &str) -> Result<bool> {
        ops_web::key_registered(self.conn, user, key_fingerprint)
    }
    fn web_prune(&self, cutoff: u64) -> Result<usize> {
        ops_web::prune(self.conn, cutoff)
    }
    fn active_elevations(&self, now: u64) -> Result<Vec<views::Elevation>> {
        ops_web::active_elevations(self.conn, now)
    }
    fn access_page(&self, q: &views::AccessQuery) -> Result<views::AccessPage> {
        ops_web::access_page(self.conn, q)
    }
    fn request_audit(&self, id: &str, limit: u32) -> Result<views::RequestAudit> {
        ops_web::request_audit(self.conn, id, limit)
    }
}

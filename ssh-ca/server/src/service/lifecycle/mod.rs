//! The request lifecycle, pure: no storage, no clock, no I/O. Every function takes what it
//! decides on (the stored request, the role as it is now, the caller, `now`) and returns the
//! changed request or the refusal the client sees. The service (`requests`, `external`,
//! `sweep`) loads, calls these, and stores the result in one transaction.
//!
//! ```text
//!   admit ──> Pending ──approve (k of n)──> Approved ──revoke──> Revoked
//!                │  ├──deny──> Denied          │ └──extend──> Approved (new window)
//!                │  └──cancel──> Cancelled     │    (drop: a revocation by the requester)
//!                └──expire──> Expired <────────┘ (window ended)
//! ```
//!
//! [`authorize`] (in `who`) is the one place that says who may decide what: the requester, an approver
//! of the role (as the policy is now), or an operator on the data directory.
//!
//! Refusals are [`Refusal`] values: building one writes nothing and draws no randomness. A
//! fault of the service's own (`Refusal::Internal`) becomes an internal error, logged under a
//! reference, only at the service boundary (`From<Refusal> for ApiError`, in `service`).

mod admission;
mod close;
mod who;
mod window;

pub use admission::{Asking, Checked, check_request};
pub use close::{DROP_REASON, cancel, deny, drop_own, revoke};
pub use who::{Action, Actor, authorize, check_approval, may_approve, refuse_approval_key};
pub use window::{check_start, window_start};

use serde_json::json;
use ssh_key::{HashAlg, PublicKey};

use super::{Caller, CallerKey};
use crate::error::ApiError;
use crate::policy::{Asked, AutoApproval, AutoInput, Role};
use crate::store::{CertRow, RequestRow};
use jit_api::auth;
use jit_api::wire::{ApprovalView, CreateRequest, ErrorCode as C, RequestState, RequestView};

/// What a lifecycle rule refuses with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A refusal the client sees as it is.
    Client(ApiError),
    /// A fault in the service's own logic or data (a rule that should be unreachable): the
    /// detail is for the operator, the client sees only a reference.
    Internal(String),
}

impl Refusal {
    /// The code the client will see.
    pub fn code(&self) -> C {
        match self {
            Self::Client(e) => e.code,
            Self::Internal(_) => C::Internal,
        }
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Self::Client(e)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Client(e) => write!(f, "{e}"),
            Self::Internal(d) => write!(f, "internal: {d}"),
        }
    }
}

/// `Result` of the lifecycle rules.
pub type Ruling<T> = Result<T, Refusal>;

/// A refusal the client sees (pure: see [`crate::service`]'s `refuse`).
fn refuse(code: C, msg: impl Into<String>) -> Refusal {
    Refusal::Client(ApiError::new(code, msg))
}

/// Longest public key line accepted in a request.
pub const MAX_PUBLIC_KEY_LEN: usize = 8 * 1024;

/// A request admitted: the row to store (pending, or approved by `auto`), and its role.
#[derive(Debug)]
pub struct Admitted {
    pub row: RequestRow,
    pub role: Role,
    /// The auto-approval rule that approved it at once, if one did.
    pub auto: Option<AutoApproval>,
    /// The rules that did not approve it, each with the first condition that did not hold.
    pub auto_misses: Vec<(String, String)>,
}

/// The approval basis of an automatic approval: the approver (`auto:<rule>`) and the
/// conditions that held.
pub fn auto_basis(a: &AutoApproval) -> serde_json::Value {
    json!({"auto_rule": a.approver, "conditions": a.conditions})
}

/// Admits a new request `id` from `caller` at `now` under `role` (None: not in the policy;
/// `near` then names the close matches the caller may request): checks it against the role, parses its public key (once: the row carries the key), and
/// approves it at once when an auto-approval rule covers it. A pending request expires
/// after the role's `pending_ttl` (else `pending_expiry_secs`), counted from its start for
/// a later window (`req.start`, at most `max_start_ahead_secs` ahead), and never after that
/// window ends.
#[allow(clippy::too_many_arguments)]
pub fn admit(
    caller: &Caller,
    req: &CreateRequest,
    role: Option<Role>,
    near: &[String],
    id: String,
    pending_expiry_secs: u64,
    max_start_ahead_secs: u64,
    now: u64,
) -> Ruling<Admitted> {
    refuse_approval_key(caller, "request access")?;
    let Some(role) = role else {
        return Err(unknown_role(&req.role, near));
    };
    let Checked {
        reason,
        ticket,
        hosts,
        auto,
    } = check_request(
        &role,
        &Asking {
            user: &caller.user,
            groups: &caller.groups,
            duration_secs: req.duration_secs,
            reason: &req.reason,
            hosts: &req.hosts,
            start: req.start,
        },
        now,
    )?;
    let public_key = parse_public_key(&req.public_key)?;
    let not_before = check_start(req.start, max_start_ahead_secs, now)?;
    let ttl = role.pending_ttl_secs.unwrap_or(pending_expiry_secs);
    let pending_expires_at = match not_before {
        None => now.saturating_add(ttl),
        Some(s) => s
            .saturating_add(ttl)
            .min(s.saturating_add(req.duration_secs)),
    };
    let mut row = RequestRow {
        id,
        user: caller.user.clone(),
        role: role.name.clone(),
        reason,
        duration_secs: req.duration_secs,
        hosts,
        principals: role.principals_for(&caller.user),
        sudo: role.sudo,
        // Binding limits only sudo: a role without sudo never binds (see `issue::binds`).
        session_bound: role.binds_sessions(),
        public_key,
        created_at: now,
        pending_expires_at,
        approvals_required: role.approvals,
        state: RequestState::Pending,
        denied_by: None,
        denial_reason: None,
        approved_at: None,
        revoked_at: None,
        revoked_by: None,
        approval_basis: None,
        approved_until: None,
        ticket,
        not_before,
        revocation_reason: None,
        cancelled_at: None,
        cancel_reason: None,
        denied_at: None,
    };
    if let Some(a) = &auto.approved {
        approve_row(&mut row, auto_basis(a), now);
    }
    Ok(Admitted {
        row,
        role,
        auto: auto.approved,
        auto_misses: auto.misses,
    })
}

/// The refusal of a role name that is not in the policy, naming the close matches the
/// caller may request (`near`, from `Policy::close_matches`).
pub fn unknown_role(name: &str, near: &[String]) -> Refusal {
    let quoted: Vec<String> = near.iter().map(|n| format!("{n:?}")).collect();
    let hint = match quoted.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [init @ .., last] => format!("; did you mean {} or {last}?", init.join(", ")),
    };
    refuse(
        C::UnknownRole,
        format!("there is no role {name:?}{hint} (jit roles lists the roles you may request)"),
    )
}

/// The key of a request, parsed: the one parse of the line the client sent (the comment
/// is dropped, as stored).
pub fn parse_public_key(line: &str) -> Ruling<PublicKey> {
    if line.len() > MAX_PUBLIC_KEY_LEN {
        return Err(refuse(C::MalformedPublicKey, "the public key is too long"));
    }
    let mut key = PublicKey::from_openssh(line.trim()).map_err(|e| {
        refuse(
            C::MalformedPublicKey,
            format!("public_key is not an OpenSSH public key line ({e})"),
        )
    })?;
    key.set_comment("");
    // The stored form must be writable: refuse here what could not be stored later.
    auth::key_header(&key).map_err(|e| Refusal::Internal(e.to_string()))?;
    Ok(key)
}

/// The SHA-256 fingerprint of a request's key (audit records).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Refuses unless `row` is pending at `now`.
pub fn check_pending(row: &RequestRow, now: u64) -> Ruling<()> {
    if row.state == RequestState::Pending && now >= row.pending_expires_at {
        return Err(refuse(
            C::InvalidState,
            format!(
                "request {} expired before it was approved; ask for a new one",
                row.id
            ),
        ));
    }
    if row.state != RequestState::Pending {
        return Err(refuse(
            C::InvalidState,
            format!("request {} is {}, not pending", row.id, row.state),
        ));
    }
    Ok(())
}

/// One recorded approval with what signed it and the approver's groups now (None: the
/// approver is no longer registered).
#[derive(Debug, Clone)]
pub struct CastApproval {
    pub approval: ApprovalView,
    pub key: CallerKey,
    /// Made from a web page (`store::KEY_WEB`): never counts for a role whose approvals
    /// need the key itself.
    pub web: bool,
    pub groups: Option<Vec<String>>,
}

/// The approvals that count: by someone other than the requester who is an approver of the
/// role now, made with a key the role accepts now (a web approval only while the role does
/// not need the key itself).
pub fn counted_approvals(
    row: &RequestRow,
    role: &Role,
    cast: Vec<CastApproval>,
) -> Vec<ApprovalView> {
    cast.into_iter()
        .filter(|c| c.approval.user != row.user)
        .filter(|c| !(c.web && role.needs_key_to_approve()))
        .filter(|c| {
            c.groups.as_ref().is_some_and(|g| {
                role.may_approve(&c.approval.user, g)
                    && role
                        .approval_key
                        .check(c.key.approval, c.key.sk, c.key.touched)
                        .is_ok()
            })
        })
        .map(|c| c.approval)
        .collect()
}

/// Whether `counted` approvals are enough (the more of what the request recorded and what
/// the role asks now).
pub fn enough(row: &RequestRow, role: &Role, counted: &[ApprovalView]) -> bool {
    counted.len() >= row.approvals_required.max(role.approvals) as usize
}

/// Marks `row` approved at `now` on `basis` (JSON: `{"approvers": [...]}` or
/// `{"auto_rule": ...}`) for its requested window: from approval, or from its requested
/// start to `start + duration` (an approval after the start shortens what is left, never
/// moves the end).
pub fn approve_row(row: &mut RequestRow, basis: serde_json::Value, now: u64) {
    row.state = RequestState::Approved;
    row.approved_at = Some(now);
    row.approved_until = Some(window_start(row, now).saturating_add(row.duration_secs));
    row.approval_basis = Some(basis.to_string());
}

/// Applies the approvals that count: approves `row` when they are enough. Returns whether
/// it did.
pub fn apply_approvals(
    row: &mut RequestRow,
    role: &Role,
    counted: &[ApprovalView],
    now: u64,
) -> bool {
    if !enough(row, role, counted) {
        return false;
    }
    let names: Vec<&str> = counted.iter().map(|a| a.user.as_str()).collect();
    approve_row(row, json!({"approvers": names}), now);
    true
}

/// Refuses unless a stored request still fits its role as it is now (the requester's
/// current `groups`, None if no longer registered; hosts, principals, sudo, a window of
/// `window_secs`).
pub fn still_fits(
    row: &RequestRow,
    role: &Role,
    groups: Option<&[String]>,
    window_secs: u64,
) -> Ruling<()> {
    let Some(groups) = groups else {
        return Err(refuse(
            C::InvalidState,
            format!("the requester {:?} is no longer registered", row.user),
        ));
    };
    role.still_fits(&Asked {
        user: &row.user,
        groups,
        hosts: &row.hosts,
        principals: &row.principals,
        sudo: row.sudo,
        window_secs,
        start: row.not_before,
    })
    .map_err(|why| {
        refuse(
            C::PolicyChanged,
            format!(
                "policy changed, request again: request {} no longer fits role {:?} ({why}); \
                 the requester can ask anew with jit request {}",
                row.id, role.name, role.name
            ),
        )
    })
}

/// What an extension does: the new end and window, and what covers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Extension {
    pub new_end: u64,
    /// From approval to the new end.
    pub window: u64,
    /// `"approval"`, or the auto-approval rule that covers the part beyond it.
    pub covered_by: serde_json::Value,
}

/// Extends an approved, live request by `secs`: within the window its approval covered,
/// or beyond it only when an auto-approval rule of the role (as it is now, for the
/// requester's `groups` now) approves the whole new window. Changes `row` (window, basis);
/// the caller checks [`authorize`] first and issues the new certificate.
pub fn extend(
    row: &mut RequestRow,
    role: Option<&Role>,
    latest: Option<&CertRow>,
    groups: Option<&[String]>,
    secs: u64,
    now: u64,
) -> Ruling<Extension> {
    let id = row.id.clone();
    let (RequestState::Approved, Some(latest), Some(approved_at)) =
        (row.state, latest, row.approved_at)
    else {
        return Err(refuse(
            C::InvalidState,
            format!(
                "request {id} is {}; only an active approved request can be extended",
                row.state
            ),
        ));
    };
    if latest.valid_before <= now {
        return Err(refuse(
            C::InvalidState,
            format!("request {id} has ended; ask for a new one"),
        ));
    }
    if secs == 0 {
        return Err(refuse(C::InvalidInput, "duration must be at least 1s"));
    }
    let Some(role) = role else {
        return Err(refuse(
            C::PolicyChanged,
            format!(
                "policy changed, request again: role {:?} is no longer in the policy",
                row.role
            ),
        ));
    };
    let new_end = latest.valid_before.saturating_add(secs);
    let start = window_start(row, approved_at);
    let window = new_end.saturating_sub(start);
    // What is left of the current window, for every refusal below: the requester decides
    // from it whether to extend less or ask again.
    let left = jit_common::time::format_duration(latest.valid_before.saturating_sub(now));
    if window > role.max_duration_secs {
        let room = start
            .saturating_add(role.max_duration_secs)
            .saturating_sub(latest.valid_before);
        // A later window (`--start`) is counted from its start, not from its approval.
        let from = if row.not_before.is_some() {
            "its start"
        } else {
            "approval"
        };
        return Err(refuse(
            C::DurationTooLong,
            format!(
                "the window would be {} from {from}; role {:?} allows {} ({left} left now; \
                 you may extend by at most {})",
                jit_common::time::format_duration(window),
                role.name,
                jit_common::time::format_duration(role.max_duration_secs),
                jit_common::time::format_duration(room)
            ),
        ));
    }
    still_fits(row, role, groups, window)?;
    let until = approved_until(row);
    let mut covered_by = json!("approval");
    if new_end > until {
        // Beyond what was approved: only an auto-approval rule that approves the whole
        // new window (for the requester as they are now) may cover it.
        let decision = role.auto_decision(&AutoInput {
            user: &row.user,
            groups: groups.unwrap_or_default(),
            duration_secs: window,
            hosts: &row.hosts,
            ticket: row.ticket.as_deref(),
            at: now,
            // A later window that has not started is judged where it starts: an extension
            // asked inside the rule's schedule must not carry the window outside it.
            starts_at: start.max(now),
            asks_webhooks: false,
        });
        match decision.approved {
            Some(a) => {
                row.approved_until = Some(new_end);
                row.approval_basis = Some(auto_basis(&a).to_string());
                covered_by = json!(a.approver);
            }
            None => {
                let basis = row.approval_basis.as_deref().unwrap_or("{}");
                return Err(refuse(
                    C::ExtensionNotApproved,
                    format!(
                        "request {id} was approved ({basis}) for a window until {} ({left} left \
                         now; you may extend by at most {} without a new approval); extending \
                         to {} goes beyond it and needs the {} approval(s) role {:?} asks \
                         for: request again (jit request {} --duration {} --reason ...) and \
                         ask an approver",
                        jit_common::time::format_utc(until),
                        jit_common::time::format_duration(
                            until.saturating_sub(latest.valid_before)
                        ),
                        jit_common::time::format_utc(new_end),
                        role.approvals,
                        role.name,
                        role.name,
                        jit_common::time::format_duration(new_end.saturating_sub(now))
                    ),
                ));
            }
        }
    }
    row.duration_secs = window;
    Ok(Extension {
        new_end,
        window,
        covered_by,
    })
}

/// The end of the window the request's approval covered (requests approved before this was
/// recorded: the window they were issued for).
pub fn approved_until(row: &RequestRow) -> u64 {
    row.approved_until.unwrap_or_else(|| {
        window_start(row, row.approved_at.unwrap_or(row.created_at))
            .saturating_add(row.duration_secs)
    })
}

/// Refuses unless `row`'s certificate may be fetched (approved or ended after approval).
pub fn check_has_certificate(row: &RequestRow) -> Ruling<()> {
    match row.state {
        RequestState::Approved | RequestState::Expired if row.approved_at.is_some() => Ok(()),
        s => Err(refuse(
            C::InvalidState,
            format!(
                "request {} is {s}; there is no certificate to fetch",
                row.id
            ),
        )),
    }
}

/// What the audit record of an issuance or extension says about the approval it rests on.
pub fn approval_details(row: &RequestRow) -> serde_json::Value {
    let basis = row
        .approval_basis
        .as_deref()
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .unwrap_or(serde_json::Value::Null);
    json!({"approval": {"basis": basis, "approved_at": row.approved_at, "approved_until": row.approved_until}})
}

/// The view of a request from its row, approvals and newest certificate at `now` (a
/// pending request past its expiry, or an approved one whose window ended, shows expired
/// before the sweeper records it).
/// `role` is the request's role as the policy has it now (None when it left the policy):
/// a request not issued yet reports whether issuance would bind it (`binds`), not only the
/// snapshot taken when it was made.
pub fn view_of(
    row: &RequestRow,
    role: Option<&Role>,
    approvals: Vec<ApprovalView>,
    cert: Option<&CertRow>,
    now: u64,
) -> RequestView {
    let mut state = row.state;
    if state == RequestState::Pending && now >= row.pending_expires_at {
        state = RequestState::Expired;
    }
    if state == RequestState::Approved && cert.is_some_and(|c| c.valid_before <= now) {
        state = RequestState::Expired;
    }
    RequestView {
        id: row.id.clone(),
        user: row.user.clone(),
        role: row.role.clone(),
        reason: row.reason.clone(),
        state,
        duration_secs: row.duration_secs,
        hosts: row.hosts.clone(),
        principals: row.principals.clone(),
        sudo: row.sudo,
        created_at: row.created_at,
        pending_expires_at: row.pending_expires_at,
        approvals,
        approvals_required: row.approvals_required,
        denied_by: row.denied_by.clone(),
        denial_reason: row.denial_reason.clone(),
        valid_after: cert.map(|c| c.valid_after),
        valid_before: cert.map(|c| c.valid_before),
        serial: cert.map(|c| c.serial),
        grant_id: cert.and_then(|c| c.grant_id.clone()),
        key_fingerprint: Some(fingerprint(&row.public_key)),
        request_digest: Some(jit_api::evidence::digest_of(&super::evidence::canonical(
            row,
        ))),
        issued: None,
        ticket: row.ticket.clone(),
        start: row.not_before,
        revoked_by: row.revoked_by.clone(),
        revoked_at: row.revoked_at,
        revocation_reason: row.revocation_reason.clone(),
        cancelled_at: row.cancelled_at,
        cancel_reason: row.cancel_reason.clone(),
        denied_at: row.denied_at,
        session_bound: bound_in_view(row, role, cert),
    }
}

/// What a view says of `session_bound`: an issued request what its grant carries (set at
/// issuance to `binds`); a pending or approved-not-issued one what issuance would do under
/// the role as it is now; any other the snapshot, as issuance would read it.
fn bound_in_view(row: &RequestRow, role: Option<&Role>, cert: Option<&CertRow>) -> bool {
    if cert.is_some() {
        return row.session_bound;
    }
    match (row.state, role) {
        (RequestState::Pending | RequestState::Approved, Some(role)) => {
            super::issue::binds(row, role)
        }
        _ => super::issue::binds_snapshot(row),
    }
}

#[cfg(test)]
mod tests;

//! What the web pages read (issue 16): one request with its audit records and the actions
//! the viewer may take, and who holds access now. The visibility rule is the API's
//! ([`lifecycle::authorize`] with `See`: one's own requests and those of roles one approves)
//! widened for the policy's `auditors`, who see everything.

use super::lifecycle::{self, Action, Actor};
use super::requests::view;
use super::{ApiResult, Ca, Caller, refuse};
use crate::audit::Record;
use crate::store::views::{ACCESS_PAGE_SIZE, AccessPage, AccessQuery, REQUEST_AUDIT_LIMIT};
use jit_api::wire::{ErrorCode as C, RequestState, RequestView};

/// A request as its page shows it.
#[derive(Debug, Clone)]
pub struct RequestPage {
    pub view: RequestView,
    /// Its newest audit records in chain order (at most [`REQUEST_AUDIT_LIMIT`]).
    pub events: Vec<Record>,
    /// How many audit records name the request in all (more than `events` holds when the
    /// oldest were left out; the page says so).
    pub events_total: u64,
    /// What the viewer may do with it now.
    pub may: Permitted,
}

/// The actions a viewer may take on a request as it is now (each still checked again when
/// taken).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permitted {
    /// Approve: pending, an approver of the role who is not the requester and has not
    /// approved yet.
    pub approve: bool,
    /// Deny: pending, an approver of the role who is not the requester.
    pub deny: bool,
    /// Cancel: pending, the requester.
    pub cancel: bool,
    /// Drop: approved and still valid, the requester.
    pub drop: bool,
}

/// Filters of the access page (exact role, host name or selector, exact user) and the page
/// (0-based).
#[derive(Debug, Clone, Default)]
pub struct AccessFilter {
    pub role: Option<String>,
    pub host: Option<String>,
    pub user: Option<String>,
    pub page: u64,
}

impl Ca {
    /// A request's page for `caller`: 404 when there is no such request, 403 when the caller
    /// may not see it (neither theirs, nor of a role they approve, nor an auditor).
    pub fn request_page(&self, caller: &Caller, id: &str) -> ApiResult<RequestPage> {
        let now = self.now();
        let auditor = self.is_auditor(&caller.user, &caller.groups);
        let (view, may) = self.read_db(|c| {
            let row = c
                .get_request(id)?
                .ok_or_else(|| refuse(C::NotFound, format!("no request {id:?}")))?;
            let role = self.role_of(&row.role);
            if !auditor {
                lifecycle::authorize(Actor::Caller(caller), Action::See, &row, role.as_ref())?;
            }
            let v = view(c, role.as_ref(), &row, now)?;
            let requester = row.user == caller.user;
            let approver = role.as_ref().is_some_and(|r| {
                lifecycle::may_approve(&row.user, r, &caller.user, &caller.groups)
            });
            let pending = v.state == RequestState::Pending && now < row.pending_expires_at;
            let live = v.state == RequestState::Approved && v.valid_before.is_some_and(|b| now < b);
            let approved_by_me = v.approvals.iter().any(|a| a.user == caller.user);
            let may = Permitted {
                approve: pending && approver && !approved_by_me,
                deny: pending && approver,
                cancel: pending && requester,
                drop: live && requester,
            };
            Ok::<_, crate::error::ApiError>((v, may))
        })?;
        // By the expression index `audit_request` (migration 8): no scan of the trail.
        let a = self.read_db(|c| c.request_audit(&view.id, REQUEST_AUDIT_LIMIT))?;
        Ok(RequestPage {
            view,
            events: a.records,
            events_total: a.total,
            may,
        })
    }

    /// One page ([`ACCESS_PAGE_SIZE`] rows) of the elevations in force now that `caller` may
    /// see (all for an auditor), filtered, and how many match in all. Visibility, filters
    /// and paging are done in SQL; the roles the caller approves come from the policy through
    /// [`Role::may_approve`](crate::policy::Role::may_approve), the call
    /// `lifecycle::authorize(See)` makes (one rule; `tests/api/ui.rs` checks they agree).
    pub fn access_now(&self, caller: &Caller, filter: &AccessFilter) -> ApiResult<AccessPage> {
        let now = self.now();
        let policy = self.policy();
        let see_all = self.is_auditor(&caller.user, &caller.groups);
        let approves = if see_all {
            Vec::new()
        } else {
            policy
                .roles
                .iter()
                .filter(|(_, r)| r.may_approve(&caller.user, &caller.groups))
                .map(|(name, _)| name.clone())
                .collect()
        };
        let q = AccessQuery {
            now,
            see_all,
            me: caller.user.clone(),
            approves,
            role: filter.role.clone(),
            host: filter.host.clone(),
            user: filter.user.clone(),
            offset: filter.page.saturating_mul(u64::from(ACCESS_PAGE_SIZE)),
            limit: ACCESS_PAGE_SIZE,
        };
        Ok(self.read_db(|c| c.access_page(&q))?)
    }
}

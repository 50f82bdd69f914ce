//! Who may decide what: the one rule, for every action on a request.

use super::{Refusal, Ruling, check_pending, refuse};
use crate::policy::Role;
use crate::service::Caller;
use crate::store::RequestRow;
use jit_api::wire::ErrorCode as C;

/// Who acts on a request.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// An authenticated API caller.
    Caller(&'a Caller),
    /// An operator on the data directory (`jit-ca revoke`, `user remove`): no role check.
    Operator,
}

/// What an actor does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read it (`GET /v1/requests/{id}`, lists).
    See,
    /// Approve it.
    Approve,
    /// Deny it (an approver), or withdraw it (the requester).
    Deny,
    /// Withdraw it while pending (the requester only).
    Cancel,
    /// Revoke its certificate and grant.
    Revoke,
    /// End its active elevation early (a revocation by the requester only).
    Drop,
    /// Extend its window.
    Extend,
    /// Fetch its certificate.
    FetchCertificate,
}

/// Who may do what: the requester may see, cancel or withdraw (deny), revoke, extend and fetch the
/// certificate of their own request, never approve it; an approver of the role (as the
/// policy is now) may see, approve, deny and revoke, with a key the role's `approval_key`
/// accepts for approving; an operator may revoke and deny anything. `role` is None when the
/// role is no longer in the policy.
pub fn authorize(
    actor: Actor<'_>,
    action: Action,
    row: &RequestRow,
    role: Option<&Role>,
) -> Ruling<()> {
    let Actor::Caller(caller) = actor else {
        return match action {
            Action::Revoke | Action::Deny | Action::See => Ok(()),
            _ => Err(Refusal::Internal(format!(
                "an operator cannot {action:?} a request"
            ))),
        };
    };
    let requester = row.user == caller.user;
    let approver = role.is_some_and(|r| r.may_approve(&caller.user, &caller.groups));
    match action {
        Action::See if requester || approver => Ok(()),
        Action::See => Err(refuse(
            C::Forbidden,
            format!(
                "request {} is neither yours nor one you may approve",
                row.id
            ),
        )),
        Action::Deny if requester || approver => Ok(()),
        Action::Deny => Err(refuse(
            C::NotAnApprover,
            format!("you ({}) may not deny role {:?}", caller.user, row.role),
        )),
        Action::Revoke if requester || approver => Ok(()),
        Action::Revoke => Err(refuse(
            C::Forbidden,
            "only the requester or an approver of the role may revoke",
        )),
        Action::Cancel if requester => Ok(()),
        Action::Cancel => Err(refuse(
            C::Forbidden,
            format!(
                "only the requester may cancel request {}; an approver denies it (jit deny {} \
                 --reason TEXT)",
                row.id, row.id
            ),
        )),
        Action::Drop if requester => Ok(()),
        Action::Drop => Err(refuse(
            C::Forbidden,
            format!(
                "only the requester may drop request {}; an approver revokes it (jit revoke {})",
                row.id, row.id
            ),
        )),
        Action::Extend if requester => Ok(()),
        Action::Extend => Err(refuse(
            C::Forbidden,
            "only the requester may extend a request",
        )),
        Action::FetchCertificate if requester => Ok(()),
        Action::FetchCertificate => Err(refuse(
            C::Forbidden,
            "only the requester can fetch the certificate",
        )),
        Action::Approve => {
            if requester {
                return Err(refuse(
                    C::SelfApproval,
                    "you cannot approve your own request; ask another approver",
                ));
            }
            let Some(role) = role else {
                return Err(refuse(
                    C::InvalidState,
                    format!("role {:?} is no longer in the policy", row.role),
                ));
            };
            if !may_approve(&row.user, role, &caller.user, &caller.groups) {
                return Err(refuse(
                    C::NotAnApprover,
                    format!("you ({}) may not approve role {:?}", caller.user, role.name),
                ));
            }
            role.approval_key
                .check(caller.key.approval, caller.key.sk, caller.key.touched)
                .map_err(|why| {
                    refuse(
                        C::ApprovalKeyRequired,
                        format!(
                            "role {:?} has approval_key = \"{}\" and key {} does not qualify: {why}",
                            role.name,
                            role.approval_key.as_str(),
                            caller.key.fingerprint
                        ),
                    )
                })
        }
    }
}

/// Whether `user` (with `groups`) may approve, as a person, a request of `requester` for
/// `role` as the policy is now: an approver of the role who is not the requester. The rule
/// [`authorize`] applies to `Action::Approve` before the key's (`approval_key`, a property of
/// the call); notifications use it to name the eligible approvers of a pending request.
pub fn may_approve(requester: &str, role: &Role, user: &str, groups: &[String]) -> bool {
    user != requester && role.may_approve(user, groups)
}

/// Refuses a call signed with an approval key where only a login key may act.
pub fn refuse_approval_key(caller: &Caller, what: &str) -> Ruling<()> {
    if caller.key.approval {
        return Err(refuse(
            C::ApprovalKeyNotForRequests,
            format!(
                "key {} is registered as an approval key, which may approve but not {what}; \
                 use your login key (jit --identity KEYFILE)",
                caller.key.fingerprint
            ),
        ));
    }
    Ok(())
}

/// Refuses an approval of `row` by `caller` at `now` under `role` as it is now (None: no
/// longer in the policy); else the role the approval counts under.
pub fn check_approval<'r>(
    row: &RequestRow,
    caller: &Caller,
    role: Option<&'r Role>,
    now: u64,
) -> Ruling<&'r Role> {
    check_pending(row, now)?;
    authorize(Actor::Caller(caller), Action::Approve, row, role)?;
    role.ok_or_else(|| Refusal::Internal("authorize let an approval through with no role".into()))
}

//! How a request is closed: denied or withdrawn (deny), cancelled by its requester, revoked
//! (by an approver, an operator, or the requester: revoke, drop_own), expired. Pure, like
//! the rest of `lifecycle`.

use super::{Action, Actor, Ruling, authorize, check_pending, refuse};
use crate::policy::Role;
use crate::service::Caller;
use crate::store::RequestRow;
use jit_api::wire::{ErrorCode as C, RequestState};

/// Denies (or, by the requester, withdraws) a pending request: `by` is recorded.
pub fn deny(
    row: &mut RequestRow,
    actor: Actor<'_>,
    role: Option<&Role>,
    by: &str,
    reason: &str,
    now: u64,
) -> Ruling<()> {
    // An operator removing a user denies their pending requests even past expiry (the
    // sweeper may not have recorded it yet); a caller cannot deny an expired one.
    let expired = matches!(actor, Actor::Caller(_)) && now >= row.pending_expires_at;
    if row.state != RequestState::Pending || expired {
        return Err(refuse(
            C::InvalidState,
            format!("request {} is not pending", row.id),
        ));
    }
    authorize(actor, Action::Deny, row, role)?;
    row.state = RequestState::Denied;
    row.denied_by = Some(by.to_string());
    row.denied_at = Some(now);
    row.denial_reason = Some(reason.to_string());
    Ok(())
}

/// Cancels a pending request: only its requester may, before it expires. Records when; the
/// service records why (`cancel_reason`) next to it.
pub fn cancel(row: &mut RequestRow, caller: &Caller, role: Option<&Role>, now: u64) -> Ruling<()> {
    authorize(Actor::Caller(caller), Action::Cancel, row, role)?;
    if row.state == RequestState::Approved {
        return Err(refuse(
            C::InvalidState,
            format!(
                "request {} is approved, not pending; to end it early use jit drop {}",
                row.id, row.id
            ),
        ));
    }
    check_pending(row, now)?;
    row.state = RequestState::Cancelled;
    row.cancelled_at = Some(now);
    Ok(())
}

/// The reason recorded when the requester drops their own elevation.
pub const DROP_REASON: &str = "dropped by requester";

/// The requester ends their own approved request early: a revocation by the requester
/// (only the requester may; a pending request is cancelled instead).
pub fn drop_own(
    row: &mut RequestRow,
    caller: &Caller,
    role: Option<&Role>,
    now: u64,
) -> Ruling<()> {
    authorize(Actor::Caller(caller), Action::Drop, row, role)?;
    revoke(row, Actor::Caller(caller), role, &caller.user, now)
}

/// Revokes an approved request: `by` is recorded.
pub fn revoke(
    row: &mut RequestRow,
    actor: Actor<'_>,
    role: Option<&Role>,
    by: &str,
    now: u64,
) -> Ruling<()> {
    authorize(actor, Action::Revoke, row, role)?;
    if row.state == RequestState::Pending
        && let Actor::Caller(caller) = actor
    {
        // Nothing was issued: the requester cancels, an approver denies.
        let how = if caller.user == row.user {
            format!("to withdraw it use jit cancel {}", row.id)
        } else {
            format!(
                "an approver denies it with jit deny {} --reason TEXT",
                row.id
            )
        };
        return Err(refuse(
            C::InvalidState,
            format!(
                "request {} is pending, nothing was issued to revoke; {how}",
                row.id
            ),
        ));
    }
    if row.state != RequestState::Approved {
        return Err(refuse(
            C::InvalidState,
            format!(
                "request {} is {}; only approved requests can be revoked",
                row.id, row.state
            ),
        ));
    }
    row.state = RequestState::Revoked;
    row.revoked_at = Some(now);
    row.revoked_by = Some(by.to_string());
    Ok(())
}

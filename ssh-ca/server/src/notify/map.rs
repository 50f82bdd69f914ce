//! Which audit events are notifications: the one mapping from an audit record's event
//! (`crate::audit::event`) to a notification [`Kind`]. The outbox hook in the store's
//! `append_audit` (see WIP-15.md) calls it for every record it appends; `None` means no
//! outbox row (refusals, user administration, reloads: the audit trail and syslog keep them).

use super::event::Kind;
use crate::audit::event::Event as Audit;

/// The notification an audit record of `ev` makes, if any.
pub fn kind_of(ev: Audit) -> Option<Kind> {
    Some(match ev {
        Audit::Request => Kind::RequestCreated,
        Audit::Approval => Kind::RequestApproved,
        Audit::Denial => Kind::RequestDenied,
        Audit::Cancellation => Kind::RequestCancelled,
        Audit::Expiry => Kind::RequestExpired,
        Audit::Issuance => Kind::RequestIssued,
        Audit::Revocation => Kind::RequestRevoked,
        Audit::Extension => Kind::RequestExtended,
        // Operator emergency tooling always alerts (a detector is not needed: every one).
        Audit::GrantRevocation => Kind::AlertBreakGlass,
        // No notification of their own. USER_REMOVE's denials and revocations: one event
        // per affected request is WP-A's decision (WIP-15.md, section 1).
        Audit::RequestRefused
        | Audit::ApprovalRefused
        | Audit::DenialRefused
        | Audit::RevocationRefused
        | Audit::ExtensionRefused
        | Audit::AccessRefused
        | Audit::CancellationRefused
        | Audit::Rejected
        | Audit::AuthFailure
        | Audit::RefusalsSummarised
        | Audit::LegacySignature
        | Audit::PolicyReload
        | Audit::UserAdd
        | Audit::UserAddKey
        | Audit::UserRemove
        | Audit::UserRemoveKey
        | Audit::ServiceStart
        | Audit::WebhookAnswer
        | Audit::WebhookFailure => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request kind but the reminder (a sweep record still to add) has its audit
    /// event, and no two audit events make the same request kind.
    #[test]
    fn each_request_change_has_one_audit_event() {
        let mut made: Vec<Kind> = Audit::ALL.iter().filter_map(|e| kind_of(*e)).collect();
        made.sort();
        let mut deduped = made.clone();
        deduped.dedup();
        assert_eq!(made, deduped, "two audit events make one kind");
        let missing: Vec<_> = Kind::ALL
            .iter()
            .filter(|k| k.family() == "request" && !made.contains(k))
            .map(|k| k.as_str())
            .collect();
        assert_eq!(missing, ["request.expiring"]);
        assert_eq!(kind_of(Audit::AuthFailure), None);
        assert_eq!(kind_of(Audit::Issuance), Some(Kind::RequestIssued));
    }
}

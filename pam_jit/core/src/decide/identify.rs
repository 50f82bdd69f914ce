//! Who is asking: the caller is identified once, before anything is read for them.

use super::{Decision, Facts, host_of};
use crate::config::Config;

/// The invoking user, identified by [`identify`] (its only constructor): a valid login name
/// whose passwd uid is the calling process's real uid, asking for a gated service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invoker<'a> {
    name: &'a str,
    uid: u32,
}

impl<'a> Invoker<'a> {
    /// The login name (`PAM_RUSER`).
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The uid, both the passwd entry's and the calling process's real uid.
    pub fn uid(&self) -> u32 {
        self.uid
    }
}

/// Finds the invoking user: `PAM_RUSER`, which must be a valid login name whose passwd uid
/// is the process's real uid. Returns an early decision for ignored services and for
/// callers that cannot be identified.
// The early decision is made once per sudo call and returned by value as the hook's result;
// boxing it would only add an allocation.
#[allow(clippy::result_large_err)]
pub fn identify<'a>(config: &Config, facts: &Facts<'a>) -> Result<Invoker<'a>, Decision> {
    let host = host_of(facts);
    if !config.gates(facts.service) {
        return Err(Decision::ignore(format!(
            "service {} is not gated (services = {:?})",
            facts.service, config.services
        )));
    }
    let c = facts.caller;
    let Some(ruser) = c.ruser.filter(|u| !u.is_empty()) else {
        return Err(Decision::deny(
            None,
            host,
            None,
            "the invoking user is unknown (PAM_RUSER is not set)",
            "use sudo >= 1.9 or sudo-rs, which set it",
        )
        .audited(config.mode));
    };
    if jit_common::grant::check_user("user", ruser).is_err() {
        return Err(Decision::deny(
            None,
            host,
            None,
            &format!("the invoking user {ruser:?} is not a valid login name"),
            "jit grants only cover POSIX login names",
        )
        .audited(config.mode));
    }
    match c.ruser_uid {
        None => Err(Decision::deny(
            Some(ruser),
            host,
            None,
            &format!("the invoking user {ruser} has no passwd entry"),
            "check the user database (getent passwd)",
        )
        .audited(config.mode)),
        Some(uid) if uid != c.uid => Err(Decision::deny(
            Some(ruser),
            host,
            None,
            &format!(
                "the invoking user {ruser} (uid {uid}) is not the calling process's user (uid {})",
                c.uid
            ),
            "PAM_RUSER must name the real user",
        )
        .audited(config.mode)),
        Some(uid) => Ok(Invoker { name: ruser, uid }),
    }
}

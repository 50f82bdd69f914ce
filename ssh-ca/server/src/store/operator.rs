//! Operator revocations: grant ids and serials `jit-ca revoke-grant` revoked that no
//! certificate row carries (break-glass grants, another CA's), kept in the meta table and
//! listed on every revocation list and KRL for good. A leaf: the service's publication
//! (`service::publish`) reads them, `revoke-grant` (`service::external`) writes them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::StoreOps;
use crate::error::{CaError, Result};

/// Meta key of grant ids and serials revoked by `revoke-grant` that this CA did not issue
/// (break-glass grants): listed on the revocation list and KRL for good.
const OPERATOR_REVOCATIONS_KEY: &str = "operator_revocations";

/// Grant ids and serials revoked by an operator that no certificate row carries.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct OperatorRevocations {
    /// Grant ids (break-glass grants, or grants of another CA instance).
    pub grants: BTreeSet<String>,
    /// Certificate serials.
    pub serials: BTreeSet<u64>,
}

/// The operator revocations stored in `c` (none stored: empty). A stored value that does
/// not decode is an error, never an empty set: a publication from it would drop every
/// operator revocation from the revocation list and KRL.
pub fn load(c: &dyn StoreOps) -> Result<OperatorRevocations> {
    match c.meta_get(OPERATOR_REVOCATIONS_KEY)? {
        None => Ok(OperatorRevocations::default()),
        Some(s) => serde_json::from_str(&s).map_err(|e| CaError::BadStoredValue {
            what: "operator revocations",
            detail: e.to_string(),
        }),
    }
}

/// Stores `r` (inside `c`'s transaction).
pub fn store(c: &dyn StoreOps, r: &OperatorRevocations) -> Result<()> {
    let text = serde_json::to_string(r).map_err(|e| CaError::Publish {
        what: "operator revocations",
        source: Box::new(e),
    })?;
    c.meta_set(OPERATOR_REVOCATIONS_KEY, &text)
}

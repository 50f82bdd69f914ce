//! The C boundary: the six `pam_sm_*` hooks. Every hook denies on every error path.
#![allow(unsafe_code)] // The PAM FFI room: every block carries a `// SAFETY:` comment.

use pam::constants::{PamFlag, PamResultCode};
use pam::module::{PamHandle, PamHooks};
use std::ffi::CStr;

/// The module's hook table.
#[derive(Debug)]
pub struct PamJit;

pam::pam_hooks!(PamJit);

impl PamHooks for PamJit {
    fn acct_mgmt(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        // Fail closed until the decision lands (host-side issue).
        PamResultCode::PAM_PERM_DENIED
    }
}

//! The jit signing service (`jit-ca`) and client (`jit`).
//!
//! [`wire`] is the API contract and [`auth`] the request-signing scheme; both sides use them.
#![forbid(unsafe_code)]

pub mod auth;
pub mod wire;

//! The jit HTTP contract, shared by the service (`jit-ca`), the client (`jit`) and the
//! host tool (`jit-host sync`):
//!
//! * [`wire`]: every request and response body, error codes and API paths.
//! * [`auth`]: the request-signing scheme (what a caller signs, how the CA checks it).
//! * [`evidence`]: a request's canonical text and digest, which an approval names.
//! * [`servers`]: lists of CA replica URLs and when a failed call may go to the next one.
//!
//! No I/O, no runtime: plain types and pure functions over `ssh-key`.
#![forbid(unsafe_code)]

pub mod auth;
pub mod evidence;
pub mod servers;
pub mod wire;

//! The jit signing service (`jit-ca`) and client (`jit`).
//!
//! [`wire`] is the API contract and [`auth`] the request-signing scheme; both sides use them.
//!
//! The service `jit-ca`, by where a change belongs:
//! [`config`] (config.toml), [`policy`] (policy.toml: roles and who may do what),
//! [`store`] (SQLite), [`audit`] (the hash chain), [`signer`] (CA keys, certificates, grants),
//! [`krl`] (OpenSSH KRL encoding), [`service`] (the decisions, synchronous), [`api`] (HTTP),
//! [`server`] (listening, TLS, signals), [`admin`] (operator commands on a data directory).
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod audit;
pub mod clock;
pub mod config;
pub mod error;
pub mod files;
pub mod krl;
pub mod policy;
pub mod server;
pub mod service;
pub mod signer;
pub mod store;

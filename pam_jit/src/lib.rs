//! `pam_jit.so`: gates sudo on CA-signed grants stored on the host, decided offline.
//!
//! The FFI lives in [`pam`] (the only place `unsafe` is allowed).

pub mod pam;

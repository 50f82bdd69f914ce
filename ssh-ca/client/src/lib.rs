//! The engineers' and approvers' client `jit`: signed calls to the `jit-ca` API, waiting
//! for decisions, and installing certificates for plain `ssh`.
//!
//! * [`cli`]: the command line; [`run`]: what each command does and prints.
//! * [`config`]: server and identity from flags, environment, `~/.config/jit/config.toml`.
//! * [`identity`]: key file or ssh-agent signer; [`agent`]: the ssh-agent protocol bits.
//! * [`api`]: the signed HTTP client ([`jit_api::wire`], [`jit_api::auth`]), failing over
//!   between a CA's replicas; [`transport`]: its HTTP agent and how an attempt ended.
//! * [`show`]: how requests, tables and certificates are printed for people.
//! * [`login`]: writing `KEYFILE-cert.pub`, the grant, and loading the agent.
//! * [`web`]: `jit web`: the one-time browser login URL and opening it.
//!
//! This module may touch the caller's `~/.ssh` (certificate and grant files only, never
//! keys) and the ssh-agent; it never holds a CA key.
#![forbid(unsafe_code)]
// stdout goes through jit_common::outln!: println! panics on a closed pipe.
#![cfg_attr(not(test), deny(clippy::print_stdout))]

pub mod agent;
pub mod api;
pub mod cli;
pub mod config;
pub mod error;
pub mod gendocs;
pub mod identity;
pub mod login;
pub mod roles;
pub mod run;
pub mod show;
pub mod transport;
pub mod web;
pub mod when;

pub use error::{Error, Result};

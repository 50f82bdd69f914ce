//! `jit-host`: the host tool (see the `jit_host` library and `jit-host --help`).
#![forbid(unsafe_code)]
// stdout goes through jit_common::outln!: println! panics on a closed pipe.
#![cfg_attr(not(test), deny(clippy::print_stdout))]

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    jit_host::run(&jit_host::Cli::parse())
}

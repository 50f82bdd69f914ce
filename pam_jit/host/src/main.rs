//! `jit-host`: the host tool (see the `jit_host` library and `jit-host --help`).
#![forbid(unsafe_code)]
// stdout goes through jit_common::outln!: println! panics on a closed pipe.
#![cfg_attr(not(test), deny(clippy::print_stdout))]

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let json = jit_host::wants_json(std::env::args_os());
    match jit_host::Cli::try_parse() {
        Ok(cli) => jit_host::run(&cli),
        Err(e) => jit_host::usage_error(&e, json),
    }
}

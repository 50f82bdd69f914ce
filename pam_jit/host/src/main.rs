//! `jit-host`: the host tool (see the `jit_host` library and `jit-host --help`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    jit_host::run(&jit_host::Cli::parse())
}

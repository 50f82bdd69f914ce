//! `jit-ca`: the jit signing service and its operator commands. The command line lives in
//! the library ([`jit_ca::cli`]), so that it is tested and documented with the rest.
#![forbid(unsafe_code)]
// stdout goes through jit_common::outln!: println! panics on a closed pipe.
#![cfg_attr(not(test), deny(clippy::print_stdout))]

fn main() -> std::process::ExitCode {
    jit_ca::cli::main()
}

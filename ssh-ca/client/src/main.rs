//! `jit`: request, approve and use just-in-time access (see `jit --help`, docs/client.md).
#![forbid(unsafe_code)]
// stdout goes through jit_common::outln!: println! panics on a closed pipe.
#![cfg_attr(not(test), deny(clippy::print_stdout))]

use clap::Parser as _;
use jit::cli::Cli;
use jit::error::EXIT_OK;
use jit::run::run;

fn main() {
    let cli = Cli::parse();
    let json = cli.json;
    let code = match run(cli) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            let msg = jit_common::log::sanitize(&e.to_string(), 2000);
            eprintln!("jit: {msg}");
            if json {
                // Scripts read stdout: give them the same error in the API's error shape.
                let body = jit_api::wire::ErrorBody {
                    error: jit_api::wire::ErrorDetail {
                        code: e.code().to_string(),
                        message: msg,
                    },
                };
                if let Ok(t) = serde_json::to_string(&body) {
                    jit_common::outln!("{t}");
                }
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}

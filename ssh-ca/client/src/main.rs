//! `jit`: request, approve and use just-in-time access (see `jit --help`, docs/client.md).
#![forbid(unsafe_code)]
// stdout goes through jit_common::outln!: println! panics on a closed pipe.
#![cfg_attr(not(test), deny(clippy::print_stdout))]

use clap::Parser as _;
use jit::cli::Cli;
use jit::error::EXIT_OK;
use jit::run::run;

fn main() {
    // `--json` anywhere before `--`: a script asked for JSON, even if the rest does not parse.
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if !json || matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                e.exit();
            }
            // clap's own text on stderr, the same error as JSON on stdout; exit code 2.
            let _ = e.print();
            print_json_error(
                "usage",
                jit_common::stdout::usage_line(&e.render().to_string()),
            );
            std::process::exit(e.exit_code());
        }
    };
    let code = match run(cli) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            let msg = jit_common::log::sanitize(&e.to_string(), 2000);
            jit_common::errln!("jit: {msg}");
            if json {
                // Scripts read stdout: give them the same error in the API's error shape.
                print_json_error(e.code(), msg);
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// `{"error": {"code": ..., "message": ...}}` on stdout, one line: the API's error shape.
fn print_json_error(code: &str, message: String) {
    let body = jit_api::wire::ErrorBody {
        error: jit_api::wire::ErrorDetail {
            code: code.to_string(),
            message,
        },
    };
    if let Ok(t) = serde_json::to_string(&body) {
        jit_common::outln!("{t}");
    }
}

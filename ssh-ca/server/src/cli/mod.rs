//! The `jit-ca` command line: the clap definitions (`args.rs`), what each command does and
//! prints ([`run`]), man pages and completions ([`generate_docs`]). `src/main.rs` only calls
//! [`main`].
//!
//! Command spellings, flags, output and exit codes are a contract (tests/ca_cli.rs and
//! tests/ca_operator.rs check them): 0 on success, 1 on any error or failed check.

mod args;
mod docs;
mod run;

use std::process::ExitCode;

use clap::Parser as _;

pub use args::{
    AuditCommand, BreakGlassCommand, Cli, Command, DirArg, PolicyCommand, UserCommand,
    UserKeyCommand,
};
pub use docs::generate_docs;
pub use run::run;

/// Parses the command line, runs the command and turns an error into a message on stderr
/// and exit code 1 (2 for a command-line error). With `--json` anywhere on the command line,
/// every failure (a command-line error too) also prints one JSON object on stdout,
/// `{"error": {"code": CODE, "message": TEXT}}`, the shape of the API's errors and of `jit
/// --json`; the exit code is the same.
pub fn main() -> ExitCode {
    let json = wants_json(std::env::args_os());
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, json),
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            jit_common::errln!("jit-ca: {e}");
            if json {
                print_json_error(e.code(), &e.to_string());
            }
            ExitCode::FAILURE
        }
    }
}

/// `--json` anywhere before a `--` (what a script asked for, even when the rest of the
/// command line does not parse).
pub(crate) fn wants_json(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    args.into_iter()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// A command-line error: clap's own text on stderr, plus the JSON error object with `--json`.
/// `--help` and `--version` print as always.
fn usage_error(e: &clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    if !json || matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    let _ = e.print();
    print_json_error(
        "usage",
        &jit_common::stdout::usage_line(&e.render().to_string()),
    );
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// `{"error": {"code": ..., "message": ...}}` on stdout, one line.
pub(crate) fn print_json_error(code: &str, message: &str) {
    let body = jit_api::wire::ErrorBody {
        error: jit_api::wire::ErrorDetail {
            code: code.to_string(),
            message: message.to_string(),
        },
    };
    if let Ok(text) = serde_json::to_string(&body) {
        jit_common::outln!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::{CommandFactory as _, Parser as _};

    use super::*;

    #[test]
    fn json_is_wanted_anywhere_before_a_double_dash() {
        let w = |a: &[&str]| wants_json(a.iter().map(std::ffi::OsString::from));
        assert!(w(&["jit-ca", "user", "lst", "--json"]));
        assert!(w(&["jit-ca", "--json"]));
        assert!(!w(&["jit-ca", "user", "list"]));
        assert!(!w(&["jit-ca", "revoke", "--", "--json"]));
        assert!(!w(&["--json"]), "argv[0] is the program");
        assert!(!w(&["jit-ca", "--json=yes"]));
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dir_comes_from_the_flag() {
        let cli = Cli::try_parse_from(["jit-ca", "user", "list", "--dir", "/d", "--json"]).unwrap();
        match cli.command {
            Command::User {
                command: UserCommand::List { dir, json },
            } => assert_eq!((dir.dir, json), (PathBuf::from("/d"), true)),
            other => panic!("{other:?}"),
        }
    }
}

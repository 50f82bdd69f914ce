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

pub use args::{AuditCommand, BreakGlassCommand, Cli, Command, DirArg, PolicyCommand, UserCommand};
pub use docs::generate_docs;
pub use run::run;

/// Parses the command line, runs the command and turns an error into a message on stderr
/// and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jit-ca: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::{CommandFactory as _, Parser as _};

    use super::*;

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

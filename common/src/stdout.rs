//! Standard output for the programs (`jit`, `jit-ca`, `jit-host`): [`outln!`](crate::outln) and
//! [`out!`](crate::out) instead of `println!` / `print!`.
//!
//! Rust ignores SIGPIPE, so a write to a pipe whose reader has gone (`jit-ca audit export |
//! head -1`) fails with `EPIPE`, and `println!` turns that into a panic (exit 101 and a
//! "failed printing to stdout" message). These writers end the program instead, quietly,
//! with status [`EXIT_CLOSED_PIPE`] (141 = 128 + SIGPIPE, what a shell reports for a C
//! program killed by SIGPIPE): the reader asked for no more, and a script using `set -o
//! pipefail` still learns that the output was not read to the end. Whatever the command
//! already did (a committed change) stays done; only its remaining output is dropped.
//! Any other write error (a full disk behind `> file`) is reported on stderr and exits 1.

use std::fmt;
use std::io::{self, Write as _};

/// The exit status after the reader of standard output went away (128 + SIGPIPE).
pub const EXIT_CLOSED_PIPE: i32 = 141;

/// Writes to standard output; on failure ends the process (see the module documentation).
pub fn write_fmt(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        drop(out);
        failed(&e);
    }
}

/// Ends the process after standard output failed: quietly with [`EXIT_CLOSED_PIPE`] when the
/// reader went away, else with a message on stderr and status 1.
pub fn failed(e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(EXIT_CLOSED_PIPE);
    }
    let _ = writeln!(io::stderr(), "error: cannot write to standard output: {e}");
    std::process::exit(1);
}

/// A command-line parser's error text (clap's rendering) on one line, for `--json` error
/// output: its first paragraph without the `error: ` prefix (the missing arguments are on
/// its next lines), then its tips (`tip: a similar subcommand exists: ...`).
pub fn usage_line(rendered: &str) -> String {
    let text = rendered.trim_start();
    let text = text.strip_prefix("error: ").unwrap_or(text);
    let mut paragraphs = text.split("\n\n");
    let mut message = paragraphs
        .next()
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    for tip in paragraphs
        .flat_map(str::lines)
        .map(str::trim)
        .filter(|l| l.starts_with("tip: "))
    {
        message.push_str("; ");
        message.push_str(tip);
    }
    if message.is_empty() {
        message = "invalid command line (see --help)".into();
    }
    message
}

/// `print!` that ends the program quietly (status 141) on a closed pipe, never panics.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write_fmt(::std::format_args!($($arg)*))
    };
}

/// `println!` that ends the program quietly (status 141) on a closed pipe, never panics.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdout::write_fmt(::std::format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write_fmt(::std::format_args!("{}\n", ::std::format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics: when stderr itself is gone there is no one left to tell.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usage_error_fits_one_line() {
        assert_eq!(
            usage_line(
                "error: the following required arguments were not provided:\n  --dir <DIR>\n\n\
                 Usage: jit-ca user list --dir <DIR>\n\nFor more information, try '--help'.\n"
            ),
            "the following required arguments were not provided: --dir <DIR>"
        );
        assert_eq!(
            usage_line(
                "error: unrecognized subcommand 'lst'\n\n  tip: a similar subcommand exists: \
                 'list'\n\nUsage: jit-ca user <COMMAND>\n"
            ),
            "unrecognized subcommand 'lst'; tip: a similar subcommand exists: 'list'"
        );
        assert_eq!(usage_line(""), "invalid command line (see --help)");
    }
}

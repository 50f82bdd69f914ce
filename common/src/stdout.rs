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

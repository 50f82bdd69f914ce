//! The `jit` command line (clap derive). Kept in the library so tests and
//! `generate-docs` see exactly what the binary parses.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Parses `30m`, `1h`, `1h30m`, `90s` into seconds.
fn duration(s: &str) -> Result<u64, String> {
    let secs = jit_common::time::parse_duration(s)?.as_secs();
    if secs == 0 {
        return Err("the duration must be more than 0s (examples: 30m, 1h)".to_string());
    }
    Ok(secs)
}

/// jit: ask for temporary SSH/sudo access, approve others' requests, get certificates.
#[derive(Debug, Parser)]
#[command(
    name = "jit",
    version,
    about = "Just-in-time access: request a role, get it approved, log in with a short-lived OpenSSH certificate",
    long_about = "Just-in-time access: request a role, get it approved, log in with a short-lived \
OpenSSH certificate.\n\n\
The CA server comes from --server, the JIT_SERVER environment variable, or `server = \"...\"` in \
~/.config/jit/config.toml. Several replicas of one CA may be listed (--server repeated, \
JIT_SERVER=URL1,URL2, server = [\"URL1\", \"URL2\"]): they are tried in order; a read goes to \
the next when one cannot be reached, a change only when it certainly was not received. Every call is signed with your registered SSH key: --identity KEYFILE \
(JIT_IDENTITY, `identity = \"...\"`), else the key in your ssh-agent that the CA knows, else \
~/.ssh/id_ed25519.\n\n\
Exit codes: 0 ok, 1 error, 2 usage or configuration error, 3 the request was denied, expired or \
revoked while waiting.",
    after_help = "Examples:\n  jit request db-admin --duration 30m --reason 'INC-1234: disk full'\n  \
jit list --pending\n  jit approve r-42\n  jit login r-42 && ssh db-1\n  jit cancel r-42\n  jit drop r-42\n  jit revoke r-42"
)]
pub struct Cli {
    /// CA server URL, e.g. https://ca.example.com:8443; repeat it (or separate URLs with
    /// commas) to list the replicas of one CA, tried in order [env: JIT_SERVER]
    #[arg(long, global = true, value_name = "URL")]
    pub server: Vec<String>,
    /// OpenSSH key file to sign with (private key, or a .pub whose key is in the ssh-agent) [env: JIT_IDENTITY]
    #[arg(long, global = true, value_name = "KEYFILE")]
    pub identity: Option<PathBuf>,
    /// Print machine-readable JSON (the API's structures) on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask for a role for a while; waits for the decision, then installs the certificate
    #[command(
        after_help = "Without --no-wait, jit waits (showing progress on stderr) until the request is \
decided, then writes the certificate like `jit login`. Ctrl-C stops waiting; the request stays \
pending (`jit login ID --wait` waits again, `jit cancel ID` withdraws it). Exit code 3 if it is \
denied or expires.\n\n\
Examples:\n  jit request db-admin --duration 30m --reason 'INC-1234: disk full on db-1'\n  \
jit request db-admin --duration 1h --reason 'CHG-77' --host db-1 --no-wait"
    )]
    Request(RequestArgs),
    /// List the roles you may request: hosts, principals, sudo, longest duration, approvers,
    /// and whether auto-approval applies to you
    #[command(after_help = "Examples:\n  jit roles\n  jit roles --json")]
    Roles,
    /// Approve someone's pending request
    #[command(after_help = "Examples:\n  jit list --pending\n  jit approve r-42")]
    Approve {
        /// Request id
        id: String,
    },
    /// Deny someone's pending request
    #[command(after_help = "Examples:\n  jit deny r-42 --reason 'use the read-only role'")]
    Deny {
        /// Request id
        id: String,
        /// Why (shown to the requester)
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// List requests (default: all you may see)
    #[command(after_help = "Examples:\n  jit list\n  jit list --pending\n  jit list --mine --json")]
    List(ListArgs),
    /// Show one request
    #[command(after_help = "Examples:\n  jit show r-42\n  jit show r-42 --json")]
    Show {
        /// Request id
        id: String,
    },
    /// Fetch the certificate of an approved request: writes KEYFILE-cert.pub and loads the ssh-agent
    #[command(
        after_help = "With --wait, a request that is still pending is waited for as `jit request` \
waits (progress on stderr; Ctrl-C stops waiting again, the request stays pending). Exit code 3 if \
it is denied or expires.\n\n\
Examples:\n  jit login r-42 && ssh db-1\n  jit login r-42 --wait"
    )]
    Login {
        /// Request id
        id: String,
        /// If the request is still pending, wait for the decision (as `jit request` does),
        /// then install the certificate
        #[arg(long)]
        wait: bool,
    },
    /// Withdraw your own pending request (recorded as cancelled, not denied)
    #[command(after_help = "Examples:\n  jit cancel r-42 --reason 'fixed it without access'")]
    Cancel {
        /// Request id
        id: String,
        /// Why (recorded in the audit trail)
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
    },
    /// End your own active elevation early (revokes its certificate and grant)
    #[command(after_help = "Examples:\n  jit drop r-42")]
    Drop {
        /// Request id
        id: String,
    },
    /// Revoke an approved request (its certificate serial goes on the CA's KRL)
    #[command(after_help = "Examples:\n  jit revoke r-42 --reason 'laptop lost'")]
    Revoke {
        /// Request id
        id: String,
        /// Why (recorded in the audit trail)
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
    },
    /// Extend an approved request's window (and renew your certificate)
    #[command(
        after_help = "A refusal says how much is left of the window and how far it may still grow.\n\n\
Examples:\n  jit extend r-42 --duration 15m"
    )]
    Extend {
        /// Request id
        id: String,
        /// Time to add, e.g. 15m
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        duration: u64,
    },
    /// Show who the CA thinks you are
    #[command(
        after_help = "Examples:\n  jit whoami\n  jit --identity ~/.ssh/id_work whoami --json"
    )]
    Whoami,
    /// Log a browser in to the CA's web pages (approve, see access, audit) with a one-time URL
    #[command(
        after_help = "jit web signs a login request with your key and opens the one-time URL it gets (valid 60 s, single use) with $BROWSER, else xdg-open (open on macOS); if no browser opens, it prints the URL and why. The browser is then logged in as you until the session is idle for 15 minutes or 8 hours old (the CA's [web] settings), or until `jit web --logout`.\n\nExamples:\n  jit web\n  jit web --print-url\n  jit web --logout"
    )]
    Web {
        /// Only print the URL (one line on stdout) instead of opening it
        #[arg(long, conflicts_with = "logout")]
        print_url: bool,
        /// End all your web sessions (every browser logged in as you) and print how many
        #[arg(long)]
        logout: bool,
    },
    /// Your identity, and your pending and active requests
    #[command(after_help = "Examples:\n  jit status\n  jit status --json")]
    Status,
    /// Write man pages and shell completions (for packaging)
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory (man/ and completions/ are created in it)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// `jit request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Role name from the CA's policy
    pub role: String,
    /// How long, e.g. 30m, 1h (the window starts at approval, or at --start / --in)
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub duration: u64,
    /// Start the window later: RFC 3339 (2026-12-01T09:00:00Z) or `YYYY-MM-DD HH:MM` in
    /// your local time zone; approval may come before it, the certificate is valid from it
    #[arg(long, value_name = "TIME", value_parser = super::when::start_time, conflicts_with = "start_in")]
    pub start: Option<u64>,
    /// Start the window this long from now, e.g. 2h (like --start)
    #[arg(long = "in", value_name = "DURATION", value_parser = duration)]
    pub start_in: Option<u64>,
    /// Why you need it (shown to approvers, kept in the audit trail)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Only these hosts (each must be covered by the role); repeatable
    #[arg(long = "host", value_name = "H")]
    pub hosts: Vec<String>,
    /// Do not wait for the decision: print the request and exit
    #[arg(long)]
    pub no_wait: bool,
}

/// `jit list`.
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct ListArgs {
    /// Only pending requests you may decide on
    #[arg(long)]
    pub pending: bool,
    /// Only your own requests
    #[arg(long)]
    pub mine: bool,
}

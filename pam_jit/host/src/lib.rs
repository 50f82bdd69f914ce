//! `jit-host`: the host side of jit outside PAM (the binary's `main.rs` only parses and
//! calls [`run`]).
//!
//! * `principals` — sshd's `AuthorizedPrincipalsCommand`: verifies the login certificate and
//!   stores the grant it carries ([`principals`]).
//! * `check`, `list`, `gc`, `install` — look at and maintain the grant store, with the same
//!   decision code as `pam_jit.so` ([`grants`]).
//! * `sessions`, `end-session` — the bindings of session-bound grants ([`sessions`]).
//! * `sync` — pull this host's grants, the revocation list and the KRL ([`sync`]).
//! * `setup` — insert the PAM line, write the sshd drop-in, create state directories
//!   ([`setup`]).
#![forbid(unsafe_code)]
// stdout goes through jit_common::outln!: println! panics on a closed pipe.
#![cfg_attr(not(test), deny(clippy::print_stdout))]

pub mod docs;
pub mod failure;
pub mod grants;
pub mod index;
pub mod principals;
pub mod sessions;
pub mod setup;
pub mod store_write;
pub mod sync;
pub mod textfile;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pam_jit_core::config::DEFAULT_PATH;

/// The jit host tool: sshd principals hook, grant store, sync and setup.
///
/// sudo on this host is allowed only while a CA-signed grant covers the invoking user
/// (pam_jit.so decides, offline). This tool receives grants (from SSH certificates, the CA
/// or by hand), explains decisions and prepares the host.
#[derive(Debug, Parser)]
#[command(
    name = "jit-host",
    version,
    propagate_version = true,
    after_help = "Examples:\n  jit-host setup --sudo --sshd --dry-run\n  jit-host sync\n  jit-host check alice\n  jit-host list\n  jit-host sessions"
)]
pub struct Cli {
    /// Host configuration file (root-owned, not group/world-writable).
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// For sshd: verify a login certificate, store its embedded grant, print the accepted principal.
    ///
    /// Configure as `AuthorizedPrincipalsCommand /usr/sbin/jit-host principals %u %k`.
    /// Prints USER if the certificate is signed by a trusted user CA, is a user certificate,
    /// is inside its window, is not revoked and lists USER among its principals. Prints
    /// nothing and exits non-zero on any failure (logged to syslog).
    #[command(
        after_help = "Examples:\n  AuthorizedPrincipalsCommand /usr/sbin/jit-host principals %u %k\n  AuthorizedPrincipalsCommandUser jit"
    )]
    Principals {
        /// The account being logged into (sshd's %u).
        user: String,
        /// The certificate's base64 wire blob (sshd's %k).
        cert_base64: String,
    },
    /// Explain whether USER may use sudo here now (exit 0 if allowed), with the module's code.
    ///
    /// Also reports whether this host can bind SSH connections for session-bound grants
    /// (the pam_jit.so session line after pam_loginuid in /etc/pam.d/sshd, no pam_env
    /// user_readenv=1 before it, a safe session_dir).
    #[command(
        after_help = "Examples:\n  jit-host check alice\n  jit-host check alice --service sudo-i --json\n  jit-host check alice --session 42"
    )]
    Check {
        /// The invoking user to check.
        user: String,
        /// PAM service to decide for.
        #[arg(long, default_value = "sudo")]
        service: String,
        /// Decide as a process of this audit session (see jit-host sessions); without it, as
        /// a process in no login session (session-bound grants are then denied).
        #[arg(long, value_name = "ID")]
        session: Option<u32>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Add a signed grant by hand (air-gapped hosts, break-glass grants).
    #[command(after_help = "Examples:\n  jit-host install alice.grant")]
    Install {
        /// The grant document (as produced by the CA or a break-glass signer).
        file: PathBuf,
    },
    /// Show stored grants and whether each is usable now.
    #[command(after_help = "Examples:\n  jit-host list\n  jit-host list alice --json")]
    List {
        /// Only this user's grants.
        user: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove expired and revoked grants, and ended or dead session bindings.
    #[command(after_help = "Examples:\n  jit-host gc --dry-run\n  jit-host gc")]
    Gc {
        /// Show what would be removed without removing it.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the SSH sessions that session-bound grants are bound to, and whether each lives.
    ///
    /// A session-bound grant allows sudo only in the audit session of the SSH connection
    /// that presented its certificate, while that connection's sshd process lives. Root only.
    #[command(after_help = "Examples:\n  jit-host sessions\n  jit-host sessions --json")]
    Sessions {
        /// Machine-readable output (a JSON array).
        #[arg(long)]
        json: bool,
    },
    /// End a session's binding: its grant allows no more sudo in that session (audited).
    ///
    /// The SSH connection itself stays open. Root only.
    #[command(after_help = "Examples:\n  jit-host sessions\n  jit-host end-session 42")]
    EndSession {
        /// The audit session id (the SESSION column of jit-host sessions).
        id: u32,
    },
    /// Pull this host's grants, the revocation list and the KRL from the CA, atomically.
    #[command(
        after_help = "Examples:\n  jit-host sync\n  jit-host sync --server https://ca.example.com:8443\n  jit-host sync --server https://ca1:8443 --server https://ca2:8443"
    )]
    Sync {
        /// CA URL (default: `server` in host.toml); repeat it (or separate URLs with commas)
        /// to list the CA's replicas, tried in order until one serves the whole sync.
        #[arg(long, value_name = "URL")]
        server: Vec<String>,
    },
    /// Prepare this host: PAM line for sudo and sudo-i, sshd drop-in and PAM session line,
    /// state directories.
    #[command(
        after_help = "Examples:\n  jit-host setup --sudo --sshd --dry-run\n  jit-host setup --sudo --sshd\n  jit-host setup --session\n  jit-host setup --sudo --sshd --undo"
    )]
    Setup {
        /// Insert `account requisite pam_jit.so` into /etc/pam.d/sudo and /etc/pam.d/sudo-i.
        #[arg(long)]
        sudo: bool,
        /// Write /etc/ssh/sshd_config.d/jit.conf (validated with `sshd -t` first), and the
        /// session line of --session when /etc/pam.d/sshd has pam_loginuid.
        #[arg(long)]
        sshd: bool,
        /// Insert `session optional pam_jit.so` into /etc/pam.d/sshd right after
        /// pam_loginuid (session-bound grants), and create session_dir.
        #[arg(long)]
        session: bool,
        /// Show the changes as diffs; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Restore what setup changed, byte for byte.
        #[arg(long)]
        undo: bool,
        /// Module path written into the PAM line.
        #[arg(long, value_name = "PATH", default_value = "pam_jit.so")]
        module: String,
    },
    /// Write man pages and shell completions (for packaging).
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory (gets man/ and completions/).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// Runs one command; failures are reported on stderr (unless silent) and as the exit code.
pub fn run(cli: &Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Principals { user, cert_base64 } => {
            principals::run(&cli.config, user, cert_base64)
        }
        Command::Check {
            user,
            service,
            session,
            json,
        } => grants::check(&cli.config, user, service, *session, *json),
        Command::Sessions { json } => sessions::list(&cli.config, *json),
        Command::EndSession { id } => sessions::end(&cli.config, *id),
        Command::Install { file } => grants::install(&cli.config, file),
        Command::List { user, json } => grants::list(&cli.config, user.as_deref(), *json),
        Command::Gc { dry_run } => grants::gc(&cli.config, *dry_run),
        Command::Sync { server } => sync::run(&cli.config, server),
        Command::Setup {
            sudo,
            sshd,
            session,
            dry_run,
            undo,
            module,
        } => setup::run(
            &cli.config,
            &setup::Options {
                sudo: *sudo,
                sshd: *sshd,
                session: *session,
                dry_run: *dry_run,
                undo: *undo,
                module: module.clone(),
            },
        ),
        Command::GenerateDocs { out } => docs::generate(out),
    };
    let json = match &cli.command {
        Command::Check { json, .. } | Command::List { json, .. } | Command::Sessions { json } => {
            *json
        }
        _ => false,
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            if !f.silent {
                jit_common::errln!("jit-host: {}", f.message);
                if json {
                    // As jit and jit-ca: with --json, every failure is also one JSON error
                    // object on stdout; the exit code is the same.
                    let code = if f.code == 2 { "config" } else { "failed" };
                    print_json_error(code, &f.message);
                }
            }
            ExitCode::from(f.code)
        }
    }
}

/// `--json` anywhere before a `--` (what a script asked for, even when the rest of the
/// command line does not parse), except on a `principals` command line: sshd reads that
/// command's stdout as principals, so nothing but principals may ever go there.
pub fn wants_json(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    let args: Vec<_> = args.into_iter().skip(1).take_while(|a| a != "--").collect();
    !args.iter().any(|a| a == "principals") && args.iter().any(|a| a == "--json")
}

/// A command-line error: clap's own text on stderr, plus with `--json` the JSON error object
/// (code `usage`) on stdout. `--help` and `--version` print as always.
pub fn usage_error(e: &clap::Error, json: bool) -> ExitCode {
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

/// `{"error": {"code": ..., "message": ...}}` on stdout, one line (the API's error shape).
fn print_json_error(code: &str, message: &str) {
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

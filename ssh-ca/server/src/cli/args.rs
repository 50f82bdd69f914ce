//! The clap definitions of `jit-ca`: every command, flag and help text.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::admin;

/// The jit signing service: policy, approvals, OpenSSH certificates, sudo grants,
/// revocation and a hash-chained audit trail.
#[derive(Debug, Parser)]
#[command(
    name = "jit-ca",
    version,
    propagate_version = true,
    after_help = "Examples:\n  jit-ca init --dir ./ca\n  jit-ca user add alice --key alice.pub --group dev --dir ./ca\n  \
jit-ca policy check --dir ./ca\n  jit-ca serve --dir ./ca\n  jit-ca audit verify --dir ./ca"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct DirArg {
    /// Data directory (config.toml, policy.toml, keys/, jit.db).
    #[arg(long, env = "JIT_CA_DIR", value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a data directory: CA and grant keys (ed25519, 0600), config.toml and policy.toml.
    /// Never overwrites an existing file.
    #[command(
        after_help = "Examples:\n  jit-ca init --dir /var/lib/jit-ca\n  jit-ca init --dir ./ca --json"
    )]
    Init {
        #[command(flatten)]
        dir: DirArg,
        /// Print the created files as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the service (initialises DIR first if it has no config.toml).
    #[command(
        after_help = "Examples:\n  jit-ca serve --dir /var/lib/jit-ca\n  jit-ca serve --dir ./ca --listen 127.0.0.1:8443"
    )]
    Serve {
        #[command(flatten)]
        dir: DirArg,
        /// Address to listen on (default: `listen` from config.toml, else 127.0.0.1:8443).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// A failure to start is printed as JSON on stdout (the startup lines stay text).
        #[arg(long)]
        json: bool,
    },
    /// Manage users (requesters and approvers) and their SSH keys.
    #[command(
        after_help = "Examples:\n  jit-ca user add alice --key alice.pub --group dev --dir ./ca\n  jit-ca user key add alice --key alice-new.pub --dir ./ca\n  jit-ca user list --dir ./ca"
    )]
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Check config.toml, the keys and policy.toml (check), or say what a request would get
    /// under the policy and why (test).
    #[command(
        after_help = "Examples:\n  jit-ca policy check --dir ./ca\n  jit-ca policy test --dir ./ca --user alice --role db-admin --duration 30m --reason 'INC-42 disk full'"
    )]
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Revoke an approved request as an operator (KRL and revocation list are updated; a
    /// running jit-ca serves them within 2 s).
    #[command(after_help = "Examples:\n  jit-ca revoke r-42 --reason 'left the team' --dir ./ca")]
    Revoke {
        /// Request id.
        id: String,
        /// Why (recorded in the audit trail).
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        dir: DirArg,
        /// Print the request as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one grant id or certificate serial, including a break-glass grant (audited; the
    /// KRL and revocation list are updated and a running jit-ca serves them within 2 s).
    #[command(
        after_help = "Examples:\n  jit-ca revoke-grant bg-20261123-1234 --reason 'incident over' --dir ./ca\n  jit-ca revoke-grant 1795435200123 --dir ./ca"
    )]
    RevokeGrant {
        /// A grant id (e.g. r-...123 or bg-...) or a certificate serial (digits).
        id: String,
        /// Why (recorded in the audit trail).
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        dir: DirArg,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Offline break-glass key and grants for CA outages (docs/break-glass.md). Needs no data
    /// directory and no network.
    #[command(
        after_help = "Examples:\n  jit-ca break-glass keygen --out /media/usb/jit-break-glass\n  jit-ca break-glass sign --key /media/usb/jit-break-glass --user alice --hosts db-1 --duration 2h --reason 'CA down, INC-9' --out alice.grant"
    )]
    BreakGlass {
        #[command(subcommand)]
        command: BreakGlassCommand,
    },
    /// Write a consistent copy of the database (safe while serving). Back up DIR/keys too.
    #[command(
        after_help = "Examples:\n  jit-ca backup --dir ./ca --out /backup/jit-$(date +%F).db"
    )]
    Backup {
        #[command(flatten)]
        dir: DirArg,
        /// Output file (must not exist; created 0600).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a complete /etc/jit/host.toml for hosts (trusted CA and grant keys, server URL).
    #[command(
        after_help = "Examples:\n  jit-ca host-config --dir ./ca > host.toml\n  jit-ca host-config --dir ./ca --json"
    )]
    HostConfig {
        #[command(flatten)]
        dir: DirArg,
        /// Print JSON: {"host_toml": TEXT, "warnings": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Verify or export the hash-chained audit trail.
    #[command(
        after_help = "Examples:\n  jit-ca audit verify --dir ./ca\n  jit-ca audit export --dir ./ca --json | head -1"
    )]
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Notification deliveries (the [[notify]] sinks of config.toml): what is pending, what
    /// failed, what was given up (dead letters), and sending a dead letter again. Works while
    /// `jit-ca serve` runs (it picks a resend up within a second).
    #[command(
        after_help = "Examples:\n  jit-ca notify status --dir ./ca\n  jit-ca notify status --dir ./ca --json\n  jit-ca notify retry evt_5f0c9d2e8a7b6c5d4e3f2a1b0c9d8e7f --dir ./ca\n  jit-ca notify retry evt_5f0c9d2e8a7b6c5d4e3f2a1b0c9d8e7f --sink chat --dir ./ca"
    )]
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// The database: move an embedded store to PostgreSQL, or show its status and replicas.
    ///
    /// `copy` copies an embedded (SQLite) store into PostgreSQL for replicas; `status` shows
    /// the schema version, the audit head and the replicas seen recently with their lag.
    /// docs/ha.md is the runbook.
    #[command(
        after_help = "Examples:\n  jit-ca db status --dir ./ca\n  jit-ca db status --dir ./ca --check\n  jit-ca db copy --dir ./ca --to 'postgres://jit-ca@db1/jit?sslmode=verify-full' --password-file /etc/jit-ca/db.password"
    )]
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Write man pages and shell completions (for packaging).
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory (man/ and completions/ are created in it).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Register a user with the public key(s) in a file.
    #[command(
        after_help = "Examples:\n  jit-ca user add alice --key alice.pub --group dev --group oncall --dir ./ca\n  jit-ca user add alice --key alice.pub --group dev --contact U0123ABCD --dir ./ca"
    )]
    Add {
        /// Login name (also the certificate principal on hosts).
        name: String,
        /// OpenSSH public key file (one or more keys).
        #[arg(long, value_name = "PUBKEY_FILE")]
        key: PathBuf,
        /// A group (repeat for several); policies name groups as `group:NAME`.
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
        /// The handle notifications show for the user's requests: a Slack member id
        /// (U0123ABCD, shown as a mention) or any one-line handle (@alice, an address), at
        /// most 64 characters.
        #[arg(long, value_name = "HANDLE")]
        contact: Option<String>,
        #[command(flatten)]
        dir: DirArg,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add or remove a user's keys without removing the user (a new laptop, a lost key).
    #[command(
        after_help = "Examples:\n  jit-ca user key add alice --key alice-laptop2.pub --dir ./ca\n  jit-ca user key remove alice --key SHA256:uQ4c... --dir ./ca"
    )]
    Key {
        #[command(subcommand)]
        command: UserKeyCommand,
    },
    /// Same as `jit-ca user key add` (kept for scripts): register more keys for an existing
    /// user; with --approval, approval keys.
    #[command(
        after_help = "Examples:\n  jit-ca user add-key bob --key bob-fido.pub --approval --dir ./ca"
    )]
    AddKey {
        /// Login name of an existing user.
        name: String,
        /// OpenSSH public key file (one or more keys).
        #[arg(long, value_name = "PUBKEY_FILE")]
        key: PathBuf,
        /// Register the keys as approval keys (default: login keys).
        #[arg(long)]
        approval: bool,
        #[command(flatten)]
        dir: DirArg,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set or clear the handle notifications show for a user's requests.
    #[command(
        after_help = "Examples:\n  jit-ca user set-contact alice U0123ABCD --dir ./ca\n  jit-ca user set-contact alice @alice --dir ./ca\n  jit-ca user set-contact alice --clear --dir ./ca"
    )]
    SetContact {
        /// Login name of an existing user.
        name: String,
        /// A Slack member id (U0123ABCD, shown as a mention) or any one-line handle (@alice,
        /// an address), at most 64 characters.
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        handle: Option<String>,
        /// Remove the user's contact.
        #[arg(long)]
        clear: bool,
        #[command(flatten)]
        dir: DirArg,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List users, their groups, contacts and key fingerprints.
    #[command(
        after_help = "Examples:\n  jit-ca user list --dir ./ca\n  jit-ca user list --dir ./ca --json"
    )]
    List {
        #[command(flatten)]
        dir: DirArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user and their keys.
    #[command(after_help = "Examples:\n  jit-ca user remove mallory --dir ./ca")]
    Remove {
        /// Login name.
        name: String,
        #[command(flatten)]
        dir: DirArg,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserKeyCommand {
    /// Register more keys for an existing user; with --approval, approval keys (they may
    /// approve, deny and list but never request; roles with approval_key = "dedicated" or
    /// "dedicated-sk" accept approvals only from them). Use a key that is not your login key
    /// and is never forwarded, ideally a FIDO key (ssh-keygen -t ed25519-sk).
    #[command(
        after_help = "Examples:\n  jit-ca user key add alice --key alice-laptop2.pub --dir ./ca\n  jit-ca user key add bob --key bob-fido.pub --approval --dir ./ca"
    )]
    Add {
        /// Login name of an existing user.
        name: String,
        /// OpenSSH public key file (one or more keys).
        #[arg(long, value_name = "PUBKEY_FILE")]
        key: PathBuf,
        /// Register the keys as approval keys (default: login keys).
        #[arg(long)]
        approval: bool,
        #[command(flatten)]
        dir: DirArg,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove keys of a user who stays (audited). Calls signed with a removed key are refused
    /// from the next one on; certificates already issued stay valid until they expire
    /// (`jit-ca revoke ID` ends one). The user's pending requests to certify a removed key
    /// are denied (and named). The user's last login key is kept unless
    /// --allow-no-login-key.
    #[command(
        after_help = "Examples:\n  jit-ca user key remove alice --key old-laptop.pub --dir ./ca\n  jit-ca user key remove alice --key SHA256:uQ4c... --dir ./ca"
    )]
    Remove {
        /// Login name.
        name: String,
        /// The key: a SHA256:... fingerprint (as `jit-ca user list` shows it) or an OpenSSH
        /// public key file (each key in it).
        #[arg(long, value_name = "PUBKEY_FILE|FINGERPRINT")]
        key: String,
        /// Remove the last login key too: the user can no longer sign requests (a lockout
        /// on purpose; `jit-ca user remove NAME` removes the user).
        #[arg(long)]
        allow_no_login_key: bool,
        #[command(flatten)]
        dir: DirArg,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Per sink: deliveries pending, the oldest undelivered event's age and the last error;
    /// then the dead letters (deliveries given up after notify_max_age): event id, type,
    /// request, sink, attempts and the last answer. Reads DIR only.
    #[command(
        after_help = "Examples:\n  jit-ca notify status --dir ./ca\n  jit-ca notify status --dir ./ca --json | jq '.dead[].id'"
    )]
    Status {
        #[command(flatten)]
        dir: DirArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send a dead letter again (audited as notify_retry): its deliveries become pending with
    /// a fresh retry schedule, and the receiver gets the same event id (webhook-id), so it can
    /// tell a resend from a new event.
    #[command(
        after_help = "Examples:\n  jit-ca notify retry evt_5f0c9d2e8a7b6c5d4e3f2a1b0c9d8e7f --dir ./ca\n  jit-ca notify retry evt_5f0c9d2e8a7b6c5d4e3f2a1b0c9d8e7f --sink ops --dir ./ca"
    )]
    Retry {
        /// The event id (evt_..., as `jit-ca notify status` lists it).
        id: String,
        /// Only the delivery to this sink (default: every dead delivery of the event).
        #[arg(long, value_name = "NAME")]
        sink: Option<String>,
        #[command(flatten)]
        dir: DirArg,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BreakGlassCommand {
    /// Create an offline break-glass key: FILE (0600) and FILE.pub for `break_glass_keys` in
    /// every host's host.toml. Never overwrites.
    #[command(
        after_help = "Examples:\n  jit-ca break-glass keygen --out /media/usb/jit-break-glass"
    )]
    Keygen {
        /// Private key file to create.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sign a break-glass sudo grant with the offline key, valid from now; install it on the
    /// host with `jit-host install FILE`.
    #[command(
        after_help = "Examples:\n  jit-ca break-glass sign --key /media/usb/jit-break-glass --user alice --hosts db-1,db-2 --duration 2h --reason 'CA down, INC-9' --out alice.grant"
    )]
    Sign {
        /// The break-glass private key.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Login name on the hosts.
        #[arg(long, value_name = "USER")]
        user: String,
        /// Host names or globs (comma-separated or repeated).
        #[arg(long, value_name = "HOSTS", value_delimiter = ',', required = true)]
        hosts: Vec<String>,
        /// Window length (e.g. 2h); at most 24h unless --allow-long-window.
        #[arg(long, value_name = "DURATION", value_parser = |s: &str| jit_common::time::parse_duration(s).map(u64::from))]
        duration: u64,
        /// Why (written into the grant and logged on the host).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Grant id (default: bg- followed by the time and random digits).
        #[arg(long, value_name = "ID")]
        id: Option<String>,
        /// Sign a window longer than 24 h: hosts refuse it unless their host.toml sets a larger
        /// break_glass_max_window_secs.
        #[arg(long)]
        allow_long_window: bool,
        /// Grant file to write (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check config.toml, keys and policy.toml like `visudo -c`; exit 1 on any problem.
    #[command(
        after_help = "Examples:\n  jit-ca policy check --dir ./ca\n  jit-ca policy check --dir ./ca --json"
    )]
    Check {
        #[command(flatten)]
        dir: DirArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Say what a request would get under DIR's policy and users, and why: refused (the
    /// code and message the API would answer), pending (who may approve, how many
    /// approvals) or auto-approved (which rule). Reads DIR only. Exit 0 when decided
    /// (whatever the decision), 2 on bad input.
    #[command(
        after_help = "Examples:\n  jit-ca policy test --dir /var/lib/jit-ca --user alice --role db-admin --duration 30m --reason 'INC-42: disk full'\n  jit-ca policy test --dir /var/lib/jit-ca --user alice --role db-admin --duration 30m --at 2026-11-30T20:00:00+01:00 --host db-1 --reason 'INC-42: disk full' --json"
    )]
    Test {
        #[command(flatten)]
        dir: DirArg,
        /// The requester (a registered user: their groups count).
        #[arg(long, value_name = "U")]
        user: String,
        /// The role asked for.
        #[arg(long, value_name = "R")]
        role: String,
        /// How long (30m, 1h, 2h30m).
        #[arg(long, value_name = "D")]
        duration: String,
        /// When the request is made: an RFC 3339 instant (2026-11-30T08:00:00Z,
        /// 2026-11-30T09:00:00+01:00); default now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// A host selector asked for (repeatable; default: all the role's).
        #[arg(long = "host", value_name = "H")]
        hosts: Vec<String>,
        /// The reason (checked against reason_pattern; default empty).
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; exit 0 only if it is intact, else name the first bad record.
    #[command(
        after_help = "Examples:\n  jit-ca audit verify --dir ./ca\n  jit-ca audit verify --dir ./ca --checkpoint checkpoint.json"
    )]
    Verify {
        #[command(flatten)]
        dir: DirArg,
        /// A record noted elsewhere (syslog, a ticket) as SEQ:HASH that must still be in the
        /// chain; detects truncation of the newest records. Repeatable.
        #[arg(long = "anchor", value_name = "SEQ:HASH", value_parser = admin::parse_anchor)]
        anchors: Vec<(u64, String)>,
        /// A signed audit checkpoint (from GET /v1/audit/checkpoint): its signature must verify
        /// against the CA's grant keys and the chain must contain exactly the record it names;
        /// detects rewritten and truncated trails.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write every record (JSON lines with --json, for a SIEM; else a table).
    #[command(
        after_help = "Examples:\n  jit-ca audit export --dir ./ca\n  jit-ca audit export --dir ./ca --json > trail.jsonl"
    )]
    Export {
        #[command(flatten)]
        dir: DirArg,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy DIR's embedded store into an empty PostgreSQL database, verified.
    ///
    /// Copies users, keys, requests, approvals, certificates, nonces, the whole audit chain,
    /// notifications and web sessions into an empty PostgreSQL database, in one transaction
    /// (serial and outbox sequences set above everything DIR ever handed out), then verifies
    /// both sides (audit chain: same count and head; every
    /// table: row count and a digest of its rows). Refuses while `jit-ca serve` runs on DIR
    /// and unless the target is empty; exits 1 on any difference. DIR is not changed: to
    /// switch, set `database` in config.toml afterwards.
    #[command(
        after_help = "Examples:\n  jit-ca db copy --dir /var/lib/jit-ca --to 'postgres://jit-ca@db1.example.com/jit?sslmode=verify-full' --password-file /etc/jit-ca/db.password --ca /etc/jit-ca/db-ca.pem\n  jit-ca db copy --dir ./ca --to 'host=/run/postgresql dbname=jit user=jit-ca' --json"
    )]
    Copy {
        #[command(flatten)]
        dir: DirArg,
        /// The PostgreSQL database: a URL (postgres://USER@HOST:PORT/DB?sslmode=require) or a
        /// libpq key=value string; never with a password in it.
        #[arg(long, value_name = "URL")]
        to: String,
        /// A file holding the database password (mode 0600 or stricter, like
        /// database_password_file in config.toml).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// The TLS roots (PEM) that signed the database server's certificate (like
        /// database_ca in config.toml).
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the database: schema version, audit head, replicas and their lag.
    ///
    /// The backend, the schema version (database and this program), the audit head and the
    /// stored revocation sequence; on PostgreSQL every replica seen in the last 5 minutes:
    /// version, last seen, lag (stored minus served revocation sequence, audit head minus
    /// what it loaded), policy or key digests that differ from the others, and the background
    /// jobs it leads; on SQLite the file and its size. Reads only.
    #[command(
        after_help = "Examples:\n  jit-ca db status --dir ./ca\n  jit-ca db status --dir ./ca --json | jq '.replicas[] | {name, revocation_lag}'\n  jit-ca db status --dir ./ca --check || page-oncall"
    )]
    Status {
        #[command(flatten)]
        dir: DirArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Exit 1 when a replica serves a revocation list more than 2 behind the stored one,
        /// or runs with a policy or keys that differ from the others' (for monitoring).
        #[arg(long)]
        check: bool,
    },
}

//! `jit-ca`: the jit signing service and its operator commands.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use jit_ca::admin;
use jit_ca::error::CaError;

/// The jit signing service: policy, approvals, OpenSSH certificates, sudo grants,
/// revocation and a hash-chained audit trail.
#[derive(Debug, Parser)]
#[command(name = "jit-ca", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct DirArg {
    /// Data directory (config.toml, policy.toml, keys/, jit.db).
    #[arg(long, env = "JIT_CA_DIR", value_name = "DIR")]
    dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a data directory: CA and grant keys (ed25519, 0600), config.toml and policy.toml.
    /// Never overwrites an existing file.
    Init {
        #[command(flatten)]
        dir: DirArg,
        /// Print the created files as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the service (initialises DIR first if it has no config.toml).
    Serve {
        #[command(flatten)]
        dir: DirArg,
        /// Address to listen on (default: `listen` from config.toml, else 127.0.0.1:8443).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Manage users (requesters and approvers) and their SSH keys.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Check config.toml, the keys and policy.toml; report every problem at once.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Revoke an approved request as an operator (KRL and revocation list are updated; a
    /// running jit-ca serves them within 2 s).
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
    BreakGlass {
        #[command(subcommand)]
        command: BreakGlassCommand,
    },
    /// Write a consistent copy of the database (safe while serving). Back up DIR/keys too.
    Backup {
        #[command(flatten)]
        dir: DirArg,
        /// Output file (must not exist; created 0600).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print a complete /etc/jit/host.toml for hosts (trusted CA and grant keys, server URL).
    HostConfig {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Verify or export the hash-chained audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
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
enum UserCommand {
    /// Register a user with the public key(s) in a file.
    Add {
        /// Login name (also the certificate principal on hosts).
        name: String,
        /// OpenSSH public key file (one or more keys).
        #[arg(long, value_name = "PUBKEY_FILE")]
        key: PathBuf,
        /// A group (repeat for several); policies name groups as `group:NAME`.
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
        #[command(flatten)]
        dir: DirArg,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register more keys for an existing user; with --approval, approval keys (they may
    /// approve, deny and list but never request; roles with approval_key = "dedicated" or
    /// "dedicated-sk" accept approvals only from them). Use a key that is not your login key
    /// and is never forwarded, ideally a FIDO key (ssh-keygen -t ed25519-sk).
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
    /// List users, their groups and key fingerprints.
    List {
        #[command(flatten)]
        dir: DirArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user and their keys.
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
enum BreakGlassCommand {
    /// Create an offline break-glass key: FILE (0600) and FILE.pub for `break_glass_keys` in
    /// every host's host.toml. Never overwrites.
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
        #[arg(long, value_name = "DURATION", value_parser = jit_common::time::parse_duration)]
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
enum PolicyCommand {
    /// Check config.toml, keys and policy.toml like `visudo -c`; exit 1 on any problem.
    Check {
        #[command(flatten)]
        dir: DirArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exit 0 only if it is intact, else name the first bad record.
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
    Export {
        #[command(flatten)]
        dir: DirArg,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<(), CaError> {
    let s = serde_json::to_string_pretty(v).map_err(CaError::JsonOutput)?;
    println!("{s}");
    Ok(())
}

fn run(cli: Cli) -> Result<ExitCode, CaError> {
    let now = jit_common::now();
    match cli.command {
        Command::Init { dir, json } => {
            let files = admin::init(&dir.dir)?;
            if json {
                print_json(&serde_json::json!({"dir": dir.dir, "created": files}))?;
            } else {
                println!("Created:");
                for f in files {
                    println!("  {f}");
                }
                println!(
                    "Next: edit {}/policy.toml, add users with `jit-ca user add NAME --key FILE --group G --dir {}`, then `jit-ca serve --dir {}`.",
                    dir.dir.display(),
                    dir.dir.display(),
                    dir.dir.display()
                );
            }
        }
        Command::Serve { dir, listen } => {
            jit_ca::server::serve(&dir.dir, listen)?;
        }
        Command::User { command } => match command {
            UserCommand::Add {
                name,
                key,
                groups,
                dir,
                json,
            } => {
                let fps = admin::user_add(&dir.dir, &name, &key, &groups, now)?;
                if json {
                    print_json(
                        &serde_json::json!({"user": name, "groups": groups, "fingerprints": fps}),
                    )?;
                } else {
                    println!(
                        "added user {name} (groups: {}) with key(s) {}",
                        display_list(&groups),
                        fps.join(", ")
                    );
                }
            }
            UserCommand::List { dir, json } => {
                let users = admin::user_list(&dir.dir)?;
                if json {
                    print_json(&users)?;
                } else if users.is_empty() {
                    println!(
                        "no users; add one with `jit-ca user add NAME --key FILE --group G --dir DIR`"
                    );
                } else {
                    println!("{:<20} {:<30} KEYS", "USER", "GROUPS");
                    for u in users {
                        println!(
                            "{:<20} {:<30} {}",
                            u.name,
                            display_list(&u.groups),
                            u.fingerprints.join(" ")
                        );
                    }
                }
            }
            UserCommand::AddKey {
                name,
                key,
                approval,
                dir,
                json,
            } => {
                let fps = admin::user_add_key(&dir.dir, &name, &key, approval, now)?;
                let purpose = if approval { "approval" } else { "login" };
                if json {
                    print_json(
                        &serde_json::json!({"user": name, "purpose": purpose, "fingerprints": fps}),
                    )?;
                } else {
                    println!(
                        "added {} {purpose} key(s) to {name}: {}",
                        fps.len(),
                        fps.join(" ")
                    );
                }
            }
            UserCommand::Remove { name, dir, json } => {
                let r = admin::user_remove(&dir.dir, &name, now)?;
                if json {
                    print_json(&serde_json::json!({"removed": name, "denied": r.denied,
                        "revoked": r.revoked, "serials": r.serials, "grant_ids": r.grant_ids,
                        "revocation_sequence": r.revocation_sequence}))?;
                } else {
                    println!(
                        "removed user {name}; denied {} pending and revoked {} approved request(s) (serials {}, grants {}; revocation list #{}); a running jit-ca publishes them within 2 s",
                        r.denied.len(),
                        r.revoked.len(),
                        display_list(&r.serials.iter().map(u64::to_string).collect::<Vec<_>>()),
                        display_list(&r.grant_ids),
                        r.revocation_sequence
                    );
                }
            }
        },
        Command::Policy {
            command: PolicyCommand::Check { dir, json },
        } => {
            let report = admin::policy_check(&dir.dir);
            if json {
                print_json(&report)?;
            } else {
                for e in &report.errors {
                    println!("error: {e}");
                }
                for w in &report.warnings {
                    println!("warning: {w}");
                }
                if report.ok {
                    println!(
                        "{}: OK ({} roles: {})",
                        dir.dir.display(),
                        report.roles.len(),
                        report.roles.join(", ")
                    );
                } else {
                    println!(
                        "{}: {} error(s); the service would refuse this configuration",
                        dir.dir.display(),
                        report.errors.len()
                    );
                }
            }
            if !report.ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Revoke {
            id,
            reason,
            dir,
            json,
        } => {
            let ca = jit_ca::service::Ca::open(
                &dir.dir,
                std::sync::Arc::new(jit_ca::clock::SystemClock),
            )?;
            let actor = format!("admin:uid={}", jit_ca::files::euid());
            let v = ca
                .admin_revoke(&actor, &id, &reason)
                .map_err(|e| CaError::Input(e.message))?;
            if json {
                print_json(&v)?;
            } else {
                println!(
                    "revoked request {} of {} (serial {}); a running jit-ca publishes the new KRL and revocation list within 2 s",
                    v.id,
                    v.user,
                    v.serial.map_or_else(|| "-".to_string(), |s| s.to_string())
                );
            }
        }
        Command::RevokeGrant {
            id,
            reason,
            dir,
            json,
        } => {
            let r = admin::revoke_grant(&dir.dir, &id, &reason, now)?;
            if json {
                print_json(&r)?;
            } else {
                let what = match (&r.grant_id, r.serial) {
                    (Some(g), Some(s)) => format!("grant {g} (serial {s})"),
                    (Some(g), None) => format!("grant {g}"),
                    (None, Some(s)) => format!("certificate serial {s}"),
                    (None, None) => r.target.clone(),
                };
                let origin = match (&r.request_id, r.request_revoked) {
                    (Some(req), true) => format!(" and its request {req}"),
                    (Some(_), false) => String::new(),
                    (None, _) => " (not issued by this CA: a break-glass grant?)".into(),
                };
                println!(
                    "revoked {what}{origin}; revocation list #{}; a running jit-ca publishes it within 2 s, hosts apply it at their next `jit-host sync`",
                    r.revocation_sequence
                );
            }
        }
        Command::BreakGlass { command } => match command {
            BreakGlassCommand::Keygen { out, json } => {
                let r = admin::break_glass::keygen(&out)?;
                if json {
                    print_json(&r)?;
                } else {
                    println!(
                        "wrote {} (private, 0600) and {} ({})\nKeep the private key offline (see docs/break-glass.md); add this line to break_glass_keys in every host's host.toml:\n  {}",
                        r.private_key.display(),
                        r.public_key.display(),
                        r.fingerprint,
                        r.public_line
                    );
                }
            }
            BreakGlassCommand::Sign {
                key,
                user,
                hosts,
                duration,
                reason,
                id,
                allow_long_window,
                out,
                json,
            } => {
                let spec = admin::break_glass::SignSpec {
                    key,
                    user,
                    hosts,
                    duration_secs: duration,
                    reason,
                    id,
                    allow_long_window,
                    out,
                };
                let r = admin::break_glass::sign(&spec, now)?;
                if json {
                    print_json(&r)?;
                } else {
                    println!(
                        "wrote break-glass grant {} to {} (valid {} to {}, signed by {})\nOn the host, as root: jit-host install {}\nAfterwards revoke it: jit-ca revoke-grant {} --dir DIR",
                        r.id,
                        r.grant_file.display(),
                        jit_common::time::format_utc(r.not_before),
                        jit_common::time::format_utc(r.not_after),
                        r.key_id,
                        r.grant_file.display(),
                        r.id
                    );
                }
            }
        },
        Command::Backup { dir, out } => {
            let n = admin::backup(&dir.dir, &out)?;
            println!(
                "wrote {} ({n} bytes); also keep a copy of {}",
                out.display(),
                dir.dir.join("keys").display()
            );
        }
        Command::HostConfig { dir } => {
            print!("{}", admin::host_config(&dir.dir)?);
            if let Some(w) = admin::server_url_warning(&dir.dir) {
                eprintln!("{w}");
            }
            if let Some(w) = admin::revocation_bound_warning(&dir.dir) {
                eprintln!("{w}");
            }
        }
        Command::Audit { command } => match command {
            AuditCommand::Verify {
                dir,
                anchors,
                checkpoint,
                json,
            } => {
                let r = match &checkpoint {
                    Some(cp) => admin::audit_verify_checkpoint(&dir.dir, cp, &anchors)?,
                    None => admin::audit_verify_anchored(&dir.dir, &anchors)?,
                };
                if json {
                    print_json(&r)?;
                } else if r.ok {
                    println!(
                        "audit trail intact: {} records, head {}",
                        r.records,
                        r.head.as_deref().unwrap_or("(empty)")
                    );
                } else {
                    println!(
                        "audit trail BROKEN: {}",
                        r.problem.as_deref().unwrap_or("unknown problem")
                    );
                }
                if !r.ok {
                    return Ok(ExitCode::FAILURE);
                }
            }
            AuditCommand::Export { dir, json } => {
                for rec in admin::audit_export(&dir.dir)? {
                    if json {
                        println!("{rec}");
                    } else {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            rec["seq"],
                            rec["time_utc"].as_str().unwrap_or(""),
                            rec["actor"].as_str().unwrap_or(""),
                            rec["event"].as_str().unwrap_or(""),
                            rec["details"]
                        );
                    }
                }
            }
        },
        Command::GenerateDocs { out } => generate_docs(&out)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn display_list(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

fn generate_docs(out: &Path) -> Result<(), CaError> {
    let io = |p: &Path, e: std::io::Error| CaError::File {
        path: p.to_path_buf(),
        detail: e.to_string(),
    };
    let man = out.join("man");
    let comp = out.join("completions");
    std::fs::create_dir_all(&man).map_err(|e| io(&man, e))?;
    std::fs::create_dir_all(&comp).map_err(|e| io(&comp, e))?;
    let cmd = Cli::command();
    write_man(&cmd, "jit-ca", &man)?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        let mut c = Cli::command();
        clap_complete::generate_to(shell, &mut c, "jit-ca", &comp).map_err(|e| io(&comp, e))?;
    }
    Ok(())
}

fn write_man(cmd: &clap::Command, name: &str, dir: &Path) -> Result<(), CaError> {
    if cmd.is_hide_set() {
        return Ok(());
    }
    let cmd = cmd
        .clone()
        .display_name(name.to_string())
        .bin_name(name.replace('-', " ").replacen("jit ca", "jit-ca", 1));
    let mut buf = Vec::new();
    let path = dir.join(format!("{name}.1"));
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .map_err(|e| CaError::File {
            path: path.clone(),
            detail: e.to_string(),
        })?;
    std::fs::write(&path, buf).map_err(|e| CaError::File {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        write_man(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jit-ca: {e}");
            ExitCode::FAILURE
        }
    }
}

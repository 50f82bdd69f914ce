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
    /// running jit-ca serves them within 15 s).
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
    let s = serde_json::to_string_pretty(v).map_err(|e| CaError::Other(e.to_string()))?;
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
            UserCommand::Remove { name, dir, json } => {
                admin::user_remove(&dir.dir, &name, now)?;
                if json {
                    print_json(&serde_json::json!({"removed": name}))?;
                } else {
                    println!("removed user {name}");
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
                    "revoked request {} of {} (serial {}); a running jit-ca publishes the new KRL and revocation list within 15 s",
                    v.id,
                    v.user,
                    v.serial.map_or_else(|| "-".to_string(), |s| s.to_string())
                );
            }
        }
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
            AuditCommand::Verify { dir, anchors, json } => {
                let r = admin::audit_verify_anchored(&dir.dir, &anchors)?;
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
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .map_err(|e| CaError::Other(e.to_string()))?;
    let path = dir.join(format!("{name}.1"));
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

//! `jit-bench`: the load generator and fixture maker behind `bench/run.sh`.
//!
//! ```text
//! jit-bench keys    --out DIR --count N                 ed25519 identities DIR/benchNN{,.pub}
//! jit-bench grants  --key FILE --state-dir DIR ...       a grant store for the sudo-gate benchmark
//! jit-bench issue   --server URL... --key-dir DIR ...    signed request -> certificate, closed or open loop
//! jit-bench exec    --runs N --cmd "A" --cmd "B"         per-call wall time of programs, interleaved
//! jit-bench fsync   --dir DIR                            fdatasync latency of the disk under DIR
//! jit-bench hosts   --server URL --prefix P --count N    GET /v1/hosts/<P><i>/grants for N names
//! jit-bench receive --listen ADDR                        answers every POST 200 (a notify sink)
//! jit-bench web-load --server URL --key-dir DIR ...      logged-in sessions loading /ui pages
//! ```
//! Every command prints one JSON object on stdout; `bench/run.sh` turns them into the table.
//! Latencies are measured per operation and reported as percentiles; in open-loop mode
//! (`--rate`) from the *scheduled* start, so a stalled server cannot hide its queueing delay
//! (no coordinated omission).
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

mod exec;
mod fixtures;
mod hosts;
mod issue;
mod stats;
mod web;

use exec::{ExecSpec, exec, fsync};
use fixtures::{grants, keys};
use issue::{IssueSpec, issue, load_identities};

#[derive(Debug, Parser)]
#[command(
    name = "jit-bench",
    about = "Load generator and fixtures for bench/run.sh"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Writes COUNT ed25519 identities DIR/<prefix>NN (0600) and DIR/<prefix>NN.pub.
    Keys {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        count: usize,
        #[arg(long, default_value = "bench")]
        prefix: String,
    },
    /// Fills STATE_DIR/grants/<user>/<id>.grant: MINE grants for USER (one covering HOST now,
    /// the others for other hosts) and OTHERS grants spread over OTHER_USERS other users.
    Grants {
        /// Grant-signing private key (OpenSSH).
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        state_dir: PathBuf,
        #[arg(long)]
        user: String,
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 50)]
        mine: usize,
        #[arg(long, default_value_t = 10_000)]
        others: usize,
        #[arg(long, default_value_t = 1_000)]
        other_users: usize,
    },
    /// Signed `POST /v1/requests` per certificate, as `jit request` does: an auto-approved
    /// request's answer carries the certificate. `--fetch` adds the signed
    /// `GET /v1/requests/{id}/certificate` (two calls per certificate).
    Issue {
        /// `http://HOST:PORT` of jit-ca; repeat it for the replicas of one CA: client N
        /// talks to server N mod count (open loop: issuance N), and a client whose server
        /// stops answering moves to the next one.
        #[arg(long, required = true)]
        server: Vec<String>,
        /// Directory of identities made by `keys` (registered as users of the same names).
        #[arg(long)]
        key_dir: PathBuf,
        /// How many of them to use (bench00..).
        #[arg(long, default_value_t = 1)]
        users: usize,
        #[arg(long, default_value = "bench")]
        prefix: String,
        /// An auto-approved role.
        #[arg(long)]
        role: String,
        #[arg(long, default_value_t = 600)]
        duration_secs: u64,
        /// Concurrent clients, each with one keep-alive connection (closed loop).
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Open loop instead: start this many issuances per second, whatever the answers.
        #[arg(long)]
        rate: Option<f64>,
        /// Measured seconds.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Unmeasured seconds before.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Stop after this many measured certificates instead of after SECONDS.
        #[arg(long)]
        requests: Option<u64>,
        /// Write one issued certificate line here (and its grant to FILE.grant).
        #[arg(long)]
        save_cert: Option<PathBuf>,
        /// Tokio worker threads of the load generator.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Also fetch each certificate with a second signed call.
        #[arg(long)]
        fetch: bool,
        /// Ask each certificate for one host PREFIX0 .. PREFIX999 in turn (inside the role's
        /// selectors) instead of the role's selectors: a host's grants document is capped at
        /// 4 MiB by the CA, so long runs of one role's glob would fill it.
        #[arg(long, value_name = "PREFIX")]
        spread_hosts: Option<String>,
        /// Identities (`keys --prefix PREFIX`, registered as approvers of ROLE) that approve
        /// each request in turn: one operation is then request + approve + certificate
        /// fetch, and ROLE must need one approval.
        #[arg(long, value_name = "PREFIX")]
        approver_prefix: Option<String>,
        /// How many approver identities (PREFIX00..).
        #[arg(long, default_value_t = 1)]
        approvers: usize,
    },
    /// Logged-in web sessions loading pages (`GET /ui/pending`, `/ui/access` in turn) as fast
    /// as they are answered, on loopback only, bounded by SECONDS and MAX_PAGES: the load
    /// the web interface puts next to issuance. Each session logs in as `jit web` does
    /// (signed `POST /v1/web/login`, then `POST /ui/login` with the one-time token).
    WebLoad {
        /// `http://127.0.0.1:PORT` of jit-ca (loopback only).
        #[arg(long)]
        server: String,
        /// Directory of identities made by `keys` (registered users).
        #[arg(long)]
        key_dir: PathBuf,
        #[arg(long, default_value = "web")]
        prefix: String,
        /// Concurrent sessions (one identity and one connection each).
        #[arg(long, default_value_t = 4)]
        sessions: usize,
        /// Seconds of load.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Stop after this many pages in all.
        #[arg(long, default_value_t = 1_000_000)]
        max_pages: u64,
        /// Pages per second per session (default: as fast as answered).
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Runs each --cmd RUNS times, interleaved (A B A B ...), and reports per-call wall time.
    Exec {
        #[arg(long, default_value_t = 200)]
        runs: usize,
        /// A command line, split on whitespace (no shell). Repeat for each variant.
        #[arg(long = "cmd", required = true)]
        cmds: Vec<String>,
        /// NAME=VALUE set for every command (for example LD_PRELOAD for pam_wrapper).
        #[arg(long = "env")]
        envs: Vec<String>,
        /// Each command must exit with this status.
        #[arg(long, default_value_t = 0)]
        expect: i32,
        /// Each command's stdout must contain this text (checked on the first run).
        #[arg(long)]
        expect_stdout: Option<String>,
        /// A command line run (unmeasured, must exit 0) before every sample of every --cmd,
        /// e.g. removing what the measured command stored so that each call stores again.
        #[arg(long)]
        before: Option<String>,
        /// Workers running the one --cmd at once (RUNS split between them; `{w}` in the
        /// command is replaced by the worker number): reports runs per second of wall time.
        #[arg(long, default_value_t = 1)]
        parallel: usize,
    },
    /// `GET /v1/hosts/<PREFIX><i>/grants` for i in 0..COUNT (each answer 200 with a JSON
    /// body), over CONCURRENCY keep-alive connections: a fleet of COUNT distinct host names
    /// fetching their grants documents.
    Hosts {
        #[arg(long)]
        server: String,
        #[arg(long, default_value = "load-")]
        prefix: String,
        #[arg(long, default_value_t = 20_000)]
        count: u64,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// A notification receiver: answers every HTTP/1.1 request with 200 (an empty body),
    /// printing the bound address first; runs until killed.
    Receive {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Rewritten with the number of requests received after each one.
        #[arg(long)]
        count_file: Option<PathBuf>,
    },
    /// fdatasync latency: appends 128 bytes and syncs, COUNT times, in a file under DIR.
    Fsync {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 100)]
        count: usize,
    },
}

fn main() {
    let cli = Cli::parse();
    let out = match cli.cmd {
        Cmd::Keys { out, count, prefix } => keys(&out, count, &prefix),
        Cmd::Grants {
            key,
            state_dir,
            user,
            host,
            mine,
            others,
            other_users,
        } => grants(&key, &state_dir, &user, &host, mine, others, other_users),
        Cmd::Issue {
            server,
            key_dir,
            users,
            prefix,
            role,
            duration_secs,
            clients,
            rate,
            seconds,
            warmup,
            requests,
            save_cert,
            threads,
            fetch,
            spread_hosts,
            approver_prefix,
            approvers,
        } => {
            let approvers = match &approver_prefix {
                Some(p) => match load_identities(&key_dir, p, approvers) {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("jit-bench: {e:#}");
                        std::process::exit(1);
                    }
                },
                None => Vec::new(),
            };
            let spec = IssueSpec {
                approvers,
                servers: server,
                role,
                duration_secs,
                clients,
                rate,
                seconds,
                warmup,
                requests,
                save_cert,
                fetch,
                spread_hosts,
            };
            load_identities(&key_dir, &prefix, users).and_then(|ids| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads.max(1))
                    .enable_all()
                    .build()
                    .context("starting the tokio runtime")?
                    .block_on(issue(spec, ids))
            })
        }
        Cmd::Exec {
            runs,
            cmds,
            envs,
            expect,
            expect_stdout,
            before,
            parallel,
        } => exec(&ExecSpec {
            runs,
            cmds: &cmds,
            envs: &envs,
            expect,
            expect_stdout: expect_stdout.as_deref(),
            before: before.as_deref(),
            parallel: parallel.max(1),
        }),
        Cmd::Hosts {
            server,
            prefix,
            count,
            concurrency,
        } => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the tokio runtime")
            .and_then(|rt| {
                rt.block_on(hosts::hosts(hosts::HostsSpec {
                    server,
                    prefix,
                    count,
                    concurrency,
                }))
            }),
        Cmd::Receive { listen, count_file } => {
            match hosts::receive(&listen, count_file.as_deref()) {
                Ok(()) => return,
                Err(e) => Err(e),
            }
        }
        Cmd::Fsync { dir, count } => fsync(&dir, count),
        Cmd::WebLoad {
            server,
            key_dir,
            prefix,
            sessions,
            seconds,
            max_pages,
            rate,
        } => load_identities(&key_dir, &prefix, sessions).and_then(|ids| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the tokio runtime")?
                .block_on(web::web_load(web::WebSpec {
                    server,
                    seconds,
                    max_pages,
                    rate,
                    ids,
                }))
        }),
    };
    match out {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("jit-bench: {e:#}");
            std::process::exit(1);
        }
    }
}

//! Runs one `jit` command: resolves settings, talks to the CA, prints for people or, with
//! `--json`, the API's structures on stdout. Progress and notes go to stderr.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::api::{self, Api, ListFilter};
use super::cli::{Cli, Command, ListArgs, RequestArgs};
use super::config::{self, ENV_IDENTITY, ENV_SERVER};
use super::error::{Error, Result};
use super::login::{self, LoginReport};
use super::show;
use jit_api::wire::{
    CreateRequest, ErrorCode, ReceivedCode, RequestState, RequestView, WhoamiView,
};
use jit_common::time::{format_duration, format_utc};

/// How often a waiting `request` polls the CA.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// How long past `pending_expires_at` a waiting `request` keeps polling.
const PENDING_GRACE_SECS: u64 = 60;
/// Consecutive network failures tolerated while waiting.
const MAX_WAIT_FAILURES: u32 = 5;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    if let Command::GenerateDocs { out } = &cli.command {
        use clap::CommandFactory as _;
        return super::gendocs::generate(Cli::command(), out)
            .map_err(|e| Error::file(out, format!("cannot write the docs: {e}")));
    }
    let env_server = std::env::var(ENV_SERVER).ok();
    let env_identity = std::env::var(ENV_IDENTITY).ok();
    let settings = config::resolve(
        &cli.server,
        env_server.as_deref(),
        cli.identity.as_deref(),
        env_identity.as_deref(),
        config::config_path(),
    )?;
    let json = cli.json;
    // Bad ids are usage errors, reported before any key is used or the server is asked.
    if let Command::Approve { id }
    | Command::Deny { id, .. }
    | Command::Show { id }
    | Command::Login { id, .. }
    | Command::Revoke { id, .. }
    | Command::Cancel { id, .. }
    | Command::Drop { id }
    | Command::Extend { id, .. } = &cli.command
    {
        api::check_request_id(id)?;
    }
    let for_approval = matches!(cli.command, Command::Approve { .. });
    let mut api = api::connect(&settings, for_approval)?;
    match cli.command {
        Command::Request(args) => request(&mut api, args, json),
        Command::Approve { id } => {
            let r = api.approve(&id)?;
            let verb = if r.state == RequestState::Pending {
                format!(
                    "Approval recorded ({}/{}; more approvers needed)",
                    r.approvals.len(),
                    r.approvals_required
                )
            } else {
                "Approved".to_string()
            };
            print_request(&r, json, &verb)
        }
        Command::Deny { id, reason } => {
            let r = api.deny(&id, &reason)?;
            print_request(&r, json, "Denied")
        }
        Command::List(ListArgs { pending, mine }) => {
            let filter = if pending {
                ListFilter::Pending
            } else if mine {
                ListFilter::Mine
            } else {
                ListFilter::All
            };
            let list = api.list(filter)?;
            if json {
                return print_json(&list);
            }
            print_table(&list.requests);
            Ok(())
        }
        Command::Show { id } => {
            let r = api.show(&id)?;
            print_request(&r, json, "")
        }
        Command::Login { id, wait: false } => {
            let report = login(&mut api, &id)?;
            print_login(&report, json)
        }
        Command::Login { id, wait: true } => login_wait(&mut api, &id, json),
        Command::Revoke { id, reason } => {
            let r = api.revoke(&id, &reason)?;
            print_request(&r, json, "Revoked")
        }
        Command::Cancel { id, reason } => {
            let r = api.cancel(&id, &reason)?;
            print_request(&r, json, "Cancelled")
        }
        Command::Drop { id } => {
            let r = api.drop_own(&id)?;
            print_request(&r, json, "Dropped")
        }
        Command::Extend { id, duration } => {
            // Beyond the approved window the CA answers extension_not_approved, with what to
            // do instead (request again); it is shown as is.
            let r = api.extend(&id, duration)?;
            // The extension revoked the previous certificate and grant: install the new one.
            let renewed = if r.state == RequestState::Approved
                && let Ok(issued) = api.certificate(&id)
                && let Ok(rep) =
                    login::install(api.signer(), r.clone(), issued, jit_common::now().as_secs())
                && let Some(f) = &rep.certificate_file
            {
                note(&format!(
                    "renewed certificate written to {}; the previous one is revoked",
                    f.display()
                ));
                true
            } else {
                false
            };
            if !renewed {
                note(&format!(
                    "the previous certificate of {id} is revoked; install the new one with `jit login {id}`"
                ));
            }
            if r.session_bound && r.state == RequestState::Approved {
                // A new grant under a new certificate: the bindings of connections made with
                // the previous one name the previous grant.
                note(&show::extended_session_bound(&id));
            }
            print_request(&r, json, "Extended")
        }
        Command::Whoami => {
            let w = api.whoami()?;
            if json {
                return print_json(&w);
            }
            print_whoami(&api, &w);
            Ok(())
        }
        Command::Status => status(&mut api, json),
        Command::Web { print_url, logout } => web(&mut api, print_url, logout, json),
        Command::Roles => {
            let roles = api.roles()?;
            if json {
                return print_json(&roles);
            }
            jit_common::out!("{}", super::roles::render(&roles));
            Ok(())
        }
        Command::GenerateDocs { .. } => Ok(()),
    }
}

/// `jit web`: a one-time login URL, opened (or printed); `--logout`: ends the sessions.
fn web(api: &mut Api, print_url: bool, logout: bool, json: bool) -> Result<()> {
    if logout {
        let v = api.web_logout()?;
        if json {
            return print_json(&v);
        }
        let s = if v.ended == 1 { "" } else { "s" };
        jit_common::outln!("Ended {} web session{s}.", v.ended);
        return Ok(());
    }
    let mut view = api.web_login()?;
    let url = super::web::login_url(api.server(), &view)?;
    if json {
        view.url = Some(url);
        return print_json(&view);
    }
    if print_url {
        jit_common::outln!("{url}");
        return Ok(());
    }
    match super::web::open(&url) {
        Ok(program) => note(&format!(
            "opened the login page with {program} (the link works once, for {} s)",
            view.expires_in_secs
        )),
        Err(why) => {
            note(&format!(
                "could not open a browser ({why}); open this URL within {} s (it works once):",
                view.expires_in_secs
            ));
            jit_common::outln!("{url}");
        }
    }
    Ok(())
}

fn note(msg: &str) {
    jit_common::errln!("jit: {msg}");
}

fn print_json<T: Serialize>(v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| Error::Protocol(format!("cannot encode JSON output: {e}")))?;
    jit_common::outln!("{text}");
    Ok(())
}

fn request(api: &mut Api, args: RequestArgs, json: bool) -> Result<()> {
    let public_key = jit_api::auth::key_header(api.signer().public_key())
        .map_err(|e| Error::Identity(format!("cannot encode your public key: {e}")))?;
    let start = args.start.or_else(|| {
        args.start_in
            .map(|d| jit_common::now().as_secs().saturating_add(d))
    });
    let created = api.create(&CreateRequest {
        role: args.role,
        duration_secs: args.duration,
        reason: args.reason,
        hosts: args.hosts,
        public_key,
        start,
    })?;
    if args.no_wait {
        return print_request(&created, json, "Requested");
    }
    await_decision(api, created, json)
}

/// Waits for `current` to be decided (if it is pending), then installs its certificate;
/// the one way of waiting of `jit request` and `jit login --wait`. A denied or expired
/// request is shown and ends with exit code 3.
fn await_decision(api: &mut Api, current: RequestView, json: bool) -> Result<()> {
    if current.state == RequestState::Pending {
        let window = match current.start {
            Some(s) => format!(" for a window from {}", format_utc(s)),
            None => String::new(),
        };
        let id = &current.id;
        note(&format!(
            "request {id} is pending{window}: an approver runs `jit approve {id}`; Ctrl-C stops \
             waiting (the request stays pending: `jit login {id} --wait` waits again, or `jit \
             cancel {id}` withdraws it)"
        ));
    }
    let mut decided = wait(api, current)?;
    match decided.state {
        RequestState::Approved => {
            let id = decided.id.clone();
            let retry = |e: Error| match e {
                // Keep the kind (and exit code); add how to finish the job.
                Error::Transport { server, detail } => Error::Transport {
                    server,
                    detail: format!("{detail}; request {id} is approved: `jit login {id}` retries"),
                },
                Error::File { path, detail } => Error::File {
                    path,
                    detail: format!("{detail}; request {id} is approved: `jit login {id}` retries"),
                },
                e => e,
            };
            // Approved at once: the answer to the request already carries the certificate.
            let issued = match decided.issued.take() {
                Some(issued) => issued,
                None => api.certificate(&id).map_err(retry)?,
            };
            let report = login::install(api.signer(), decided, issued, jit_common::now().as_secs())
                .map_err(retry)?;
            print_login(&report, json)
        }
        state => {
            let id = decided.id.clone();
            let why = match (&decided.denied_by, &decided.denial_reason) {
                (Some(by), Some(r)) => format!(" by {by}: {r}"),
                (Some(by), None) => format!(" by {by}"),
                (None, Some(r)) => format!(": {r}"),
                (None, None) => String::new(),
            };
            if json {
                print_json(&LoginReport::without_certificate(decided))?;
            } else {
                print_request(&decided, false, "")?;
            }
            Err(Error::NotGranted(format!(
                "request {id} was {}{why}",
                state_word(state)
            )))
        }
    }
}

/// What Ctrl-C while waiting says: the request is left as it is, and how to go on.
pub fn interrupted(id: &str) -> Error {
    Error::Interrupted(format!(
        "stopped waiting; request {id} stays pending: `jit cancel {id}` withdraws it, `jit login \
         {id} --wait` waits again and installs the certificate once it is approved (`jit show \
         {id}` shows where it stands)"
    ))
}

/// A flag set by the first Ctrl-C (SIGINT); a second one exits at once with status 130.
/// Without a handler (registration failed), Ctrl-C keeps its default effect.
fn interrupt_flag() -> Arc<AtomicBool> {
    use signal_hook::consts::SIGINT;
    let flag = Arc::new(AtomicBool::new(false));
    // Order matters: the shutdown action sees the flag before the second action sets it.
    let _ = signal_hook::flag::register_conditional_shutdown(
        SIGINT,
        super::error::EXIT_INTERRUPTED,
        flag.clone(),
    );
    let _ = signal_hook::flag::register(SIGINT, flag.clone());
    flag
}

/// Sleeps `d`, waking early when `stop` is set; returns whether it was.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let step = Duration::from_millis(50);
    let mut slept = Duration::ZERO;
    while slept < d {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(step);
        slept += step;
    }
    stop.load(Ordering::SeqCst)
}

/// Polls until the request leaves `pending`, showing progress on stderr. Ctrl-C stops
/// waiting with [`interrupted`] (exit status 130), the request left pending.
fn wait(api: &mut Api, current: RequestView) -> Result<RequestView> {
    let stop = interrupt_flag();
    let result = poll(api, current, &stop);
    // From here on (installing the certificate), Ctrl-C exits at once, as by default.
    stop.store(true, Ordering::SeqCst);
    result
}

fn poll(api: &mut Api, mut current: RequestView, stop: &AtomicBool) -> Result<RequestView> {
    let tty = std::io::stderr().is_terminal();
    let spinner = tty.then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    });
    let mut last_line = String::new();
    let mut failures = 0;
    let result = loop {
        if current.state != RequestState::Pending {
            break Ok(current);
        }
        let now = jit_common::now().as_secs();
        if now
            > current
                .pending_expires_at
                .saturating_add(PENDING_GRACE_SECS)
        {
            // The server should have expired it; do not wait forever if it has not.
            current.state = RequestState::Expired;
            continue;
        }
        let left = current.pending_expires_at.saturating_sub(now);
        let line = format!(
            "waiting for approval of {} ({}/{} approvals; pending expires in {})",
            current.id,
            current.approvals.len(),
            current.approvals_required,
            format_duration(left)
        );
        match &spinner {
            Some(pb) => pb.set_message(line),
            None => {
                // Plain lines when not on a terminal: only when something changed.
                let key = format!("{}/{}", current.approvals.len(), current.approvals_required);
                if key != last_line {
                    jit_common::errln!("jit: {line}");
                    last_line = key;
                }
            }
        }
        if sleep_unless(stop, POLL_INTERVAL) {
            break Err(interrupted(&current.id));
        }
        match api.show(&current.id) {
            Ok(r) => {
                failures = 0;
                current = r;
            }
            // Unreachable, or every server's database unreachable (503 `unavailable`, which
            // stores nothing): the request is still there; keep waiting a while.
            Err(e)
                if matches!(e, Error::Transport { .. })
                    || e.api_code() == Some(&ReceivedCode::Known(ErrorCode::Unavailable)) =>
            {
                failures += 1;
                if failures >= MAX_WAIT_FAILURES {
                    break Err(e);
                }
            }
            Err(e) => break Err(e),
        }
    };
    if let Some(pb) = spinner {
        pb.finish_and_clear();
    }
    if let Ok(r) = &result {
        note(&format!("request {} {}", r.id, state_word(r.state)));
    }
    result
}

/// `jit login ID --wait`: as `jit login ID`, but a pending request is waited for first, as
/// `jit request` waits (the same messages, Ctrl-C and exit codes).
fn login_wait(api: &mut Api, id: &str, json: bool) -> Result<()> {
    let request = api.show(id)?;
    if request.state != RequestState::Pending {
        let report = install_shown(api, request)?;
        return print_login(&report, json);
    }
    // Only the key that made the request gets its certificate: say so now, not after the
    // wait (another's request, or the requester's other key).
    let mine = api
        .signer()
        .public_key()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    if request
        .key_fingerprint
        .as_deref()
        .is_some_and(|f| f != mine)
    {
        return Err(Error::Identity(format!(
            "request {id} is for another key than the one you are using ({}); wait for it with \
             the identity that made the request (--identity KEYFILE)",
            api.signer().describe()
        )));
    }
    await_decision(api, request, json)
}

fn login(api: &mut Api, id: &str) -> Result<LoginReport> {
    let request = api.show(id)?;
    install_shown(api, request)
}

/// Installs the certificate of `request` as just shown by the CA, if it is approved.
fn install_shown(api: &mut Api, request: RequestView) -> Result<LoginReport> {
    let id = request.id.clone();
    match request.state {
        RequestState::Approved => {}
        RequestState::Pending => {
            return Err(Error::State(format!(
                "request {id} is still pending ({}/{} approvals); try again once it is approved, \
                 or wait for it with `jit login {id} --wait`",
                request.approvals.len(),
                request.approvals_required
            )));
        }
        s => {
            return Err(Error::NotGranted(format!(
                "request {id} is {}: there is no certificate to install",
                state_word(s)
            )));
        }
    }
    let issued = api.certificate(&id)?;
    login::install(api.signer(), request, issued, jit_common::now().as_secs())
}

fn status(api: &mut Api, json: bool) -> Result<()> {
    #[derive(Serialize)]
    struct Status {
        server: String,
        whoami: WhoamiView,
        pending: Vec<RequestView>,
        active: Vec<RequestView>,
    }
    let whoami = api.whoami()?;
    let now = jit_common::now().as_secs();
    let mine = api.list(ListFilter::Mine)?.requests;
    let (pending, active): (Vec<_>, Vec<_>) = mine
        .into_iter()
        .filter(|r| {
            r.state == RequestState::Pending
                || (r.state == RequestState::Approved && r.valid_before.is_some_and(|t| t > now))
        })
        .partition(|r| r.state == RequestState::Pending);
    if json {
        return print_json(&Status {
            server: api.server().to_string(),
            whoami,
            pending,
            active,
        });
    }
    print_whoami(api, &whoami);
    jit_common::outln!();
    if active.is_empty() && pending.is_empty() {
        jit_common::outln!("No pending or active requests.");
    }
    if !active.is_empty() {
        jit_common::outln!("Active:");
        out(&show::active(&active, now));
    }
    if !pending.is_empty() {
        jit_common::outln!("Pending:");
        print_table(&pending);
    }
    Ok(())
}

fn print_whoami(api: &Api, w: &WhoamiView) {
    let c = |s: &str| jit_common::log::sanitize(s, 300);
    jit_common::outln!("user:     {}", c(&w.user));
    jit_common::outln!("groups:   {}", c(&w.groups.join(", ")));
    jit_common::outln!("server:   {}", api.server());
    jit_common::outln!("identity: {}", api.signer().describe());
}

fn state_word(s: RequestState) -> &'static str {
    s.as_str()
}

fn print_request(r: &RequestView, json: bool, verb: &str) -> Result<()> {
    if json {
        return print_json(r);
    }
    out(&show::request(r, verb, jit_common::now().as_secs()));
    Ok(())
}

fn print_table(rs: &[RequestView]) {
    out(&show::table(rs));
}

fn print_login(rep: &LoginReport, json: bool) -> Result<()> {
    if json {
        return print_json(rep);
    }
    out(&show::login(rep, jit_common::now().as_secs()));
    Ok(())
}

/// Writes `text` to stdout; a closed stdout (`| head`) ends `jit` quietly with status 141
/// (`jit_common::stdout`).
fn out(text: &str) {
    jit_common::out!("{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_strings_are_made_safe_for_terminals() {
        let r = RequestView {
            id: "r-1".into(),
            user: "alice".into(),
            role: "db\u{1b}[2J".into(),
            reason: "line1\nline2".into(),
            state: RequestState::Denied,
            duration_secs: 60,
            hosts: vec!["db-\u{7}".into()],
            principals: vec![],
            sudo: false,
            created_at: 0,
            pending_expires_at: 0,
            approvals: vec![],
            approvals_required: 1,
            denied_by: Some("bob\r".into()),
            denial_reason: None,
            valid_after: None,
            valid_before: None,
            serial: None,
            grant_id: None,
            key_fingerprint: None,
            request_digest: None,
            issued: None,
            ticket: None,
            start: None,
            revoked_by: None,
            revoked_at: None,
            revocation_reason: None,
            cancelled_at: None,
            cancel_reason: None,
            denied_at: None,
            session_bound: false,
        };
        let t = show::for_terminal(&r);
        assert_eq!(t.role, "db\\x1b[2J");
        assert_eq!(t.reason, "line1\\x0aline2");
        assert_eq!(t.hosts, vec!["db-\\x07".to_string()]);
        assert_eq!(t.denied_by.as_deref(), Some("bob\\x0d"));
    }
}

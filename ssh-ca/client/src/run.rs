//! Runs one `jit` command: resolves settings, talks to the CA, prints for people or, with
//! `--json`, the API's structures on stdout. Progress and notes go to stderr.

use std::io::IsTerminal as _;
use std::time::Duration;

use serde::Serialize;

use super::api::{self, Api, ListFilter};
use super::cli::{Cli, Command, ListArgs, RequestArgs};
use super::config::{self, ENV_IDENTITY, ENV_SERVER};
use super::error::{Error, Result};
use super::login::{self, LoginReport};
use jit_api::wire::{CreateRequest, RequestState, RequestView, WhoamiView};
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
        cli.server.as_deref(),
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
    | Command::Login { id }
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
        Command::Login { id } => {
            let report = login(&mut api, &id)?;
            print_login(&report, json)
        }
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

/// A copy of a server-supplied request safe to print on a terminal: control characters
/// (escape sequences) escaped, long fields cut.
fn for_terminal(r: &RequestView) -> RequestView {
    let c = |s: &str| jit_common::log::sanitize(s, 300);
    let mut r = r.clone();
    for s in [&mut r.id, &mut r.user, &mut r.role, &mut r.reason] {
        *s = c(s);
    }
    for v in [&mut r.hosts, &mut r.principals] {
        for s in v.iter_mut() {
            *s = c(s);
        }
    }
    for a in &mut r.approvals {
        a.user = c(&a.user);
    }
    for s in [&mut r.denied_by, &mut r.denial_reason, &mut r.grant_id]
        .into_iter()
        .flatten()
    {
        *s = c(s);
    }
    r
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
    let created = api.create(&CreateRequest {
        role: args.role,
        duration_secs: args.duration,
        reason: args.reason,
        hosts: args.hosts,
        public_key,
    })?;
    if args.no_wait {
        return print_request(&created, json, "Requested");
    }
    if created.state == RequestState::Pending {
        note(&format!(
            "request {} is pending: an approver runs `jit approve {}`; Ctrl-C stops waiting (the \
             request stays pending: `jit login {}` later, or `jit cancel {}` to withdraw it)",
            created.id, created.id, created.id, created.id
        ));
    }
    let mut decided = wait(api, created)?;
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

/// Polls until the request leaves `pending`, showing progress on stderr.
fn wait(api: &mut Api, mut current: RequestView) -> Result<RequestView> {
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
        std::thread::sleep(POLL_INTERVAL);
        match api.show(&current.id) {
            Ok(r) => {
                failures = 0;
                current = r;
            }
            Err(e @ Error::Transport { .. }) => {
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

fn login(api: &mut Api, id: &str) -> Result<LoginReport> {
    let request = api.show(id)?;
    match request.state {
        RequestState::Approved => {}
        RequestState::Pending => {
            return Err(Error::State(format!(
                "request {id} is still pending ({}/{} approvals); try again once it is approved",
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
    let issued = api.certificate(id)?;
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
        print_table(&active);
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
    let r = &for_terminal(r);
    if !verb.is_empty() {
        jit_common::outln!("{verb}: request {}", r.id);
    }
    let now = jit_common::now().as_secs();
    jit_common::outln!("id:         {}", r.id);
    jit_common::outln!("state:      {}", state_word(r.state));
    jit_common::outln!("user:       {}", r.user);
    jit_common::outln!("role:       {}", r.role);
    jit_common::outln!("reason:     {}", r.reason);
    jit_common::outln!("duration:   {}", format_duration(r.duration_secs));
    if !r.hosts.is_empty() {
        jit_common::outln!("hosts:      {}", r.hosts.join(", "));
    }
    jit_common::outln!("principals: {}", r.principals.join(", "));
    jit_common::outln!("sudo:       {}", if r.sudo { "yes" } else { "no" });
    jit_common::outln!("created:    {}", format_utc(r.created_at));
    let approvers: Vec<_> = r.approvals.iter().map(|a| a.user.as_str()).collect();
    jit_common::outln!(
        "approvals:  {}/{}{}",
        r.approvals.len(),
        r.approvals_required,
        if approvers.is_empty() {
            String::new()
        } else {
            format!(" ({})", approvers.join(", "))
        }
    );
    if r.state == RequestState::Pending {
        jit_common::outln!(
            "expires:    {} if not decided",
            format_utc(r.pending_expires_at)
        );
    }
    if let Some(by) = &r.denied_by {
        jit_common::outln!("denied by:  {by}");
    }
    if let Some(why) = &r.denial_reason {
        jit_common::outln!("denial:     {why}");
    }
    if let (Some(a), Some(b)) = (r.valid_after, r.valid_before) {
        let left = if b > now {
            format!(" ({} left)", format_duration(b - now))
        } else {
            " (ended)".to_string()
        };
        jit_common::outln!("valid:      {} to {}{left}", format_utc(a), format_utc(b));
    }
    if let Some(s) = r.serial {
        jit_common::outln!("serial:     {s}");
    }
    if let Some(g) = &r.grant_id {
        jit_common::outln!("grant:      {g}");
    }
    Ok(())
}

fn print_table(rs: &[RequestView]) {
    if rs.is_empty() {
        jit_common::outln!("No requests.");
        return;
    }
    jit_common::outln!(
        "{:<20} {:<9} {:<12} {:<14} {:>9} {:>9}  REASON",
        "ID",
        "STATE",
        "USER",
        "ROLE",
        "DURATION",
        "APPROVALS"
    );
    for r in rs.iter().map(for_terminal) {
        let r = &r;
        jit_common::outln!(
            "{:<20} {:<9} {:<12} {:<14} {:>9} {:>9}  {}",
            r.id,
            state_word(r.state),
            r.user,
            r.role,
            format_duration(r.duration_secs),
            format!("{}/{}", r.approvals.len(), r.approvals_required),
            jit_common::log::sanitize(&r.reason, 60),
        );
    }
}

fn print_login(rep: &LoginReport, json: bool) -> Result<()> {
    if json {
        return print_json(rep);
    }
    let r = &for_terminal(&rep.request);
    if let (Some(c), Some(f)) = (&rep.certificate, &rep.certificate_file) {
        let now = jit_common::now().as_secs();
        jit_common::outln!(
            "Certificate for request {} written to {}",
            r.id,
            f.display()
        );
        jit_common::outln!("  principals: {}", r.principals.join(", "));
        jit_common::outln!(
            "  valid:      {} to {} ({} left)",
            format_utc(c.valid_after),
            format_utc(c.valid_before),
            format_duration(c.valid_before.saturating_sub(now))
        );
        jit_common::outln!("  serial:     {}", c.serial);
        if let Some(g) = &rep.grant_file {
            jit_common::outln!("  grant:      {}", g.display());
        }
        if let Some(n) = &rep.agent_note {
            jit_common::outln!("  ssh-agent:  {n}");
        }
        if let Some(h) = &rep.ssh_hint {
            jit_common::outln!("Use it: {h}");
        }
    }
    Ok(())
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
            issued: None,
        };
        let t = for_terminal(&r);
        assert_eq!(t.role, "db\\x1b[2J");
        assert_eq!(t.reason, "line1\\x0aline2");
        assert_eq!(t.hosts, vec!["db-\\x07".to_string()]);
        assert_eq!(t.denied_by.as_deref(), Some("bob\\x0d"));
    }
}

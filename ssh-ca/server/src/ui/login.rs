//! Login through the one-time link `jit web` opens, and logout.
//!
//! `GET /ui/login?token=T` only shows whom the link logs in (the token is not consumed: a
//! chat or mail preview fetching the link changes nothing); the button posts it, and `POST
//! /ui/login` consumes it (once, within 60 s) and sets the session cookie.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::actions::{WithCsrf, cross_site, guarded, read_form, refuse_csrf};
use super::check::{self, FLASH_COOKIE, SESSION_COOKIE};
use super::view::{self, when};
use super::{
    Chrome, blocking, error_page, html, login_required, see_other, set_cookie, source_of, tls,
};
use crate::api::AppState;
use crate::error::ApiError;
use jit_api::wire::ErrorCode;

#[derive(Debug, serde::Deserialize)]
pub(super) struct TokenForm {
    #[serde(default)]
    token: String,
}

/// Longest token accepted (32 bytes in base64url are 43 characters).
const MAX_TOKEN: usize = 100;

fn bad_link() -> ApiError {
    ApiError::new(
        ErrorCode::LoginLinkInvalid,
        "this login link is unknown, already used or expired",
    )
}

/// `GET /ui/login?token=T`: "Log in as USER (key FP)" and the button; read only.
pub(super) async fn show(
    State(st): State<AppState>,
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
    match blocking(move || ca.web_login_preview(&t)).await {
        Ok(p) => html(
            StatusCode::OK,
            &view::LoginConfirm {
                chrome: Chrome::anonymous(),
                user: p.user,
                key_fingerprint: p.key_fingerprint,
                expires: when(p.expires_at),
                token,
            },
        ),
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
    let token = match read_form::<TokenForm>(&st, req).await {
        Ok(f) => f.token,
        Err(resp) => return resp,
    };
    let tls = tls(&st.ca);
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
            let mut resp = see_other("/ui/", true, "You are logged out.", tls);
            set_cookie(&mut resp, &check::clear_cookie(SESSION_COOKIE, tls));
            resp
        }
        Err(e) => error_page(Chrome::anonymous(), &e),
    }
}

//! The state-changing forms: approve, deny, cancel, drop, and the check every one of them
//! passes first ([`guarded`]): same origin, a valid session, the session's CSRF token. Each
//! answers Post/Redirect/Get: 303 to the request's page (or the list it came from) with a
//! flash message; a refusal by the service is audited like the API's.

use std::net::IpAddr;

use axum::extract::rejection::PathRejection;
use axum::extract::{Form, FromRequest, Path, Request, State};
use axum::response::Response;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::check::{self, CrossSite};
use super::{Chrome, blocking, error_page, request_path, see_other, session_of, source_of, tls};
use crate::api::AppState;
use crate::audit::event::{self, Event};
use crate::error::ApiError;
use crate::service::web::{WebSession, csrf_matches};
use jit_api::wire::ErrorCode;

/// A form with the session's CSRF token.
pub(super) trait WithCsrf {
    fn csrf(&self) -> &str;
}

/// A checked form post: the session, the form, the peer, the path.
pub(super) struct Checked<F> {
    pub s: WebSession,
    pub form: F,
    pub source: Option<IpAddr>,
    pub path: String,
}

/// Refuses a cross-site post (403 `csrf_rejected`), audited as `web_login_refused`
/// {"reason": "csrf"} through the refusal rate limit.
pub(super) async fn refuse_csrf(
    st: &AppState,
    source: Option<IpAddr>,
    actor: &str,
    session: Option<&str>,
    path: &str,
    why: String,
) -> Response {
    let ca = st.ca.clone();
    let details = json!({"reason": "csrf", "path": path, "session": session, "why": why});
    let actor = actor.to_string();
    let e = ApiError::new(ErrorCode::CsrfRejected, why);
    let e = blocking(move || {
        Ok(ca.record_refusal_from(source, &actor, event::WEB_LOGIN_REFUSED, details, e))
    })
    .await
    .unwrap_or_else(|e| e);
    error_page(Chrome::anonymous(), &e)
}

/// The same-origin check of a POST (also the login form's).
pub(super) fn cross_site(st: &AppState, req: &Request) -> Result<(), CrossSite> {
    let cfg = st.ca.config();
    let own = check::own_origins(req.headers(), tls(&st.ca), cfg.public_url.as_deref());
    check::same_origin(req.headers(), &own)
}

/// The checks of every state-changing post, in order: same origin (403), a valid session
/// (401, the login page), a readable form (400), the session's CSRF token (403).
pub(super) async fn guarded<F>(st: &AppState, req: Request) -> Result<Checked<F>, Response>
where
    F: DeserializeOwned + WithCsrf + Send + 'static,
{
    let source = source_of(&req);
    let path = req.uri().path().to_string();
    if let Err(why) = cross_site(st, &req) {
        return Err(refuse_csrf(st, source, "unknown", None, &path, why.message()).await);
    }
    let s = session_of(&st.ca, req.headers()).await?;
    let form = read_form::<F>(st, req).await?;
    if !csrf_matches(&s, form.csrf()) {
        let why = "the form's CSRF token is missing or not this session's; reload the page and send it again"
            .to_string();
        return Err(refuse_csrf(st, source, &s.user, Some(&s.id), &path, why).await);
    }
    Ok(Checked {
        s,
        form,
        source,
        path,
    })
}

/// The form of a POST (at most `FORM_LIMIT` bytes), received within `body_read_timeout`
/// like every request body (a slow body is 408 and the connection is closed).
pub(super) async fn read_form<F>(st: &AppState, req: Request) -> Result<F, Response>
where
    F: DeserializeOwned + Send + 'static,
{
    let limit = std::time::Duration::from_secs(st.ca.config().body_read_timeout_secs);
    match tokio::time::timeout(limit, Form::<F>::from_request(req, st)).await {
        Ok(Ok(Form(f))) => Ok(f),
        Ok(Err(e)) => Err(error_page(
            Chrome::anonymous(),
            &ApiError::new(ErrorCode::InvalidInput, format!("malformed form: {e}")),
        )),
        Err(_) => {
            let mut resp = error_page(
                Chrome::anonymous(),
                &ApiError::new(
                    ErrorCode::RequestTimeout,
                    format!(
                        "the form did not arrive within {}s (body_read_timeout)",
                        limit.as_secs()
                    ),
                ),
            );
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            Err(resp)
        }
    }
}

/// Where a form goes back to: the list it was sent from, or the request's page.
fn back(return_to: Option<&str>, id: &str) -> String {
    match return_to {
        Some("pending") => "/ui/pending".into(),
        Some("mine") => "/ui/mine".into(),
        _ => request_path(id),
    }
}

/// Runs a decision for the session on the blocking pool; 303 back with a flash message. A
/// refusal is audited as `refusal` (the API's event for the same call), naming the session.
async fn decide<F>(
    st: &AppState,
    c: Checked<impl Send + 'static>,
    id: String,
    return_to: Option<String>,
    refusal: &'static Event,
    done: String,
    op: F,
) -> Response
where
    F: FnOnce(&crate::service::Ca, &WebSession, &str) -> Result<(), ApiError> + Send + 'static,
{
    let ca = st.ca.clone();
    let tls = tls(&st.ca);
    let to = back(return_to.as_deref(), &id);
    let Checked {
        s, source, path, ..
    } = c;
    let csrf = s.csrf.clone();
    let r = blocking(move || match op(&ca, &s, &id) {
        Err(e) if !e.code.is_server_fault() => {
            let details = json!({"method": "POST", "path": path, "session": s.id});
            Err(ca.record_refusal_from(source, &s.user, refusal, details, e))
        }
        other => other,
    })
    .await;
    match r {
        Ok(()) => see_other(&to, true, &done, &csrf, tls),
        Err(e) if e.code.is_server_fault() => error_page(Chrome::anonymous(), &e),
        Err(e) => see_other(&to, false, &e.message, &csrf, tls),
    }
}

fn path_id(id: Result<Path<String>, PathRejection>) -> String {
    id.map(|Path(id)| id).unwrap_or_default()
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct ApproveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    request_digest: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    return_to: Option<String>,
}

impl WithCsrf for ApproveForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /ui/requests/{id}/approve` (csrf, request_digest, reason optional).
pub(super) async fn approve(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let id = path_id(id);
    let mut c = match guarded::<ApproveForm>(&st, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let digest = std::mem::take(&mut c.form.request_digest);
    let reason = std::mem::take(&mut c.form.reason);
    let return_to = c.form.return_to.take();
    let done = format!("You approved request {id}.");
    decide(
        &st,
        c,
        id,
        return_to,
        event::APPROVAL_REFUSED,
        done,
        move |ca, s, id| ca.approve_web(s, id, &digest, &reason).map(|_| ()),
    )
    .await
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct ReasonForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    return_to: Option<String>,
}

impl WithCsrf for ReasonForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /ui/requests/{id}/deny` (csrf, reason required).
pub(super) async fn deny(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let id = path_id(id);
    let mut c = match guarded::<ReasonForm>(&st, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let reason = std::mem::take(&mut c.form.reason);
    let return_to = c.form.return_to.take();
    let done = format!("You denied request {id}.");
    decide(
        &st,
        c,
        id,
        return_to,
        event::DENIAL_REFUSED,
        done,
        move |ca, s, id| ca.deny(&s.caller(), id, &reason).map(|_| ()),
    )
    .await
}

/// `POST /ui/requests/{id}/cancel` (csrf, reason optional).
pub(super) async fn cancel(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let id = path_id(id);
    let mut c = match guarded::<ReasonForm>(&st, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let reason = std::mem::take(&mut c.form.reason);
    let return_to = c.form.return_to.take();
    let done = format!("You cancelled request {id}.");
    decide(
        &st,
        c,
        id,
        return_to,
        event::CANCELLATION_REFUSED,
        done,
        move |ca, s, id| ca.cancel(&s.caller(), id, &reason).map(|_| ()),
    )
    .await
}

/// `POST /ui/requests/{id}/drop` (csrf).
pub(super) async fn drop_own(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let id = path_id(id);
    let mut c = match guarded::<ReasonForm>(&st, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let return_to = c.form.return_to.take();
    let done = format!("You dropped request {id}: its certificate and grant are revoked.");
    decide(
        &st,
        c,
        id,
        return_to,
        event::REVOCATION_REFUSED,
        done,
        move |ca, s, id| ca.drop_own(&s.caller(), id).map(|_| ()),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_goes_only_to_known_pages() {
        assert_eq!(back(Some("pending"), "r-1"), "/ui/pending");
        assert_eq!(back(Some("mine"), "r-1"), "/ui/mine");
        assert_eq!(
            back(Some("https://evil.example"), "r-1"),
            "/ui/requests/r-1"
        );
        assert_eq!(back(None, "r-1"), "/ui/requests/r-1");
    }
}

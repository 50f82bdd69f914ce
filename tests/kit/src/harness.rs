//! Test harness for `jit-ca`: a real data directory (keys from `jit-ca init`, SQLite on
//! disk, or a fresh PostgreSQL database with `JIT_TEST_POSTGRES`, see [`crate::pg`]), the
//! real router driven with `tower::ServiceExt::oneshot`, a fixed clock, and API calls
//! signed exactly as the client signs them.

pub use crate::bins::{JIT, JIT_CA, JIT_HOST};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use ssh_key::PrivateKey;
use tower::ServiceExt as _;

use jit_api::auth;
use jit_ca::clock::FixedClock;
use jit_ca::service::Ca;

use crate::keys;
use crate::request::SignedCall;

/// Roles used by the API tests.
pub const POLICY: &str = r#"
[roles.db-admin]
principals = ["dbadmin"]
hosts = ["db-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
approvals = 1
require_reason = true
extensions = ["permit-pty"]
critical_options = { "source-address" = "127.0.0.1/32,10.0.0.0/8" }

[roles.two-man]
hosts = ["prod-*"]
sudo = true
max_duration = "2h"
requesters = ["group:dev"]
approvers = ["group:dev", "group:dba"]
approvals = 2
require_reason = true
extensions = ["permit-pty", "permit-port-forwarding"]

[roles.quick]
hosts = ["web-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
[[roles.quick.auto_approve_rules]]
name = "oncall"
groups = ["oncall"]
max_duration = "15m"
"#;

/// Users: name and groups.
pub const USERS: &[(&str, &[&str])] = &[
    ("alice", &["dev", "oncall"]),
    ("bob", &["dba"]),
    ("carol", &["dba"]),
    ("dave", &["dev", "dba"]),
    ("eve", &[]),
];

/// A start time (2026-11-23T12:00:00Z) for the fixed clock.
pub const T0: u64 = 1_795_435_200;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub clock: Arc<FixedClock>,
    pub ca: Arc<Ca>,
    pub app: Router,
    pub keys: HashMap<String, PrivateKey>,
}

pub fn data_dir(d: &tempfile::TempDir) -> PathBuf {
    d.path().join("ca")
}

/// Initialises a data directory with `policy` and [`USERS`] (their deterministic keys,
/// [`keys::user`], written as files next to it).
pub fn setup_dir(policy: &str) -> (tempfile::TempDir, HashMap<String, PrivateKey>) {
    setup_dir_in(&std::env::temp_dir(), policy)
}

/// Like [`setup_dir`], in a fresh directory under `parent`.
pub fn setup_dir_in(
    parent: &Path,
    policy: &str,
) -> (tempfile::TempDir, HashMap<String, PrivateKey>) {
    let tmp = tempfile::tempdir_in(parent).unwrap();
    let dir = data_dir(&tmp);
    jit_ca::admin::init(&dir).unwrap();
    // On PostgreSQL (JIT_TEST_POSTGRES), a fresh database, before anything opens the store.
    crate::pg::use_fresh_database(&dir);
    std::fs::remove_file(dir.join("policy.toml")).unwrap();
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    let mut users = HashMap::new();
    for (name, groups) in USERS {
        let key = keys::user(name);
        let (_, pub_path) = keys::write_pair(tmp.path(), name, &key);
        let groups: Vec<String> = groups.iter().map(|s| s.to_string()).collect();
        jit_ca::admin::user_add(&dir, name, &pub_path, &groups, T0).unwrap();
        users.insert(name.to_string(), key);
    }
    (tmp, users)
}

impl Harness {
    pub fn new() -> Self {
        Self::with_policy(POLICY)
    }

    pub fn with_policy(policy: &str) -> Self {
        Self::open(setup_dir(policy))
    }

    /// Like [`Harness::with_policy`], with the data directory under `parent` (the fuzz
    /// targets keep theirs in a scratch directory the runner removes).
    pub fn with_policy_in(parent: &Path, policy: &str) -> Self {
        Self::open(setup_dir_in(parent, policy))
    }

    fn open((dir, keys): (tempfile::TempDir, HashMap<String, PrivateKey>)) -> Self {
        let clock = Arc::new(FixedClock::new(T0));
        let ca = Arc::new(Ca::open(&data_dir(&dir), clock.clone()).unwrap());
        let app = jit_ca::api::router(ca.clone());
        Self {
            dir,
            clock,
            ca,
            app,
            keys,
        }
    }

    /// Like [`Harness::with_policy`], with `key = value` lines set in config.toml first
    /// (replacing the template's line for the same key).
    pub fn with_policy_and_config(policy: &str, settings: &[(&str, &str)]) -> Self {
        let (dir, keys) = setup_dir(policy);
        let cfg = data_dir(&dir).join("config.toml");
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        for (k, v) in settings {
            let prefix = format!("{k} = ");
            text = text
                .lines()
                .filter(|l| !l.starts_with(&prefix))
                .collect::<Vec<_>>()
                .join("\n");
            text.push_str(&format!("\n{k} = {v}\n"));
        }
        std::fs::remove_file(&cfg).unwrap();
        std::fs::write(&cfg, text).unwrap();
        Self::open((dir, keys))
    }

    /// A second CA instance on the same directory (a restart).
    pub fn restart(&mut self) {
        let ca = Arc::new(Ca::open(&self.path(), self.clock.clone()).unwrap());
        self.app = jit_ca::api::router(ca.clone());
        self.ca = ca;
    }

    pub fn path(&self) -> PathBuf {
        data_dir(&self.dir)
    }

    /// The data directory's database, for raw statements (SQLite's jit.db or the
    /// PostgreSQL database config.toml names).
    pub fn db(&self) -> crate::pg::Sql {
        crate::pg::Sql::of_dir(&self.path())
    }

    /// Runs one raw statement on whichever database this CA uses (`?N` parameters, see
    /// [`crate::pg::Sql`]); its rows as text.
    pub fn sql(&self, stmt: &str, params: &[crate::pg::Val]) -> Vec<Vec<Option<String>>> {
        self.db().run(stmt, params)
    }

    pub fn now(&self) -> u64 {
        self.clock.now_secs()
    }

    pub fn key(&self, user: &str) -> &PrivateKey {
        &self.keys[user]
    }

    /// A signed request, built exactly like the client builds one.
    pub fn signed_request(
        &self,
        key: &PrivateKey,
        method: &str,
        path: &str,
        body: &[u8],
        ts: u64,
        nonce: &str,
    ) -> Request<Body> {
        self.call_of(key, method, path, body, ts)
            .nonce(nonce)
            .request()
    }

    /// A [`SignedCall`] to this CA (its audience), with a fresh nonce.
    pub fn call_of<'a>(
        &'a self,
        key: &'a PrivateKey,
        method: &'a str,
        path: &'a str,
        body: &'a [u8],
        ts: u64,
    ) -> SignedCall<'a> {
        SignedCall::new(key, self.ca.audience(), method, path, body, ts)
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Vec<u8>, axum::http::HeaderMap) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body.to_vec(), headers)
    }

    /// A signed call as `user`; returns status and JSON.
    pub async fn call(
        &self,
        user: &str,
        method: &str,
        path: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let body = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let req = self.signed_request(
            self.key(user),
            method,
            path,
            &body,
            self.now(),
            &auth::new_nonce(),
        );
        let (status, bytes, _) = self.send(req).await;
        let json = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, json)
    }

    /// An unauthenticated GET; returns status, body, headers.
    pub async fn get(
        &self,
        path: &str,
        if_none_match: Option<&str>,
    ) -> (StatusCode, Vec<u8>, axum::http::HeaderMap) {
        let mut b = Request::builder().method("GET").uri(path);
        if let Some(e) = if_none_match {
            b = b.header("if-none-match", e);
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    /// `POST /v1/requests` as `user` for their own key.
    pub async fn request(
        &self,
        user: &str,
        role: &str,
        duration: u64,
        reason: &str,
    ) -> (StatusCode, serde_json::Value) {
        let pk = self.key(user).public_key().to_openssh().unwrap();
        self.call(
            user,
            "POST",
            "/v1/requests",
            serde_json::json!({"role": role, "duration_secs": duration, "reason": reason, "public_key": pk}),
        )
        .await
    }

    pub async fn approve(&self, user: &str, id: &str) -> (StatusCode, serde_json::Value) {
        self.call(
            user,
            "POST",
            &format!("/v1/requests/{id}/approve"),
            serde_json::json!({}),
        )
        .await
    }

    /// Audit events recorded so far (event names in order).
    pub fn audit_events(&self) -> Vec<(String, String)> {
        jit_ca::admin::audit_export(&self.path())
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r["event"].as_str().unwrap().to_string(),
                    r["actor"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// Asserts an API error with `status` and `code`.
#[track_caller]
pub fn assert_error(got: &(StatusCode, serde_json::Value), status: u16, code: &str) {
    assert_eq!(got.0.as_u16(), status, "unexpected status, body {}", got.1);
    assert_eq!(
        got.1["error"]["code"], code,
        "unexpected code, body {}",
        got.1
    );
    assert!(
        !got.1["error"]["message"].as_str().unwrap_or("").is_empty(),
        "an error needs a message"
    );
}

/// Runs `ssh-keygen` with args (TZ=UTC); returns (success, stdout+stderr).
pub fn ssh_keygen(args: &[&str]) -> (bool, String) {
    let out = Command::new("ssh-keygen")
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("ssh-keygen must be installed (tests/install-deps.sh)");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `2026-11-23T12:00:00`, as `ssh-keygen -L` prints times in UTC.
pub fn keygen_time(t: u64) -> String {
    jit_common::time::format_utc(t)
        .trim_end_matches('Z')
        .to_string()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

trait NowSecs {
    fn now_secs(&self) -> u64;
}

impl NowSecs for FixedClock {
    fn now_secs(&self) -> u64 {
        use jit_ca::clock::Clock as _;
        self.now()
    }
}

//! Signed API calls built exactly as the client builds them (`jit_api::auth`: audience,
//! method, path, body digest, timestamp and nonce under the caller's key), for the in-process
//! router, fuzz targets and load generators.
//!
//! [`SignedCall::headers`] gives the five `x-jit-*` headers for any HTTP client;
//! [`SignedCall::request`] an `axum` request for the router.

use axum::body::Body;
use axum::http::Request;
use jit_api::auth;
use ssh_key::{PrivateKey, PublicKey, SigningKey};

/// One signed call. `body` is what is signed; [`SignedCall::request`] sends the same bytes.
///
/// `K` is any `ssh_key::SigningKey`: a `PrivateKey`, or a pre-derived signer such as
/// `jit_ca::signer::ReadyKey` where signing speed matters (load generators).
#[derive(Debug, Clone)]
pub struct SignedCall<'a, K: SigningKey = PrivateKey> {
    pub key: &'a K,
    /// The CA's audience (`Ca::audience()`, or `/v1/health`'s).
    pub audience: &'a str,
    pub method: &'a str,
    /// Path and query, as sent.
    pub path: &'a str,
    pub body: &'a [u8],
    pub timestamp: u64,
    /// 32 hex digits; [`SignedCall::new`] makes a fresh one.
    pub nonce: String,
}

impl<'a, K: SigningKey> SignedCall<'a, K> {
    /// A call by `key` to `audience`, at `timestamp`, with a fresh nonce.
    pub fn new(
        key: &'a K,
        audience: &'a str,
        method: &'a str,
        path: &'a str,
        body: &'a [u8],
        timestamp: u64,
    ) -> Self {
        Self {
            key,
            audience,
            method,
            path,
            body,
            timestamp,
            nonce: auth::new_nonce(),
        }
    }

    /// With this nonce instead of a fresh one.
    pub fn nonce(mut self, nonce: &str) -> Self {
        self.nonce = nonce.to_string();
        self
    }

    /// The signed message (`auth::message`).
    pub fn message(&self) -> Vec<u8> {
        auth::message(
            self.audience,
            self.method,
            self.path,
            self.body,
            self.timestamp,
            &self.nonce,
        )
    }

    /// The authentication headers, name and value, in the order the client sends them.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let sig = auth::sign_with(self.key, &self.message()).expect("sign call");
        let public = PublicKey::from(SigningKey::public_key(self.key));
        vec![
            (auth::HDR_AUDIENCE, self.audience.to_string()),
            (
                auth::HDR_KEY,
                auth::key_header(&public).expect("key header"),
            ),
            (auth::HDR_TIMESTAMP, self.timestamp.to_string()),
            (auth::HDR_NONCE, self.nonce.clone()),
            (
                auth::HDR_SIGNATURE,
                auth::encode_signature(&sig).expect("encode signature"),
            ),
        ]
    }

    /// An `axum` request (JSON content type) carrying the signed body, or `None` when the
    /// path is not a valid URI (fuzzed paths).
    pub fn try_request(&self) -> Option<Request<Body>> {
        let mut b = Request::builder()
            .method(self.method)
            .uri(self.path)
            .header("content-type", "application/json");
        for (name, value) in self.headers() {
            b = b.header(name, value);
        }
        b.body(Body::from(self.body.to_vec())).ok()
    }

    /// Like [`SignedCall::try_request`]; panics on an invalid path.
    pub fn request(&self) -> Request<Body> {
        self.try_request()
            .unwrap_or_else(|| panic!("not a valid request: {} {}", self.method, self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_verify_against_the_message() {
        let key = crate::keys::user("alice");
        let call = SignedCall::new(&key, "aud", "POST", "/v1/requests", b"{}", 5).nonce("0f");
        let h = call.headers();
        let sig = auth::decode_signature(&h[4].1).unwrap();
        assert!(auth::verify(key.public_key(), &call.message(), &sig));
        assert_eq!(h[2].1, "5");
        assert!(call.request().headers().contains_key(auth::HDR_SIGNATURE));
        assert!(
            SignedCall::new(&key, "aud", "GET", "/\u{0}", b"", 5)
                .try_request()
                .is_none()
        );
    }
}

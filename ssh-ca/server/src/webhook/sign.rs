//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>, version 1): the
//! receiver checks that a call came from this CA, unchanged, and recently.
//!
//! Headers sent with every call:
//! ```text
//! webhook-id:         msg_...          unique per message (the idempotency key)
//! webhook-timestamp:  1795435200       Unix seconds when the call was made
//! webhook-signature:  v1,<base64>      HMAC-SHA256 with the secret over
//!                                      "{webhook-id}.{webhook-timestamp}.{body}"
//! ```
//! The secret is written `whsec_<base64 of 24 to 64 random bytes>` (how Standard Webhooks
//! libraries and `openssl rand -base64 32` spell it). The HMAC is the RustCrypto `hmac`
//! crate's; nothing here is hand-written cryptography.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Header: the message id.
pub const HDR_ID: &str = "webhook-id";
/// Header: Unix seconds.
pub const HDR_TIMESTAMP: &str = "webhook-timestamp";
/// Header: `v1,<base64 HMAC-SHA256>`.
pub const HDR_SIGNATURE: &str = "webhook-signature";
/// The prefix of a secret's text.
pub const SECRET_PREFIX: &str = "whsec_";
/// Fewest secret bytes accepted (Standard Webhooks: 24 to 64).
pub const MIN_SECRET_BYTES: usize = 24;
/// Most secret bytes accepted.
pub const MAX_SECRET_BYTES: usize = 64;

/// A webhook's signing secret: zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Parses `whsec_<base64>` (surrounding white space ignored); the message says what is
    /// wrong and never repeats the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let how = "generate one with: printf 'whsec_%s\\n' \"$(openssl rand -base64 32)\"";
        let Some(b64) = text.trim().strip_prefix(SECRET_PREFIX) else {
            return Err(format!(
                "a webhook secret is written {SECRET_PREFIX}<base64> on one line; {how}"
            ));
        };
        let bytes = Zeroizing::new(
            STANDARD
                .decode(b64)
                .map_err(|_| format!("the text after {SECRET_PREFIX} is not base64; {how}"))?,
        );
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(format!(
                "a webhook secret must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes (this one is {}); {how}",
                bytes.len()
            ));
        }
        Ok(Self(bytes))
    }

    /// The `v1,<base64>` signature of `body` sent as message `id` at `timestamp`.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        // HMAC accepts keys of any length: new_from_slice cannot fail for it.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::from("v1,");
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// The three Standard Webhooks headers of a call.
    pub fn headers(&self, id: &str, timestamp: u64, body: &[u8]) -> [(&'static str, String); 3] {
        [
            (HDR_ID, id.to_string()),
            (HDR_TIMESTAMP, timestamp.to_string()),
            (HDR_SIGNATURE, self.sign(id, timestamp, body)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (and its reference libraries).
    #[test]
    fn signs_the_specification_example() {
        let s = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            s.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let h = s.headers("msg_1", 7, b"{}");
        assert_eq!(h[0], ("webhook-id", "msg_1".to_string()));
        assert_eq!(h[1], ("webhook-timestamp", "7".to_string()));
        assert_eq!(h[2].1, s.sign("msg_1", 7, b"{}"));
        // Every part is signed.
        assert_ne!(s.sign("msg_2", 7, b"{}"), h[2].1);
        assert_ne!(s.sign("msg_1", 8, b"{}"), h[2].1);
        assert_ne!(s.sign("msg_1", 7, b"{ }"), h[2].1);
    }

    #[test]
    fn refuses_malformed_secrets_without_echoing_them() {
        let e = Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err();
        assert!(e.starts_with("a webhook secret is written whsec_<base64> on one line"));
        assert!(!e.contains("MfKQ"));
        let e = Secret::parse("whsec_not base64!").unwrap_err();
        assert!(e.starts_with("the text after whsec_ is not base64"), "{e}");
        let e = Secret::parse("whsec_c2hvcnQ=").unwrap_err();
        assert!(
            e.starts_with("a webhook secret must be 24 to 64 bytes (this one is 5)"),
            "{e}"
        );
        assert!(Secret::parse("  whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").is_ok());
        assert_eq!(
            format!(
                "{:?}",
                Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            ),
            "Ok(Secret(..))"
        );
    }
}

//! A document the service serves from memory (the published keys, KRL and revocation list,
//! the audit checkpoint), with its ETag. A leaf: `publish` and `external` both use it.

use std::sync::Arc;

use sha2::{Digest, Sha256};

/// A cached document with its ETag.
#[derive(Debug, Clone)]
pub struct Doc {
    /// Body bytes (shared: a response holds a reference, not a copy).
    pub body: Arc<[u8]>,
    /// Strong ETag, quoted.
    pub etag: String,
}

impl Doc {
    pub(super) fn new(body: Vec<u8>) -> Self {
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
        Self {
            body: body.into(),
            etag,
        }
    }
}

//! The HTTP body of a host's grants document (moved out of the service, which has no HTTP
//! types): its parts as shared chunks, with the exact length (so the response carries a
//! `Content-Length`), never copied into one buffer.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use hyper::body::{Frame, SizeHint};

use crate::service::HostDoc;

/// The body of a host's grants document.
#[derive(Debug)]
pub struct HostBody(VecDeque<Bytes>);

impl HostBody {
    /// The body of `doc`, sharing its bytes.
    pub fn new(doc: &HostDoc) -> Self {
        Self(
            doc.body_parts()
                .into_iter()
                .map(Bytes::from_owner)
                .collect(),
        )
    }
}

impl hyper::body::Body for HostBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.iter().map(|b| b.len() as u64).sum())
    }
}

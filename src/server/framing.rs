//! Checks the gRPC framing of every request body as it streams in (each message a 5-byte prefix
//! — compression flag, big-endian length — then that many bytes), so that a body that breaks it
//! is answered INVALID_ARGUMENT with a short generic message. tonic answers such bodies (a
//! message cut off by the end of the stream, an unknown compression flag, a unary call with no
//! message) with INTERNAL and its parser's wording, which tells the caller nothing it can act
//! on and makes the audit log record a server error for the caller's mistake. Nothing is
//! buffered: the body passes through unchanged while a few counters follow it. Messages whose
//! bytes do not decode are answered the same way by `crate::grpc::codec`.

use std::{
    collections::HashSet,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http_body::{Body, Frame};
use tonic::Status;
use tower::{Layer, Service};

/// What a caller whose request body breaks the framing is told.
pub const MALFORMED_FRAMING: &str = "the request is not a well-formed gRPC message stream";

const PREFIX_LEN: usize = 5;

#[derive(Clone)]
pub struct RequestFramingLayer {
    single_message_paths: Arc<HashSet<String>>,
}

impl RequestFramingLayer {
    /// `single_message_paths`: the methods (`/package.Service/Method`) whose request is exactly
    /// one message (unary and server-streaming calls).
    pub fn new(single_message_paths: impl IntoIterator<Item = String>) -> Self {
        Self {
            single_message_paths: Arc::new(single_message_paths.into_iter().collect()),
        }
    }
}

impl<S> Layer<S> for RequestFramingLayer {
    type Service = RequestFraming<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestFraming {
            inner,
            single_message_paths: Arc::clone(&self.single_message_paths),
        }
    }
}

#[derive(Clone)]
pub struct RequestFraming<S> {
    inner: S,
    single_message_paths: Arc<HashSet<String>>,
}

impl<S> Service<http::Request<tonic::body::Body>> for RequestFraming<S>
where
    S: Service<http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let single_message = self.single_message_paths.contains(request.uri().path());
        // A compressed message is the codec's to judge only when the call names an encoding.
        let encoded = request.headers().contains_key("grpc-encoding");
        self.inner.call(request.map(|body| {
            tonic::body::Body::new(FramedBody {
                inner: body,
                framing: Framing::new(single_message, encoded),
            })
        }))
    }
}

/// Where the body stands in its sequence of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Framing {
    single_message: bool,
    encoded: bool,
    /// The prefix of the message being read, while it is incomplete.
    prefix: [u8; PREFIX_LEN],
    prefix_read: usize,
    /// Bytes of the current message still to come.
    body_remaining: u64,
    complete_messages: u64,
}

impl Framing {
    fn new(single_message: bool, encoded: bool) -> Self {
        Self {
            single_message,
            encoded,
            prefix: [0; PREFIX_LEN],
            prefix_read: 0,
            body_remaining: 0,
            complete_messages: 0,
        }
    }

    /// Follows `data`, the next bytes of the body.
    fn follow(&mut self, mut data: &[u8]) -> Result<(), &'static str> {
        while !data.is_empty() {
            if self.body_remaining > 0 {
                let taken = data
                    .len()
                    .min(usize::try_from(self.body_remaining).unwrap_or(usize::MAX));
                self.body_remaining -= taken as u64;
                data = &data[taken..];
                if self.body_remaining == 0 {
                    self.complete_messages += 1;
                }
                continue;
            }
            let taken = data.len().min(PREFIX_LEN - self.prefix_read);
            self.prefix[self.prefix_read..self.prefix_read + taken].copy_from_slice(&data[..taken]);
            self.prefix_read += taken;
            data = &data[taken..];
            if self.prefix_read < PREFIX_LEN {
                continue;
            }
            self.prefix_read = 0;
            match self.prefix[0] {
                0 => {}
                1 if self.encoded => {}
                1 => return Err("a message is marked compressed but the call names no encoding"),
                _ => return Err("a message has an unknown compression flag"),
            }
            let length = u32::from_be_bytes([
                self.prefix[1],
                self.prefix[2],
                self.prefix[3],
                self.prefix[4],
            ]);
            if length == 0 {
                self.complete_messages += 1;
            }
            self.body_remaining = u64::from(length);
        }
        Ok(())
    }

    /// Judges the body once it has ended.
    fn finish(&self) -> Result<(), &'static str> {
        if self.prefix_read > 0 || self.body_remaining > 0 {
            Err("the body ends inside a message")
        } else if self.single_message && self.complete_messages == 0 {
            Err("the call carries no request message")
        } else {
            Ok(())
        }
    }
}

struct FramedBody {
    inner: tonic::body::Body,
    framing: Framing,
}

fn malformed(problem: &str) -> Status {
    tracing::debug!(problem, "malformed request framing");
    Status::invalid_argument(MALFORMED_FRAMING)
}

impl Body for FramedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref()
                    && let Err(problem) = this.framing.follow(data)
                {
                    return Poll::Ready(Some(Err(malformed(problem))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => Poll::Ready(Some(Err(error))),
            None => Poll::Ready(
                this.framing
                    .finish()
                    .err()
                    .map(|problem| Err(malformed(problem))),
            ),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(length: u32) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.extend(std::iter::repeat_n(7, length as usize));
        bytes
    }

    #[test]
    fn whole_messages_in_any_split_pass() {
        let mut body = message(3);
        body.extend(message(0));
        body.extend(message(300));
        for split in [1, 2, 5, 7, body.len()] {
            let mut framing = Framing::new(false, false);
            for chunk in body.chunks(split) {
                framing.follow(chunk).expect("well framed");
            }
            assert_eq!(framing.complete_messages, 3);
            assert_eq!(framing.finish(), Ok(()));
        }
    }

    #[test]
    fn broken_framing_is_named() {
        let mut cut = Framing::new(false, false);
        cut.follow(&message(10)[..8]).expect("so far so good");
        assert_eq!(cut.finish(), Err("the body ends inside a message"));

        let mut half_prefix = Framing::new(true, false);
        half_prefix.follow(&[0, 0]).expect("so far so good");
        assert!(half_prefix.finish().is_err());

        assert!(Framing::new(false, false).follow(&[9, 0, 0, 0, 0]).is_err());
        assert!(Framing::new(false, false).follow(&[1, 0, 0, 0, 0]).is_err());
        assert!(Framing::new(false, true).follow(&[1, 0, 0, 0, 0]).is_ok());

        assert_eq!(
            Framing::new(true, false).finish(),
            Err("the call carries no request message")
        );
        assert_eq!(Framing::new(false, false).finish(), Ok(()));
    }
}

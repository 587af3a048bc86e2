//! `answer`: what a handler of the [`HttpServer`](super::HttpServer) sees
//! of a request, and what it answers: at once, later (a ZooKeeper write
//! must not block the server's only thread), or as a stream (server-sent
//! events).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use hyper::body::Incoming;

/// A request, as a handler reads it. Requests carry no body: the server
/// refuses one (413), so that its head cap bounds the whole request.
#[derive(Debug)]
pub struct Request<'a> {
    pub(super) inner: &'a hyper::Request<Incoming>,
    pub(super) peer: SocketAddr,
}

impl Request<'_> {
    /// `GET`, `POST`, …
    pub fn method(&self) -> &str {
        self.inner.method().as_str()
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.inner.uri().path()
    }

    /// The query (after `?`), still percent-encoded.
    pub fn query(&self) -> Option<&str> {
        self.inner.uri().query()
    }

    /// A header's value, when present and readable as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.headers().get(name)?.to_str().ok()
    }

    /// Every value of a header, joined by `, ` as HTTP joins them, with
    /// bytes that are no UTF-8 replaced (a value to log, whatever it holds).
    pub fn header_text(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .inner
            .headers()
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

/// A stream of body chunks (server-sent events): the connection stays busy,
/// neither idle-timed-out nor evicted, while it lives and its client reads.
pub type ByteStream = Pin<Box<dyn futures_lite::Stream<Item = Bytes> + Send>>;

/// The body of an [`Answer`].
pub enum Body {
    /// All of it, now.
    Full(Bytes),
    /// Chunks as they come; the answer ends with the stream.
    Stream(ByteStream),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Full(bytes) => write!(f, "Full({} bytes)", bytes.len()),
            Body::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// What a handler answers.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// More headers (a value that is no valid header value is left out).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Body,
}

impl Answer {
    /// A `text/plain` answer.
    pub fn text(status: u16, body: impl Into<String>) -> Answer {
        Answer::new(status, "text/plain; charset=utf-8", body.into())
    }

    /// An answer of `content_type` with all of `body`.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Answer {
        Answer {
            status,
            content_type,
            headers: Vec::new(),
            body: Body::Full(body.into()),
        }
    }

    /// This answer with one more header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Answer {
        self.headers.push((name, value.into()));
        self
    }
}

/// A handler's reply: an answer now, or one to wait for (on the server's
/// thread, without blocking it; the caller bounds the wait).
pub enum Reply {
    /// Answered at once.
    Now(Answer),
    /// Answered when the future is.
    Later(Pin<Box<dyn Future<Output = Answer> + Send>>),
}

impl From<Answer> for Reply {
    fn from(answer: Answer) -> Reply {
        Reply::Now(answer)
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Now(answer) => f.debug_tuple("Now").field(answer).finish(),
            Reply::Later(_) => f.write_str("Later"),
        }
    }
}

/// Answers a request; it runs on the server's only thread, so it returns
/// at once (a slow answer is a [`Reply::Later`]).
pub type Handler = Box<dyn Fn(&Request<'_>) -> Reply + Send + Sync>;

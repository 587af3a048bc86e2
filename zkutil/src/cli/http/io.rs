//! `io`: the response body and the socket of a connection, each noting
//! in its [`Activity`](super::connections::Activity) what the watchdog and
//! the eviction need: whether an answer is alive, since when a write waits.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::answer::{Body as AnswerBody, ByteStream};
use super::connections::{Shared, Socket};
use crate::sync::lock;

/// A response body; while it lives its connection is busy, not idle.
pub(super) struct Answering {
    body: Inner,
    activity: Shared,
}

/// The body's bytes: all at once, or a stream's chunks.
enum Inner {
    Full(Full<Bytes>),
    Stream(ByteStream),
}

impl Answering {
    pub(super) fn start(activity: Shared, body: AnswerBody) -> Answering {
        {
            let mut activity = lock(&activity);
            activity.pending = false;
            activity.answering += 1;
        }
        let body = match body {
            AnswerBody::Full(bytes) => Inner::Full(Full::new(bytes)),
            AnswerBody::Stream(stream) => Inner::Stream(stream),
        };
        Answering { body, activity }
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        let mut activity = lock(&self.activity);
        activity.answering = activity.answering.saturating_sub(1);
        activity.answered += 1;
        if activity.answering == 0 {
            activity.idle_since = Instant::now();
        }
    }
}

impl Body for Answering {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.get_mut().body {
            Inner::Full(full) => Pin::new(full).poll_frame(cx),
            Inner::Stream(stream) => stream
                .as_mut()
                .poll_next(cx)
                .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.body {
            Inner::Full(full) => full.is_end_stream(),
            Inner::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            Inner::Full(full) => full.size_hint(),
            Inner::Stream(_) => SizeHint::default(),
        }
    }
}

/// The socket, noting since when a write has waited for the client; once
/// evicted (the socket gone), every read and write fails.
pub(super) struct Watched {
    pub(super) socket: Socket,
    pub(super) activity: Shared,
}

impl Watched {
    fn with_stream<T>(
        &self,
        io: impl FnOnce(Pin<&mut tokio::net::TcpStream>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match lock(&self.socket).as_mut() {
            Some(stream) => io(Pin::new(stream)),
            None => Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into())),
        }
    }

    /// A write (or flush): notes whether it had to wait.
    fn write<T>(
        &self,
        io: impl FnOnce(Pin<&mut tokio::net::TcpStream>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let poll = self.with_stream(io);
        let mut activity = lock(&self.activity);
        match poll {
            Poll::Pending => {
                if activity.write_blocked_since.is_none() {
                    activity.write_blocked_since = Some(Instant::now());
                }
            }
            Poll::Ready(_) => activity.write_blocked_since = None,
        }
        poll
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.with_stream(|stream| stream.poll_read(cx, buf))
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write(|stream| stream.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.write(|stream| stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        // As tokio's `TcpStream` says.
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.write(|stream| stream.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with_stream(|stream| stream.poll_shutdown(cx))
    }
}

//! `http`: the small HTTP/1 server under
//! [`MetricsServer`](super::metrics::MetricsServer) and `zkutil console`,
//! bounded in everything a client of its port can make the process spend.
//!
//! Whoever reaches the metrics port may be hostile, and the port shares
//! the process with the time listeners and the ZooKeeper session. So:
//!
//! * one thread, whatever the number of connections: hyper's HTTP/1
//!   server on a current-thread tokio runtime, where no client can block
//!   the thread (a write that cannot go out waits, the others go on);
//! * a request head of at most [`MAX_HEAD`] bytes (431, then closed) and
//!   no request body (413, then closed): a connection holds a few KiB;
//! * at most [`MAX_CONNECTIONS`] connections. At the cap, one is closed at
//!   once to admit the new one: the one whose answer has waited longest
//!   for a client that does not read, else the one idle the longest, else
//!   the one answered most, so that idle
//!   connections never lock out `/healthz`; when every connection is
//!   making or sending an answer, the new one is closed instead;
//! * at most [`MAX_REQUESTS`] requests per connection: the last answer
//!   closes it, so a client that pipelines requests gets a bounded share
//!   of the thread per connection it opens;
//! * a connection idle for [`IDLE_TIMEOUT`] (nothing being answered,
//!   including one that sent half a head) is closed, and so is one whose
//!   writes make no progress for [`WRITE_TIMEOUT`] (a client that
//!   pipelines requests and never reads).
//!
//! A connection counts as busy while a response body of it is alive, so a
//! long response (the web console's event streams: [`Body::Stream`]) is
//! neither timed out nor evicted while its client reads it; an answer that
//! waits for ZooKeeper is a [`Reply::Later`], so that it never blocks the
//! server's only thread.

mod answer;
mod connections;
mod io;

use crate::sync::lock;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

pub use self::answer::{Answer, Body, ByteStream, Handler, Reply, Request};
use self::connections::{Activity, Entry, Place, Shared, Socket, Table};
use self::io::{Answering, Watched};

/// Connections held at once. A scraper or two, `curl`s and a few event
/// streams of the web console fit many times over.
pub const MAX_CONNECTIONS: usize = 64;
/// Descriptors the server holds at most: its connections, the one just
/// accepted (before it has a place or is closed), and four of its own
/// (measured: the listener, two epoll instances and an eventfd).
pub const MAX_DESCRIPTORS: usize = MAX_CONNECTIONS + 5;
/// Longest request head (request line and headers). Our paths are short;
/// 8 KiB is the common cap of web servers (nginx, Go).
pub const MAX_HEAD: usize = 8 * 1024;
/// Requests answered on one connection; the last answer says
/// `Connection: close` (nginx's `keepalive_requests` is 1000; a scraper
/// asks once per interval and reconnects at no cost).
pub const MAX_REQUESTS: usize = 100;
/// hyper's buffer for reading (its minimum is 8 KiB; the head cap is
/// [`MAX_HEAD`]).
const MAX_BUFFER: usize = 16 * 1024;
/// An idle connection (also: one whose head is not complete) is closed
/// after this: a scraper reconnects at its next scrape.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection whose writes wait this long for the client to read is
/// closed.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Between failed `accept`s (out of descriptors: none frees up at once).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The server, until dropped.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `listen` and serves `handler` on a thread named `name`.
    ///
    /// # Errors
    ///
    /// Binding the address, starting the thread.
    pub fn start(listen: SocketAddr, name: &str, handler: Handler) -> std::io::Result<HttpServer> {
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(serve(listener, Arc::new(handler), stopped));
                // Dropping the runtime drops every connection: all closed.
            })?;
        Ok(HttpServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts until `stop`, holding at most [`MAX_CONNECTIONS`] open.
async fn serve(
    listener: tokio::net::TcpListener,
    handler: Arc<Handler>,
    mut stop: oneshot::Receiver<()>,
) {
    let table = Arc::new(Table::default());
    let mut next_id: u64 = 0;
    let mut last_failure_logged: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                if last_failure_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(error = %err, "metrics: accept failed (logged at most every 10s)");
                    last_failure_logged = Some(Instant::now());
                }
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    _ = &mut stop => return,
                }
            }
        };
        // Until it has a place, the new connection is the one descriptor
        // over the cap (counted in MAX_DESCRIPTORS).
        if !table.make_room() {
            tracing::debug!(%peer, "metrics: every connection is answering; closed the new one");
            continue;
        }
        let id = next_id;
        next_id += 1;
        let activity: Shared = Arc::new(Mutex::new(Activity::new()));
        let evict = Arc::new(Notify::new());
        let socket: Socket = Arc::new(Mutex::new(Some(stream)));
        lock(&table.conns).insert(
            id,
            Entry {
                activity: activity.clone(),
                socket: socket.clone(),
                evict: evict.clone(),
            },
        );
        let place = Place {
            table: table.clone(),
            id,
        };
        tokio::spawn(connection(
            socket,
            peer,
            handler.clone(),
            activity,
            evict,
            place,
        ));
    }
}

/// Serves one connection until it ends, is evicted, or times out.
async fn connection(
    socket: Socket,
    peer: SocketAddr,
    handler: Arc<Handler>,
    activity: Shared,
    evict: Arc<Notify>,
    // Dropped last, after the connection (its socket) is.
    _place: Place,
) {
    let io = TokioIo::new(Watched {
        socket,
        activity: activity.clone(),
    });
    let answering = activity.clone();
    // A `Cell`: hyper calls the service by `&self`, one request at a time.
    let requests = std::cell::Cell::new(0usize);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let (handler, answering) = (handler.clone(), answering.clone());
        requests.set(requests.get() + 1);
        let last = requests.get() >= MAX_REQUESTS;
        lock(&answering).pending = true;
        async move {
            // One answer per turn: a client that pipelines many requests
            // takes turns with the others instead of answering a batch of
            // them (up to tokio's budget of I/O operations) before
            // `/healthz` gets its turn.
            tokio::task::yield_now().await;
            Ok::<_, Infallible>(respond(&handler, &request, peer, &answering, last).await)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(IDLE_TIMEOUT)
        .max_header_size(MAX_HEAD)
        .max_buf_size(MAX_BUFFER)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let ended: Option<String> = loop {
        let next_check = lock(&activity).next_check(Instant::now());
        tokio::select! {
            result = conn.as_mut() => break result.err().map(|err| err.to_string()),
            () = evict.notified() => break Some("evicted: closed to admit a new connection".to_owned()),
            () = tokio::time::sleep_until(next_check) => {
                if let Some(why) = lock(&activity).expired(Instant::now()) {
                    break Some(why.to_owned());
                }
            }
        }
    };
    if let Some(why) = ended {
        tracing::debug!(%peer, why, "metrics: connection closed");
    }
}

/// The answer to one request. A request with a body is refused: none of
/// ours takes one, and the head cap then bounds the whole request.
async fn respond(
    handler: &Handler,
    request: &hyper::Request<Incoming>,
    peer: SocketAddr,
    activity: &Shared,
    last: bool,
) -> Response<Answering> {
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0");
    let reply = if has_body {
        Answer::text(413, "no request body is expected\n").into()
    } else {
        handler(&Request {
            inner: request,
            peer,
        })
    };
    let answer = match reply {
        Reply::Now(answer) => answer,
        // The connection stays pending (not idle) meanwhile.
        Reply::Later(answer) => answer.await,
    };
    let mut response = Response::new(Answering::start(activity.clone(), answer.body));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(answer.content_type),
    );
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    if has_body || last {
        // An unread body must not be taken for the next request.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

//! `metrics`: `GET /metrics` (OpenMetrics text of a `prometheus-client`
//! registry) and `GET /healthz` (200, or 503 with a one-line reason) on one
//! small blocking HTTP server (`tiny_http`), for the binaries'
//! `--metrics-listen`.
//!
//! It runs on threads of its own: a slow or hostile client of the metrics
//! port never delays the time listeners, and a malformed request gets
//! `tiny_http`'s 400 or a closed connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::registry::Registry;

/// What `/healthz` asks: `Ok` while healthy, else why not (one line).
pub type HealthCheck = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The metrics endpoint of a process, until dropped.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl MetricsServer {
    /// Serves `registry` and `health` on `listen` (port 0: a free port).
    ///
    /// # Errors
    ///
    /// When the address cannot be bound or the thread not started.
    pub fn start(
        listen: SocketAddr,
        registry: Arc<Mutex<Registry>>,
        health: HealthCheck,
    ) -> std::io::Result<MetricsServer> {
        let server = Arc::new(tiny_http::Server::http(listen).map_err(std::io::Error::other)?);
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("the metrics server has no IP address"))?;
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for request in serving.incoming_requests() {
                    answer(request, &registry, &health);
                }
            })?;
        Ok(MetricsServer {
            server,
            addr,
            thread: Some(thread),
        })
    }

    /// The address bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(request: tiny_http::Request, registry: &Mutex<Registry>, health: &HealthCheck) {
    let text =
        |code: u16, body: String| tiny_http::Response::from_string(body).with_status_code(code);
    let response = if *request.method() != tiny_http::Method::Get {
        text(405, "only GET\n".to_owned())
    } else {
        match request.url() {
            "/metrics" => {
                let mut body = String::new();
                let registry = registry.lock().unwrap_or_else(PoisonError::into_inner);
                match prometheus_client::encoding::text::encode(&mut body, &registry) {
                    Ok(()) => {
                        let response = text(200, body);
                        match tiny_http::Header::from_bytes(
                            &b"Content-Type"[..],
                            &b"application/openmetrics-text; version=1.0.0; charset=utf-8"[..],
                        ) {
                            Ok(header) => response.with_header(header),
                            Err(()) => response,
                        }
                    }
                    Err(err) => text(500, format!("encoding the metrics: {err}\n")),
                }
            }
            "/healthz" => match health() {
                Ok(()) => text(200, "ok\n".to_owned()),
                Err(reason) => text(503, format!("{reason}\n")),
            },
            _ => text(404, "not found: try /metrics or /healthz\n".to_owned()),
        }
    };
    let _ = request.respond(response);
}

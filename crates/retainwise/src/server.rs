//! The HTTP front door: accepting TCP connections and serving HTTP/1.1 on them, with the limits
//! that keep one client from taking the service down.
//!
//! - A connection must deliver each request's headers within the header timeout, counted from
//!   when the server starts waiting for them, so it also closes an idle keep-alive connection
//!   (hyper's `header_read_timeout`, with tokio's timer).
//! - Connections are capped in total and per client address; a connection over a cap is
//!   answered with a short 503 or 429 and closed, so the descriptors stay below the process
//!   limit and `/health` keeps answering others. Trusted proxies (one address for many clients)
//!   count only towards the total.
//! - An accept error (`EMFILE`, `ENFILE`, `ENOBUFS`) is logged, at most once per second, and
//!   accepting goes on after a short pause, rather than ending the server.
//! - [`raise_fd_limit`] lifts the soft `RLIMIT_NOFILE` to the hard limit at start-up, and
//!   [`ConnectionLimits::effective`] keeps the total cap below what the process may open.
//!
//! A slow request body is bounded by the request timeout (`TimeoutLayer` in [`crate::api`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{HttpConfig, TrustedProxies};

/// Descriptors kept free for everything but client connections: database pool, object storage,
/// queue, files being scored, log output.
pub const FD_RESERVE: u64 = 256;

/// Refused connections being answered at once; beyond this they are closed without an answer.
const REFUSALS_IN_FLIGHT: usize = 64;

/// The connection limits of one listener, resolved against the process's descriptor limit.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time to receive a request's headers, and longest idle time of a keep-alive connection.
    pub header_read_timeout: Duration,
    /// Open client connections, all addresses together.
    pub max_connections: usize,
    /// Open client connections from one address (trusted proxies excepted).
    pub max_connections_per_ip: usize,
    /// Addresses that count only towards the total (a load balancer carries many clients).
    pub trusted_proxies: TrustedProxies,
}

impl ConnectionLimits {
    /// The configured limits, with the total lowered to fit the soft descriptor limit
    /// (`RLIMIT_NOFILE` minus [`FD_RESERVE`] and the refusals in flight), so the server runs
    /// out of connection slots before it runs out of descriptors.
    pub fn effective(http: &HttpConfig) -> Self {
        let fit = fd_soft_limit()
            .map(|soft| soft.saturating_sub(FD_RESERVE + REFUSALS_IN_FLIGHT as u64))
            .map_or(usize::MAX, |n| n.max(16) as usize);
        let max_connections = http.max_connections.min(fit);
        if max_connections < http.max_connections {
            tracing::warn!(
                configured = http.max_connections,
                used = max_connections,
                "max_connections lowered to fit the open-file limit (RLIMIT_NOFILE)"
            );
        }
        Self {
            header_read_timeout: http.header_read_timeout,
            max_connections,
            max_connections_per_ip: http.max_connections_per_ip.min(max_connections),
            trusted_proxies: http.trusted_proxies.clone(),
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` of this process to its hard limit and returns the new soft
/// limit (`None` where there is no such limit). A server started from a shell with the common
/// soft limit of 1024 can then hold as many connections as the administrator allows.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(error = %e, "could not raise the open-file limit (RLIMIT_NOFILE)");
                fd_soft_limit()
            }
        }
    }
    #[cfg(not(unix))]
    None
}

fn fd_soft_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::NOFILE)
            .ok()
            .map(|(soft, _)| soft)
    }
    #[cfg(not(unix))]
    None
}

/// Serves `router` on `listener` until `shutdown`, then stops accepting, lets the open
/// connections finish their requests (each is told to close) and returns. Handlers see the
/// client's address as `ConnectInfo<SocketAddr>`.
///
/// Errors: none after start; accept errors are logged and survived.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let gate = Arc::new(Gate::new(&limits));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    let tracker = TaskTracker::new();
    let mut accept_errors = crate::log_safe::Throttle::new(Duration::from_secs(1));
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if let Some(suppressed) = accept_errors.allow() {
                        tracing::error!(error = %e, suppressed, "accept error; still accepting");
                    }
                    // Connection-level errors (the peer gave up) need no pause; running out
                    // of descriptors does, or the loop would spin until one is freed.
                    if !is_connection_error(&e) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let ticket = match gate.admit(addr.ip()) {
            Ok(ticket) => ticket,
            Err(refusal) => {
                metrics::counter!("retainwise_http_connections_refused_total", "reason" => refusal.reason()).increment(1);
                if let Ok(permit) = refusals.clone().try_acquire_owned() {
                    tracker.spawn(refuse(stream, refusal, permit));
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let shutdown = shutdown.clone();
        let header_read_timeout = limits.header_read_timeout;
        tracker.spawn(async move {
            let _ticket = ticket;
            let service = tower::ServiceExt::map_request(
                router,
                move |mut request: axum::http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(addr));
                    request
                },
            );
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .keep_alive(true);
            let conn =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Errors of one connection that was closed before it was accepted (nothing is wrong with the
/// listener).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Answers a connection over a cap with a short response naming the cap, then closes it.
/// Bounded in time: a client that does not read cannot keep the descriptor.
async fn refuse(mut stream: TcpStream, refusal: Refusal, _permit: OwnedSemaphorePermit) {
    let body = refusal.message();
    let response = format!(
        "HTTP/1.1 {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nretry-after: 5\r\nconnection: close\r\n\r\n{body}",
        refusal.status(),
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent, so closing does not reset the connection before it has
        // read the answer.
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Total,
    PerIp,
}

impl Refusal {
    fn status(self) -> &'static str {
        match self {
            Self::Total => "503 Service Unavailable",
            Self::PerIp => "429 Too Many Requests",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Total => "the server has too many open connections; retry shortly\n",
            Self::PerIp => "too many open connections from your address; close some and retry\n",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::Total => "total",
            Self::PerIp => "per_ip",
        }
    }
}

/// Counts open connections in total and per address.
struct Gate {
    total: Arc<Semaphore>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_ip: usize,
    trusted: TrustedProxies,
}

/// One admitted connection; dropping it frees its places.
struct Ticket {
    _total: OwnedSemaphorePermit,
    ip: Option<IpAddr>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Gate {
    fn new(limits: &ConnectionLimits) -> Self {
        Self {
            total: Arc::new(Semaphore::new(limits.max_connections)),
            per_ip: Arc::default(),
            max_per_ip: limits.max_connections_per_ip,
            trusted: limits.trusted_proxies.clone(),
        }
    }

    fn admit(&self, ip: IpAddr) -> Result<Ticket, Refusal> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Total)?;
        let ip = canonical(ip);
        let counted = !self.trusted.contains(ip);
        if counted {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let open = per_ip.entry(ip).or_insert(0);
            if *open >= self.max_per_ip {
                return Err(Refusal::PerIp);
            }
            *open += 1;
        }
        Ok(Ticket {
            _total: total,
            ip: counted.then_some(ip),
            per_ip: self.per_ip.clone(),
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(open) = per_ip.get_mut(&ip) {
                *open -= 1;
                if *open == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:a.b.c.d`) counts as its IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

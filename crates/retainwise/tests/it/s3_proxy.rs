//! A pass-through proxy in front of the test S3 server, for the failure drills: it counts the
//! object writes the store acknowledged (so "each result is written once" is measured at the
//! store's door, not taken from the worker's word), it can make the store unreachable (the
//! listening port closes, open connections are cut), and it can refuse one object (403), the
//! way a broken bucket policy would.
//!
//! Requests are forwarded byte for byte with their `Host` header, so AWS Signature V4 signed for
//! the proxy's address still verifies at the store.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, StatusCode};
use axum::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct S3Proxy {
    /// `http://127.0.0.1:PORT`, to give the processes as `AWS_ENDPOINT_URL_S3`.
    pub url: String,
    shared: Arc<Shared>,
    down: watch::Sender<bool>,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    /// Request path → object writes the store answered 2xx (a PUT of a whole object, or a
    /// CompleteMultipartUpload).
    writes: Mutex<BTreeMap<String, u32>>,
    /// Requests whose path contains this are refused with 403 AccessDenied.
    deny: Mutex<Option<String>>,
}

impl S3Proxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let (down, watch_down) = watch::channel(false);
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            writes: Mutex::default(),
            deny: Mutex::default(),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let listener = Switchable {
            addr,
            listener: Some(listener),
            down: watch_down,
        };
        tokio::spawn(async move { axum::serve(listener, app).await.expect("proxy") });
        Self {
            url: format!("http://{addr}"),
            shared,
            down,
        }
    }

    /// Makes the store unreachable (`true`: the port is closed and open connections fail) or
    /// reachable again on the same port.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    /// Refuses (403) every request whose path contains `needle`; `None` lifts it.
    pub fn deny(&self, needle: Option<String>) {
        *self.shared.deny.lock().unwrap() = needle;
    }

    /// Acknowledged writes per object path whose path contains `needle`.
    pub fn writes(&self, needle: &str) -> BTreeMap<String, u32> {
        self.shared
            .writes
            .lock()
            .unwrap()
            .iter()
            .filter(|(path, _)| path.contains(needle))
            .map(|(path, n)| (path.clone(), *n))
            .collect()
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    if let Some(needle) = shared.deny.lock().unwrap().as_deref() {
        if path.contains(needle) {
            return Response::builder()
                .status(StatusCode::FORBIDDEN)
                .header("content-type", "application/xml")
                .body(Body::from(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>\
                     <Message>Access Denied (failure drill)</Message></Error>",
                ))
                .unwrap();
        }
    }
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let target = match parts.uri.query() {
        Some(q) => format!("{}{path}?{q}", shared.upstream),
        None => format!("{}{path}", shared.upstream),
    };
    let mut upstream = shared.client.request(parts.method.clone(), target);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            upstream = upstream.header(name, value);
        }
    }
    let Ok(answer) = upstream.body(bytes).send().await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let code = answer.status();
    let headers = answer.headers().clone();
    let Ok(body) = answer.bytes().await else {
        return status(StatusCode::BAD_GATEWAY);
    };
    let whole_put = parts.method == Method::PUT
        && !query.contains("partNumber")
        && !query.contains("uploadId")
        && !parts.headers.contains_key("x-amz-copy-source");
    let complete = parts.method == Method::POST && query.contains("uploadId");
    if code.is_success() && (whole_put || complete) {
        *shared.writes.lock().unwrap().entry(path).or_default() += 1;
    }
    let mut response = Response::builder().status(code);
    for (name, value) in &headers {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    response.body(Body::from(body)).unwrap()
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "upgrade"
    )
}

fn status(code: StatusCode) -> Response {
    Response::builder()
        .status(code)
        .body(Body::empty())
        .unwrap()
}

/// A listener whose port can be closed and reopened: while `down`, the socket is dropped (new
/// connections are refused) and every accepted connection fails its reads and writes.
struct Switchable {
    addr: SocketAddr,
    listener: Option<TcpListener>,
    down: watch::Receiver<bool>,
}

impl axum::serve::Listener for Switchable {
    type Io = Cuttable;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Cuttable, SocketAddr) {
        loop {
            if *self.down.borrow_and_update() {
                self.listener = None;
                let _ = self.down.wait_for(|down| !*down).await;
                continue;
            }
            if self.listener.is_none() {
                // The port was ours a moment ago; rebinding it can race with the kernel
                // releasing it, so try for a while.
                for _ in 0..100 {
                    if let Ok(l) = TcpListener::bind(self.addr).await {
                        self.listener = Some(l);
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
            let Some(listener) = self.listener.as_ref() else {
                panic!("could not reopen the proxy port {}", self.addr);
            };
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, peer)) = accepted {
                        return (Cuttable { stream, down: self.down.clone() }, peer);
                    }
                }
                _ = self.down.changed() => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// A connection that fails as soon as the proxy is down.
struct Cuttable {
    stream: TcpStream,
    down: watch::Receiver<bool>,
}

impl Cuttable {
    fn check(&self) -> io::Result<()> {
        if *self.down.borrow() {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "storage is down (failure drill)",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for Cuttable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Cuttable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

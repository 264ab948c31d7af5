//! A TCP proxy that breaks one transfer off mid-body: it forwards every connection to the
//! server, counts the bytes clients send over all of them, and closes (both ways) the
//! connection that carries byte number `cut_at`, once; with `stay_down` it then refuses every
//! connection (closes it at once) until `down` is cleared, a network that stays away for a
//! while. Real sockets, so the client sees a
//! dropped connection and the server an unfinished body, as when a network goes away.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub struct CutProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Whether the cut happened.
    pub cut: Arc<AtomicBool>,
    /// While set, connections are closed at once.
    pub down: Arc<AtomicBool>,
}

/// Starts the proxy in front of `upstream`.
pub async fn spawn(upstream: SocketAddr, cut_at: u64, stay_down: bool) -> CutProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(AtomicBool::new(false));
    let down = Arc::new(AtomicBool::new(false));
    let (flag, outage) = (cut.clone(), down.clone());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            if outage.load(Ordering::SeqCst) {
                drop(client);
                continue;
            }
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let outage = stay_down.then(|| outage.clone());
            tokio::spawn(pipe(
                client,
                server,
                sent.clone(),
                flag.clone(),
                cut_at,
                outage,
            ));
        }
    });
    CutProxy { addr, cut, down }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    sent: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
    cut_at: u64,
    outage: Option<Arc<AtomicBool>>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let stop = CancellationToken::new();
    let up = {
        let stop = stop.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = tokio::select! {
                    _ = stop.cancelled() => return,
                    n = client_read.read(&mut buf) => match n { Ok(0) | Err(_) => return, Ok(n) => n },
                };
                // Down: connections opened before (a browser keeps spare ones) carry nothing.
                if outage.as_ref().is_some_and(|o| o.load(Ordering::SeqCst)) {
                    stop.cancel();
                    return;
                }
                let before = sent.fetch_add(n as u64, Ordering::SeqCst);
                if before < cut_at
                    && before + n as u64 >= cut_at
                    && !cut.swap(true, Ordering::SeqCst)
                {
                    let keep = (cut_at - before) as usize;
                    let _ = server_write.write_all(&buf[..keep]).await;
                    if let Some(outage) = &outage {
                        outage.store(true, Ordering::SeqCst);
                    }
                    stop.cancel();
                    return;
                }
                if server_write.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    let down = {
        let stop = stop.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = tokio::select! {
                    _ = stop.cancelled() => return,
                    n = server_read.read(&mut buf) => match n { Ok(0) | Err(_) => return, Ok(n) => n },
                };
                if client_write.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    stop.cancel();
}

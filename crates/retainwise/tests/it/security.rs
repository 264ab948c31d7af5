//! The attacks on loopback, each against the real server: slow and idle
//! connections, a rebinding `Host`, an open redirect after sign-in, cacheable pages, a planted
//! session cookie, a 40 KB JWT `alg` in the log, sign-in guessing, hung dependencies.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::TestApp;

fn addr_of(t: &TestApp) -> SocketAddr {
    t.base.trim_start_matches("http://").parse().unwrap()
}

/// A connection to `server` from the loopback address `from` (127.0.0.2 is another client
/// than 127.0.0.1 to the server: Linux routes all of 127/8 to loopback).
async fn connect_from(from: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(format!("{from}:0").parse().unwrap())
        .expect("bind a loopback source address");
    socket.connect(server).await.expect("connect")
}

/// Reads until the server closes the connection (or `limit` passes: then panics, the server
/// kept it open). Returns what was read.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&all).into_owned(),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the server kept the connection open for {limit:?}; read so far: {:?}",
                String::from_utf8_lossy(&all)
            ),
        }
    }
}

/// One header line every few seconds kept a connection forever, and ~20,000
/// of them exhausted the descriptors. Now: headers must arrive within the header timeout (1 s
/// here), an idle keep-alive connection is closed as well, one address gets at most its cap of
/// connections (the next is answered 429 at once), and `/health` answers other clients while
/// the cap is held.
#[tokio::test]
async fn slow_and_idle_connections_are_closed_and_capped_per_address() {
    let t = TestApp::spawn_with(|c| {
        c.http.header_read_timeout = Duration::from_secs(1);
        c.http.max_connections_per_ip = 20;
    })
    .await;
    let server = addr_of(&t);

    // The attacker, from 127.0.0.2: 20 connections that send a request line and one header,
    // then trickle one more header line now and then.
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = connect_from("127.0.0.2", server).await;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    // The 21st from that address is refused at once, with a reason.
    let mut extra = connect_from("127.0.0.2", server).await;
    let answer = read_until_closed(&mut extra, Duration::from_secs(10)).await;
    assert!(
        answer.starts_with("HTTP/1.1 429") && answer.contains("too many open connections"),
        "{answer}"
    );
    // Everybody else is still served while the attacker holds its cap.
    for _ in 0..5 {
        assert_eq!(t.get("/health").await.status(), 200);
    }
    // Trickling does not help: the headers are not complete within the timeout, so each slow
    // connection is closed (generous bound: it must not stay open).
    for s in slow.iter_mut().take(3) {
        let _ = s.write_all(b"X-Slow: 1\r\n").await;
    }
    for s in &mut slow {
        read_until_closed(s, Duration::from_secs(20)).await;
    }
    // With them gone the address may connect again.
    let mut again = connect_from("127.0.0.2", server).await;
    again
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut again, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // An idle keep-alive connection: one request answered, then silence; the server closes it.
    let mut idle = connect_from("127.0.0.3", server).await;
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut idle, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A page on an attacker's domain re-pointed at 127.0.0.1 is same-origin to
/// the browser, so it could read every prediction of a local install and queue jobs. Its
/// requests name the attacker's domain in `Host`: refused with 421, on every route; the
/// loopback names, IP addresses and the configured public name are served.
#[tokio::test]
async fn a_rebinding_host_is_refused() {
    let t = TestApp::spawn().await;
    let id = t
        .upload_ok(
            "customers.csv",
            crate::helpers::synthetic_telco(3).into_bytes(),
        )
        .await;
    let port = addr_of(&t).port();
    let with_host = |path: &str, host: &str| {
        t.client
            .get(format!("{}{path}", t.base))
            .header("host", host.to_owned())
            .send()
    };
    for path in [
        "/api/predictions".to_owned(),
        format!("/api/predictions/{id}"),
        "/predictions".to_owned(),
        "/".to_owned(),
        "/health".to_owned(),
    ] {
        let r = with_host(&path, &format!("rebind.evil.example:{port}"))
            .await
            .unwrap();
        assert_eq!(r.status(), 421, "{path}");
        let body = r.text().await.unwrap();
        assert!(!body.contains(&id), "{path}: {body}");
        assert!(body.contains("RETAINWISE_ALLOWED_HOSTS"), "{body}");
    }
    // A rebinding upload is refused too (the attacker's page would send its own Origin).
    let part = reqwest::multipart::Part::bytes(crate::helpers::synthetic_telco(3).into_bytes())
        .file_name("x.csv");
    let r = t
        .client
        .post(format!("{}/api/csv", t.base))
        .header("host", format!("rebind.evil.example:{port}"))
        .header("origin", format!("http://rebind.evil.example:{port}"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost.:{port}"),
    ] {
        assert_eq!(
            with_host("/api/predictions", &host).await.unwrap().status(),
            200,
            "{host}"
        );
    }

    // A deployment names itself; then that name is served and others still are not.
    let t = TestApp::spawn_with(|c| {
        c.http.allowed_hosts = vec!["churn.example.com".into()];
    })
    .await;
    let get = |host: &'static str| {
        t.client
            .get(format!("{}/health", t.base))
            .header("host", host)
            .send()
    };
    assert_eq!(get("churn.example.com").await.unwrap().status(), 200);
    assert_eq!(get("other.example.com").await.unwrap().status(), 421);
}

/// `next=/%09/evil.example` passed the check, and browsers drop the tab, so
/// `Location: /\t/evil.example` went off-site. Every such spelling now lands on `/`.
#[tokio::test]
async fn sign_in_never_redirects_off_site() {
    let t = crate::web::signed_in_app().await;
    let key = t
        .app
        .db
        .create_api_key(&"user_redirect".parse().unwrap(), "web")
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (next, expected) in [
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("/\r\n/evil.example", "/"),
        ("/\\evil.example", "/"),
        ("//evil.example", "/"),
        (" //evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/predictions?page=2", "/predictions?page=2"),
    ] {
        let r = client
            .post(format!("{}/signin", t.base))
            .header("origin", &t.base)
            .form(&[("key", key.secret.as_str()), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{next:?}");
        assert_eq!(r.headers()["location"], expected, "{next:?}");
        // The sign-in page's hidden field does not carry it either.
        let page = t
            .client
            .get(format!("{}/signin", t.base))
            .query(&[("next", next)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains(&format!(
                "name=\"next\" value=\"{}\"",
                expected.replace('&', "&amp;")
            )),
            "{next:?}"
        );
    }
}

/// Pages and results of a signed-in user carried no `Cache-Control`, so a
/// shared computer's browser cache (or a proxy) kept them. Every answer but the versioned
/// static files is `no-store, private`.
#[tokio::test]
async fn pages_and_downloads_are_not_stored() {
    let t = TestApp::spawn().await;
    let id = t
        .upload_ok(
            "customers.csv",
            crate::helpers::synthetic_telco(5).into_bytes(),
        )
        .await;
    t.work_once().await;
    for path in [
        "/".to_owned(),
        "/predictions".to_owned(),
        format!("/predictions/{id}"),
        format!("/predictions/{id}/customers"),
        format!("/predictions/{id}/customers/1"),
        format!("/predictions/{id}/export.xlsx"),
        format!("/api/predictions/{id}"),
        format!("/api/predictions/{id}/results"),
        format!("/api/predictions/{id}/report"),
        "/signin".to_owned(),
        "/nope".to_owned(),
    ] {
        let r = t.get(&path).await;
        assert!(
            r.status().is_success() || r.status() == 404,
            "{path}: {}",
            r.status()
        );
        assert_eq!(
            r.headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap()),
            Some("no-store, private"),
            "{path}"
        );
    }
}

/// The cookie held the raw API key, so every other application on the host
/// received it (cookies ignore ports) and could plant its own (session fixation: the victim's
/// uploads then went to the attacker's account). Now the cookie holds a random session id that
/// only this server's database knows; a planted key or another server's session signs nobody
/// in, a sign-in replaces whatever id the browser had, and sign-out ends the session.
#[tokio::test]
async fn a_planted_cookie_signs_nobody_in() {
    use crate::web::{get_with, no_redirects, sign_in, signed_in_app};
    let t = signed_in_app().await;
    let key = |user: &'static str| {
        let db = t.app.db.clone();
        async move {
            db.create_api_key(&user.parse().unwrap(), "web")
                .await
                .unwrap()
        }
    };
    let (attacker, victim) = (key("user_attacker").await, key("user_victim").await);

    // The cookie carries a session id, never the key.
    let victim_cookie = sign_in(&t, &victim.secret).await;
    assert!(
        victim_cookie.starts_with("retainwise_session=rws_")
            && !victim_cookie.contains(&victim.secret),
        "{victim_cookie}"
    );

    // 1. The attacker's own key planted as the cookie (what the cookie used to hold).
    let planted = format!("retainwise_session={}", attacker.secret);
    let r = get_with(&t, &planted, "/predictions").await;
    assert_eq!(r.status(), 303, "a planted key is no session");
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/signin"));
    let part = reqwest::multipart::Part::bytes(crate::helpers::synthetic_telco(3).into_bytes())
        .file_name("x.csv");
    let r = no_redirects()
        .post(format!("{}/api/csv", t.base))
        .header("cookie", &planted)
        .header("origin", &t.base)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no upload into the attacker's account");

    // 2. A session of another server on this host (same sign-in secret, its own database).
    let other = signed_in_app().await;
    let other_key = other
        .app
        .db
        .create_api_key(&"user_attacker".parse().unwrap(), "web")
        .await
        .unwrap();
    let other_cookie = sign_in(&other, &other_key.secret).await;
    assert_eq!(
        get_with(&other, &other_cookie, "/predictions")
            .await
            .status(),
        200
    );
    assert_eq!(
        get_with(&t, &other_cookie, "/predictions").await.status(),
        303,
        "another server's session is no session here"
    );

    // 3. An id the browser had before signing in (here the attacker's live session, planted)
    //    is ended by the victim's sign-in, which issues a fresh one.
    let attacker_cookie = sign_in(&t, &attacker.secret).await;
    let r = no_redirects()
        .post(format!("{}/signin", t.base))
        .header("origin", &t.base)
        .header("cookie", &attacker_cookie)
        .form(&[("key", victim.secret.as_str()), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let fresh = r.headers()["set-cookie"].to_str().unwrap();
    let fresh = fresh.split(';').next().unwrap().to_owned();
    assert_ne!(fresh, attacker_cookie);
    assert_eq!(
        get_with(&t, &attacker_cookie, "/predictions")
            .await
            .status(),
        303
    );
    assert_eq!(get_with(&t, &fresh, "/predictions").await.status(), 200);

    // 4. Sign-out ends the session on the server: the same cookie replayed is refused.
    let r = no_redirects()
        .post(format!("{}/signout", t.base))
        .header("origin", &t.base)
        .header("cookie", &victim_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        get_with(&t, &victim_cookie, "/predictions").await.status(),
        303
    );
    // 5. Revoking a key ends the sessions made with it.
    assert_eq!(get_with(&t, &fresh, "/predictions").await.status(), 200);
    assert!(t.app.db.revoke_api_key(&victim.record.id).await.unwrap());
    assert_eq!(get_with(&t, &fresh, "/predictions").await.status(), 303);
}

/// Over HTTPS (`RETAINWISE_PUBLIC_URL=https://…`) the cookie is `__Host-` prefixed and
/// `Secure`, and a cookie of the plain name (which any page of the host could set) is ignored.
#[tokio::test]
async fn over_https_the_session_cookie_is_host_prefixed() {
    let t = TestApp::spawn_with(|c| {
        c.auth = retainwise::auth::AuthConfig::Secret {
            secret: crate::web::SECRET.to_owned().into(),
            issuer: None,
            audience: None,
        };
        c.http.public_origin = Some("https://churn.example.com".into());
        c.http.allowed_hosts = vec!["churn.example.com".into()];
    })
    .await;
    let key = t
        .app
        .db
        .create_api_key(&"user_tls".parse().unwrap(), "web")
        .await
        .unwrap();
    let client = crate::web::no_redirects();
    let r = client
        .post(format!("{}/signin", t.base))
        .header("host", "churn.example.com")
        .header("origin", "https://churn.example.com")
        .form(&[("key", key.secret.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("__Host-retainwise_session=rws_")
            && set.contains("; Secure")
            && set.contains("Path=/")
            && !set.contains("Domain"),
        "{set}"
    );
    let id = set.split(';').next().unwrap().split_once('=').unwrap().1;
    let page = |cookie: String| {
        client
            .get(format!("{}/predictions", t.base))
            .header("host", "churn.example.com")
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(
        page(format!("__Host-retainwise_session={id}"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        page(format!("retainwise_session={id}"))
            .await
            .unwrap()
            .status(),
        303
    );
}

/// A `retainwise serve` process whose standard error goes to `log`; killed on drop.
struct Process {
    child: std::process::Child,
    base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_logging_to(
    data: &std::path::Path,
    log: &std::path::Path,
    env: &[(&str, &str)],
) -> Process {
    serve_under(&[], data, log, env)
}

/// [`serve_logging_to`] run through `wrapper` (e.g. `prlimit --nofile=…`), which must exec it.
fn serve_under(
    wrapper: &[&str],
    data: &std::path::Path,
    log: &std::path::Path,
    env: &[(&str, &str)],
) -> Process {
    let bin = env!("CARGO_BIN_EXE_retainwise");
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut cmd = std::process::Command::new(first);
            cmd.args(rest).arg(bin);
            cmd
        }
        None => std::process::Command::new(bin),
    };
    crate::helpers::embedded_serve(&mut cmd, data);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Owned by a `Process` at once, so a failed start still kills it.
    let mut process = Process {
        child: cmd.spawn().expect("start retainwise serve"),
        base: String::new(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|l| l.starts_with("retainwise listening on "))
        {
            process.base = line
                .trim_start_matches("retainwise listening on ")
                .trim()
                .to_owned();
            return process;
        }
        assert!(Instant::now() < deadline, "serve did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A rejected JWT's `alg` was logged whole, so a 40 KB `alg` grew the
/// log by 431 MB in 5 s; and failed sign-ins did not name the client. Through the real binary
/// and its real log: 60 requests with a 40 KB `alg` (2.4 MB of `alg` without the fix) leave a
/// few kilobytes, each line clipped, and a failed web sign-in names the client address.
#[tokio::test]
async fn a_huge_jwt_alg_does_not_flood_the_log() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let server = serve_logging_to(
        &dir.path().join("data"),
        &log,
        &[("RETAINWISE_JWT_SECRET", crate::web::SECRET)],
    );
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let token = format!(
        "{}.{}.c2ln",
        b64(&format!(
            r#"{{"alg":"{}","typ":"JWT"}}"#,
            "A".repeat(40_000)
        )),
        b64(r#"{"sub":"user_x","exp":4102444800}"#)
    );
    let client = crate::web::no_redirects();
    for i in 0..60 {
        let path = if i % 2 == 0 {
            "/api/predictions"
        } else {
            "/predictions"
        };
        let r = client
            .get(format!("{}{path}", server.base))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 401 || r.status() == 303,
            "{path}: {}",
            r.status()
        );
    }
    let r = client
        .post(format!("{}/signin", server.base))
        .header("origin", &server.base)
        .form(&[("key", "rwk_0123456789abcdef")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The lines are written before the answers; give the writer a moment all the same.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.len() < 64 * 1024,
        "the log grew by {} bytes for 60 requests",
        text.len()
    );
    assert!(text.contains("authentication_failed"), "{text}");
    assert!(
        !text.contains(&"A".repeat(1_000)),
        "an alg was logged whole"
    );
    let refused = text
        .lines()
        .find(|l| l.contains("web_sign_in_refused"))
        .unwrap_or_else(|| panic!("no failed sign-in line:\n{text}"));
    assert!(refused.contains("client=127.0.0.1"), "{refused}");
    for line in text.lines() {
        assert!(
            line.len() <= retainwise::log_safe::MAX_RECORD_BYTES + 64,
            "{}",
            line.len()
        );
    }
}

/// The pages and `/signin` had no per-IP limit (3,444 key guesses/s, each a
/// database lookup). Every route now counts against the client's allowance; `X-Forwarded-For`
/// is believed only from a trusted proxy, so nobody else can spoof a fresh allowance.
#[tokio::test]
async fn every_route_is_rate_limited_per_client_and_forwarding_is_believed_only_from_proxies() {
    let t = TestApp::spawn_with(|c| {
        c.rate_limit_per_minute = 5;
        c.auth = retainwise::auth::AuthConfig::Secret {
            secret: crate::web::SECRET.to_owned().into(),
            issuer: None,
            audience: None,
        };
    })
    .await;
    let client = crate::web::no_redirects();
    let guess = |spoof: &'static str| {
        client
            .post(format!("{}/signin", t.base))
            .header("origin", &t.base)
            .header("x-forwarded-for", spoof)
            .form(&[("key", "rwk_guess")])
            .send()
    };
    for _ in 0..5 {
        assert_eq!(guess("203.0.113.1").await.unwrap().status(), 401);
    }
    // A spoofed X-Forwarded-For from an untrusted client changes nothing.
    let r = guess("203.0.113.99").await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    for path in ["/signin", "/predictions", "/", "/static/app.css"] {
        assert_eq!(t.get(path).await.status(), 429, "{path}");
    }

    // Behind a trusted proxy (here: loopback) each forwarded client has its own allowance.
    let t = TestApp::spawn_with(|c| {
        c.rate_limit_per_minute = 3;
        c.http.trusted_proxies =
            retainwise::config::TrustedProxies::parse(&["127.0.0.1".to_owned()]).unwrap();
    })
    .await;
    let from = |client_ip: &'static str| {
        t.client
            .get(format!("{}/signin", t.base))
            .header("x-forwarded-for", format!("{client_ip}, 127.0.0.1"))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(from("198.51.100.7").await.unwrap().status(), 200);
    }
    assert_eq!(from("198.51.100.7").await.unwrap().status(), 429);
    assert_eq!(from("198.51.100.8").await.unwrap().status(), 200);
}

/// A TCP relay in front of a server that can be frozen: connections stay open but no byte
/// goes through, the way a hung database behaves.
struct FreezableRelay {
    addr: SocketAddr,
    frozen: tokio::sync::watch::Sender<bool>,
}

impl FreezableRelay {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (frozen, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, watch.clone()));
                tokio::spawn(pump(sr, cw, watch.clone()));
            }
        });
        Self { addr, frozen }
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: tokio::sync::watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while *frozen.borrow_and_update() {
            if frozen.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// `/ready` and `/metrics` hung for 60–120 s while Postgres did not
/// answer, and `/ready` showed internal addresses. With the database frozen (connections open,
/// no answer), both answer within a few seconds, `/ready` 503 naming the database and queue as
/// timed out, and neither body names a host, port or URL.
#[tokio::test]
async fn ready_and_metrics_answer_while_the_database_hangs() {
    let Some(pg) = TestApp::spawn_postgres().await else {
        return;
    };
    let url = pg.app.config.database_url.clone();
    let (head, tail) = url.split_once('@').unwrap();
    let (authority, rest) = tail.split_once('/').unwrap();
    let upstream: SocketAddr = authority.parse().unwrap();
    let relay = FreezableRelay::start(upstream).await;
    let relayed = format!("{head}@{}/{rest}", relay.addr);
    let t = TestApp::spawn_with(move |c| c.database_url = relayed).await;
    assert_eq!(t.get("/ready").await.status(), 200);

    relay.frozen.send(true).unwrap();
    let started = Instant::now();
    let r = t.get("/ready").await;
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "/ready took {:?}",
        started.elapsed()
    );
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["database"], "timed out after 2 s", "{body}");
    assert_eq!(json["storage"], "ok", "{body}");
    for secret in [
        "127.0.0.1",
        &relay.addr.port().to_string(),
        "postgres",
        "file://",
        "/tmp",
    ] {
        assert!(!body.contains(secret), "{secret} in {body}");
    }
    let started = Instant::now();
    let metrics = t.get("/metrics").await;
    assert_eq!(metrics.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "/metrics took {:?}",
        started.elapsed()
    );
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("retainwise_queue_stats_up 0"));
    relay.frozen.send(false).unwrap();
}

/// The server raises its soft `RLIMIT_NOFILE` to the hard
/// limit at start, and under a small hard limit it keeps its connection cap below it, so a
/// client holding connections gets refusals, not an `EMFILE` that stops everyone (`/health`
/// still answers another address while 200 connections are attempted).
#[tokio::test]
async fn the_descriptor_limit_is_raised_and_connections_stay_below_it() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        crate::helpers::loud("*** SKIPPED: prlimit (util-linux) not installed ***");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raised.log");
    let server = serve_under(
        &["prlimit", "--nofile=256:4096", "--"],
        &dir.path().join("data"),
        &log,
        &[],
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["4096", "4096"], "{line}");
    drop(server);

    let log = dir.path().join("low.log");
    let server = serve_under(
        &["prlimit", "--nofile=128:128", "--"],
        &dir.path().join("data"),
        &log,
        &[
            ("RETAINWISE_MAX_CONNECTIONS_PER_IP", "8"),
            ("RETAINWISE_HEADER_READ_TIMEOUT_SECS", "2"),
        ],
    );
    let addr: SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..200 {
        let mut s = connect_from("127.0.0.2", addr).await;
        let _ = s
            .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await;
        held.push(s);
    }
    for s in held.iter_mut().skip(8) {
        let answer = read_until_closed(s, Duration::from_secs(20)).await;
        if answer.starts_with("HTTP/1.1 429") || answer.starts_with("HTTP/1.1 503") {
            refused += 1;
        }
    }
    assert!(refused > 0, "no connection was refused");
    let r = reqwest::get(format!("{}/health", server.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("max_connections"), "{text}");
}

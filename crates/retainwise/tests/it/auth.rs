//! Sign-in with real signed tokens against a JWKS served on loopback, API keys, tenant
//! isolation, abuse limits and response hygiene.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Json;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use retainwise::auth::AuthConfig;
use serde_json::{json, Value};

use crate::helpers::*;

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "retainwise";
const SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn jwk(kid: &str) -> Value {
    let parts: Value = serde_json::from_slice(&fixture("jwks_parts.json")).unwrap();
    parts[kid].clone()
}

fn now() -> i64 {
    retainwise::time::now_ms() / 1000
}

fn claims(sub: &str) -> Value {
    json!({ "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "nbf": now() - 5, "exp": now() + 600 })
}

fn sign_rs(kid: &str, pem: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(&fixture(pem)).unwrap(),
    )
    .unwrap()
}

fn sign_hs(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret).unwrap()).unwrap()
}

/// A JWKS endpoint on loopback whose key set and health the test controls.
struct Jwks {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    failing: Arc<Mutex<bool>>,
}

async fn jwks_server(kids: &[&str]) -> Jwks {
    let keys = Arc::new(Mutex::new(kids.iter().map(|k| jwk(k)).collect::<Vec<_>>()));
    let failing = Arc::new(Mutex::new(false));
    let (k, f) = (keys.clone(), failing.clone());
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let (k, f) = (k.clone(), f.clone());
            async move {
                if *f.lock().unwrap() {
                    return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                }
                Ok(Json(json!({ "keys": *k.lock().unwrap() })))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Jwks { url, keys, failing }
}

async fn status_with(t: &TestApp, token: &str) -> u16 {
    let r = t
        .client
        .get(format!("{}/api/predictions", t.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

async fn jwks_app(jwks: &Jwks) -> TestApp {
    let url = jwks.url.clone();
    TestApp::spawn_with(move |c| {
        c.auth = AuthConfig::Jwks {
            url,
            issuer: ISSUER.into(),
            audience: Some(AUDIENCE.into()),
            max_stale: Duration::from_secs(3600),
            min_refresh: Duration::ZERO,
        }
    })
    .await
}

#[tokio::test]
async fn jwks_tokens_are_checked_claim_by_claim() {
    let jwks = jwks_server(&["rsa-a", "ec-a"]).await;
    let t = jwks_app(&jwks).await;
    let good = sign_rs("rsa-a", "rsa_a.pem", &claims("user_alice"));
    assert_eq!(status_with(&t, &good).await, 200);

    // Missing credentials: 401 with a Bearer challenge and a body that names no check.
    let r = t.get("/api/predictions").await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["detail"], "missing or invalid credentials");

    let with = |f: fn(&mut Value)| {
        let mut c = claims("user_alice");
        f(&mut c);
        c
    };
    let refused: Vec<(&str, String)> = vec![
        (
            "expired",
            sign_rs(
                "rsa-a",
                "rsa_a.pem",
                &with(|c| c["exp"] = json!(now() - 120)),
            ),
        ),
        (
            "not yet valid",
            sign_rs(
                "rsa-a",
                "rsa_a.pem",
                &with(|c| c["nbf"] = json!(now() + 300)),
            ),
        ),
        (
            "issued in the future",
            sign_rs(
                "rsa-a",
                "rsa_a.pem",
                &with(|c| c["iat"] = json!(now() + 300)),
            ),
        ),
        (
            "wrong issuer",
            sign_rs(
                "rsa-a",
                "rsa_a.pem",
                &with(|c| c["iss"] = json!("https://evil.test")),
            ),
        ),
        (
            "wrong audience",
            sign_rs(
                "rsa-a",
                "rsa_a.pem",
                &with(|c| c["aud"] = json!("someone-else")),
            ),
        ),
        (
            "no sub",
            sign_rs(
                "rsa-a",
                "rsa_a.pem",
                &with(|c| {
                    c.as_object_mut().unwrap().remove("sub");
                }),
            ),
        ),
        (
            "overlong sub",
            sign_rs(
                "rsa-a",
                "rsa_a.pem",
                &with(|c| c["sub"] = json!("a".repeat(256))),
            ),
        ),
        (
            "sub with a control character",
            sign_rs(
                "rsa-a",
                "rsa_a.pem",
                &with(|c| c["sub"] = json!("user_alice\nforged log line")),
            ),
        ),
        (
            "wrong key",
            sign_rs("rsa-a", "rsa_b.pem", &claims("user_alice")),
        ),
        (
            "unknown kid",
            sign_rs("rsa-zz", "rsa_a.pem", &claims("user_alice")),
        ),
        (
            "HS256 keyed with the RSA public key",
            sign_hs(
                &fixture("rsa_a.pub.pem"),
                Some("rsa-a"),
                &claims("user_alice"),
            ),
        ),
        ("alg none", {
            let enc =
                |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            format!(
                "{}.{}.",
                enc(&json!({"alg": "none", "typ": "JWT", "kid": "rsa-a"})),
                enc(&claims("user_alice"))
            )
        }),
        ("tampered payload", {
            let parts: Vec<&str> = good.split('.').collect();
            let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(claims("user_bob").to_string());
            format!("{}.{}.{}", parts[0], forged, parts[2])
        }),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in refused {
        assert_eq!(status_with(&t, &token).await, 401, "{what} must be refused");
    }

    // ES256 with a P-256 key from the same set is accepted.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-a".into());
    let es = jsonwebtoken::encode(
        &header,
        &claims("user_alice"),
        &EncodingKey::from_ec_pem(&fixture("ec_a.pem")).unwrap(),
    )
    .unwrap();
    assert_eq!(status_with(&t, &es).await, 200);
}

#[tokio::test]
async fn key_rotation_and_a_failing_jwks_endpoint() {
    let jwks = jwks_server(&["rsa-a"]).await;
    let t = jwks_app(&jwks).await;
    assert_eq!(
        status_with(&t, &sign_rs("rsa-a", "rsa_a.pem", &claims("user_alice"))).await,
        200
    );
    let rotated = sign_rs("rsa-b", "rsa_b.pem", &claims("user_alice"));
    assert_eq!(
        status_with(&t, &rotated).await,
        401,
        "rsa-b is not published yet"
    );
    jwks.keys.lock().unwrap().push(jwk("rsa-b"));
    assert_eq!(
        status_with(&t, &rotated).await,
        200,
        "an unknown kid refreshes the cache"
    );
    // The provider goes down: keys already fetched keep working (within the stale bound).
    *jwks.failing.lock().unwrap() = true;
    assert_eq!(status_with(&t, &rotated).await, 200);
    assert_eq!(
        status_with(&t, &sign_rs("rsa-c", "rsa_a.pem", &claims("user_alice"))).await,
        401
    );
}

#[tokio::test]
async fn shared_secret_tokens_and_api_keys() {
    let t = TestApp::spawn_with(|c| {
        c.auth = AuthConfig::Secret {
            secret: SECRET.to_owned().into(),
            issuer: None,
            audience: None,
        }
    })
    .await;
    let mut c = claims("user_alice");
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        status_with(&t, &sign_hs(SECRET.as_bytes(), None, &c)).await,
        200
    );
    assert_eq!(
        status_with(
            &t,
            &sign_hs(b"another-secret-another-secret-123456", None, &c)
        )
        .await,
        401
    );
    assert_eq!(
        status_with(&t, &sign_rs("rsa-a", "rsa_a.pem", &c)).await,
        401,
        "RS256 is not accepted with a shared secret"
    );

    let token = sign_hs(SECRET.as_bytes(), None, &c);
    let r = t
        .client
        .get(format!("{}/api/predictions", t.base))
        .header("authorization", format!("BEARER  {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the scheme is case-insensitive (RFC 7235)");
    let r = t
        .client
        .get(format!("{}/api/predictions", t.base))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", "Bearer garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "two Authorization headers are refused");

    let key = t
        .app
        .db
        .create_api_key(&"user_carol".parse().unwrap(), "ci")
        .await
        .unwrap();
    assert!(key.secret.starts_with("rwk_"));
    assert_eq!(status_with(&t, &key.secret).await, 200);
    assert_eq!(
        status_with(&t, "rwk_000000000000000000000000000000000000000000000000").await,
        401
    );
    assert!(t.app.db.revoke_api_key(&key.record.id).await.unwrap());
    assert_eq!(
        status_with(&t, &key.secret).await,
        401,
        "a revoked key is refused"
    );
}

#[tokio::test]
async fn users_cannot_see_or_touch_each_others_predictions() {
    let t = TestApp::spawn_with(|c| {
        c.auth = AuthConfig::Secret {
            secret: SECRET.to_owned().into(),
            issuer: None,
            audience: None,
        }
    })
    .await;
    let token = |sub: &str| {
        let mut c = claims(sub);
        c.as_object_mut().unwrap().remove("aud");
        sign_hs(SECRET.as_bytes(), None, &c)
    };
    let (alice, bob) = (token("user_alice"), token("user_bob"));
    let r = t
        .upload_as(&alice, "a.csv", synthetic_telco(5).into_bytes())
        .await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.work_once().await;

    let missing = "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5";
    for path in ["/api/predictions/{}", "/api/predictions/{}/results"] {
        let get = |who: &str, id: &str| {
            t.client
                .get(format!("{}{}", t.base, path.replace("{}", id)))
                .bearer_auth(who.to_owned())
                .send()
        };
        assert_eq!(
            get(&alice, &id).await.unwrap().status(),
            200,
            "{path}: the owner sees it"
        );
        let theirs = get(&bob, &id).await.unwrap();
        let absent = get(&bob, missing).await.unwrap();
        assert_eq!(
            (theirs.status().as_u16(), absent.status().as_u16()),
            (404, 404),
            "{path}"
        );
        let theirs = theirs.text().await.unwrap().replace(&id, "ID");
        let absent = absent.text().await.unwrap().replace(missing, "ID");
        assert_eq!(
            theirs, absent,
            "{path}: another user's prediction must look exactly like a missing one"
        );
    }
    let list: Value = t
        .client
        .get(format!("{}/api/predictions", t.base))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 0);
    assert_eq!(list["predictions"], json!([]));
    // Objects live under the authenticated user's folder, whatever the client sent as a name.
    assert!(t
        .dir
        .path()
        .join(format!("objects/results/user_alice/{id}.csv"))
        .exists());
}

/// Subjects of other identity providers (Auth0, Google through Auth0, an e-mail address, and
/// one that looks like a path) are users like any other: they upload, get results, see only
/// their own predictions, and their objects stay inside their own folder of the store.
#[tokio::test]
async fn subjects_of_any_provider_are_users_and_keep_to_their_folder() {
    let t = TestApp::spawn_with(|c| {
        c.auth = AuthConfig::Secret {
            secret: SECRET.to_owned().into(),
            issuer: None,
            audience: None,
        }
    })
    .await;
    let token = |sub: &str| {
        let mut c = claims(sub);
        c.as_object_mut().unwrap().remove("aud");
        sign_hs(SECRET.as_bytes(), None, &c)
    };
    let subjects = [
        "auth0|64f1c2d3e4",
        "google-oauth2|104312345678901234567",
        "ann.smith+churn@example.com",
        "../user_bob",
        "user_bob",
    ];
    let mut ids = Vec::new();
    for sub in subjects {
        let part =
            reqwest::multipart::Part::bytes(synthetic_telco(5).into_bytes()).file_name("a.csv");
        let r = t
            .client
            .post(format!("{}/api/csv", t.base))
            .bearer_auth(token(sub))
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{sub}: {}", r.text().await.unwrap());
        let id = r.json::<Value>().await.unwrap()["prediction_id"]
            .as_str()
            .unwrap()
            .to_owned();
        t.work_once().await;
        ids.push(id);
    }
    for (sub, id) in subjects.iter().zip(&ids) {
        let list: Value = t
            .client
            .get(format!("{}/api/predictions", t.base))
            .bearer_auth(token(sub))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["total"], 1, "{sub} sees exactly its own prediction");
        assert_eq!(list["predictions"][0]["id"], json!(id), "{sub}");
        let results = t
            .client
            .get(format!("{}/api/predictions/{id}/results", t.base))
            .bearer_auth(token(sub))
            .send()
            .await
            .unwrap();
        assert_eq!(results.status(), 200, "{sub}");
    }
    // Every object is one level below its kind's folder: `results/{folder}/{id}.csv`, with
    // the Clerk-style id as its own folder and the others hashed.
    let results = t.dir.path().join("objects/results");
    let mut folders: Vec<String> = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    folders.sort();
    assert_eq!(folders.len(), subjects.len(), "{folders:?}");
    assert!(folders.contains(&"user_bob".to_owned()), "{folders:?}");
    assert_eq!(
        folders.iter().filter(|f| f.starts_with("h.")).count(),
        4,
        "{folders:?}"
    );
    for (folder, id) in std::iter::zip(
        subjects.map(|s| {
            s.parse::<retainwise::domain::UserId>()
                .unwrap()
                .folder()
                .into_owned()
        }),
        &ids,
    ) {
        assert!(
            results.join(&folder).join(format!("{id}.csv")).is_file(),
            "{folder}"
        );
    }
    assert!(
        !t.dir.path().join("user_bob").exists() && !t.dir.path().join("objects/user_bob").exists(),
        "nothing escaped the store's folders"
    );
}

#[tokio::test]
async fn rate_limits_and_the_active_job_cap_answer_429() {
    let t = TestApp::spawn_with(|c| {
        c.rate_limit_per_minute = 3;
        c.max_active_jobs_per_user = 1;
    })
    .await;
    t.upload_ok("one.csv", synthetic_telco(3).into_bytes())
        .await;
    let r = t.upload("two.csv", synthetic_telco(3).into_bytes()).await;
    assert_eq!(r.status(), 429, "a second queued job is over the cap");
    assert!(r.headers().contains_key("retry-after"));
    let mut last = 0;
    for _ in 0..3 {
        last = t.get("/api/predictions").await.status().as_u16();
    }
    assert_eq!(
        last, 429,
        "the fourth API request in a minute is over the limit"
    );
    // Health is not rate limited.
    assert_eq!(t.get("/health").await.status(), 200);
}

#[tokio::test]
async fn responses_carry_security_headers_and_cors_only_for_configured_origins() {
    let t = TestApp::spawn_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    let r = t.get("/health").await;
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["referrer-policy"], "same-origin");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    let preflight = |origin: &'static str| {
        t.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/predictions", t.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let ok = preflight("https://app.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.database_url = "postgres://app:hunter2@db.internal/retainwise".into();
    config.auth = AuthConfig::Secret {
        secret: SECRET.to_owned().into(),
        issuer: None,
        audience: None,
    };
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains(SECRET),
        "{shown}"
    );
}

#[test]
fn an_unauthenticated_server_stays_on_loopback_unless_told() {
    use retainwise::config::ListenSettings;
    let listen = |bind: &str, insecure| ListenSettings {
        bind: bind.parse().unwrap(),
        insecure_no_auth: insecure,
    };
    assert!(listen("127.0.0.1:8080", false).check(false).is_ok());
    assert!(listen("[::1]:8080", false).check(false).is_ok());
    let err = listen("0.0.0.0:8080", false)
        .check(false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--insecure-no-auth"), "{err}");
    assert!(listen("0.0.0.0:8080", true).check(false).is_ok());
    assert!(listen("0.0.0.0:8080", false).check(true).is_ok());
}

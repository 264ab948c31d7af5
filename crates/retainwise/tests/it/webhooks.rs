//! Signed webhooks: endpoints registered through `/api/webhooks`, and deliveries to a receiver
//! on loopback that verifies every Standard Webhooks signature, counts what it gets and fails
//! the first few on purpose.

use retainwise::auth::AuthConfig;
use serde_json::{json, Value};

use crate::helpers::*;

/// The app signed in by API keys, with webhooks to private addresses allowed or not.
async fn app(allow_private: bool) -> TestApp {
    TestApp::spawn_with(|c| {
        c.auth = AuthConfig::Secret {
            secret: "webhook-tests-secret-of-at-least-32-bytes"
                .to_owned()
                .into(),
            issuer: None,
            audience: None,
        };
        c.webhook_allow_private = allow_private;
    })
    .await
}

async fn key(t: &TestApp, user: &str) -> String {
    t.app
        .db
        .create_api_key(&user.parse().unwrap(), "test")
        .await
        .unwrap()
        .secret
}

async fn register(t: &TestApp, who: &str, body: Value) -> reqwest::Response {
    t.client
        .post(format!("{}/api/webhooks", t.base))
        .bearer_auth(who)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn listed(t: &TestApp, who: &str) -> Value {
    let r = t
        .client
        .get(format!("{}/api/webhooks", t.base))
        .bearer_auth(who)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["webhooks"].clone()
}

#[tokio::test]
async fn endpoints_are_registered_listed_without_secret_and_removed_by_their_owner_only() {
    let t = app(true).await;
    let (alice, bob) = (key(&t, "user_alice").await, key(&t, "user_bob").await);
    let r = register(
        &t,
        &alice,
        json!({"url": "http://127.0.0.1:9/hook", "events": ["prediction.completed", "training.failed"]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert!(retainwise::webhooks::signing::decode_secret(secret).is_ok());

    let list = listed(&t, &alice).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(
        list[0]["events"],
        json!(["prediction.completed", "training.failed"])
    );
    assert!(!list.to_string().contains("whsec_"), "{list}");
    assert_eq!(listed(&t, &bob).await, json!([]));

    // Bad bodies name what to fix.
    for (body, says) in [
        (
            json!({"url": "ftp://example.com/", "events": ["prediction.completed"]}),
            "http://",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "events": ["prediction.done"]}),
            "prediction.done",
        ),
        (json!({"url": "http://127.0.0.1:9/", "events": []}), "empty"),
        (json!({"url": "http://127.0.0.1:9/"}), "events"),
    ] {
        let r = register(&t, &alice, body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{body}: {text}");
    }

    let delete = |who: String, id: String| {
        t.client
            .delete(format!("{}/api/webhooks/{id}", t.base))
            .bearer_auth(who)
            .send()
    };
    assert_eq!(delete(bob.clone(), id.clone()).await.unwrap().status(), 404);
    assert_eq!(listed(&t, &alice).await.as_array().unwrap().len(), 1);
    assert_eq!(
        delete(alice.clone(), id.clone()).await.unwrap().status(),
        200
    );
    assert_eq!(listed(&t, &alice).await, json!([]));
    assert_eq!(delete(alice.clone(), id).await.unwrap().status(), 404);
}

#[tokio::test]
async fn a_private_url_is_refused_unless_the_operator_allows_it() {
    let t = app(false).await;
    let alice = key(&t, "user_alice").await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/hook",
    ] {
        let r = register(
            &t,
            &alice,
            json!({"url": url, "events": ["prediction.completed"]}),
        )
        .await;
        assert_eq!(r.status(), 400, "{url}");
        let text = r.text().await.unwrap();
        assert!(
            text.contains("RETAINWISE_WEBHOOK_ALLOW_PRIVATE"),
            "{url}: {text}"
        );
    }
    assert_eq!(listed(&t, &alice).await, json!([]));
}

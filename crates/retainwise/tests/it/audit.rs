//! The audit log over the real server: a scripted session of about twenty actions through HTTP
//! (upload, downloads, training, activation, webhooks, members, a refused role change, refused
//! role actions, failed sign-ins) whose entries are asserted exactly, in order; the viewer
//! refused `GET /api/audit`; two organisations each seeing only their own entries; the filters,
//! pages and CSV export; the database refusing UPDATE and DELETE. On SQLite and on Postgres.

use reqwest::Method;
use retainwise::auth::AuthConfig;
use retainwise::domain::{OrgId, Role, UserId};
use serde_json::{json, Value};

use crate::helpers::{synthetic_telco, TestApp};
use crate::models::subscription_history;

fn settings(c: &mut retainwise::config::Config) {
    c.auth = AuthConfig::Secret {
        secret: "audit-tests-secret-of-at-least-32-bytes!!"
            .to_owned()
            .into(),
        issuer: None,
        audience: None,
    };
    c.http.public_origin = Some("https://churn.example.com".to_owned());
    c.webhook_allow_private = true;
}

/// `(status, JSON body or the text as a string)` of one call.
async fn call(
    t: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = t
        .client
        .request(method, format!("{}{path}", t.base))
        .bearer_auth(key);
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `(user, api key, action, record id, outcome)` of every entry `key`'s caller sees.
async fn entries(
    t: &TestApp,
    key: &str,
    query: &str,
) -> Vec<(String, String, String, String, String)> {
    let (status, body) = call(t, Method::GET, &format!("/api/audit{query}"), key, None).await;
    assert_eq!(status, 200, "{body}");
    body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_owned();
            assert!(
                retainwise::time::parse_rfc3339(&s("at")).is_ok(),
                "RFC 3339: {e}"
            );
            assert_eq!(e["client_ip"], "127.0.0.1", "{e}");
            (
                s("user_id"),
                s("api_key_id"),
                s("action"),
                format!("{}:{}", s("record_kind"), s("record_id")),
                s("outcome"),
            )
        })
        .collect()
}

async fn scripted_session(t: &TestApp) {
    let db = &t.app.db;
    let (acme, globex): (OrgId, OrgId) =
        ("org_acme".parse().unwrap(), "org_globex".parse().unwrap());
    let (ann, gus): (UserId, UserId) = ("user_ann".parse().unwrap(), "user_gus".parse().unwrap());
    assert!(db.create_org(&acme, "Acme", &ann).await.unwrap());
    assert!(db.create_org(&globex, "Globex", &gus).await.unwrap());
    let ann_key = db
        .create_org_api_key(&acme, &ann, Role::Owner, "a")
        .await
        .unwrap();
    let gus_key = db
        .create_org_api_key(&globex, &gus, Role::Owner, "g")
        .await
        .unwrap();
    let (a, k) = (ann_key.secret.as_str(), ann_key.record.id.clone());

    // 1. A member added.
    let (s, b) = call(
        t,
        Method::POST,
        "/api/org/members",
        a,
        Some(json!({"user_id": "user_vic", "role": "viewer"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let vic: UserId = "user_vic".parse().unwrap();
    let vic_key = db
        .create_org_api_key(&acme, &vic, Role::Viewer, "v")
        .await
        .unwrap();
    let (v, vk) = (vic_key.secret.as_str(), vic_key.record.id.clone());
    // 2. An upload, scored.
    let r = t
        .upload_as(a, "customers.csv", synthetic_telco(40).into_bytes())
        .await;
    assert_eq!(r.status(), 202);
    let p = r.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    // 3-5. Its results, report and a download link.
    for path in [
        format!("/api/predictions/{p}/results"),
        format!("/api/predictions/{p}/report"),
        format!("/api/predictions/download_predictions/{p}"),
    ] {
        let (s, b) = call(t, Method::GET, &path, a, None).await;
        assert_eq!(s, 200, "{path}: {b}");
    }
    // 6-7. A training, then its model activated.
    let part = reqwest::multipart::Part::bytes(subscription_history(300).into_bytes())
        .file_name("history.csv");
    let form = reqwest::multipart::Form::new()
        .text("id_column", "account_id")
        .part("file", part);
    let r = t
        .client
        .post(format!("{}/api/models?label=churned", t.base))
        .bearer_auth(a)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let training = r.json::<Value>().await.unwrap()["training_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.work_once().await, retainwise::worker::Outcome::Completed);
    let (_, b) = call(
        t,
        Method::GET,
        &format!("/api/models/trainings/{training}"),
        a,
        None,
    )
    .await;
    let model = b["training"]["model_id"].as_str().unwrap().to_owned();
    let (s, b) = call(
        t,
        Method::POST,
        &format!("/api/models/{model}/activate"),
        a,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    // 8-9. A webhook added and removed.
    let (s, b) = call(
        t,
        Method::POST,
        "/api/webhooks",
        a,
        Some(json!({"url": "http://127.0.0.1:9/hook", "events": ["prediction.completed"]})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let hook = b["id"].as_str().unwrap().to_owned();
    let (s, _) = call(t, Method::DELETE, &format!("/api/webhooks/{hook}"), a, None).await;
    assert_eq!(s, 200);
    // 10-13. A member added, promoted; the last owner refused demotion; the member removed.
    let (s, _) = call(
        t,
        Method::POST,
        "/api/org/members",
        a,
        Some(json!({"user_id": "user_ben", "role": "analyst"})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = call(
        t,
        Method::PUT,
        "/api/org/members/user_ben",
        a,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        t,
        Method::PUT,
        "/api/org/members/user_ann",
        a,
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = call(t, Method::DELETE, "/api/org/members/user_ben", a, None).await;
    assert_eq!(s, 204);
    // 14-15. The viewer refused an upload and the audit log.
    let r = t.upload_as(v, "x.csv", b"a\n1\n".to_vec()).await;
    assert_eq!(r.status(), 403);
    let (s, _) = call(t, Method::GET, "/api/audit", v, None).await;
    assert_eq!(s, 403);
    // 16-18. Three failed sign-ins from one address in a minute: one row.
    for bad in ["rw_not_a_key_at_all", "rw_still_not_a_key", "not.a.jwt"] {
        let (s, _) = call(t, Method::GET, "/api/org", bad, None).await;
        assert_eq!(s, 401);
    }
    // 19. The other organisation uploads.
    let r = t
        .upload_as(&gus_key.secret, "g.csv", synthetic_telco(10).into_bytes())
        .await;
    assert_eq!(r.status(), 202);
    let gp = r.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let row = |u: &str, key: &str, action: &str, record: String, outcome: &str| {
        (
            u.to_owned(),
            key.to_owned(),
            action.to_owned(),
            record,
            outcome.to_owned(),
        )
    };
    let expected = vec![
        row("user_ann", &k, "member.add", "member:user_vic".into(), "ok"),
        row("user_ann", &k, "upload", format!("prediction:{p}"), "ok"),
        row(
            "user_ann",
            &k,
            "download.results",
            format!("prediction:{p}"),
            "ok",
        ),
        row(
            "user_ann",
            &k,
            "download.report",
            format!("prediction:{p}"),
            "ok",
        ),
        row(
            "user_ann",
            &k,
            "download.results",
            format!("prediction:{p}"),
            "ok",
        ),
        row(
            "user_ann",
            &k,
            "model.train",
            format!("training:{training}"),
            "ok",
        ),
        row(
            "user_ann",
            &k,
            "model.activate",
            format!("model:{model}"),
            "ok",
        ),
        row(
            "user_ann",
            &k,
            "webhook.add",
            format!("webhook:{hook}"),
            "ok",
        ),
        row(
            "user_ann",
            &k,
            "webhook.remove",
            format!("webhook:{hook}"),
            "ok",
        ),
        row("user_ann", &k, "member.add", "member:user_ben".into(), "ok"),
        row(
            "user_ann",
            &k,
            "member.role_change",
            "member:user_ben".into(),
            "ok",
        ),
        row(
            "user_ann",
            &k,
            "member.role_change",
            "member:user_ann".into(),
            "refused",
        ),
        row(
            "user_ann",
            &k,
            "member.remove",
            "member:user_ben".into(),
            "ok",
        ),
        row(
            "user_vic",
            &vk,
            "access.refused",
            "route:POST /api/csv".into(),
            "refused",
        ),
        row(
            "user_vic",
            &vk,
            "access.refused",
            "route:GET /api/audit".into(),
            "refused",
        ),
    ];
    assert_eq!(entries(t, a, "").await, expected);
    // The other organisation sees its own upload only.
    assert_eq!(
        entries(t, &gus_key.secret, "").await,
        vec![row(
            "user_gus",
            &gus_key.record.id,
            "upload",
            format!("prediction:{gp}"),
            "ok"
        )]
    );
    // The refusal says why; the sign-in failures are one row counting the first (the other two
    // go into the next row's count), with no credential stored.
    let (_, b) = call(
        t,
        Method::GET,
        "/api/audit?action=member.role_change&user=user_ann",
        a,
        None,
    )
    .await;
    let refused = &b["entries"][1];
    assert!(
        refused["reason"].as_str().unwrap().contains("owner"),
        "{refused}"
    );
    let failures: Vec<(Option<String>, i64, Option<String>)> = sqlx::query_as(
        "SELECT org_id, count, reason FROM audit_log WHERE action = 'signin.failure'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!((failures[0].0.as_deref(), failures[0].1), (None, 1));
    let dump: Vec<(String,)> = sqlx::query_as("SELECT COALESCE(reason, '') FROM audit_log")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert!(
        !dump.iter().any(|(r,)| r.contains("rw_not_a_key")),
        "{dump:?}"
    );

    // Filters and pages.
    assert_eq!(entries(t, a, "?action=member.add").await.len(), 2);
    assert_eq!(entries(t, a, "?user=user_vic").await.len(), 2);
    assert_eq!(entries(t, a, &format!("?record={p}")).await.len(), 4);
    assert_eq!(
        entries(
            t,
            a,
            "?since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z"
        )
        .await
        .len(),
        0
    );
    let (_, b) = call(t, Method::GET, "/api/audit?limit=10", a, None).await;
    assert_eq!(b["next_offset"], 10);
    assert_eq!(
        entries(t, a, "?limit=10&offset=10").await,
        expected[10..].to_vec()
    );
    let (s, b) = call(t, Method::GET, "/api/audit?action=nope", a, None).await;
    assert_eq!(s, 400);
    assert!(b.to_string().contains("member.add"), "{b}");
    // The CSV export: a header and one line per entry.
    let r = t
        .client
        .get(format!("{}/api/audit?format=csv", t.base))
        .bearer_auth(a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let (header, rows) = crate::helpers::parse_csv(&text);
    assert_eq!(header[4], "action");
    assert_eq!(rows.len(), expected.len());
    assert_eq!(rows[13][6], "POST /api/csv");

    // The page: the entries for the owner, refused to the viewer.
    let (s, page) = call(t, Method::GET, "/audit?action=webhook.add", a, None).await;
    let page = page.as_str().unwrap().to_owned();
    assert_eq!(s, 200, "{page}");
    assert!(page.contains(&hook) && !page.contains("user_vic"), "{page}");
    let (s, _) = call(t, Method::GET, "/audit", v, None).await;
    assert_eq!(s, 403);

    // Append-only in the database itself.
    for sql in [
        "UPDATE audit_log SET outcome = 'ok'",
        "DELETE FROM audit_log",
    ] {
        assert!(
            sqlx::query(sql).execute(db.pool()).await.is_err(),
            "{sql} was allowed"
        );
    }
}

#[tokio::test]
async fn a_scripted_session_is_audited_exactly_on_sqlite() {
    scripted_session(&TestApp::spawn_with(settings).await).await;
}

#[tokio::test]
async fn a_scripted_session_is_audited_exactly_on_postgres() {
    if let Some(t) = TestApp::spawn_postgres_with(settings).await {
        scripted_session(&t).await;
    }
}

/// A refused upload is an audited action too: a ZIP sent as a CSV (400) and a CSV past the
/// organisation's quota (429) each leave an `upload` entry `refused` with the reason the caller
/// was given; the accepted upload's entry names its prediction.
#[tokio::test]
async fn refused_uploads_are_audited_with_their_reason() {
    let t = TestApp::spawn_with(settings).await;
    let org: OrgId = "org_refusals".parse().unwrap();
    let owner: UserId = "user_refusals".parse().unwrap();
    assert!(t.app.db.create_org(&org, "Refusals", &owner).await.unwrap());
    let key = t
        .app
        .db
        .create_org_api_key(&org, &owner, Role::Owner, "audit")
        .await
        .unwrap()
        .secret;
    t.app.db.set_quota(&org, Some(5)).await.unwrap();
    let zip = t
        .upload_as(&key, "customers.zip", b"PK\x03\x04junk".to_vec())
        .await;
    assert_eq!(zip.status(), 400);
    let ok = t
        .upload_as(&key, "five.csv", synthetic_telco(5).into_bytes())
        .await;
    assert_eq!(ok.status(), 202);
    let over = t
        .upload_as(&key, "one.csv", synthetic_telco(1).into_bytes())
        .await;
    assert_eq!(over.status(), 429);
    let (status, body) = call(&t, Method::GET, "/api/audit?action=upload", &key, None).await;
    assert_eq!(status, 200, "{body}");
    let got: Vec<(String, String)> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["outcome"].as_str().unwrap_or("").to_owned(),
                e["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(got.len(), 3, "{body}");
    assert_eq!(got[0].0, "refused");
    assert!(got[0].1.to_lowercase().contains("zip"), "{got:?}");
    assert_eq!((got[1].0.as_str(), got[1].1.as_str()), ("ok", ""));
    assert_eq!(got[2].0, "refused");
    assert!(got[2].1.contains("quota"), "{got:?}");
}

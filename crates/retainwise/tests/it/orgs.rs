//! Organisations and roles over the real server: every route of the real router walked with
//! every role against `http::access::RULES` (a route without a rule fails), two organisations
//! invisible to each other (SQLite + files, and Postgres + S3), owners managing members, the
//! organisation claim of a JWT, and the migration that gives every existing user a personal
//! organisation holding their data.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use retainwise::auth::AuthConfig;
use retainwise::domain::{ObjectKey, OrgId, Role, UserId};
use retainwise::http::access::{self, Rule};
use serde_json::{json, Value};

use crate::helpers::{synthetic_telco, TestApp};

const SECRET: &str = "orgs-test-secret-orgs-test-secret-0123456789";

fn signed_in(c: &mut retainwise::config::Config) {
    c.auth = AuthConfig::Secret {
        secret: SECRET.to_owned().into(),
        issuer: None,
        audience: None,
    };
}

/// An HS256 token for `sub`, with `extra` claims merged in.
fn token(sub: &str, extra: Value) -> String {
    let now = retainwise::time::now_ms() / 1000;
    let mut claims = json!({ "sub": sub, "iat": now, "exp": now + 600 });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// A concrete URL for a registered path: every `{param}` filled with a value of its kind that
/// names nothing that exists.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{industry}" => "telco",
            "{file}" => "app.css",
            "{row}" | "{n}" => "1",
            "{user}" => "user_nobody",
            s if s.starts_with('{') => "6f1c2d3e-4a5b-4c6d-8e7f-8091a2b3c4d5",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn send(t: &TestApp, method: &Method, path: &str, bearer: Option<&str>) -> (u16, String) {
    // Redirects are answers here (a page sends the signed-out to the sign-in page).
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client.request(method.clone(), format!("{}{}", t.base, concrete(path)));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// The refusal of `http::access::check` for a too-low role (not a handler's own 403).
fn refused_by_role(status: u16, body: &str) -> bool {
    status == 403 && body.contains("needs the role")
}

#[tokio::test]
async fn every_route_with_every_role_is_allowed_or_refused_as_the_table_says() {
    let t = TestApp::spawn_with(signed_in).await;
    let db = &t.app.db;
    let org: OrgId = "org_matrix".parse().unwrap();
    let owner: UserId = "user_owner".parse().unwrap();
    assert!(db.create_org(&org, "Matrix", &owner).await.unwrap());
    let mut keys = Vec::new();
    for role in Role::ALL {
        let user: UserId = format!("user_{role}").parse().unwrap();
        db.set_member(&org, &user, role, None).await.unwrap();
        let key = db
            .create_org_api_key(&org, &user, role, "matrix")
            .await
            .unwrap();
        keys.push((role, key.secret));
    }
    let owner_key = keys.last().unwrap().1.clone();

    // Every path of the real router, from the router itself.
    let paths = access::registered_paths(&retainwise::http::router(t.app.clone()));
    assert!(paths.len() > 40, "{paths:?}");
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut missing = Vec::new();
    let mut routes = Vec::new();
    for path in &paths {
        for method in &methods {
            // A method the route does not have answers 405 before any check.
            let (status, _) = send(&t, method, path, Some(&owner_key)).await;
            if status == 405 {
                continue;
            }
            match access::rule(method, path) {
                Some(rule) => routes.push((method.clone(), path.clone(), rule)),
                None => missing.push(format!("{method} {path}")),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes without an access rule in http::access::RULES: {missing:?}"
    );
    // And no rule names a route that does not exist (a stale rule hides a renamed route).
    for (m, p, _) in access::RULES {
        assert!(
            routes
                .iter()
                .any(|(m2, p2, _)| m2.as_str() == *m && p2 == p),
            "the rule for {m} {p} names no route of the router"
        );
    }

    let mut matrix = Vec::new();
    for (method, path, rule) in &routes {
        match rule {
            Rule::Public => {
                let (status, body) = send(&t, method, path, None).await;
                assert!(
                    status != 401 && !refused_by_role(status, &body),
                    "{method} {path} is public, got {status}: {body}"
                );
            }
            Rule::AtLeast(needed) => {
                let (status, _) = send(&t, method, path, None).await;
                assert!(
                    status == 401 || status == 303,
                    "{method} {path} without credentials: {status}"
                );
                let mut row = format!("{:6} {path:50}", method.as_str());
                for (role, key) in &keys {
                    let (status, body) = send(&t, method, path, Some(key)).await;
                    let refused = refused_by_role(status, &body);
                    assert_eq!(
                        refused,
                        role < needed,
                        "{method} {path} as {role} (needs {needed}): {status} {body}"
                    );
                    row.push_str(if refused { " -" } else { " +" });
                }
                matrix.push(row);
            }
        }
    }
    println!("viewer analyst admin owner\n{}", matrix.join("\n"));
}

/// Two organisations: `org_acme` (alice, its first member, owner; carol, a viewer made analyst
/// by alice) and `org_globex` (bob). Acme's prediction, results, objects, webhooks and models
/// are acme's members' and nobody else's: bob's answers for them are those of a missing id.
async fn two_organisations_are_invisible_to_each_other(t: &TestApp) {
    let acme = |sub: &str| token(sub, json!({ "org_id": "org_acme" }));
    let (alice, carol) = (acme("user_alice"), acme("user_carol"));
    let bob = token("user_bob", json!({ "org_id": "org_globex" }));

    let me: Value = t
        .client
        .get(format!("{}/api/org", t.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            me["org"].as_str(),
            me["role"].as_str(),
            me["personal"].as_bool()
        ),
        (Some("org_acme"), Some("owner"), Some(false)),
        "{me}"
    );
    let me: Value = t
        .client
        .get(format!("{}/api/org", t.base))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "viewer", "a later member starts as a viewer");
    // A viewer cannot upload; the owner makes carol an analyst and she can.
    let r = t
        .upload_as(&carol, "c.csv", synthetic_telco(3).into_bytes())
        .await;
    assert_eq!(r.status(), 403);
    let r = t
        .client
        .put(format!("{}/api/org/members/user_carol", t.base))
        .bearer_auth(&alice)
        .json(&json!({ "role": "analyst" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

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
    for path in [
        "/api/predictions/{}",
        "/api/predictions/{}/results",
        "/api/predictions/{}/report",
        "/predictions/{}",
    ] {
        let get = |who: &str, id: &str| {
            t.client
                .get(format!("{}{}", t.base, path.replace("{}", id)))
                .bearer_auth(who.to_owned())
                .send()
        };
        for member in [&alice, &carol] {
            assert_eq!(
                get(member, &id).await.unwrap().status(),
                200,
                "{path}: acme's members see it"
            );
        }
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
            "{path}: another organisation's prediction must look exactly like a missing one"
        );
    }
    let total = |who: String| async move {
        let list: Value = t
            .client
            .get(format!("{}/api/predictions", t.base))
            .bearer_auth(who)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list["total"].as_u64().unwrap()
    };
    assert_eq!(total(carol.clone()).await, 1);
    assert_eq!(total(bob.clone()).await, 0);

    // Objects live under the organisation's folder.
    let key = ObjectKey::result(&"org_acme".parse().unwrap(), id.parse().unwrap());
    assert!(t.app.storage.exists(&key).await.unwrap(), "{key:?}");

    // Members and webhooks are per organisation too; bob cannot reach acme's members.
    let r = t
        .client
        .delete(format!("{}/api/org/members/user_carol", t.base))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "bob's own organisation has no carol");
    let members: Value = t
        .client
        .get(format!("{}/api/org/members", t.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["user_alice", "user_carol"]);
    // A token cannot name its way into someone's personal organisation.
    let r = t
        .client
        .get(format!("{}/api/predictions", t.base))
        .bearer_auth(token("user_mallory", json!({ "org_id": "user_dave" })))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "an unknown id is a new team of mallory's");
    let dave = token("user_dave", json!({}));
    let r = t
        .client
        .get(format!("{}/api/predictions", t.base))
        .bearer_auth(&dave)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "dave's personal organisation id is now a team of mallory's: dave is refused, not let in"
    );
    t.client
        .get(format!("{}/api/predictions", t.base))
        .bearer_auth(token("user_erin", json!({})))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let r = t
        .client
        .get(format!("{}/api/predictions", t.base))
        .bearer_auth(token("user_mallory", json!({ "org_id": "user_erin" })))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "a claim naming erin's personal organisation"
    );
}

#[tokio::test]
async fn two_organisations_are_invisible_to_each_other_on_sqlite() {
    let t = TestApp::spawn_with(signed_in).await;
    two_organisations_are_invisible_to_each_other(&t).await;
}

#[tokio::test]
async fn two_organisations_are_invisible_to_each_other_on_postgres_s3() {
    let Some(t) = TestApp::spawn_postgres_s3_with(signed_in).await else {
        return;
    };
    two_organisations_are_invisible_to_each_other(&t).await;
}

#[tokio::test]
async fn owners_manage_members_and_a_removed_members_key_stops() {
    let t = TestApp::spawn_with(signed_in).await;
    let db = &t.app.db;
    let org: OrgId = "org_team".parse().unwrap();
    let (ann, ben): (UserId, UserId) = ("user_ann".parse().unwrap(), "user_ben".parse().unwrap());
    assert!(db.create_org(&org, "Team", &ann).await.unwrap());
    assert!(!db.create_org(&org, "Again", &ben).await.unwrap());
    let ann_key = db
        .create_org_api_key(&org, &ann, Role::Owner, "t")
        .await
        .unwrap()
        .secret;
    let call = |method: Method, path: &str, key: &str, body: Option<Value>| {
        let mut r = t
            .client
            .request(method, format!("{}{path}", t.base))
            .bearer_auth(key.to_owned());
        if let Some(body) = body {
            r = r.json(&body);
        }
        r.send()
    };
    // Adding: bad role and bad body are named.
    let r = call(
        Method::POST,
        "/api/org/members",
        &ann_key,
        Some(json!({ "user_id": "user_ben", "role": "root" })),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("root"));
    let r = call(
        Method::POST,
        "/api/org/members",
        &ann_key,
        Some(json!({ "user_id": "user_ben", "role": "admin" })),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let ben_key = db
        .create_org_api_key(&org, &ben, Role::Owner, "too much")
        .await
        .unwrap()
        .secret;
    // A key is capped at its maker's role: ben's "owner" key acts as admin.
    let r = call(Method::GET, "/api/org", &ben_key, None).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["role"], "admin");
    let r = call(Method::GET, "/api/org/members", &ben_key, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = call(Method::GET, "/members", &ben_key, None).await.unwrap();
    assert_eq!(r.status(), 403, "the page answers as the API");
    let page = call(Method::GET, "/members", &ann_key, None).await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("user_ben") && page.contains("add-member"),
        "{page}"
    );

    // The last owner cannot leave or be demoted; with a second owner she can.
    let r = call(
        Method::PUT,
        "/api/org/members/user_ann",
        &ann_key,
        Some(json!({ "role": "viewer" })),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("at least one owner"));
    let r = call(Method::DELETE, "/api/org/members/user_ann", &ann_key, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = call(
        Method::PUT,
        "/api/org/members/user_nobody",
        &ann_key,
        Some(json!({ "role": "viewer" })),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);

    // Removing ben revokes his key at once.
    let r = call(Method::DELETE, "/api/org/members/user_ben", &ann_key, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = call(Method::GET, "/api/org", &ben_key, None).await.unwrap();
    assert_eq!(r.status(), 401);

    // A personal organisation has one member: no adding there.
    let solo = db
        .create_api_key(&"user_solo".parse().unwrap(), "solo")
        .await
        .unwrap()
        .secret;
    let r = call(
        Method::POST,
        "/api/org/members",
        &solo,
        Some(json!({ "user_id": "user_ben", "role": "viewer" })),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn the_organisation_claim_is_configurable_and_a_bad_one_is_refused() {
    let t = TestApp::spawn_with(|c| {
        signed_in(c);
        c.jwt_org_claim = "o.id".to_owned();
    })
    .await;
    let t = &t;
    let org_of = |tok: String| async move {
        let r = t
            .client
            .get(format!("{}/api/org", t.base))
            .bearer_auth(tok)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (
            status,
            r.json::<Value>().await.unwrap_or_default()["org"].clone(),
        )
    };
    // Clerk's v2 shape.
    assert_eq!(
        org_of(token(
            "user_v2",
            json!({ "o": { "id": "org_v2", "rol": "admin" } })
        ))
        .await,
        (200, json!("org_v2"))
    );
    // Without the claim: the team joined last, else the personal organisation.
    assert_eq!(
        org_of(token("user_v2", json!({}))).await,
        (200, json!("org_v2"))
    );
    assert_eq!(
        org_of(token("user_alone", json!({ "org_id": "org_ignored" }))).await,
        (200, json!("user_alone"))
    );
    assert_eq!(
        org_of(token("user_x", json!({ "o": { "id": 7 } }))).await.0,
        401
    );
    assert_eq!(
        org_of(token("user_x", json!({ "o": { "id": "*" } })))
            .await
            .0,
        401
    );
}

/// A database from before organisations (every migration up to the one before), with a user's
/// upload, finished prediction and API key: after the migration the key still works, acts in
/// the user's personal organisation (as owner), and sees the prediction and its results.
#[tokio::test]
async fn existing_users_get_a_personal_organisation_holding_their_data_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    retainwise::config::ensure_sqlite_parent(&url).unwrap();
    existing_users_get_a_personal_organisation_holding_their_data(url).await;
}

#[tokio::test]
async fn existing_users_get_a_personal_organisation_holding_their_data_on_postgres() {
    if let Some(url) = crate::helpers::fresh_postgres_database("rw").await {
        existing_users_get_a_personal_organisation_holding_their_data(url).await;
    }
}

async fn existing_users_get_a_personal_organisation_holding_their_data(url: String) {
    let (pool, _) = retainwise_queue::connect(&url).await.unwrap();
    let mut before = retainwise::ops::migrations::app_migrator();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 20261212000001)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&pool).await.unwrap();
    let secret = "rwk_000000000000000000000000000000000000000000000001";
    let hash: String = {
        use sha2::{Digest, Sha256};
        Sha256::digest(secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    for sql in [
        "INSERT INTO uploads (id, user_id, filename, object_key, size_bytes, created_at) VALUES ('11111111-1111-4111-8111-111111111111', 'user_old', 'old.csv', 'uploads/user_old/11111111-1111-4111-8111-111111111111.csv', 10, 1)",
        "INSERT INTO predictions (id, user_id, upload_id, status, queued_at, updated_at, completed_at, rows_total, rows_processed, model_id, result_key) VALUES ('22222222-2222-4222-8222-222222222222', 'user_old', '11111111-1111-4111-8111-111111111111', 'COMPLETED', 1, 2, 2, 1, 1, 'telco', 'results/user_old/22222222-2222-4222-8222-222222222222.csv')",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    sqlx::query("INSERT INTO api_keys (id, user_id, name, key_hash, prefix, created_at) VALUES ('k1', 'user_old', 'old', $1, 'rwk_00', 1)")
        .bind(&hash)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let t = TestApp::spawn_with(|c| {
        signed_in(c);
        c.database_url = url.clone();
    })
    .await;
    let key = ObjectKey::result(
        &"user_old".parse().unwrap(),
        "22222222-2222-4222-8222-222222222222".parse().unwrap(),
    );
    t.app
        .storage
        .put_bytes(&key, b"customerID,churn_probability\nA,0.5\n".to_vec())
        .await
        .unwrap();
    let get = |path: &str| {
        t.client
            .get(format!("{}{path}", t.base))
            .bearer_auth(secret)
            .send()
    };
    let me: Value = get("/api/org").await.unwrap().json().await.unwrap();
    assert_eq!(
        (
            me["org"].as_str(),
            me["role"].as_str(),
            me["personal"].as_bool()
        ),
        (Some("user_old"), Some("owner"), Some(true)),
        "{me}"
    );
    let list: Value = get("/api/predictions").await.unwrap().json().await.unwrap();
    assert_eq!(list["total"], 1, "{list}");
    let r = get("/api/predictions/22222222-2222-4222-8222-222222222222/results")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let members = t
        .app
        .db
        .members(&"user_old".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].user_id.as_str(), members[0].role.as_str()),
        ("user_old", "owner")
    );
}

/// The Members page in Chromium: an owner signs in with a key, adds a member, changes their
/// role, is refused demoting herself as the last owner, and removes the member.
#[tokio::test]
async fn browser_an_owner_manages_members_on_the_page() {
    use crate::web::{browser, screenshots, text_of, wait_for};
    let downloads = tempfile::tempdir().unwrap();
    let Some((c, _profile)) = browser(downloads.path()).await else {
        return;
    };
    let t = TestApp::spawn_with(signed_in).await;
    let org: OrgId = "org_page".parse().unwrap();
    let ann: UserId = "user_ann".parse().unwrap();
    t.app.db.create_org(&org, "Page", &ann).await.unwrap();
    let key = t
        .app
        .db
        .create_org_api_key(&org, &ann, Role::Owner, "page")
        .await
        .unwrap()
        .secret;
    c.goto(&format!("{}/members", t.base)).await.unwrap();
    wait_for(&c, "form[action='/signin'] #key")
        .await
        .send_keys(&key)
        .await
        .unwrap();
    wait_for(&c, "form[action='/signin'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&c, "#member-user")
        .await
        .send_keys("user_ben")
        .await
        .unwrap();
    wait_for(&c, "#member-role option[value='analyst']")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&c, "#add-member button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let listed = text_of(&c, "#members").await;
    assert!(listed.contains("user_ben"), "{listed}");
    assert_eq!(
        t.app
            .db
            .member_role(&org, &"user_ben".parse().unwrap())
            .await
            .unwrap(),
        Some(Role::Analyst)
    );
    screenshots(&c, "members").await;
    // ben is the second row (owners first): make him an admin.
    wait_for(&c, "#role-1 option[value='admin']")
        .await
        .click()
        .await
        .unwrap();
    wait_for(
        &c,
        "form[action='/members/user_ben/role'] button[type=submit]",
    )
    .await
    .click()
    .await
    .unwrap();
    wait_for(&c, "#members").await;
    assert_eq!(
        t.app
            .db
            .member_role(&org, &"user_ben".parse().unwrap())
            .await
            .unwrap(),
        Some(Role::Admin)
    );
    // The last owner demoting herself is refused, on the page.
    wait_for(&c, "#role-0 option[value='viewer']")
        .await
        .click()
        .await
        .unwrap();
    wait_for(
        &c,
        "form[action='/members/user_ann/role'] button[type=submit]",
    )
    .await
    .click()
    .await
    .unwrap();
    let refusal = text_of(&c, "p.alert.error").await;
    assert!(refusal.contains("at least one owner"), "{refusal}");
    wait_for(
        &c,
        "form[action='/members/user_ben/remove'] button[type=submit]",
    )
    .await
    .click()
    .await
    .unwrap();
    let listed = text_of(&c, "#members").await;
    assert!(!listed.contains("user_ben"), "{listed}");
    c.close().await.unwrap();
}

/// The upload page offers its form only to a role that may upload; a viewer is told why there
/// is none and who can change that, instead of a form refused on submit.
#[tokio::test]
async fn the_upload_page_offers_the_form_only_to_roles_that_may_upload() {
    let t = TestApp::spawn_with(signed_in).await;
    let db = &t.app.db;
    let org: OrgId = "org_pages".parse().unwrap();
    let owner: UserId = "user_owner".parse().unwrap();
    assert!(db.create_org(&org, "Pages", &owner).await.unwrap());
    for role in Role::ALL {
        let user: UserId = format!("user_{role}").parse().unwrap();
        db.set_member(&org, &user, role, None).await.unwrap();
        let key = db
            .create_org_api_key(&org, &user, role, "pages")
            .await
            .unwrap();
        let (status, page) = send(&t, &Method::GET, "/", Some(&key.secret)).await;
        assert_eq!(status, 200, "{role}: {page}");
        let form = page.contains("id=\"upload-form\"");
        assert_eq!(form, role >= Role::Analyst, "{role}: form shown = {form}");
        assert_eq!(
            page.contains("Your role here is viewer"),
            role == Role::Viewer,
            "{role}"
        );
    }
}

//! Masked exports over the real server: the results CSV and the Excel workbook downloaded by
//! every role with every mask (absent, none, partial, full): viewers get masked rows only
//! (`full` by default, `none` refused with 403), the other columns stay as they were, the
//! pseudonym is the organisation's stable one, and each download is audited with its mask.

use std::io::Read;

use retainwise::domain::{OrgId, Role, UserId};
use retainwise::privacy::Salt;

use crate::helpers::{parse_csv, synthetic_telco, TestApp};

const SECRET: &str = "masking-test-secret-masking-test-secret-0123";

pub(crate) fn signed_in(c: &mut retainwise::config::Config) {
    c.auth = retainwise::auth::AuthConfig::Secret {
        secret: SECRET.to_owned().into(),
        issuer: None,
        audience: None,
    };
}

/// An organisation `org` with one member and API key per role: (role, key), viewer first.
pub(crate) async fn team(t: &TestApp, org: &OrgId) -> Vec<(Role, String)> {
    let db = &t.app.db;
    let owner: UserId = "user_owner".parse().unwrap();
    assert!(db.create_org(org, "Team", &owner).await.unwrap());
    let mut keys = Vec::new();
    for role in Role::ALL {
        let user: UserId = format!("user_{role}").parse().unwrap();
        db.set_member(org, &user, role, None).await.unwrap();
        let key = db
            .create_org_api_key(org, &user, role, "masking")
            .await
            .unwrap();
        keys.push((role, key.secret));
    }
    keys
}

/// Every text of the workbook's parts (sheets and shared strings), for looking ids up.
pub(crate) fn xlsx_text(bytes: &[u8]) -> String {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut text = String::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).unwrap();
        let mut part = String::new();
        if file.read_to_string(&mut part).is_ok() {
            text.push_str(&part);
        }
    }
    text
}

async fn get(t: &TestApp, path: &str, key: &str) -> (u16, Vec<u8>) {
    let r = t
        .client
        .get(format!("{}{path}", t.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn every_role_with_every_mask_downloads_what_the_rules_say() {
    let t = TestApp::spawn_with(signed_in).await;
    let org: OrgId = "org_masks".parse().unwrap();
    let keys = team(&t, &org).await;
    let analyst = &keys[1].1;
    let r = t
        .upload_as(analyst, "team.csv", synthetic_telco(30).into_bytes())
        .await;
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    TestApp::drain(&t.worker, 5).await;
    let salt = Salt::of(&t.app.db, &org).await.unwrap();
    let ids: Vec<String> = (0..30).map(|i| format!("{i:04}-SYNT")).collect();

    let (status, plain) = get(&t, &format!("/api/predictions/{id}/results"), analyst).await;
    assert_eq!(status, 200);
    let (header, plain_rows) = parse_csv(std::str::from_utf8(&plain).unwrap());
    assert_eq!(header[0], "customer_id");
    assert_eq!(plain_rows.len(), 30);

    let mut expected_audit = Vec::new();
    for (role, key) in &keys {
        for asked in [None, Some("none"), Some("partial"), Some("full")] {
            let query = asked.map_or(String::new(), |m| format!("?mask={m}"));
            let viewer = *role == Role::Viewer;
            let mask = match (asked, viewer) {
                (None, true) => "full",
                (None, false) => "none",
                (Some(m), _) => m,
            };
            // The CSV.
            let path = format!("/api/predictions/{id}/results{query}");
            let (status, body) = get(&t, &path, key).await;
            let text = String::from_utf8(body).unwrap();
            if viewer && mask == "none" {
                assert_eq!(status, 403, "{role} {asked:?}: {text}");
                assert!(text.contains("mask=partial or mask=full"), "{text}");
            } else {
                assert_eq!(status, 200, "{role} {asked:?}: {text}");
                expected_audit.push(("download.results".to_owned(), format!("mask={mask}")));
                let (h, rows) = parse_csv(&text);
                assert_eq!(h, header);
                assert_eq!(rows.len(), 30);
                for ((row, plain), id) in rows.iter().zip(&plain_rows).zip(&ids) {
                    // Every other column as it was.
                    assert_eq!(row[1..], plain[1..], "{role} {mask}");
                    let want = match mask {
                        "none" => id.clone(),
                        "partial" => format!("{}**-SY**", &id[..2]),
                        _ => salt.pseudonym(id),
                    };
                    assert_eq!(row[0], want, "{role} {mask}");
                }
                if mask != "none" {
                    assert!(!ids.iter().any(|i| text.contains(i.as_str())), "{mask}");
                }
            }
            // The workbook.
            let path = format!("/predictions/{id}/export.xlsx{query}");
            let (status, body) = get(&t, &path, key).await;
            if viewer && mask == "none" {
                assert_eq!(status, 403, "{role} {asked:?}");
                continue;
            }
            assert_eq!(status, 200, "{role} {asked:?}");
            expected_audit.push(("export.excel".to_owned(), format!("mask={mask}")));
            let text = xlsx_text(&body);
            for id in &ids {
                let shown = match mask {
                    "none" => id.clone(),
                    "partial" => format!("{}**-SY**", &id[..2]),
                    _ => salt.pseudonym(id),
                };
                assert!(text.contains(&shown), "{role} {mask}: {shown}");
                if mask != "none" {
                    assert!(!text.contains(id.as_str()), "{role} {mask}: {id}");
                }
            }
        }
    }
    // An unknown mask is a 400 naming the choices.
    let (status, body) = get(
        &t,
        &format!("/api/predictions/{id}/results?mask=half"),
        analyst,
    )
    .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("none, partial or full"));

    // Every download audited with its mask, in order; the viewer's refusals as access.refused.
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, reason FROM audit_log WHERE org_id = $1 \
         AND action IN ('download.results', 'export.excel') ORDER BY seq",
    )
    .bind(org.as_str())
    .fetch_all(t.app.db.pool())
    .await
    .unwrap();
    // The first is the analyst's plain download above.
    assert_eq!(
        audited[0],
        ("download.results".to_owned(), "mask=none".to_owned())
    );
    assert_eq!(audited[1..], expected_audit[..]);
    let refused: Vec<(String,)> = sqlx::query_as(
        "SELECT record_id FROM audit_log WHERE org_id = $1 AND action = 'access.refused' \
         ORDER BY seq",
    )
    .bind(org.as_str())
    .fetch_all(t.app.db.pool())
    .await
    .unwrap();
    assert_eq!(
        refused,
        vec![
            ("GET /api/predictions/{id}/results".to_owned(),),
            ("GET /predictions/{id}/export.xlsx".to_owned(),)
        ]
    );
}

/// The validation report names customers (rejected rows, repeated ids): a viewer reads it with
/// the ids masked, as every export of customer rows; an analyst reads it as stored.
#[tokio::test]
async fn a_viewer_reads_the_validation_report_with_customer_ids_masked() {
    let t = TestApp::spawn_with(signed_in).await;
    let org: OrgId = "org_report".parse().unwrap();
    let keys = team(&t, &org).await;
    let (viewer, analyst) = (&keys[0].1, &keys[1].1);
    // Row of 0003-SYNT rejected (tenure "twelve"); 0004-SYNT repeated.
    let mut lines: Vec<String> = synthetic_telco(10).lines().map(str::to_owned).collect();
    let mut fields: Vec<String> = lines[4].split(',').map(str::to_owned).collect();
    assert_eq!(fields[0], "0003-SYNT");
    fields[5] = "twelve".to_owned();
    lines[4] = fields.join(",");
    lines.push(lines[5].clone());
    let csv = lines.join("\n") + "\n";
    let r = t.upload_as(analyst, "report.csv", csv.into_bytes()).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    TestApp::drain(&t.worker, 5).await;
    let path = format!("/api/predictions/{id}/report");
    let (status, stored) = get(&t, &path, analyst).await;
    let stored = String::from_utf8(stored).unwrap();
    assert_eq!(status, 200, "{stored}");
    assert!(
        stored.contains("0003-SYNT") && stored.contains("twelve"),
        "{stored}"
    );
    let (status, seen) = get(&t, &path, viewer).await;
    let seen = String::from_utf8(seen).unwrap();
    assert_eq!(status, 200, "{seen}");
    assert!(
        !seen.contains("0003-SYNT") && !seen.contains("0004-SYNT"),
        "a viewer saw a customer id: {seen}"
    );
    // The rest of the report is as stored: the reason and the raw value of a column that is
    // not personal.
    assert!(seen.contains("twelve") && seen.contains("tenure"), "{seen}");
    let pseudonym = Salt::of(&t.app.db, &org)
        .await
        .unwrap()
        .pseudonym("0003-SYNT");
    assert!(seen.contains(&pseudonym), "{seen}");
}

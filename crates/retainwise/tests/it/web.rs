//! The web pages over the real server: sign-in with an API key kept in a cookie (and the Origin
//! check on state-changing requests), per-user scoping of every page, the dashboard figures,
//! the customers table (filters, order, pages, search, explanation), the Excel export; and,
//! in real headless Chromium driven over WebDriver (fantoccini), the story a user walks
//! through — with screenshots of every page at 360 px and 1440 px.

use std::time::Duration;

use retainwise::auth::AuthConfig;
use serde_json::Value;

use crate::helpers::{loud, synthetic_telco, telco_csv, TestApp};

pub(crate) const SECRET: &str = "web-test-secret-web-test-secret-0123456789";

pub(crate) async fn signed_in_app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.auth = AuthConfig::Secret {
            secret: SECRET.to_owned().into(),
            issuer: None,
            audience: None,
        }
    })
    .await
}

pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in through the form and returns the session cookie (`name=value`).
pub(crate) async fn sign_in(t: &TestApp, key: &str) -> String {
    let r = no_redirects()
        .post(format!("{}/signin", t.base))
        .header("origin", &t.base)
        .form(&[("key", key), ("next", "/predictions")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "sign-in redirects");
    assert_eq!(r.headers()["location"], "/predictions");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

pub(crate) async fn get_with(t: &TestApp, cookie: &str, path: &str) -> reqwest::Response {
    no_redirects()
        .get(format!("{}{path}", t.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

async fn upload_with(
    t: &TestApp,
    cookie: &str,
    origin: Option<&str>,
    body: String,
) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(body.into_bytes()).file_name("customers.csv");
    let mut request = no_redirects()
        .post(format!("{}/api/csv", t.base))
        .header("cookie", cookie)
        .multipart(reqwest::multipart::Form::new().part("file", part));
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn sign_in_cookie_origin_check_and_per_user_pages() {
    let t = signed_in_app().await;
    let alice = t
        .app
        .db
        .create_api_key(&"user_alice".parse().unwrap(), "web")
        .await
        .unwrap();
    let bob = t
        .app
        .db
        .create_api_key(&"user_bob".parse().unwrap(), "web")
        .await
        .unwrap();

    // Pages without a session go to the sign-in page and come back afterwards.
    let r = no_redirects()
        .get(format!("{}/predictions?page=2", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/signin?next=/predictions%3Fpage%3D2"
    );
    let page = t.get("/signin").await.text().await.unwrap();
    assert!(page.contains("API key"));

    // A wrong key, and a form posted from another site, are refused.
    let r = no_redirects()
        .post(format!("{}/signin", t.base))
        .header("origin", &t.base)
        .form(&[("key", "rwk_not-a-real-key")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("not accepted"));
    let r = no_redirects()
        .post(format!("{}/signin", t.base))
        .header("origin", "http://evil.example")
        .form(&[("key", alice.secret.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("set-cookie").is_none());

    let alice_cookie = sign_in(&t, &alice.secret).await;
    let bob_cookie = sign_in(&t, &bob.secret).await;
    assert_eq!(get_with(&t, &alice_cookie, "/").await.status(), 200);

    // The cookie works for the API too, but a state change needs this site's Origin.
    let csv = synthetic_telco(30);
    let r = upload_with(&t, &alice_cookie, None, csv.clone()).await;
    assert_eq!(r.status(), 400, "no Origin: refused");
    assert!(r.text().await.unwrap().contains("Origin"));
    let r = upload_with(&t, &alice_cookie, Some("http://evil.example"), csv.clone()).await;
    assert_eq!(r.status(), 400, "another site: refused");
    let r = upload_with(&t, &alice_cookie, Some(&t.base), csv).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["prediction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.work_once().await;

    // Alice sees her prediction everywhere; Bob sees none of it.
    let list = get_with(&t, &alice_cookie, "/predictions")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains(&format!("/predictions/{id}")) && list.contains("COMPLETED"));
    let list = get_with(&t, &bob_cookie, "/predictions")
        .await
        .text()
        .await
        .unwrap();
    assert!(!list.contains(&id) && list.contains("No predictions yet"));
    for path in [
        format!("/predictions/{id}"),
        format!("/predictions/{id}/status"),
        format!("/predictions/{id}/customers"),
        format!("/predictions/{id}/customers/1"),
        format!("/predictions/{id}/export.xlsx"),
        format!("/api/predictions/{id}/results"),
    ] {
        assert_eq!(
            get_with(&t, &alice_cookie, &path).await.status(),
            200,
            "{path}"
        );
        assert_eq!(
            get_with(&t, &bob_cookie, &path).await.status(),
            404,
            "{path} for another user"
        );
    }

    // Signing out clears the cookie; a revoked key ends the session.
    let r = no_redirects()
        .post(format!("{}/signout", t.base))
        .header("cookie", &alice_cookie)
        .header("origin", &t.base)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert!(t.app.db.revoke_api_key(&alice.record.id).await.unwrap());
    assert_eq!(
        get_with(&t, &alice_cookie, "/predictions").await.status(),
        303
    );
}

#[tokio::test]
async fn local_user_refuses_cross_site_posts() {
    // Without sign-in nobody needs a credential, so another site's page must not be able to
    // make a browser upload here; curl (no Origin) and this site's pages still can.
    let t = TestApp::spawn().await;
    let r = upload_with(&t, "", Some("http://evil.example"), synthetic_telco(3)).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("cross-site"));
    assert_eq!(
        upload_with(&t, "", Some(&t.base), synthetic_telco(3))
            .await
            .status(),
        202
    );
    assert_eq!(
        upload_with(&t, "", None, synthetic_telco(3)).await.status(),
        202
    );
}

#[tokio::test]
async fn dashboard_customers_table_explanation_and_excel() {
    let t = TestApp::spawn().await;
    let id = t
        .upload_ok("customers.csv", mixed_risk(260).into_bytes())
        .await;
    // Before the worker runs: the live status box.
    let page = t
        .get(&format!("/predictions/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("QUEUED")
            && page.contains(&format!("data-live=\"/predictions/{id}/status\""))
    );
    assert_eq!(
        t.get(&format!("/predictions/{id}/customers"))
            .await
            .status(),
        409
    );
    t.work_once().await;
    let p = t.prediction(&id).await;
    let counts = &p["summary"]["risk_counts"];
    let (high, medium, low) = (
        counts["high"].as_u64().unwrap(),
        counts["medium"].as_u64().unwrap(),
        counts["low"].as_u64().unwrap(),
    );
    assert_eq!(high + medium + low, 260);
    assert!(high > 0 && low > 0, "{high} {medium} {low}");

    let page = t
        .get(&format!("/predictions/{id}"))
        .await
        .text()
        .await
        .unwrap();
    for needed in [
        "Customers scored",
        "Revenue at risk per month",
        "Churn probability histogram",
        "Top risk drivers",
        "Average retention probability",
    ] {
        assert!(page.contains(needed), "dashboard lacks {needed:?}");
    }
    let revenue = p["summary"]["portfolio"]["revenue_at_risk"]
        .as_f64()
        .unwrap();
    assert!(revenue > 0.0);
    let cents = (revenue * 100.0).round() as u64;
    let shown = format!("{}.{:02}", group(cents / 100), cents % 100);
    assert!(
        page.contains(&shown),
        "revenue at risk {shown} is on the dashboard"
    );

    // Filter to high risk: every row is high and the count is the summary's.
    let table = t
        .get(&format!("/predictions/{id}/customers?level=high"))
        .await
        .text()
        .await
        .unwrap();
    let rows = table_rows(&table);
    assert_eq!(rows.len() as u64, high.min(50));
    assert!(rows.iter().all(|r| r.contains("risk-high")));
    assert!(table.contains(&format!("of {high} matching")) || high == 260);

    // Default order: highest churn first, pages of 50, the page in the URL.
    let first = t
        .get(&format!("/predictions/{id}/customers"))
        .await
        .text()
        .await
        .unwrap();
    let probs = percentages(&first);
    assert_eq!(probs.len(), 50);
    assert!(probs.windows(2).all(|w| w[0] >= w[1]), "{probs:?}");
    assert!(first.contains("Page 1 of 6"));
    let past = t
        .get(&format!("/predictions/{id}/customers?page=99"))
        .await
        .text()
        .await
        .unwrap();
    assert!(past.contains("past the end") && table_rows(&past).is_empty());
    let last = t
        .get(&format!("/predictions/{id}/customers?page=6"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(table_rows(&last).len(), 10);
    let asc = t
        .get(&format!("/predictions/{id}/customers?sort=churn_asc"))
        .await
        .text()
        .await
        .unwrap();
    let asc_probs = percentages(&asc);
    assert!(asc_probs.windows(2).all(|w| w[0] <= w[1]));
    assert!(asc_probs[0] <= *probs.last().unwrap());
    assert_eq!(
        t.get(&format!("/predictions/{id}/customers?level=extreme"))
            .await
            .status(),
        400
    );
    // A page number that is not one gets the app's error page, not a plain-text rejection.
    for (query, says) in [
        ("page=-1", "Page \"-1\" does not exist"),
        ("page=two", "Page \"two\" does not exist"),
        ("page=1&page=2", "cannot read"),
    ] {
        let r = t.get(&format!("/predictions/{id}/customers?{query}")).await;
        assert_eq!(r.status(), 400, "{query}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{query}"
        );
        let body = r.text().await.unwrap();
        assert!(
            body.contains(&says.replace('"', "&quot;")) || body.contains(says),
            "{query}: {body}"
        );
    }
    assert_eq!(t.get("/predictions?page=0").await.status(), 400);

    // Search by customer id, then open the customer.
    let found = t
        .get(&format!("/predictions/{id}/customers?q=0042-synt"))
        .await
        .text()
        .await
        .unwrap();
    let rows = table_rows(&found);
    assert_eq!(rows.len(), 1, "ids are unique; case is ignored");
    assert!(rows[0].contains("0042-SYNT"));
    let detail = t
        .get(&format!(
            "/predictions/{id}/customers/43?back=q%3D0042-synt"
        ))
        .await
        .text()
        .await
        .unwrap();
    assert!(detail.contains("Customer 0042-SYNT"));
    for needed in [
        "Risk drivers",
        "Protective factors",
        "Recommendation",
        " pts",
        "q=0042-synt",
    ] {
        assert!(detail.contains(needed), "explanation lacks {needed:?}");
    }
    assert_eq!(
        t.get(&format!("/predictions/{id}/customers/261"))
            .await
            .status(),
        404
    );

    // The Excel workbook: a zip with both sheets.
    let r = t.get(&format!("/predictions/{id}/export.xlsx")).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("customers_predictions.xlsx"));
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..2], b"PK");

    // A failed job shows its error in plain words on the list and on its page (every row's
    // tenure is unreadable in a file longer than what the upload reads first; a missing
    // column, or a short file, would be refused at upload).
    let mut bad = String::new();
    for (i, line) in synthetic_telco(4000).lines().enumerate() {
        let mut cells: Vec<&str> = line.split(',').collect();
        if i > 0 {
            cells[5] = "many";
        }
        bad.push_str(&cells.join(","));
        bad.push('\n');
    }
    let failed = t.upload_ok("no-tenure.csv", bad.into_bytes()).await;
    t.work_once().await;
    let list = t.get("/predictions").await.text().await.unwrap();
    assert!(
        list.contains("FAILED") && list.contains("tenure"),
        "the list names the missing column"
    );
    let page = t
        .get(&format!("/predictions/{failed}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("tenure") && page.contains("validation report"));
    assert_eq!(
        t.get(&format!("/predictions/{failed}/export.xlsx"))
            .await
            .status(),
        409
    );
}

/// `n` synthetic Telco customers, every third one with the profile of a likely churner
/// (new, month-to-month, fibre, electronic check, no security or support), so that every
/// risk level occurs.
pub(crate) fn mixed_risk(n: usize) -> String {
    let mut out = String::new();
    for (i, line) in synthetic_telco(n).lines().enumerate() {
        let mut cells: Vec<String> = line.split(',').map(str::to_owned).collect();
        if i > 0 && i % 3 == 0 {
            for (col, value) in [
                (5, "1"),
                (8, "Fiber optic"),
                (9, "No"),
                (12, "No"),
                (15, "Month-to-month"),
                (16, "Yes"),
                (17, "Electronic check"),
                (19, "95.00"),
            ] {
                cells[col] = value.to_owned();
            }
            cells[18] = "95.00".to_owned();
        }
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// Groups digits with commas, as the pages do.
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn table_rows(page: &str) -> Vec<String> {
    let Some(start) = page.find("<tbody>") else {
        return Vec::new();
    };
    let end = page[start..].find("</tbody>").unwrap() + start;
    page[start..end]
        .split("<tr>")
        .skip(1)
        .map(str::to_owned)
        .collect()
}

fn percentages(page: &str) -> Vec<f64> {
    table_rows(page)
        .iter()
        .map(|r| {
            // The cell may carry attributes (its data-label for the narrow layout).
            let cell = r.split("<td class=\"num\"").nth(1).unwrap();
            let cell = &cell[cell.find('>').unwrap() + 1..];
            cell[..cell.find('%').unwrap()].parse().unwrap()
        })
        .collect()
}

// ---------------------------------------------------------------- the browser story

/// A WebDriver session on the chromedriver at `RETAINWISE_TEST_WEBDRIVER`, or `None` with a
/// loud note. `scripts/test-services.sh` installs Debian's chromium + chromium-driver and
/// starts chromedriver on a free loopback port.
pub(crate) async fn browser(
    downloads: &std::path::Path,
) -> Option<(fantoccini::Client, tempfile::TempDir)> {
    let Some(url) = std::env::var("RETAINWISE_TEST_WEBDRIVER")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        loud("*** SKIPPED: RETAINWISE_TEST_WEBDRIVER not set (scripts/test-services.sh starts chromedriver) ***");
        return None;
    };
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": std::env::var("RETAINWISE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1440,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
            },
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = fantoccini::ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("a WebDriver session on chromedriver");
    Some((client, profile))
}

/// Where screenshots go: `RETAINWISE_SCREENSHOTS`, else `target/screenshots`.
fn screenshot_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("RETAINWISE_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves the whole current page at 1440 px and 360 px wide, as `{name}-1440.png` and
/// `{name}-360.png`.
pub(crate) async fn screenshots(c: &fantoccini::Client, name: &str) {
    let dir = screenshot_dir();
    for w in [1440u32, 360] {
        // As tall as the page (bounded), so the screenshot shows all of it.
        c.set_window_size(w, 1000).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let height = c
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(1000)
            .clamp(600, 5000) as u32;
        c.set_window_size(w, height + 120).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let png = c.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}-{w}.png")), png).unwrap();
        // Wide tables scroll inside their own box; the page itself never scrolls sideways.
        let widths = c
            .execute(
                "const e = document.documentElement; return [e.scrollWidth, e.clientWidth]",
                vec![],
            )
            .await
            .unwrap();
        let (scroll, client) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        assert!(
            scroll <= client,
            "{name} at {w} px scrolls sideways: {scroll} px of content in {client} px \
             (see {name}-{w}.png)"
        );
    }
    c.set_window_size(1440, 1000).await.unwrap();
}

pub(crate) async fn wait_for(c: &fantoccini::Client, css: &str) -> fantoccini::elements::Element {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match c
            .wait()
            .at_most(Duration::from_secs(60))
            .for_element(fantoccini::Locator::Css(css))
            .await
        {
            Ok(element) => return element,
            // The live pages reload themselves when a job finishes; a wait cut short by that
            // navigation goes on on the new page.
            Err(e)
                if std::time::Instant::now() < deadline && e.to_string().contains("navigation") =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{css} did not appear: {e}"),
        }
    }
}

/// The text of `css` once it appears. Live parts of a page are replaced every few seconds, so
/// an element found and then read may be gone: it is found again (a few times at most).
pub(crate) async fn text_of(c: &fantoccini::Client, css: &str) -> String {
    for _ in 0..20 {
        match wait_for(c, css).await.text().await {
            Ok(text) => return text,
            Err(e) if e.to_string().contains("stale element") => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("reading {css}: {e}"),
        }
    }
    panic!("{css} kept being replaced while it was read")
}

#[tokio::test]
async fn browser_upload_dashboard_filter_customer_download() {
    let Some(telco) = telco_csv() else { return };
    let telco = telco.canonicalize().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let Some((c, _profile)) = browser(downloads.path()).await else {
        return;
    };
    let t = TestApp::spawn().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = {
        let (w, s) = (t.worker.clone(), shutdown.clone());
        tokio::spawn(async move { w.run(s).await })
    };

    // Upload page: choose the Telco file; the mapping preview appears before anything is queued.
    c.goto(&format!("{}/", t.base)).await.unwrap();
    let input = wait_for(&c, "#file").await;
    input.send_keys(&telco.display().to_string()).await.unwrap();
    wait_for(&c, "#mapping tbody tr").await;
    let status = text_of(&c, "#file-status").await;
    assert!(status.contains("ready to be scored"), "{status}");
    let mapping = text_of(&c, "#mapping").await;
    assert!(
        mapping.contains("MonthlyCharges") && mapping.contains("exact") && mapping.contains("100%"),
        "{mapping}"
    );
    assert!(
        text_of(&c, "#preview-ignored").await.contains("Churn"),
        "the label column is ignored"
    );
    screenshots(&c, "1-upload-preview").await;

    // Queue it; the page moves to the prediction, which turns into the dashboard by itself.
    wait_for(&c, "#submit:not([disabled])")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&c, "svg.chart").await;
    let url = c.current_url().await.unwrap();
    let id = url.path().trim_start_matches("/predictions/").to_owned();
    let body = text_of(&c, "main").await;
    assert!(
        body.contains("7,043") && body.contains("Revenue at risk"),
        "{body}"
    );
    screenshots(&c, "3-dashboard").await;

    // The predictions list shows it COMPLETED with its counts and downloads.
    c.goto(&format!("{}/predictions", t.base)).await.unwrap();
    let list = text_of(&c, "table.jobs").await;
    assert!(
        list.contains("COMPLETED") && list.contains("7,043") && list.contains("Excel"),
        "{list}"
    );
    screenshots(&c, "2-predictions").await;

    // Filter to high risk with the form (keyboard-reachable controls), then open one customer.
    c.goto(&format!("{}/predictions/{id}/customers", t.base))
        .await
        .unwrap();
    let level = wait_for(&c, "#level").await;
    level.select_by_value("high").await.unwrap();
    wait_for(&c, "form.filters button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    // The old page's table is there until the browser has navigated: wait for the new URL.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut url = c.current_url().await.unwrap();
    while !url.query().unwrap_or("").contains("level=high") && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        url = c.current_url().await.unwrap();
    }
    assert!(
        url.query().unwrap_or("").contains("level=high"),
        "the filter is in the URL: {url}"
    );
    wait_for(&c, "table.customers").await;
    let badges = c
        .find_all(fantoccini::Locator::Css("table.customers tbody .badge"))
        .await
        .unwrap();
    assert_eq!(badges.len(), 50);
    for b in &badges {
        assert_eq!(b.text().await.unwrap(), "High");
    }
    screenshots(&c, "4-customers-high").await;
    wait_for(&c, "table.customers tbody th a")
        .await
        .click()
        .await
        .unwrap();
    let detail = text_of(&c, "main").await;
    assert!(
        detail.contains("Risk drivers")
            && detail.contains("Recommendation")
            && detail.contains("pts"),
        "{detail}"
    );
    screenshots(&c, "5-customer").await;

    // Download the CSV from the predictions list: the browser saves the scored file.
    c.goto(&format!("{}/predictions", t.base)).await.unwrap();
    c.find(fantoccini::Locator::LinkText("CSV"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let saved = downloads
        .path()
        .join("telco-customer-churn_predictions.csv");
    let mut waited = 0;
    while !saved.exists() && waited < 200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let csv = std::fs::read_to_string(&saved).expect("the CSV was downloaded");
    assert!(csv.starts_with("customer_id,churn_probability"));
    assert_eq!(csv.lines().count(), 7044);

    // A file without the tenure column: named before anything is queued, and scored with
    // tenure read as missing (flagged) rather than refused.
    let mut bad = String::new();
    for (i, line) in std::fs::read_to_string(&telco)
        .unwrap()
        .lines()
        .take(20)
        .enumerate()
    {
        let cells: Vec<&str> = line.split(',').collect();
        let kept: Vec<&str> = cells
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != 5)
            .map(|(_, c)| *c)
            .collect();
        if i == 0 {
            assert_eq!(cells[5], "tenure");
        }
        bad.push_str(&kept.join(","));
        bad.push('\n');
    }
    let bad_path = downloads.path().join("no-tenure.csv");
    std::fs::write(&bad_path, bad).unwrap();
    c.goto(&format!("{}/", t.base)).await.unwrap();
    wait_for(&c, "#file")
        .await
        .send_keys(&bad_path.display().to_string())
        .await
        .unwrap();
    let problem = text_of(&c, "#preview:not([hidden]) #preview-problem:not([hidden])").await;
    assert!(
        problem.contains("No column for tenure") && problem.contains("scored as missing"),
        "{problem}"
    );
    wait_for(&c, "#submit:not([disabled])").await;
    screenshots(&c, "6-upload-missing-column").await;

    c.close().await.unwrap();
    shutdown.cancel();
    let _ = worker.await;
}

/// Sign-in and sign-out as a person does them: type the key into the form, press the button,
/// then press "Sign out". Both failed in Chromium while every test passed,
/// because `Referrer-Policy: no-referrer` made Chromium send `Origin: null` on the site's own
/// form posts, and the earlier browser story ran without sign-in (no form, no sign-out button;
/// its posts were scripts' XHR/fetch, which carry a real Origin) while the HTTP tests set
/// `Origin` by hand.
#[tokio::test]
async fn browser_sign_in_and_out_through_the_form() {
    let downloads = tempfile::tempdir().unwrap();
    let Some((c, _profile)) = browser(downloads.path()).await else {
        return;
    };
    let t = signed_in_app().await;
    let key = t
        .app
        .db
        .create_api_key(&"user_browser".parse().unwrap(), "web")
        .await
        .unwrap();

    // A page needs a session: the browser lands on the sign-in form.
    c.goto(&format!("{}/predictions", t.base)).await.unwrap();
    wait_for(&c, "form[action='/signin'] #key")
        .await
        .send_keys(&key.secret)
        .await
        .unwrap();
    wait_for(&c, "form[action='/signin'] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&c, "form.signout button").await;
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/predictions", "back where the user was going");
    let body = text_of(&c, "main").await;
    assert!(body.contains("No predictions yet"), "{body}");

    // Signing out ends the session: the pages ask for the key again.
    wait_for(&c, "form.signout button")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&c, "form[action='/signin'] #key").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/signin");
    c.goto(&format!("{}/predictions", t.base)).await.unwrap();
    wait_for(&c, "form[action='/signin'] #key").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/signin");
    c.close().await.unwrap();
}

/// A page on another site (here `localhost`, another site than `127.0.0.1` to a browser) that
/// posts a form here is refused in Chromium, with the site's own forms working (the test
/// above); the same-origin fix for Chromium's own forms did not open the cross-site door.
#[tokio::test]
async fn browser_cross_site_form_post_is_refused() {
    let downloads = tempfile::tempdir().unwrap();
    let Some((c, _profile)) = browser(downloads.path()).await else {
        return;
    };
    let t = TestApp::spawn().await;
    // The attacker's page: builds a CSV file in the browser and posts it to the upload route.
    let page = format!(
        r#"<!doctype html><form id=f method=post enctype=multipart/form-data action="{base}/api/csv">
<input type=file name=file id=file></form>
<script>
const dt = new DataTransfer();
dt.items.add(new File([{csv:?}], "customers.csv", {{type: "text/csv"}}));
document.getElementById("file").files = dt.files;
document.getElementById("f").submit();
</script>"#,
        base = t.base,
        csv = synthetic_telco(3),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let evil = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, evil).await.unwrap() });

    c.goto(&format!("http://localhost:{port}/")).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let body = loop {
        let url = c.current_url().await.unwrap();
        if url.path() == "/api/csv" {
            break text_of(&c, "body").await;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the form was not posted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(body.contains("cross-site"), "{body}");
    let list: Value = t.get("/api/predictions").await.json().await.unwrap();
    assert_eq!(
        list["predictions"].as_array().map(Vec::len),
        Some(0),
        "nothing was queued: {list}"
    );
    c.close().await.unwrap();
}

/// A session started with a JWT ends when the token does (its `exp`, read from the verified
/// claims), not after the configured session length; one started with an API key lasts the
/// session length and ends with the key.
#[tokio::test]
async fn a_jwt_session_ends_with_its_token() {
    use jsonwebtoken::{EncodingKey, Header};
    let t = signed_in_app().await;
    let now = retainwise::time::now_ms() / 1000;
    let token = jsonwebtoken::encode(
        &Header::default(),
        &serde_json::json!({ "sub": "user_carol", "iat": now, "exp": now + 120 }),
        &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    let max_age = |cookie: &str| -> i64 {
        cookie
            .split(';')
            .find_map(|p| p.trim().strip_prefix("Max-Age="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no Max-Age in {cookie}"))
    };
    let r = no_redirects()
        .post(format!("{}/signin", t.base))
        .header("origin", &t.base)
        .form(&[("key", token.as_str()), ("next", "/predictions")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let age = max_age(&cookie);
    assert!(
        (100..=120).contains(&age),
        "JWT session Max-Age {age}: {cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    assert_eq!(get_with(&t, &session, "/predictions").await.status(), 200);

    let key = t
        .app
        .db
        .create_api_key(&"user_carol".parse().unwrap(), "web")
        .await
        .unwrap();
    let r = no_redirects()
        .post(format!("{}/signin", t.base))
        .header("origin", &t.base)
        .form(&[("key", key.secret.as_str()), ("next", "/predictions")])
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let hours = i64::try_from(t.app.config.http.session_ttl.as_secs()).unwrap();
    assert_eq!(max_age(&cookie), hours, "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    assert_eq!(get_with(&t, &session, "/predictions").await.status(), 200);
    assert!(t.app.db.revoke_api_key(&key.record.id).await.unwrap());
    assert_eq!(get_with(&t, &session, "/predictions").await.status(), 303);
}

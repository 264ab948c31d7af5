//! The predictions list in a real browser: a job created after the page loaded appears without a
//! reload, and at 360 px each job's status and each customer's risk level is on screen without
//! scrolling sideways.

use std::time::Duration;

use crate::helpers::TestApp;
use crate::web::{browser, mixed_risk, screenshots, text_of};

/// Whether the first element matching `css` lies inside the viewport horizontally (its right
/// edge within the page's visible width, and it has a width at all).
async fn fully_on_screen(c: &fantoccini::Client, css: &str) -> bool {
    let script = "const e = document.querySelector(arguments[0]); if (!e) return false; \
                  const r = e.getBoundingClientRect(); \
                  return r.width > 0 && r.left >= 0 && r.right <= document.documentElement.clientWidth;";
    c.execute(script, vec![serde_json::json!(css)])
        .await
        .unwrap()
        .as_bool()
        .unwrap_or(false)
}

/// The text of the first element matching `css`, read in one script call: the live listing is
/// replaced every few seconds, so an element found first and read afterwards can be stale.
async fn live_text(c: &fantoccini::Client, css: &str) -> String {
    let script = "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';";
    c.execute(script, vec![serde_json::json!(css)])
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits (up to 60 s) until the text of `css` satisfies `done`; returns it.
async fn wait_text(c: &fantoccini::Client, css: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = live_text(c, css).await;
        if done(&text) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css} never showed what was expected; last: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn browser_predictions_list_shows_new_jobs_and_status_at_360_px() {
    let downloads = tempfile::tempdir().unwrap();
    let Some((c, _profile)) = browser(downloads.path()).await else {
        return;
    };
    let t = TestApp::spawn().await;

    // The list loads empty; a job queued afterwards (by the API, as another tab or a script
    // would) appears by itself.
    c.goto(&format!("{}/predictions", t.base)).await.unwrap();
    assert!(text_of(&c, "main").await.contains("No predictions yet"));
    t.upload_ok("first-after-load.csv", mixed_risk(30).into_bytes())
        .await;
    wait_text(&c, "table.jobs tbody", |l| {
        l.contains("first-after-load.csv") && l.contains("QUEUED")
    })
    .await;

    // A second one while the first is still queued (the fast pace), then both finish.
    t.upload_ok("second-after-load.csv", mixed_risk(30).into_bytes())
        .await;
    wait_text(&c, "table.jobs tbody", |l| {
        l.contains("second-after-load.csv")
    })
    .await;
    t.work_once().await;
    t.work_once().await;
    wait_text(&c, "table.jobs tbody", |l| {
        l.matches("COMPLETED").count() == 2
    })
    .await;

    // At phone width the status of every job is on screen (no sideways scroll to find it).
    c.set_window_size(360, 800).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        fully_on_screen(&c, "table.jobs tbody td[data-label=Status] .badge").await,
        "the status badge is off screen at 360 px"
    );
    c.set_window_size(1440, 1000).await.unwrap();
    screenshots(&c, "7-predictions-live").await;

    // And the customers table shows each customer's risk level at phone width.
    let href = c
        .execute(
            "return document.querySelector('table.jobs tbody th a').getAttribute('href')",
            vec![],
        )
        .await
        .unwrap();
    let id = href
        .as_str()
        .unwrap()
        .trim_start_matches("/predictions/")
        .to_owned();
    c.goto(&format!("{}/predictions/{id}/customers", t.base))
        .await
        .unwrap();
    wait_text(&c, "table.customers tbody", |l| !l.is_empty()).await;
    c.set_window_size(360, 800).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        fully_on_screen(
            &c,
            "table.customers tbody td[data-label='Risk level'] .badge"
        )
        .await,
        "the risk level is off screen at 360 px"
    );
    c.set_window_size(1440, 1000).await.unwrap();
}

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
    let list = text_of(&c, "table.jobs tbody").await;
    assert!(
        list.contains("first-after-load.csv") && list.contains("QUEUED"),
        "{list}"
    );

    // A second one while the first is still queued (the fast pace), then both finish.
    t.upload_ok("second-after-load.csv", mixed_risk(30).into_bytes())
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !text_of(&c, "table.jobs tbody")
        .await
        .contains("second-after-load.csv")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the second job never appeared"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    t.work_once().await;
    t.work_once().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let list = text_of(&c, "table.jobs tbody").await;
        if list.matches("COMPLETED").count() == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "both jobs should show COMPLETED: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

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
    let list = c
        .find(fantoccini::Locator::Css("table.jobs tbody th a"))
        .await
        .unwrap();
    list.click().await.unwrap();
    let id = c
        .current_url()
        .await
        .unwrap()
        .path()
        .trim_start_matches("/predictions/")
        .to_owned();
    c.goto(&format!("{}/predictions/{id}/customers", t.base))
        .await
        .unwrap();
    text_of(&c, "table.customers tbody").await;
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

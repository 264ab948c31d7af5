//! Errors a person can act on: a job that fails on the server's side tells its owner what
//! happened without server paths or raw storage text (those stay in the queue's record and the
//! log), and an upload that meets a full disk is answered 507 naming the cause.

use retainwise::config::StorageLocation;
use retainwise::domain::{OrgId, PredictionId};
use retainwise::worker::Outcome;

use crate::helpers::*;

/// The stored object folder is replaced by a file, so every result write fails with an error
/// naming a local path: the job ends FAILED, and neither the stored `error_message` nor the
/// API's answer carries the path or the raw storage text, while the queue's record keeps it.
#[tokio::test]
async fn a_storage_failure_is_shown_without_server_paths() {
    let t = TestApp::spawn().await;
    let id = t
        .upload_ok("customers.csv", synthetic_telco(30).into_bytes())
        .await;
    let blocker = t.dir.path().join("objects/results/local");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"in the way").unwrap();
    let root = t.dir.path().to_string_lossy().into_owned();
    let leaks = |text: &str| {
        text.contains(&root) || text.contains("/tmp") || text.contains("object storage")
    };

    assert_eq!(t.work_once().await, Outcome::Retried);
    let retrying = t.prediction(&id).await;
    let shown = retrying["error_message"].as_str().unwrap();
    assert!(shown.starts_with("retrying after"), "{retrying}");
    assert!(!leaks(shown), "a retrying job shows internals: {shown}");
    assert_eq!(t.work_once().await, Outcome::Retried);
    assert_eq!(t.work_once().await, Outcome::DeadLettered);

    let pid: PredictionId = id.parse().unwrap();
    let row = t
        .app
        .db
        .prediction(&OrgId::local(), pid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, retainwise::db::JobStatus::Failed);
    let stored = row.error_message.unwrap();
    assert!(
        !leaks(&stored),
        "the stored error shows internals: {stored}"
    );
    assert!(
        stored.starts_with("dead-lettered: after 3 attempts")
            && stored.contains("contact the operator"),
        "{stored}"
    );
    let api = t.prediction(&id).await;
    assert_eq!(api["status"], "FAILED");
    let answered = api["error_message"].as_str().unwrap();
    assert_eq!(answered, stored);
    let page = t
        .get(&format!("/predictions/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains(&root), "the web page shows a server path");

    // The operator's record keeps the cause with its path.
    let dead = t.app.queue.dead(10).await.unwrap();
    let kept = dead[0].last_error.as_deref().unwrap();
    assert!(kept.contains(&root), "the queue lost the cause: {kept}");
}

/// Unmounts the test's tmpfs when the test ends, however it ends.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// An upload to a storage folder on a full file system (a 64 KiB tmpfs) is answered 507 with a
/// sentence naming the cause, not 500 "please try again".
#[tokio::test]
async fn an_upload_to_a_full_disk_answers_507() {
    let mount = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(mount.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        loud("SKIPPED an_upload_to_a_full_disk_answers_507: cannot mount a tmpfs (needs root)");
        return;
    }
    let _guard = Mounted(mount.path().to_owned());
    let objects = mount.path().join("objects");
    let t = TestApp::spawn_with(|c| c.storage = StorageLocation::Local(objects.clone())).await;
    let response = t
        .upload("customers.csv", synthetic_telco(3000).into_bytes())
        .await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(status, 507, "{body}");
    assert!(
        body.contains("storage is full") && body.contains("contact the operator"),
        "{body}"
    );
    assert!(
        !body.contains(&mount.path().to_string_lossy().into_owned()),
        "{body}"
    );
    // A file small enough to fit is refused too, before it is stored: a worker could not
    // store its results, and the job would only fail later.
    let response = t.upload("small.csv", synthetic_telco(3).into_bytes()).await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(status, 507, "{body}");
    assert!(body.contains("MiB needed"), "{body}");
    let listed = t.get("/api/predictions").await.text().await.unwrap();
    assert!(
        !listed.contains("small.csv"),
        "nothing was queued: {listed}"
    );
}

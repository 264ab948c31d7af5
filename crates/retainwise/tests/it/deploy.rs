//! What a deployment relies on, through the real binary: `retainwise migrate` and
//! `--no-migrate`, `GET /__version`, the queue's CloudWatch EMF lines on stdout, secrets from
//! `*_FILE` variables (never printed), and `retainwise env-vars`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_retainwise");

/// `retainwise ARGS` on the embedded default in `data`, whatever the test environment exports.
fn retainwise(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("RETAINWISE_DATA_DIR", data)
        .env("RETAINWISE_DB_CONNECT_TIMEOUT_SECS", "0")
        .env_remove("DATABASE_URL")
        .env_remove("RETAINWISE_DATABASE_URL")
        .env_remove("RETAINWISE_STORAGE_URL")
        .env_remove("RETAINWISE_QUEUE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run retainwise");
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[tokio::test]
async fn migrate_runs_once_and_no_migrate_roles_check_the_schema_answer_version_and_emit_emf() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    // Before `migrate`: a role told not to migrate refuses to start and says what to run.
    let (ok, _, err) = run(&mut retainwise(data, &["worker", "--no-migrate"], &[]));
    assert!(!ok, "a worker on an empty database must not start: {err}");
    assert!(err.contains("retainwise migrate"), "{err}");

    let (ok, out, err) = run(&mut retainwise(data, &["migrate"], &[]));
    assert!(ok, "{out}{err}");
    assert!(out.contains("are applied"), "{out}");
    // Idempotent: a second run (the next release with no new migration) changes nothing.
    let (ok, out2, err) = run(&mut retainwise(data, &["migrate"], &[]));
    assert!(ok && out2 == out, "{out2}{err}");

    // Now `serve` starts without migrating (the variable form, as a task definition sets it),
    // answers /__version and prints queue metrics as EMF lines on stdout.
    let mut child = retainwise(
        data,
        &["serve"],
        &[
            ("RETAINWISE_NO_MIGRATE", "true"),
            ("RETAINWISE_EMF_INTERVAL_SECS", "1"),
            ("RETAINWISE_EMF_NAMESPACE", "RetainwiseTest"),
            ("RETAINWISE_BIND", "127.0.0.1:0"),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("retainwise listening on ") {
                let _ = addr_tx.send(addr.trim().to_owned());
            }
        }
    });
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = line_tx.send(line);
        }
    });
    let base = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("serve --no-migrate did not start on a migrated database");

    let version: Value = reqwest::get(format!("{base}/__version"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"), "{version}");
    assert!(version.get("git_commit").is_some() && version.get("build_time").is_some());

    let line = line_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("no EMF line on stdout");
    let emf: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let spec = &emf["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(spec["Namespace"], "RetainwiseTest", "{line}");
    assert_eq!(emf["Queue"], "predictions");
    assert_eq!(emf["QueueDepth"], 0, "{line}");
    for m in spec["Metrics"].as_array().unwrap() {
        assert!(emf[m["Name"].as_str().unwrap()].is_u64(), "{line}");
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}

#[test]
fn secrets_come_from_files_and_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = dir.path().join("elsewhere.db");
    let url_file = dir.path().join("database-url");
    std::fs::write(&url_file, format!("sqlite://{}\n", db.display())).unwrap();
    let file = url_file.to_str().unwrap();

    let (ok, out, err) = run(&mut retainwise(
        &data,
        &["migrate"],
        &[("RETAINWISE_DATABASE_URL_FILE", file)],
    ));
    assert!(ok, "{out}{err}");
    assert!(db.exists(), "the URL from the file was not used: {err}");

    // Both forms at once: refused, naming both.
    let (ok, _, err) = run(&mut retainwise(
        &data,
        &["migrate"],
        &[
            ("RETAINWISE_DATABASE_URL_FILE", file),
            ("RETAINWISE_DATABASE_URL", "sqlite:///tmp/x.db"),
        ],
    ));
    assert!(!ok);
    assert!(
        err.contains("RETAINWISE_DATABASE_URL and RETAINWISE_DATABASE_URL_FILE"),
        "{err}"
    );

    // A password read from a file stays out of every message, even when the database is down.
    let secret_file = dir.path().join("pg-url");
    std::fs::write(
        &secret_file,
        "postgres://retainwise:Sup3rS3cretPw@127.0.0.1:9/retainwise",
    )
    .unwrap();
    let (ok, out, err) = run(&mut retainwise(
        &data,
        &["migrate"],
        &[("DATABASE_URL_FILE", secret_file.to_str().unwrap())],
    ));
    assert!(!ok, "nothing listens on port 9: {out}{err}");
    assert!(
        err.contains("127.0.0.1:9"),
        "the error names the database: {err}"
    );
    assert!(
        !out.contains("Sup3rS3cretPw") && !err.contains("Sup3rS3cretPw"),
        "{out}{err}"
    );

    // A file whose content does not parse: the message names the _FILE variable and never
    // shows the content.
    let bad = dir.path().join("receives");
    std::fs::write(&bad, "three-Sup3rS3cret\n").unwrap();
    let (ok, out, err) = run(&mut retainwise(
        &data,
        &["migrate"],
        &[("RETAINWISE_MAX_RECEIVES_FILE", bad.to_str().unwrap())],
    ));
    assert!(!ok, "{out}{err}");
    assert!(err.contains("RETAINWISE_MAX_RECEIVES_FILE"), "{err}");
    assert!(
        !out.contains("Sup3rS3cret") && !err.contains("Sup3rS3cret"),
        "{out}{err}"
    );

    // AWS's own _FILE variables are the SDK's: the ECS agent sets the token and its file.
    let token = dir.path().join("token");
    std::fs::write(&token, "ecs-token").unwrap();
    let (ok, out, err) = run(&mut retainwise(
        &data,
        &["env-vars"],
        &[
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-token"),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token.to_str().unwrap(),
            ),
        ],
    ));
    assert!(ok, "{out}{err}");
}

#[test]
fn env_vars_lists_what_the_binary_reads() {
    let (ok, out, err) = run(Command::new(BIN).arg("env-vars"));
    assert!(ok, "{err}");
    let vars: Vec<&str> = out.lines().collect();
    for expected in [
        "RETAINWISE_DATABASE_URL",
        "RETAINWISE_QUEUE_URL",
        "RETAINWISE_MAX_RECEIVES",
        "RETAINWISE_VISIBILITY_TIMEOUT_SECS",
        "RETAINWISE_NO_MIGRATE",
        "RETAINWISE_EMF_INTERVAL_SECS",
        "DATABASE_URL",
        "AWS_REGION",
    ] {
        assert!(vars.contains(&expected), "{expected} not in {vars:?}");
    }
    let mut sorted = vars.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, vars, "sorted, no duplicates");
}

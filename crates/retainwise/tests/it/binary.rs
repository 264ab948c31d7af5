//! The real `retainwise` binary as an operator runs it: killed mid-job, stopped with SIGTERM,
//! and `retainwise predict` agreeing with the service.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_retainwise");

/// A `retainwise serve` child process and everything it printed to stderr.
struct Served {
    child: Child,
    base: String,
    stderr: Arc<Mutex<String>>,
}

fn serve(data: &Path, extra_env: &[(&str, &str)]) -> Served {
    let mut cmd = Command::new(BIN);
    crate::helpers::embedded_serve(&mut cmd, data);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start retainwise serve");
    let stderr = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = BufReader::new(child.stderr.take().unwrap());
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("retainwise listening on ") {
                let _ = tx.send(addr.trim().to_owned());
            }
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "serve did not report its address:\n{}",
                stderr.lock().unwrap()
            )
        });
    Served {
        child,
        base,
        stderr,
    }
}

async fn upload(client: &reqwest::Client, base: &str, name: &str, bytes: Vec<u8>) -> String {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
    let form = reqwest::multipart::Form::new().part("file", part);
    let r = client
        .post(format!("{base}/api/csv"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    body["prediction_id"].as_str().unwrap().to_owned()
}

async fn status(client: &reqwest::Client, base: &str, id: &str) -> Value {
    let body: Value = client
        .get(format!("{base}/api/predictions/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["prediction"].clone()
}

async fn wait_for(
    client: &reqwest::Client,
    base: &str,
    id: &str,
    want: &[&str],
    timeout: Duration,
) -> Value {
    let start = Instant::now();
    loop {
        let p = status(client, base, id).await;
        if want.iter().any(|w| p["status"] == *w) || start.elapsed() > timeout {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_job_killed_mid_run_completes_exactly_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("RETAINWISE_VISIBILITY_TIMEOUT_SECS", "2"),
        ("RETAINWISE_MAX_UPLOAD_BYTES", "200000000"),
    ];
    let rows = 400_000;
    let csv = synthetic_telco(rows).into_bytes();
    let client = reqwest::Client::new();

    let mut first = serve(dir.path(), &env);
    let id = upload(&client, &first.base, "big.csv", csv).await;
    let p = wait_for(
        &client,
        &first.base,
        &id,
        &["RUNNING", "COMPLETED"],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        p["status"], "RUNNING",
        "the job must be caught mid-run: {p}"
    );
    first.child.kill().unwrap(); // SIGKILL: no clean-up, no hand-back
    first.child.wait().unwrap();

    let mut second = serve(dir.path(), &env);
    let p = wait_for(
        &client,
        &second.base,
        &id,
        &["COMPLETED", "FAILED"],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        p["status"],
        "COMPLETED",
        "{p}\n{}",
        second.stderr.lock().unwrap()
    );
    assert_eq!(
        p["attempt"], 2,
        "one interrupted attempt, one that finished"
    );
    assert_eq!(p["rows_processed"], rows as u64);
    let text = client
        .get(format!("{}/api/predictions/{id}/results", second.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(parse_csv(&text).1.len(), rows);
    // Exactly once: nothing left in the queue, and one result object.
    let results: Vec<_> = std::fs::read_dir(dir.path().join("objects/results/local"))
        .unwrap()
        .collect();
    assert_eq!(results.len(), 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        status(&client, &second.base, &id).await["attempt"],
        2,
        "no third run after the visibility timeout"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &second.child.id().to_string()])
        .status();
    second.child.wait().unwrap();
}

#[tokio::test]
async fn sigterm_finishes_and_prints_a_summary_and_predict_agrees_with_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let (name, bytes) = match telco_csv() {
        Some(path) => ("telco.csv", std::fs::read(path).unwrap()),
        None => ("synthetic.csv", synthetic_telco(2_000).into_bytes()),
    };
    let client = reqwest::Client::new();
    let mut served = serve(dir.path(), &[]);
    let id = upload(&client, &served.base, name, bytes.clone()).await;
    let p = wait_for(
        &client,
        &served.base,
        &id,
        &["COMPLETED", "FAILED"],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(p["status"], "COMPLETED", "{p}");
    let from_service = client
        .get(format!("{}/api/predictions/{id}/results", served.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let _ = Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status();
    let start = Instant::now();
    let code = loop {
        if let Some(code) = served.child.try_wait().unwrap() {
            break code;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "exit {code:?}");
    std::thread::sleep(Duration::from_millis(100));
    let log = served.stderr.lock().unwrap().clone();
    assert!(log.contains("worker_shutdown"), "{log}");
    assert!(
        log.contains("1 processed, 1 completed, 0 failed, success rate 100.0%"),
        "{log}"
    );

    let input = dir.path().join("input.csv");
    let output = dir.path().join("offline.csv");
    std::fs::write(&input, &bytes).unwrap();
    let run = Command::new(BIN)
        .arg("predict")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        from_service,
        "offline and service results differ"
    );
}

#[test]
fn predict_leaves_no_output_file_when_it_fails() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("header_only.csv");
    std::fs::write(&input, format!("{TELCO_HEADER}\n")).unwrap();
    let output = dir.path().join("out.csv");
    let run = Command::new(BIN)
        .arg("predict")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(
        !output.exists(),
        "a failed run must not leave a results file"
    );
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "no temporary file left behind either");
}

/// `predict -o PATH` replaces only regular files, atomically and keeping their mode; a symbolic
/// link stays a link (its target gets the results), a FIFO and a character device are written
/// through and stay what they were, and `-o -` is standard output. The device is made in a
/// temporary folder (`mknod DIR/null c 1 3`), never the system's own.
#[test]
fn predict_output_replaces_only_regular_files() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.csv");
    std::fs::write(&input, synthetic_telco(20)).unwrap();
    let predict = |out: &Path| {
        let run = Command::new(BIN)
            .arg("predict")
            .arg(&input)
            .arg("-o")
            .arg(out)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "-o {}: {}",
            out.display(),
            String::from_utf8_lossy(&run.stderr)
        );
        run
    };

    // The output, or the report, naming the input file (by any spelling or through a link) is
    // refused before anything is written, and the customers file stays as it was.
    let link = dir.path().join("link-to-input.csv");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    // A link to a file that does not exist yet, and that file as the other output.
    let dangling = dir.path().join("dangling.csv");
    std::os::unix::fs::symlink("not-yet.csv", &dangling).unwrap();
    for args in [
        vec![
            "-o".to_owned(),
            dangling.display().to_string(),
            "--report".to_owned(),
            dir.path().join("not-yet.csv").display().to_string(),
        ],
        vec!["-o".to_owned(), input.display().to_string()],
        vec!["-o".to_owned(), link.display().to_string()],
        vec!["--report".to_owned(), input.display().to_string()],
        vec![
            "-o".to_owned(),
            dir.path().join("same.csv").display().to_string(),
            "--report".to_owned(),
            dir.path().join(".").join("same.csv").display().to_string(),
        ],
    ] {
        let run = Command::new(BIN)
            .arg("predict")
            .arg(&input)
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(
            !run.status.success() && err.contains("is both the"),
            "{args:?}: {err}"
        );
        assert_eq!(
            std::fs::read_to_string(&input).unwrap(),
            synthetic_telco(20)
        );
    }

    // `-o -`: standard output, the reference for the others.
    let expected = predict(Path::new("-")).stdout;
    assert!(String::from_utf8_lossy(&expected).starts_with("customer_id"));
    assert!(!dir.path().join("-").exists(), "no file named '-'");

    // A new file: mode 0666 less the umask, like any new file here.
    let fresh = dir.path().join("fresh.csv");
    predict(&fresh);
    let probe = dir.path().join("probe");
    std::fs::File::create(&probe).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&fresh), mode(&probe), "a new file follows the umask");
    assert_eq!(std::fs::read(&fresh).unwrap(), expected);

    // An existing regular file keeps its mode.
    let existing = dir.path().join("existing.csv");
    std::fs::write(&existing, "old").unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o640)).unwrap();
    predict(&existing);
    assert_eq!(mode(&existing), 0o640);
    assert_eq!(std::fs::read(&existing).unwrap(), expected);

    // A symbolic link stays a link; its target holds the results.
    let target = dir.path().join("target.csv");
    std::fs::write(&target, "old").unwrap();
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    predict(&link);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), expected);

    // A FIFO is written through and stays a FIFO.
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    predict(&fifo);
    assert_eq!(reader.join().unwrap(), expected);
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    // A character device (a null device of our own) is written through and stays a device.
    let null = dir.path().join("null");
    let made = Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    if made.success() {
        predict(&null);
        let kind = std::fs::symlink_metadata(&null).unwrap().file_type();
        assert!(kind.is_char_device(), "the device was replaced: {kind:?}");
    } else {
        loud("*** SKIPPED: mknod needs root; the character-device case of predict -o did not run ***");
    }

    // Nothing left behind: no temporary files beside the outputs.
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".retainwise-") || n.starts_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

/// `--bind localhost:PORT` (a host name, not only an IP address) works; a bad value set in the
/// environment is reported with the variable's name; `predict` refuses thresholds `serve`
/// refuses, naming the flags.
#[test]
fn names_and_settings_are_checked_like_the_service_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path(), &[("RETAINWISE_BIND", "localhost:0")]);
    assert!(
        served.base.starts_with("http://127.0.0.1:"),
        "localhost resolved to loopback: {}",
        served.base
    );
    let _ = served.child.kill();
    let _ = served.child.wait();

    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("RETAINWISE_DATA_DIR", dir.path().join("data"))
            .env_remove("RETAINWISE_DATABASE_URL")
            .env_remove("DATABASE_URL");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (var, value) in [
        ("RETAINWISE_MAX_UPLOAD_BYTES", "ten"),
        ("RETAINWISE_BIND", "nowhere"),
        ("RETAINWISE_RATE_LIMIT_PER_MINUTE", "0"),
        ("RETAINWISE_HIGH_RISK", "2"),
        ("RETAINWISE_QUEUE_URL", "kafka://x"),
    ] {
        let (ok, err) = run(&["serve"], &[(var, value)]);
        assert!(!ok, "{var}={value} was accepted");
        assert!(
            err.contains(var),
            "{var}={value}: the error does not name it: {err}"
        );
    }
    let input = dir.path().join("in.csv");
    std::fs::write(&input, synthetic_telco(5)).unwrap();
    let (ok, err) = run(
        &[
            "predict",
            input.to_str().unwrap(),
            "--high-risk",
            "0.3",
            "--medium-risk",
            "0.5",
        ],
        &[],
    );
    assert!(!ok);
    assert!(
        err.contains("--medium-risk") && err.contains("--high-risk"),
        "{err}"
    );
    // A value from the environment is named by its variable first, for every command.
    let (ok, err) = run(&["serve"], &[("RETAINWISE_HIGH_RISK", "abc")]);
    assert!(!ok);
    assert!(
        err.starts_with("error: environment variable RETAINWISE_HIGH_RISK:"),
        "{err}"
    );
    // `predict` reads the thresholds from the same variables as `serve`.
    let output = dir.path().join("low.csv");
    let (ok, err) = run(
        &[
            "predict",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ],
        &[
            ("RETAINWISE_HIGH_RISK", "0.000001"),
            ("RETAINWISE_MEDIUM_RISK", "0.0000005"),
        ],
    );
    assert!(ok, "{err}");
    let scored = std::fs::read_to_string(&output).unwrap();
    let levels: Vec<&str> = scored
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap())
        .collect();
    assert_eq!(levels, ["high"; 5], "{scored}");
    let (ok, err) = run(
        &[
            "predict",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ],
        &[("RETAINWISE_MEDIUM_RISK", "abc")],
    );
    assert!(!ok && err.contains("RETAINWISE_MEDIUM_RISK"), "{err}");
}

/// One file, many workers, with the real binary: `serve` is SIGKILLed while the pieces of a
/// file cut in ten are being scored (at least one recorded, the others not); a restarted
/// `serve` scores what was lost and merges, and the result is the bytes of `retainwise
/// predict` on the whole file.
#[tokio::test]
async fn a_process_killed_mid_piece_loses_only_its_pieces_and_the_result_is_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("RETAINWISE_VISIBILITY_TIMEOUT_SECS", "2"),
        ("RETAINWISE_MAX_UPLOAD_BYTES", "200000000"),
        ("RETAINWISE_CHUNK_ROWS", "20000"),
    ];
    let rows = 200_000;
    let csv = synthetic_telco(rows).into_bytes();
    let client = reqwest::Client::new();

    let mut first = serve(dir.path(), &env);
    let id = upload(&client, &first.base, "big.csv", csv.clone()).await;
    let start = Instant::now();
    let p = loop {
        let p = status(&client, &first.base, &id).await;
        let done = p["chunks_done"].as_u64().unwrap_or(0);
        if done >= 1 || p["status"] != "QUEUED" && p["status"] != "RUNNING" {
            break p;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "{p}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(p["status"], "RUNNING", "caught while its pieces run: {p}");
    assert_eq!(p["chunks_total"], 10, "{p}");
    assert!(p["chunks_done"].as_u64() < Some(10), "{p}");
    first.child.kill().unwrap(); // SIGKILL: no clean-up, no hand-back
    first.child.wait().unwrap();

    let mut second = serve(dir.path(), &env);
    let p = wait_for(
        &client,
        &second.base,
        &id,
        &["COMPLETED", "FAILED"],
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(
        p["status"],
        "COMPLETED",
        "{p}\n{}",
        second.stderr.lock().unwrap()
    );
    assert_eq!(p["chunks_done"], 10, "{p}");
    assert_eq!(p["rows_processed"], rows as u64);
    let from_service = client
        .get(format!("{}/api/predictions/{id}/results", second.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let input = dir.path().join("input.csv");
    let output = dir.path().join("offline.csv");
    std::fs::write(&input, &csv).unwrap();
    let run = Command::new(BIN)
        .arg("predict")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        std::fs::read_to_string(&output).unwrap() == from_service,
        "the service's result after the kill is not the bytes of retainwise predict"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &second.child.id().to_string()])
        .status();
    second.child.wait().unwrap();
}

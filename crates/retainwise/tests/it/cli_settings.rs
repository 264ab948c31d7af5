//! The `--bind` flag takes a host name as `RETAINWISE_BIND` does
//! (`binary.rs` covers the variable, the variables' names in errors and `predict`'s
//! thresholds).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_retainwise");

#[test]
fn bind_flag_takes_localhost() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    crate::helpers::embedded_serve(&mut cmd, dir.path());
    let mut child = cmd
        .args(["--bind", "localhost:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("retainwise listening on ") {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let addr = addr.expect("serve --bind localhost:0 reported its address");
    assert!(addr.starts_with("http://127.0.0.1:"), "{addr}");
}

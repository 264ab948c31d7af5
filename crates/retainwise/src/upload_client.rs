//! `retainwise upload FILE --server URL`: the direct upload API's client ([`crate::api::direct_upload`])
//! for a terminal. It hashes the file (SHA-256, checked by the server on completion), declares
//! the upload, sends each part to the URL it was given (S3 or the API itself: the same code)
//! with a progress bar, and after a failed part asks the server which parts are present and
//! sends the rest (up to [`ATTEMPTS`] tries per part, backing off). A run that was stopped
//! resumes with `--resume UPLOAD_ID`, sending only the missing parts. It prints the prediction
//! id and, with `--wait`, waits for the prediction and prints where its results are.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Tries per part before the upload gives up (it can then be resumed).
pub const ATTEMPTS: u32 = 6;

/// What `retainwise upload` was asked to do.
#[derive(Debug, Clone)]
pub struct UploadArgs<'a> {
    /// The CSV to send.
    pub file: &'a Path,
    /// The server's base URL, e.g. `https://churn.example.com`.
    pub server: &'a str,
    /// An API key (`rw_…`) or a bearer token; none for a server without sign-in.
    pub api_key: Option<&'a str>,
    /// An upload to resume instead of declaring a new one.
    pub resume: Option<&'a str>,
    /// Wait for the prediction to finish (see [`wait_for`]).
    pub wait: bool,
    /// `YYYY-MM-DD` for a model's date columns.
    pub reference_date: Option<&'a str>,
}

struct Client {
    http: reqwest::Client,
    server: String,
    key: Option<String>,
}

impl Client {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.server));
        if let Some(key) = &self.key {
            r = r.bearer_auth(key);
        }
        r
    }

    /// Sends `r` and reads the JSON answer; a refusal is an error carrying the server's
    /// `detail` and status.
    async fn json(&self, r: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let response = r.send().await.context("the server cannot be reached")?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }
}

fn detail(body: &Value) -> String {
    body["detail"].as_str().unwrap_or("no detail").to_owned()
}

/// Runs the upload; returns the prediction id.
///
/// # Errors
/// The file cannot be read, the server refuses (its sentence is kept), or a part still fails
/// after [`ATTEMPTS`] tries (the message says how to resume).
pub async fn run(args: UploadArgs<'_>) -> anyhow::Result<String> {
    let client = Client {
        http: reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?,
        server: args.server.trim_end_matches('/').to_owned(),
        key: args.api_key.map(str::to_owned),
    };
    let size = tokio::fs::metadata(args.file)
        .await
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    let mut upload = match args.resume {
        Some(id) => status(&client, id).await?,
        None => {
            let sha256 = hash(args.file, size).await?;
            let name = args
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "upload.csv".to_owned());
            let mut body = json!({"filename": name, "size": size, "sha256": sha256});
            if let Some(date) = args.reference_date {
                body["reference_date"] = json!(date);
            }
            let (code, answer) = client
                .json(
                    client
                        .request(reqwest::Method::POST, "/api/uploads")
                        .json(&body),
                )
                .await?;
            if code != 201 {
                bail!(
                    "the server refused the upload ({code}): {}",
                    detail(&answer)
                );
            }
            answer
        }
    };
    let id = upload["upload_id"].as_str().unwrap_or_default().to_owned();
    if upload["size"].as_u64() != Some(size) {
        bail!(
            "upload {id} was declared with {} bytes, but {} has {size}",
            upload["size"],
            args.file.display()
        );
    }
    eprintln!(
        "upload {id}: {size} bytes in {} part(s); if this run stops, resume it with --resume {id}",
        upload["parts_total"]
    );
    let bar = progress_bar(size);
    let prediction = loop {
        send_missing(&client, &id, args.file, &mut upload, &bar).await?;
        let (code, answer) = client
            .json(client.request(
                reqwest::Method::POST,
                &format!("/api/uploads/{id}/complete"),
            ))
            .await?;
        match code {
            202 => {
                break answer["prediction_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            }
            // A part went missing after all (or a retry raced): look again and send it.
            409 if detail(&answer).contains("missing") => {
                upload = status(&client, &id).await?;
            }
            _ => bail!(
                "completing upload {id} failed ({code}): {}",
                detail(&answer)
            ),
        }
    };
    bar.finish_and_clear();
    eprintln!(
        "uploaded {}; prediction {prediction} queued",
        args.file.display()
    );
    if args.wait {
        wait(&client, &prediction).await?;
    }
    Ok(prediction)
}

async fn status(client: &Client, id: &str) -> anyhow::Result<Value> {
    let (code, answer) = client
        .json(client.request(reqwest::Method::GET, &format!("/api/uploads/{id}")))
        .await?;
    if code != 200 {
        bail!(
            "upload {id} cannot be resumed ({code}): {}",
            detail(&answer)
        );
    }
    if answer["status"] != "PENDING" && answer["status"] != "COMPLETED" {
        bail!(
            "upload {id} is {}: {}; start a new upload",
            answer["status"],
            answer["error"].as_str().unwrap_or("it takes no more bytes")
        );
    }
    Ok(answer)
}

/// (part number, offset, length, url) of every part `upload` lists.
fn parts(upload: &Value) -> Vec<(u32, u64, u64, String)> {
    if let Some(url) = upload["url"].as_str() {
        let size = upload["size"].as_u64().unwrap_or(0);
        return vec![(1, 0, size, url.to_owned())];
    }
    let part_size = upload["part_size"].as_u64().unwrap_or(0);
    upload["parts"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| {
                    let n = p["part_number"].as_u64().unwrap_or(1) as u32;
                    (
                        n,
                        u64::from(n - 1) * part_size,
                        p["size"].as_u64().unwrap_or(0),
                        p["url"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sends every part the server does not hold; after a failure asks again which are present
/// (and for fresh URLs), backing off, up to [`ATTEMPTS`] tries of the same part.
async fn send_missing(
    client: &Client,
    id: &str,
    file: &Path,
    upload: &mut Value,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    if upload["status"] == "COMPLETED" {
        return Ok(());
    }
    let mut failures = 0u32;
    loop {
        let present: Vec<u64> = upload["parts_present"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let all = parts(upload);
        let done: u64 = all
            .iter()
            .filter(|p| present.contains(&u64::from(p.0)))
            .map(|p| p.2)
            .sum();
        bar.set_position(done);
        let mut failed = None;
        for (n, offset, len, url) in all
            .into_iter()
            .filter(|p| !present.contains(&u64::from(p.0)))
        {
            match send_part(client, file, offset, len, &url, bar).await {
                Ok(()) => {}
                Err(e) => {
                    failed = Some((n, e));
                    break;
                }
            }
        }
        let Some((n, e)) = failed else {
            return Ok(());
        };
        failures += 1;
        if failures >= ATTEMPTS {
            bail!(
                "part {n} of upload {id} failed {ATTEMPTS} times (last: {e:#}); run again with --resume {id} to send only what is missing"
            );
        }
        let pause = Duration::from_millis(500 * (1 << failures.min(6)));
        bar.suspend(|| {
            eprintln!(
                "part {n} broke off ({e:#}); retrying the missing parts in {:.1} s",
                pause.as_secs_f64()
            )
        });
        tokio::time::sleep(pause).await;
        *upload = loop {
            match status(client, id).await {
                Ok(u) => break u,
                Err(e) if failures < ATTEMPTS => {
                    failures += 1;
                    bar.suspend(|| {
                        eprintln!("asking which parts arrived failed ({e:#}); retrying")
                    });
                    tokio::time::sleep(pause).await;
                }
                Err(e) => return Err(e),
            }
        };
        if upload["status"] == "COMPLETED" {
            return Ok(());
        }
    }
}

/// PUTs `len` bytes of `file` from `offset` to `url`, streamed (one chunk in memory), with no
/// credentials (a presigned S3 URL refuses a second authorisation); the content length is set,
/// as S3 signed it.
async fn send_part(
    client: &Client,
    file: &Path,
    offset: u64,
    len: u64,
    url: &str,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<()> {
    let mut f = tokio::fs::File::open(file).await?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let start = bar.position();
    let counted = bar.clone();
    let stream =
        tokio_util::io::ReaderStream::with_capacity(f.take(len), 256 * 1024).map(move |chunk| {
            if let Ok(c) = &chunk {
                counted.inc(c.len() as u64);
            }
            chunk
        });
    let result = client
        .http
        .put(url)
        .header(reqwest::header::CONTENT_LENGTH, len)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    let outcome = match result {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => {
            let code = r.status();
            let text = r.text().await.unwrap_or_default();
            Err(anyhow::anyhow!(
                "{code}: {}",
                text.chars().take(300).collect::<String>()
            ))
        }
        Err(e) => Err(anyhow::Error::new(e)),
    };
    if outcome.is_err() {
        bar.set_position(start);
    }
    outcome
}

/// The file's SHA-256 (lower-case hex), read once, with a progress bar.
async fn hash(file: &Path, size: u64) -> anyhow::Result<String> {
    let bar = progress_bar(size);
    bar.set_message("checksum");
    let mut f = tokio::fs::File::open(file).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn progress_bar(size: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(size);
    let style = indicatif::ProgressStyle::with_template(
        "{msg:8} [{bar:40}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_message("upload");
    bar
}

/// Polls `prediction` on `server` until it finishes; prints (stdout) where its results are, or
/// fails with its error.
///
/// # Errors
/// The server cannot be reached or refuses, or the prediction FAILED or was CANCELLED.
pub async fn wait_for(server: &str, api_key: Option<&str>, prediction: &str) -> anyhow::Result<()> {
    let client = Client {
        http: reqwest::Client::new(),
        server: server.trim_end_matches('/').to_owned(),
        key: api_key.map(str::to_owned),
    };
    wait(&client, prediction).await
}

/// [`wait_for`] with a client.
async fn wait(client: &Client, prediction: &str) -> anyhow::Result<()> {
    loop {
        let (code, answer) = client
            .json(client.request(
                reqwest::Method::GET,
                &format!("/api/predictions/{prediction}"),
            ))
            .await?;
        if code != 200 {
            bail!(
                "reading prediction {prediction} failed ({code}): {}",
                detail(&answer)
            );
        }
        let p = &answer["prediction"];
        match p["status"].as_str().unwrap_or_default() {
            "COMPLETED" => {
                println!("{}/api/predictions/{prediction}/results", client.server);
                return Ok(());
            }
            "FAILED" | "CANCELLED" => bail!(
                "prediction {prediction} is {}: {}",
                p["status"],
                p["error_message"].as_str().unwrap_or("no reason given")
            ),
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

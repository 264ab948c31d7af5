//! One file, many workers: a prediction whose file holds more than `RETAINWISE_CHUNK_ROWS`
//! rows is cut in pieces ([`cut`], run by the worker that took the prediction: its
//! coordinator), each piece is a job of the `predict_piece` kind ([`PieceJob`]) on any worker,
//! and the last piece to be recorded queues the merge (`worker/merge.rs`), which completes the
//! prediction. The cutting and the scoring of a piece are `retainwise_model::chunks`'.
//!
//! Invariants:
//! - The pieces, `chunks_total` and the plan every piece reads with (model, reference date)
//!   are written with the pieces' messages in one transaction, fenced by the coordinator's
//!   lease; the prediction stays RUNNING (handed on: [`super::Job::handed_on`]).
//! - A piece completing adds one to `chunks_done` in the transaction that records it; the one
//!   that makes it `chunks_total` queues the merge in that transaction: exactly one merge.
//! - A piece failing for good (its own error, or dead-lettered) fails the prediction with its
//!   reason and cancels the other pieces in the transaction that records it: no partial
//!   result is published. A cancelled prediction cancels its pieces (`JobRow::cancel`).

use std::sync::atomic::Ordering;

use retainwise_model::chunks::{self, Piece, Split};
use retainwise_model::ScoreOptions;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::kind::{Checks, Events, Job, JobContext, LogId};
use super::prediction::{Recorded, UntilLost};
use super::JobError;
use crate::app::App;
use crate::db::{JobRow, JobStatus, Value};
use crate::domain::{ObjectKey, OrgId, PredictionId, UploadId};
use crate::message::PredictionJob;
use crate::storage::StorageError;
use crate::time::now_ms;

/// What every piece of a prediction reads with, decided once by its coordinator; stored as
/// the prediction's `chunk_plan` (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ChunkPlan {
    /// The model that scores the file (the recorded one, or the baseline for a file only it
    /// reads).
    pub model_id: String,
    /// The file's reference date (`YYYY-MM-DD`), given or found in a first pass.
    pub reference_date: Option<String>,
    /// True when it was found in the file, not given.
    pub reference_found: bool,
    /// Where a found reference date came from, in words (absent in plans stored before).
    #[serde(default)]
    pub reference_source: Option<String>,
    /// The file's first bytes each piece reads to open it as the whole file is opened.
    pub head_bytes: u64,
    /// The upload's size in bytes.
    pub size: u64,
    /// The owner's challenger model when the file was cut (other than `model_id`): every
    /// piece is also scored by it, and the merge stores the shadow result one pass would
    /// (`outcomes::challenger`). Absent in plans stored before.
    #[serde(default)]
    pub challenger: Option<String>,
}

impl ChunkPlan {
    /// The plan of prediction `id`, as its coordinator stored it.
    pub(super) async fn read(app: &App, user: &OrgId, id: PredictionId) -> Result<Self, JobError> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT chunk_plan FROM predictions WHERE id = $1 AND user_id = $2")
                .bind(id.to_string())
                .bind(user.as_str())
                .fetch_optional(app.db.pool())
                .await?;
        let text = row.and_then(|(p,)| p).ok_or(JobError::Stopped)?;
        serde_json::from_str(&text).map_err(|e| {
            JobError::Rejected(format!(
                "the plan of this file's pieces could not be read back ({e}); upload it again"
            ))
        })
    }

    /// The scoring options of every piece: the prediction's recorded choices with the plan's
    /// reference date.
    pub(super) fn options(&self, app: &App, recorded: &Recorded) -> Result<ScoreOptions, JobError> {
        let reference_date = self
            .reference_date
            .as_deref()
            .map(retainwise_model::dates::parse_reference)
            .transpose()
            .map_err(JobError::Rejected)?;
        Ok(ScoreOptions {
            thresholds: app.config.thresholds.clone(),
            reference_date,
            reference_date_found: self.reference_found,
            reference_date_source: self.reference_source.clone(),
            mapping: recorded.manual.clone(),
            explain: recorded.explain,
            ..ScoreOptions::default()
        })
    }
}

/// The coordinator's step: decides the model and reference date as one pass would
/// (`plan::plan`), reads the whole downloaded file once to find its record starts (and its
/// reference date, when none was given, in the same pass), and, when it
/// has more than one piece's rows, writes the pieces and queues their jobs in one transaction
/// fenced by this attempt's lease. True when the file was cut (the prediction is handed on);
/// false when it is scored in one pass (a smaller file, a UTF-16 or windows-1252 one, or one the
/// scorer refuses: the one pass then reports why, with its validation report).
///
/// # Errors
/// Reading the file or the database; [`JobError::Stopped`] when the lease was lost.
pub(super) async fn cut(
    app: &App,
    job: &PredictionJob,
    input: &std::path::Path,
    size: u64,
    recorded: &Recorded,
    ctx: &JobContext,
) -> Result<bool, JobError> {
    let model = recorded.model.clone();
    let baseline = app.registry.baseline().clone();
    let options = ScoreOptions {
        thresholds: app.config.thresholds.clone(),
        reference_date: recorded.reference_date,
        mapping: recorded.manual.clone(),
        explain: recorded.explain,
        ..ScoreOptions::default()
    };
    let path = input.to_owned();
    let lost = ctx.stop_flag();
    let rows_per_piece = app.config.chunk_rows;
    let found = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let file = std::fs::File::open(&path)?;
        let mut reader = UntilLost {
            inner: std::io::BufReader::with_capacity(1 << 20, file),
            lost,
        };
        // The model as `plan::plan` chooses it; the reference date, when none was given, found
        // in the pass that cuts the file (as `plan::plan`'s own first pass would find it), so
        // the coordinator reads the file once.
        let chosen = retainwise_model::plan::choose_model(
            &model,
            Some(&baseline),
            &mut reader,
            &options.mapping,
        )?;
        let given = options.reference_date;
        let split = match given {
            Some(date) => chunks::split(chosen, &mut reader, &options, rows_per_piece)
                .map(|split| (split, (Some(date), None))),
            None => chunks::split_finding_date(chosen, &mut reader, &options, rows_per_piece),
        };
        let split = split.map(|(split, (date, source))| (split, date, source));
        Ok((chosen.id().to_owned(), given.is_none(), split))
    })
    .await
    .map_err(|source| JobError::Task {
        what: "cutting the file",
        source,
    })?
    .map_err(JobError::io("reading the download"))?;
    if ctx.should_stop() {
        return Err(JobError::Stopped);
    }
    let (model_id, found, split) = found;
    let (pieces, head_bytes, reference, source) = match split {
        Ok((Split::Pieces { pieces, head_bytes }, reference, source)) => {
            (pieces, head_bytes, reference, source)
        }
        Ok((Split::Whole { reason }, _, _)) => {
            tracing::info!(prediction_id = %job.prediction_id, reason, "prediction_scored_whole");
            return Ok(false);
        }
        // The one pass meets the same problem and reports it with its validation report.
        Err(_) => return Ok(false),
    };
    // Decided once, so every piece is shadow-scored by the same model.
    let challenger = crate::outcomes::challenger::challenger(app, &job.user_id)
        .await?
        .filter(|c| *c != model_id);
    let plan = ChunkPlan {
        model_id,
        reference_date: reference.map(retainwise_model::dates::iso),
        reference_found: found,
        reference_source: source,
        head_bytes,
        size,
        challenger,
    };
    // A piece reads past its last record only as far as that record can run before the
    // reader decides it (the record limit, with a read buffer to spare).
    let max_record = options_record_limit() + (64 << 10);
    let mut tx = app.db.pool().begin().await?;
    let now = now_ms();
    let taken = sqlx::query(
        "UPDATE predictions SET chunks_total = $1, chunks_done = 0, chunk_plan = $2, \
         updated_at = $3 WHERE id = $4 AND user_id = $5 AND lease_token = $6 \
         AND status = 'RUNNING' AND chunks_total IS NULL",
    )
    .bind(pieces.len() as i64)
    .bind(serde_json::to_string(&plan).expect("a plan serializes"))
    .bind(now)
    .bind(job.prediction_id.to_string())
    .bind(job.user_id.as_str())
    .bind(ctx.lease.as_str())
    .execute(&mut *tx)
    .await?;
    if taken.rows_affected() != 1 {
        return Err(JobError::Stopped);
    }
    for (seq, piece) in pieces.iter().enumerate() {
        let read_to = pieces
            .get(seq + 1)
            .map_or(size, |next| (next.start + max_record).min(size));
        let message = PieceMessage {
            prediction_id: job.prediction_id.to_string(),
            user_id: job.user_id.to_string(),
            seq: seq as u64,
        };
        sqlx::query(
            "INSERT INTO prediction_chunks (id, prediction_id, user_id, seq, piece, read_to, \
             status, queued_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'QUEUED', $7, $7)",
        )
        .bind(piece_id(job.prediction_id, seq as u64))
        .bind(job.prediction_id.to_string())
        .bind(job.user_id.as_str())
        .bind(seq as i64)
        .bind(serde_json::to_string(piece).expect("a piece serializes"))
        .bind(read_to as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        super::enqueue::<PieceJob>(app, &mut tx, &message, retainwise_queue::Priority::Normal)
            .await
            .map_err(queue_error)?;
    }
    tx.commit().await?;
    tracing::info!(
        prediction_id = %job.prediction_id,
        pieces = pieces.len(),
        rows_per_piece,
        "prediction_cut_in_pieces"
    );
    Ok(true)
}

/// The scorer's limit on one record's bytes (`InputLimits::max_field_bytes` × 64, as
/// `Intake` sets it), the furthest a piece's reader looks past its last record's start.
fn options_record_limit() -> u64 {
    (retainwise_model::InputLimits::default().max_field_bytes as u64).saturating_mul(64)
}

/// A queue error inside a transaction that returns database errors.
pub(super) fn queue_error(e: retainwise_queue::QueueError) -> sqlx::Error {
    match e {
        retainwise_queue::QueueError::Database(e) => e,
        other => sqlx::Error::Protocol(format!("queueing a job: {other}")),
    }
}

/// The id of piece `seq` of `prediction`: `{prediction}-{seq}` (six digits).
fn piece_id(prediction: PredictionId, seq: u64) -> String {
    format!("{prediction}-{seq:06}")
}

/// The body of a piece's message (besides `kind`, `predict_piece`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PieceMessage {
    /// The prediction the piece belongs to.
    pub prediction_id: String,
    /// Its owner.
    pub user_id: String,
    /// The piece's place among the prediction's pieces (0-based).
    pub seq: u64,
}

impl PieceMessage {
    fn owner(&self) -> Option<(PredictionId, OrgId)> {
        crate::message::parse_owner(&self.prediction_id, &self.user_id)
    }
}

/// One piece of a prediction to score.
pub struct PieceJob {
    prediction_id: PredictionId,
    user: OrgId,
    seq: u64,
}

/// What a piece stored.
pub struct PieceDone {
    rows: u64,
    scored: u64,
}

/// Writes piece `seq`'s part of the customers index (`stored_index`: its scored lines at
/// `lines` indexed and sorted, rows and offsets counted from its own first line) to `run`.
/// Memory: the piece's rows' index, bounded by the rows of a piece.
async fn index_run(
    seq: u64,
    header_line: String,
    lines: std::path::PathBuf,
    run: std::path::PathBuf,
) -> Result<(), JobError> {
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Read;
        // The first piece's lines start with the header; the others' are read after it.
        let prefix = if seq == 0 {
            String::new()
        } else {
            format!("{header_line}\n")
        };
        let file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&lines)?);
        let index = crate::customer_index::CustomerIndex::parse(prefix.as_bytes().chain(file))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&run)?);
        index.write_run(&header_line, prefix.len() as u64, out)
    })
    .await
    .map_err(|source| JobError::Task {
        what: "indexing a piece",
        source,
    })?
    .map_err(JobError::io("indexing the piece's scored lines"))
}

/// Where a piece's shadow scoring reads and writes.
struct PieceFiles<'a> {
    head: &'a std::path::Path,
    body: &'a std::path::Path,
    output: std::path::PathBuf,
}

/// What a piece's shadow scoring stored beside its lines (`shadow.json`): the merge stores the
/// shadow result only when every piece has one.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct ShadowDone {
    /// The challenger that scored the piece.
    pub model_id: String,
    /// Rows it scored.
    pub rows_scored: u64,
}

impl PieceJob {
    /// Scores the piece again with the plan's challenger, as one pass's shadow scoring scores
    /// the whole file (`outcomes::challenger::shadow_options`, the champion's reference date).
    /// A failure is logged and never fails the piece: the merge then stores no shadow result,
    /// as one pass stores none when its shadow scoring fails.
    async fn shadow(
        &self,
        ctx: &JobContext,
        challenger: &str,
        reference: Option<&str>,
        piece: &Piece,
        files: PieceFiles<'_>,
    ) -> Option<(std::path::PathBuf, ShadowDone)> {
        let app = &ctx.app;
        let tried = async {
            let model = app.registry.load(&app.db, &app.storage, challenger).await?;
            let options = crate::outcomes::challenger::shadow_options(app, reference)?;
            let (head, body, out) = (
                files.head.to_owned(),
                files.body.to_owned(),
                files.output.clone(),
            );
            let (piece, lost) = (piece.clone(), ctx.stop_flag());
            let gathered = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let open = |path: &std::path::Path| -> std::io::Result<_> {
                    Ok(UntilLost {
                        inner: std::io::BufReader::with_capacity(
                            1 << 20,
                            std::fs::File::open(path)?,
                        ),
                        lost: lost.clone(),
                    })
                };
                let writer =
                    std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&out)?);
                Ok(chunks::score_piece(
                    &model,
                    open(&head)?,
                    open(&body)?,
                    &piece,
                    &options,
                    writer,
                    &mut |_, _| {},
                    &mut |_| {},
                )?)
            })
            .await??;
            anyhow::Ok(gathered.report.rows_scored)
        };
        match tried.await {
            Ok(rows_scored) => Some((
                files.output,
                ShadowDone {
                    model_id: challenger.to_owned(),
                    rows_scored,
                },
            )),
            Err(e) => {
                tracing::warn!(prediction_id = %self.prediction_id, seq = self.seq, error = %crate::error_chain::Chain(e.as_ref()), "shadow_scoring_failed");
                None
            }
        }
    }
}

impl Job for PieceJob {
    const KIND: &'static str = "predict_piece";
    const LOG_ID: LogId = LogId::Job;
    const EVENTS: Events = Events {
        started: "prediction_piece_started",
        failed: "prediction_piece_failed",
        status_updated: None,
    };
    type Payload = PieceMessage;
    type Output = PieceDone;

    fn validate(payload: PieceMessage, _checks: &Checks<'_>) -> Result<Self, String> {
        let (prediction_id, user) = payload.owner().ok_or_else(|| {
            format!(
                "piece message names prediction {:?} of user {:?}: expected a UUID and a valid \
                 user id",
                payload.prediction_id, payload.user_id
            )
        })?;
        Ok(Self {
            prediction_id,
            user,
            seq: payload.seq,
        })
    }

    fn record_named(payload: &PieceMessage) -> Option<JobRow> {
        let (id, user) = payload.owner()?;
        Some(JobRow::prediction_chunk(piece_id(id, payload.seq), &user))
    }

    fn record(&self) -> JobRow {
        JobRow::prediction_chunk(piece_id(self.prediction_id, self.seq), &self.user)
    }

    async fn run(&self, ctx: &JobContext) -> Result<PieceDone, JobError> {
        let app = &ctx.app;
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT piece, read_to FROM prediction_chunks WHERE id = $1 AND user_id = $2",
        )
        .bind(piece_id(self.prediction_id, self.seq))
        .bind(self.user.as_str())
        .fetch_optional(app.db.pool())
        .await?;
        let (piece, read_to) = row.ok_or(JobError::Stopped)?;
        let piece: Piece = serde_json::from_str(&piece).map_err(|e| {
            JobError::Rejected(format!(
                "a piece of this file could not be read back ({e}); upload it again"
            ))
        })?;
        let prediction = app
            .db
            .prediction(&self.user, self.prediction_id)
            .await?
            .ok_or(JobError::Stopped)?;
        if prediction.status != JobStatus::Running {
            // A piece redriven after its prediction ended: nothing to score for it.
            return Err(JobError::Rejected(format!(
                "this piece's prediction is {}; the piece is not scored",
                prediction.status
            )));
        }
        let plan = ChunkPlan::read(app, &self.user, self.prediction_id).await?;
        let recorded = super::prediction::recorded_for(app, &self.user, self.prediction_id).await?;
        let options = plan.options(app, &recorded)?;
        let model = app
            .registry
            .load(&app.db, &app.storage, &plan.model_id)
            .await?;
        let upload: UploadId = prediction
            .upload_id
            .parse()
            .map_err(|e: crate::domain::DomainError| JobError::Rejected(e.0))?;
        let key = ObjectKey::upload(&self.user, upload);
        let read_to = u64::try_from(read_to).unwrap_or(0).min(plan.size);
        let dir = tempfile::tempdir().map_err(JobError::io("creating a scratch folder"))?;
        let (head, body) = (dir.path().join("head.csv"), dir.path().join("piece.in.csv"));
        let (head_path, body_path) = (head.clone(), body.clone());
        let stage = std::time::Instant::now();
        for (range, file) in [
            (0..plan.head_bytes.min(plan.size), &head),
            (piece.start..read_to, &body),
        ] {
            match app.storage.download_range_to(&key, range, file).await {
                Ok(_) => {}
                Err(StorageError::NotFound(_)) => {
                    return Err(JobError::Rejected(
                        "the uploaded file is no longer in storage; upload it again".to_owned(),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
        super::prediction::record_stage("piece_download", stage);
        let stage = std::time::Instant::now();
        let output = dir.path().join("piece.csv");
        let out_path = output.clone();
        let header_line = retainwise_model::output_header(&model, options.explain).join(",");
        let lost = ctx.stop_flag();
        let rows = ctx.progress();
        let before = piece.first_row - 1;
        let piece_in = piece.clone();
        let scored = tokio::task::spawn_blocking(move || {
            let open = |path: &std::path::Path| {
                std::fs::File::open(path)
                    .map(|f| UntilLost {
                        inner: std::io::BufReader::with_capacity(1 << 20, f),
                        lost: lost.clone(),
                    })
                    .map_err(JobError::io("reading a piece of the upload"))
            };
            let (head, body) = (open(&head)?, open(&body)?);
            let file = std::fs::File::create(&out_path)
                .map_err(|e| JobError::io("creating the piece's results")(e))?;
            let writer = UntilLost {
                inner: std::io::BufWriter::with_capacity(1 << 20, file),
                lost,
            };
            let mut ids: Vec<(u64, String)> = Vec::new();
            let gathered = chunks::score_piece(
                &model,
                head,
                body,
                &piece_in,
                &options,
                writer,
                &mut |row, id| ids.push((row, id.to_owned())),
                &mut |row| rows.store(row.saturating_sub(before), Ordering::Relaxed),
            )?;
            Ok::<_, JobError>((gathered, ids))
        })
        .await
        .map_err(|source| JobError::Task {
            what: "scoring a piece",
            source,
        })?;
        if ctx.should_stop() {
            return Err(JobError::Stopped);
        }
        let (gathered, ids) = scored?;
        super::prediction::record_stage("piece_score", stage);
        let shadow = match &plan.challenger {
            Some(challenger) => {
                let files = PieceFiles {
                    head: &head_path,
                    body: &body_path,
                    output: dir.path().join("shadow.csv"),
                };
                let reference = gathered.report.reference_date.as_deref();
                self.shadow(ctx, challenger, reference, &piece, files).await
            }
            None => None,
        };
        if ctx.should_stop() {
            return Err(JobError::Stopped);
        }
        let run = dir.path().join("piece.index");
        index_run(self.seq, header_line, output.clone(), run.clone()).await?;
        let stage = std::time::Instant::now();
        let scored = gathered.report.rows_scored;
        let key = |what| ObjectKey::piece(&self.user, self.prediction_id, self.seq, what);
        app.storage.put_file(&key("csv"), &output).await?;
        if let Some((path, done)) = shadow {
            app.storage.put_file(&key("shadow.csv"), &path).await?;
            let done =
                serde_json::to_vec(&done).map_err(|e| JobError::io("writing sums")(e.into()))?;
            app.storage.put_bytes(&key("shadow.json"), done).await?;
        }
        let ids = serde_json::to_vec(&ids).map_err(|e| JobError::io("writing ids")(e.into()))?;
        app.storage.put_bytes(&key("ids.json"), ids).await?;
        app.storage.put_file(&key("index"), &run).await?;
        let sums =
            serde_json::to_vec(&gathered).map_err(|e| JobError::io("writing sums")(e.into()))?;
        // Written last: the merge reads a piece only once the piece is recorded, so every part
        // is in place by then.
        app.storage.put_bytes(&key("json"), sums).await?;
        super::prediction::record_stage("piece_upload", stage);
        Ok(PieceDone {
            rows: piece.rows,
            scored,
        })
    }

    fn completed_columns(&self, done: &PieceDone) -> Vec<(&'static str, Value)> {
        vec![(
            "rows_processed",
            Value::Int(i64::try_from(done.rows).unwrap_or(i64::MAX)),
        )]
    }

    fn log_completed(&self, done: &PieceDone, took: std::time::Duration) {
        tracing::info!(
            prediction_id = %self.prediction_id,
            seq = self.seq,
            rows = done.rows,
            rows_scored = done.scored,
            duration_ms = took.as_millis() as u64,
            "prediction_piece_completed"
        );
    }

    /// A piece's outcome moves its prediction: one more piece done (the last one queues the
    /// merge), or the prediction failed with the piece's reason and its other pieces
    /// cancelled.
    async fn followups(
        app: &App,
        record: &JobRow,
        conn: &mut AnyConnection,
        status: JobStatus,
    ) -> Result<(), sqlx::Error> {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT prediction_id, error_message FROM prediction_chunks \
             WHERE id = $1 AND user_id = $2",
        )
        .bind(record.id())
        .bind(record.user().as_str())
        .fetch_optional(&mut *conn)
        .await?;
        let Some((prediction, error)) = row else {
            return Ok(());
        };
        let Ok(prediction_id) = prediction.parse::<PredictionId>() else {
            return Ok(());
        };
        match status {
            JobStatus::Completed => {
                let counts: Option<(i64, Option<i64>)> = sqlx::query_as(
                    "UPDATE predictions SET chunks_done = chunks_done + 1, updated_at = $1 \
                     WHERE id = $2 AND user_id = $3 AND status = 'RUNNING' \
                     RETURNING chunks_done, chunks_total",
                )
                .bind(now_ms())
                .bind(&prediction)
                .bind(record.user().as_str())
                .fetch_optional(&mut *conn)
                .await?;
                if let Some((done, Some(total))) = counts {
                    if done == total {
                        let message = super::merge::MergeMessage {
                            prediction_id: prediction.clone(),
                            user_id: record.user().to_string(),
                        };
                        super::enqueue::<super::merge::MergeJob>(
                            app,
                            conn,
                            &message,
                            retainwise_queue::Priority::Normal,
                        )
                        .await
                        .map_err(queue_error)?;
                        tracing::info!(prediction_id = %prediction, pieces = total, "prediction_merge_queued");
                    }
                }
            }
            JobStatus::Failed => {
                let whole = JobRow::prediction(prediction_id, record.user());
                let reason = error.unwrap_or_else(|| "a piece of the file failed".to_owned());
                if whole.fail_from_piece(conn, &reason).await? {
                    <PredictionJob as Job>::followups(app, &whole, conn, JobStatus::Failed).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

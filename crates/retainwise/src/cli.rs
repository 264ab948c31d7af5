//! The `retainwise` command line: the service roles (`serve`, `api`, `worker`), offline scoring
//! and training (`predict`, `train`), and operations (`model show`, `queue …`).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use retainwise_model::dates::NaiveDate;
use retainwise_model::{RiskThresholds, ScoreOptions, TrainParams};
use tokio_util::sync::CancellationToken;

use crate::app::{redact, App};
use crate::config::{ListenSettings, Settings};
use crate::worker::{Worker, WorkerOptions};

/// retainwise: churn prediction for a CSV of customers.
#[derive(Parser, Debug)]
#[command(name = "retainwise", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the API and a worker in one process (the embedded default needs no set-up).
    Serve {
        #[command(flatten)]
        listen: ListenSettings,
        #[command(flatten)]
        settings: Settings,
        #[command(flatten)]
        ops: crate::ops::OpsSettings,
        /// Jobs scored at once.
        #[arg(long, env = "RETAINWISE_WORKER_CONCURRENCY", default_value_t = 2,
              value_parser = clap::value_parser!(u16).range(1..=256))]
        concurrency: u16,
    },
    /// Run the HTTP API alone (workers run elsewhere on the same database, storage and queue).
    Api {
        #[command(flatten)]
        listen: ListenSettings,
        #[command(flatten)]
        settings: Settings,
        #[command(flatten)]
        ops: crate::ops::OpsSettings,
    },
    /// Run a worker alone.
    Worker {
        #[command(flatten)]
        settings: Settings,
        #[command(flatten)]
        ops: crate::ops::OpsSettings,
        /// Jobs scored at once.
        #[arg(long, env = "RETAINWISE_WORKER_CONCURRENCY", default_value_t = 2,
              value_parser = clap::value_parser!(u16).range(1..=256))]
        concurrency: u16,
        /// Serve this worker's Prometheus metrics (job counts, job and per-stage durations,
        /// rows scored) at `GET /metrics` on this address; off when unset. A worker has no API,
        /// so without it only the process running `serve` exposes job metrics.
        #[arg(long, env = "RETAINWISE_METRICS_BIND", value_parser = crate::config::listen_addr)]
        metrics_bind: Option<std::net::SocketAddr>,
    },
    /// Score a CSV offline with the same engine the worker uses.
    Predict {
        /// Customer CSV to score (`-` for standard input).
        input: PathBuf,
        /// Where to write the scored CSV (standard output when absent or `-`). A regular file
        /// is replaced only when scoring succeeds, keeping its mode; a FIFO or a device is
        /// written through; a symbolic link stays a link.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Model artifact from `retainwise train` (the embedded default when absent).
        #[arg(long, env = "RETAINWISE_MODEL")]
        model: Option<PathBuf>,
        /// Also write the validation report (JSON: mapping, per-column counts, rejected rows).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Churn probability at or above which a customer is high risk (as `serve` reads it).
        #[arg(long, env = "RETAINWISE_HIGH_RISK", default_value_t = 0.70)]
        high_risk: f64,
        /// Churn probability at or above which a customer is medium risk (as `serve` reads it).
        #[arg(long, env = "RETAINWISE_MEDIUM_RISK", default_value_t = 0.40)]
        medium_risk: f64,
        /// For a model with date columns: the date they count days back from (YYYY-MM-DD).
        /// Default: the input's latest date in those columns that is not after today (found in a
        /// first pass).
        #[arg(long, value_parser = reference_date_arg)]
        reference_date: Option<NaiveDate>,
        /// The explanation columns: `top` (the top-3 risk drivers and protective factors, a
        /// summary and a recommendation), `none` (scores only, fastest) or `all` (`top`'s, then
        /// every input's SHAP value in log-odds as `shap_<input>` and `shap_base_value`).
        #[arg(long, default_value = "top", value_parser = explain_arg)]
        explain: retainwise_model::Explain,
    },
    /// Send a CSV of any size to a running server by the direct upload API (in parts, with a
    /// progress bar, resent after a dropped connection) and queue its prediction; prints the
    /// prediction id, and with --wait the results' URL once scored.
    Upload {
        /// The customer CSV.
        file: PathBuf,
        /// The server's base URL, e.g. https://churn.example.com.
        #[arg(long, env = "RETAINWISE_SERVER")]
        server: String,
        /// An API key (`retainwise apikey create`) or a bearer token; none for a server
        /// without sign-in.
        #[arg(long, env = "RETAINWISE_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Resume this upload (its id was printed when it began): only missing parts are sent.
        #[arg(long, value_name = "UPLOAD_ID")]
        resume: Option<String>,
        /// Wait until the prediction finishes, then print where its results are.
        #[arg(long)]
        wait: bool,
        /// For a model with date columns: the date they count days back from (YYYY-MM-DD).
        #[arg(long, value_parser = reference_date_arg)]
        reference_date: Option<NaiveDate>,
    },
    /// Train a model on a labelled CSV and print its cross-validated metrics.
    Train {
        /// Labelled customer CSV.
        input: PathBuf,
        /// The label column (values such as Yes/No, 1/0, true/false, churned/active).
        #[arg(long)]
        label: String,
        /// The customer id column (kept out of the features).
        #[arg(long)]
        id: Option<String>,
        /// Where to write the model artifact (JSON).
        #[arg(short, long)]
        output: PathBuf,
        /// Seed for the folds and the trees; the same seed gives the same model.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Model name, the first part of its id (default: the input's file name without its extension).
        #[arg(long)]
        name: Option<String>,
        /// The date that date columns count days back from (YYYY-MM-DD). Default: the
        /// training file's latest date in its date columns that is not after today. Recorded on
        /// the model card.
        #[arg(long, value_parser = reference_date_arg)]
        reference_date: Option<NaiveDate>,
        /// For a file with several rows per customer (one per observation date): the column
        /// naming the customer. Every cross-validation fold keeps a customer's rows together,
        /// so the card's figures are measured on customers the model did not learn from.
        #[arg(long, value_name = "COLUMN")]
        group: Option<String>,
        /// For a history: the column holding each row's observation date. Every other date
        /// column becomes days before that row's own date (not the file's latest date); the
        /// column itself is not a feature. A blank or unreadable cell is refused, naming the
        /// row. Recorded on the card: `predict` counts from the same column when the scored
        /// file has it. Not with --reference-date.
        #[arg(long, value_name = "COLUMN", conflicts_with = "reference_date")]
        observation_date: Option<String>,
        /// Cross-validation folds, 3 to 10 (with --group, at most the number of customers with
        /// a churned row).
        #[arg(long, default_value_t = 5, value_name = "N")]
        folds: usize,
    },
    /// List, inspect, register and activate models.
    Model {
        #[command(flatten)]
        settings: Settings,
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Create, list and revoke API keys (sent as `Authorization: Bearer rwk_…`).
    Apikey {
        #[command(flatten)]
        settings: Settings,
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Organisations: create a team, list, add and remove members, set roles.
    Org {
        #[command(flatten)]
        settings: Settings,
        #[command(subcommand)]
        command: crate::org_cli::OrgCommand,
    },
    /// Register, list and remove users' signed webhook endpoints.
    Webhook {
        #[command(flatten)]
        settings: Settings,
        #[command(subcommand)]
        command: crate::webhooks::cli::WebhookCommand,
    },
    /// Add, list and remove organisations' re-scoring schedules.
    Schedule {
        #[command(flatten)]
        settings: Settings,
        #[command(subcommand)]
        command: crate::schedules::cli::ScheduleCommand,
    },
    /// Record, list and delete outcomes (who really churned, and when), which measure the
    /// accuracy of earlier predictions.
    Outcomes {
        #[command(flatten)]
        settings: Settings,
        #[command(subcommand)]
        command: crate::outcomes::cli::OutcomesCommand,
    },
    /// Copy the original service's uploads and finished predictions, with their objects, from
    /// its Postgres database and bucket into retainwise (configured by the environment); a
    /// rerun copies nothing twice. Exit code 2 when something was left out (listed).
    ImportOriginal {
        /// The original's database, `postgres://…`.
        #[arg(long = "database-url")]
        original_database_url: String,
        /// Where the original's objects are: its bucket name, `s3://bucket[/prefix]`, or
        /// `file:///folder` holding a copy. Default: the bucket of retainwise's S3 storage.
        #[arg(long)]
        bucket: Option<String>,
    },
    /// Apply the database migrations (the application's and the queue's) and exit: the one-off
    /// step of a release, before `api` and `worker` start with `--no-migrate`.
    Migrate {
        #[command(flatten)]
        settings: Settings,
    },
    /// List the environment variables this binary reads, one per line (each also as `NAME_FILE`:
    /// the value read from that file).
    EnvVars,
    /// Inspect and operate the prediction queue.
    Queue {
        #[command(flatten)]
        settings: Settings,
        #[command(subcommand)]
        command: QueueCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ModelCommand {
    /// Print a model card: the built-in model (no argument), an artifact file, or a registered
    /// model's id.
    Show {
        /// Artifact file (JSON) or registered model id.
        target: Option<String>,
    },
    /// List registered models; `*` marks the one active for everyone.
    List,
    /// Register an artifact from `retainwise train` so it can be activated (stored in object
    /// storage at models/{id}.json).
    Add {
        /// Model artifact (JSON).
        file: PathBuf,
    },
    /// Score new uploads with a registered model: for everyone, or for one user.
    Activate {
        /// Model id, as shown by `list`.
        id: String,
        /// Only for this user (their choice wins over the installation-wide one).
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ApikeyCommand {
    /// Create a key for a user and print it (once: only its hash is stored).
    Create {
        /// The user the key acts as (the `sub` their sign-in tokens carry).
        #[arg(long)]
        user: String,
        /// A label to recognise the key by.
        #[arg(long, default_value = "api key")]
        name: String,
        /// The organisation it acts in (default: the user's personal one).
        #[arg(long)]
        org: Option<String>,
        /// Its role there: viewer, analyst, admin or owner (default: owner in the personal
        /// organisation, analyst in a team); at each use at most the user's own role there.
        #[arg(long)]
        role: Option<String>,
    },
    /// List keys (all users, or one).
    List {
        /// Only this user's keys.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a key by its id.
    Revoke {
        /// Key id, as shown by `list`.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum QueueCommand {
    /// Create an SQS queue and its dead-letter queue (`NAME-dlq`) with the redrive policy
    /// (maxReceiveCount = RETAINWISE_MAX_RECEIVES); prints the URL to set as RETAINWISE_QUEUE_URL.
    Setup {
        /// Queue name.
        #[arg(long, default_value = "retainwise-predictions")]
        name: String,
    },
    /// Depth, in flight, dead, oldest message age.
    Stats,
    /// List dead-lettered messages with their last errors.
    Dead {
        /// How many to list, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Move dead-lettered messages back to the queue (their predictions run again).
    Redrive {
        /// Redrive every dead message.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Message ids to redrive.
        ids: Vec<String>,
    },
    /// Cancel a prediction: a queued one never starts, a running one stops at its next batch
    /// and records no result. Exits 1 when it has already finished.
    Cancel {
        /// The prediction id.
        id: String,
    },
}

/// Parses the command line, runs the command, and turns an error into a message and exit code 1.
pub fn main() -> ExitCode {
    let from_files = match load_secret_files() {
        Ok(set) => set,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        if let Some(var) = env_behind(&e) {
            if from_files.contains(&var) {
                // clap's message quotes the value: the file's content, maybe a secret.
                eprintln!(
                    "error: {var}_FILE: the file's content is not a valid value for {var} (not \
                     shown: it may be a secret); correct the file or unset {var}_FILE"
                );
                std::process::exit(e.exit_code());
            }
            // The variable leads the message: it is what the operator set, not the flag.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            eprintln!(
                "error: environment variable {var}: {}\n  correct or unset {var}",
                first.trim_start_matches("error: ")
            );
            std::process::exit(e.exit_code());
        }
        e.exit()
    });
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::error_chain::chain_anyhow(&e));
            ExitCode::FAILURE
        }
    }
}

/// The environment variable an invalid value came from, when it came from one: clap names only
/// the flag (`--bind <BIND>`), which misleads someone who never typed it.
fn env_behind(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg
        .split_whitespace()
        .next()?
        .strip_prefix("--")?
        .to_owned();
    let flag = format!("--{long}");
    if std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}="))) {
        return None;
    }
    fn find(cmd: &clap::Command, long: &str) -> Option<String> {
        let own = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(long))
            .and_then(|a| a.get_env())
            .map(|v| v.to_string_lossy().into_owned());
        own.or_else(|| cmd.get_subcommands().find_map(|c| find(c, long)))
    }
    let var = find(&<Cli as clap::CommandFactory>::command(), &long)?;
    std::env::var_os(&var).map(|_| var)
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RETAINWISE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        // Every record capped and kept on one line, whatever a client put in it (log_safe.rs).
        .with_writer(crate::log_safe::CappedWriter {
            inner: std::io::stderr,
            ansi: std::io::stderr().is_terminal(),
        });
    match std::env::var("RETAINWISE_LOG_FORMAT")
        .ok()
        .as_deref()
        .map(str::trim)
    {
        Some(f) if f.eq_ignore_ascii_case("json") => builder.json().init(),
        None | Some("") => builder.init(),
        Some(f) if f.eq_ignore_ascii_case("text") => builder.init(),
        Some(other) => {
            builder.init();
            tracing::warn!(
                value = other,
                "RETAINWISE_LOG_FORMAT must be json or text; using text"
            );
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            listen,
            settings,
            ops,
            concurrency,
        } => {
            let app = open_role(&settings, &ops, true).await?;
            let shutdown = shutdown_signal();
            spawn_emf(&app, &ops, &shutdown);
            let worker = Worker::new(
                app.clone(),
                WorkerOptions {
                    concurrency: concurrency.into(),
                    ..WorkerOptions::default()
                },
            );
            let worker_task = tokio::spawn({
                let shutdown = shutdown.clone();
                async move { worker.run(shutdown).await }
            });
            serve_http(&app, &listen, shutdown).await?;
            let summary = worker_task.await.context("worker task")?;
            eprintln!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Api {
            listen,
            settings,
            ops,
        } => {
            let app = open_role(&settings, &ops, true).await?;
            let shutdown = shutdown_signal();
            spawn_emf(&app, &ops, &shutdown);
            serve_http(&app, &listen, shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker {
            settings,
            ops,
            concurrency,
            metrics_bind,
        } => {
            let app = open_role(&settings, &ops, false).await?;
            let shutdown = shutdown_signal();
            spawn_emf(&app, &ops, &shutdown);
            if let Some(addr) = metrics_bind {
                serve_worker_metrics(addr, &app.config.http, shutdown.clone()).await?;
            }
            let worker = Worker::new(
                app,
                WorkerOptions {
                    concurrency: concurrency.into(),
                    ..WorkerOptions::default()
                },
            );
            let summary = worker.run(shutdown).await;
            eprintln!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Predict {
            input,
            output,
            model,
            report,
            high_risk,
            medium_risk,
            reference_date,
            explain,
        } => {
            crate::config::check_thresholds(
                high_risk,
                medium_risk,
                "--high-risk",
                "--medium-risk",
            )?;
            let thresholds = RiskThresholds {
                high: high_risk,
                medium: medium_risk,
            };
            tokio::task::spawn_blocking(move || {
                predict(
                    &input,
                    output.as_deref(),
                    model.as_deref(),
                    report.as_deref(),
                    thresholds,
                    reference_date,
                    explain,
                )
            })
            .await
            .context("scoring task")?
        }
        Command::Upload {
            file,
            server,
            api_key,
            resume,
            wait,
            reference_date,
        } => {
            let date = reference_date.map(retainwise_model::dates::iso);
            let prediction = crate::upload_client::run(crate::upload_client::UploadArgs {
                file: &file,
                server: &server,
                api_key: api_key.as_deref(),
                resume: resume.as_deref(),
                wait: false,
                reference_date: date.as_deref(),
            })
            .await?;
            println!("{prediction}");
            if wait {
                crate::upload_client::wait_for(&server, api_key.as_deref(), &prediction).await?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Train {
            input,
            label,
            id,
            output,
            seed,
            name,
            reference_date,
            group,
            observation_date,
            folds,
        } => {
            let mut params = TrainParams::new(label);
            params.id_column = id;
            params.reference_date = reference_date;
            params.group_column = group;
            params.observation_date = observation_date;
            params.folds = folds;
            params.seed = seed;
            params.name = name.unwrap_or_else(|| default_model_name(&input));
            tokio::task::spawn_blocking(move || train(&input, &params, &output))
                .await
                .context("training task")?
        }
        Command::Model { settings, command } => model_command(&settings, command).await,
        Command::Queue { settings, command } => queue_command(&settings, command).await,
        Command::Migrate { settings } => migrate_command(&settings).await,
        Command::EnvVars => {
            for var in crate::ops::env_vars::all(&<Cli as clap::CommandFactory>::command()) {
                println!("{var}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Apikey { settings, command } => apikey_command(&settings, command).await,
        Command::Org { settings, command } => crate::org_cli::run(&settings, command).await,
        Command::Webhook { settings, command } => {
            crate::webhooks::cli::run(&settings, command).await
        }
        Command::Schedule { settings, command } => {
            crate::schedules::cli::run(&settings, command).await
        }
        Command::Outcomes { settings, command } => {
            crate::outcomes::cli::run(&settings, command).await
        }
        Command::ImportOriginal {
            original_database_url,
            bucket,
        } => crate::import_original::command(&original_database_url, bucket.as_deref()).await,
    }
}

/// Opens the app for `serve`, `api` or `worker`: migrating unless `--no-migrate`. `serves_api`:
/// the role answers HTTP, so it also sweeps expired direct uploads (deleting upload objects is
/// the API's grant, not the worker's).
async fn open_role(
    settings: &Settings,
    ops: &crate::ops::OpsSettings,
    serves_api: bool,
) -> anyhow::Result<App> {
    let config = settings.resolve()?;
    eprintln!("database: {}", redact(&config.database_url));
    let app = App::open_migrating(config, !ops.no_migrate).await?;
    eprintln!("objects:  {}", app.storage.root_url());
    crate::app::spawn_part_sweeper(app.storage.clone(), serves_api.then(|| app.db.clone()));
    crate::app::spawn_retention_scheduler(app.clone());
    Ok(app)
}

/// Starts the queue's CloudWatch EMF lines when `RETAINWISE_EMF_INTERVAL_SECS` is set.
fn spawn_emf(app: &App, ops: &crate::ops::OpsSettings, shutdown: &CancellationToken) {
    if let Some(interval) = ops.emf_interval() {
        crate::ops::emf::spawn(
            app.queue.clone(),
            ops.emf_namespace.clone(),
            interval,
            shutdown.clone(),
        );
    }
}

/// `retainwise migrate`: waits for the database like the roles do, applies every pending
/// migration and says which.
async fn migrate_command(settings: &Settings) -> anyhow::Result<ExitCode> {
    let config = settings.resolve()?;
    eprintln!("database: {}", redact(&config.database_url));
    let db = crate::app::connect_waiting(&config.database_url, config.db_connect_timeout, true)
        .await
        .with_context(|| format!("opening the database {}", redact(&config.database_url)))?;
    let (count, latest) = crate::ops::migrations::apply(db.pool()).await?;
    println!("migrations: all {count} of this build are applied (latest {latest})");
    Ok(ExitCode::SUCCESS)
}

/// Sets every variable the binary reads from its `NAME_FILE` when that is given; returns the
/// names set. The AWS SDKs' own variables are left to them: some of their `_FILE` names are
/// theirs (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, which the ECS agent sets beside the token
/// itself; AWS SDKs and Tools Reference Guide, "Container credential provider").
fn load_secret_files() -> Result<Vec<String>, crate::ops::secret_files::SecretFileError> {
    let vars = crate::ops::env_vars::all(&<Cli as clap::CommandFactory>::command());
    let names: Vec<&str> = vars
        .iter()
        .map(String::as_str)
        .filter(|v| !v.starts_with("AWS_"))
        .collect();
    crate::ops::secret_files::load(&names)
}

async fn serve_http(
    app: &App,
    listen: &ListenSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    listen.check(app.auth.is_required())?;
    // Before any socket is open, so the connection cap is computed from the raised limit.
    crate::server::raise_fd_limit();
    if !app.auth.is_required() {
        eprintln!("sign-in: none configured; every request acts as the local user");
    }
    let listener = tokio::net::TcpListener::bind(listen.bind)
        .await
        .with_context(|| {
            format!(
                "listening on {} (set RETAINWISE_BIND to use another address)",
                listen.bind
            )
        })?;
    let addr = listener.local_addr()?;
    eprintln!("retainwise listening on http://{addr}");
    tracing::info!(%addr, model = app.model.id(), "api_startup");
    let limits = crate::server::ConnectionLimits::effective(&app.config.http);
    tracing::info!(
        max_connections = limits.max_connections,
        max_connections_per_ip = limits.max_connections_per_ip,
        header_read_timeout_secs = limits.header_read_timeout.as_secs(),
        "connection_limits"
    );
    // Schedules are ticked by the roles that answer HTTP: they always run (workers may scale
    // to zero on an empty queue) and hold the grant to write the runs' copies under uploads/.
    tokio::spawn(crate::schedules::tick::run(
        app.clone(),
        crate::schedules::tick::EVERY,
        shutdown.clone(),
    ));
    crate::server::serve(listener, crate::http::router(app.clone()), limits, shutdown)
        .await
        .context("serving HTTP")
}

/// `GET /metrics` (and `GET /health`) of a worker process on `addr`, until `shutdown`. The
/// queue gauges are left to the API processes, which read them from the shared queue.
async fn serve_worker_metrics(
    addr: std::net::SocketAddr,
    http: &crate::config::HttpConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} for metrics (RETAINWISE_METRICS_BIND)"))?;
    let addr = listener.local_addr()?;
    eprintln!("worker metrics on http://{addr}/metrics");
    let router = axum::Router::new()
        .route(
            "/metrics",
            get(|| async {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    crate::telemetry::handle().render(),
                )
            }),
        )
        .route("/health", get(crate::api::health::health));
    let http = http.clone();
    tokio::spawn(async move {
        // The same front door as the API's: header timeout and connection caps.
        let limits = crate::server::ConnectionLimits::effective(&http);
        let served = crate::server::serve(listener, router, limits, shutdown).await;
        if let Err(e) = served {
            tracing::error!(error = %crate::error_chain::Chain(&e), "worker_metrics_stopped");
        }
    });
    Ok(())
}

/// A token cancelled on SIGINT (Ctrl-C) or SIGTERM.
fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        fire.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested: finishing the jobs in hand");
        fire.cancel();
    });
    token
}

fn predict(
    input: &std::path::Path,
    output: Option<&std::path::Path>,
    model: Option<&std::path::Path>,
    report_path: Option<&std::path::Path>,
    thresholds: RiskThresholds,
    reference_date: Option<NaiveDate>,
    explain: retainwise_model::Explain,
) -> anyhow::Result<ExitCode> {
    if let Some(out) = output {
        crate::output::Output::refuse_same_file(input, "input", out, "output")?;
    }
    if let Some(report) = report_path {
        crate::output::Output::refuse_same_file(input, "input", report, "report")?;
        if let Some(out) = output {
            crate::output::Output::refuse_same_file(out, "output", report, "report")?;
        }
    }
    let chosen = model.is_some();
    let model = crate::app::load_model(model)?;
    // The input as a file that can be read twice, as the worker's download is: standard input
    // is spooled to a temporary file first.
    let file = if input.as_os_str() == "-" {
        let mut spool =
            tempfile::tempfile().context("creating a temporary file for standard input")?;
        std::io::copy(&mut std::io::stdin().lock(), &mut spool)
            .context("reading standard input")?;
        std::io::Seek::rewind(&mut spool).context("reading standard input")?;
        spool
    } else {
        File::open(input).with_context(|| format!("opening {}", input.display()))?
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    // A regular file is written beside itself and renamed into place only when scoring
    // succeeded, so a failed run leaves no half-written results behind; a FIFO or a device is
    // written through (see `crate::output`).
    let mut out = match output {
        Some(path) => crate::output::Output::open(path)?,
        None => crate::output::Output::stdout(),
    };
    let mut writer = BufWriter::with_capacity(1 << 20, &mut out);
    let mut options = ScoreOptions {
        thresholds,
        reference_date,
        explain,
        ..ScoreOptions::default()
    };
    // The model and the reference date, chosen as the worker chooses them: without --model, a
    // subscription file the built-in model cannot read goes to the SaaS baseline; a model with
    // date columns and no --reference-date counts back from the file's latest date.
    let baseline = (!chosen).then(retainwise_model::baseline::saas_baseline);
    let plan = retainwise_model::plan::plan(
        model,
        baseline,
        reference_date,
        &mut reader,
        &options.limits,
        &options.mapping,
    )
    .with_context(|| format!("reading {}", input.display()))?;
    let model = plan.model;
    options.reference_date_found = options.reference_date.is_none();
    options.reference_date = plan.reference_date;
    options.reference_date_source = plan.reference_source.clone();
    let bar = spinner("scoring", true);
    // The results are for a person to open: every cell made spreadsheet-safe on the way out,
    // exactly as the service's results download does with its stored raw results.
    let mut safe = retainwise_model::safe_csv::SafeCsvWriter::new(&mut writer);
    let scored = retainwise_model::score_csv(model, reader, &mut safe, &options, &mut |rows| {
        bar.set_position(rows)
    });
    bar.finish_and_clear();
    if let Some(path) = report_path {
        let json = match &scored {
            Ok(report) => serde_json::to_vec_pretty(report)?,
            Err(e) => serde_json::to_vec_pretty(&e.failure_report())?,
        };
        crate::output::Output::write_all(path, &json)
            .with_context(|| format!("writing the report {}", path.display()))?;
    }
    let report = scored.with_context(|| format!("scoring {}", input.display()))?;
    safe.finish().context("writing the results")?;
    writer.flush().context("writing the results")?;
    drop(writer);
    if report.rows_scored == 0 && out.is_staged() {
        anyhow::bail!(
            "no rows of {} could be scored; nothing written",
            input.display()
        );
    }
    out.commit().context("writing the results")?;
    // Every record read is accounted for, blank ones included: in = scored + rejected + skipped.
    eprintln!(
        "{} rows read = {} scored + {} rejected + {} skipped as empty; model {} (high {}, medium {}, low {}; mean churn probability {:.3})",
        report.rows_total,
        report.rows_scored,
        report.rows_rejected,
        report.rows_skipped_empty,
        report.model_id,
        report.risk_counts.high,
        report.risk_counts.medium,
        report.risk_counts.low,
        report.mean_churn_probability,
    );
    // Drift against the training data (PSI > 0.1 watch, > 0.25 act), always one line.
    eprintln!("  {}", report.drift.summary());
    if let Some(d) = &report.reference_date {
        eprintln!("  date columns read as days before the reference date {d}");
        match &report.reference_date_source {
            Some(source) => eprintln!("  reference date taken from {source}"),
            None => eprintln!("  reference date given (--reference-date)"),
        }
    }
    if let Some(c) = &report.observation_date {
        eprintln!("  date columns read as days before each row's {c}");
    } else if let Some(c) = model
        .card()
        .observation_date
        .as_ref()
        .filter(|_| model.schema().has_dates())
    {
        eprintln!(
            "  warning: the model counts dates from each row's {c}, but the file has no such column: they count from the file's reference date instead"
        );
    }
    for issue in report.issues.iter().take(20) {
        eprintln!("  rejected: {issue}");
    }
    for warning in report.warnings.iter().take(20) {
        eprintln!("  warning: {warning}");
    }
    let v = &report.validation;
    // Every column read under another name is shown with why, so that a wrong match (another
    // quantity or unit) is seen before the scores are used.
    for m in v
        .mapping
        .iter()
        .flat_map(|m| m.id.iter().chain(&m.features))
        .filter(|m| {
            m.method
                .is_some_and(|k| k != retainwise_model::mapping::MatchMethod::Exact)
        })
    {
        eprintln!(
            "  mapped: {:?} -> {} ({}{})",
            m.column.as_deref().unwrap_or_default(),
            m.feature,
            serde_json::to_value(m.method)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            m.note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        );
    }
    for m in v.mapping.iter().flat_map(|m| &m.missing) {
        if !m.suggestions.is_empty() {
            let near: Vec<String> = m
                .suggestions
                .iter()
                .map(|s| format!("{:?}", s.column))
                .collect();
            eprintln!(
                "  not mapped automatically: {} (closest columns: {}; choose one by hand if it holds {})",
                m.feature,
                near.join(", "),
                m.feature
            );
        }
    }
    if !report.ignored_columns.is_empty() {
        eprintln!("  ignored columns: {}", report.ignored_columns.join(", "));
    }
    if !v.absent_inputs.is_empty() {
        eprintln!(
            "  warning: the file has no column for {}: scored as missing in every row (data_quality says so)",
            v.absent_inputs.join(", ")
        );
    }
    if v.rows_with_extra_empty_fields > 0 {
        eprintln!(
            "  note: {} row(s) end with empty fields past the header's last column (a trailing delimiter): those fields were ignored",
            v.rows_with_extra_empty_fields
        );
    }
    if v.duplicate_ids > 0 {
        eprintln!(
            "  warning: {} row(s) repeat the customer id of an earlier row (each is listed above, up to 20)",
            v.duplicate_ids
        );
    }
    Ok(if report.rows_scored > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn train(
    input: &std::path::Path,
    params: &TrainParams,
    output: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let file = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let progress = TrainProgress::new();
    let trained = retainwise_model::train_csv_with_progress(BufReader::new(file), params, &|s| {
        progress.show(s)
    });
    progress.finish();
    let (model, report) = trained.with_context(|| format!("training on {}", input.display()))?;
    crate::output::Output::write_all(output, &model.to_json_vec())
        .with_context(|| format!("writing {}", output.display()))?;
    println!("{report}");
    // Warnings that change how the figures above read also go to stderr, where a script's
    // operator sees them even when the report is piped away.
    for note in report.notes.iter().filter(|n| n.starts_with("WARNING")) {
        eprintln!("{note}");
    }
    println!("model {} written to {}", model.id(), output.display());
    Ok(ExitCode::SUCCESS)
}

/// `retainwise train`'s progress on stderr: a bar of the search's fits on a terminal; in a log
/// (stderr not a terminal, where indicatif draws nothing) a line at every quarter, so a long
/// training is visibly alive either way.
struct TrainProgress {
    bar: indicatif::ProgressBar,
    terminal: bool,
    /// The last quarter written as a line (log mode); fits are reported from several threads.
    quarter: std::sync::atomic::AtomicUsize,
}

impl TrainProgress {
    fn new() -> Self {
        let bar = spinner("training: reading the file", false);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Self {
            bar,
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            quarter: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Shows `stage`; always answers "go on" (the command line has no budget).
    fn show(&self, stage: retainwise_model::TrainStage) -> bool {
        use std::sync::atomic::Ordering;
        match stage {
            retainwise_model::TrainStage::Reading => {
                if !self.terminal {
                    eprintln!("training: reading the file");
                }
            }
            retainwise_model::TrainStage::Fitting { done, total } => {
                if self.bar.length() != Some(total as u64) {
                    self.bar.set_length(total as u64);
                    let style = indicatif::ProgressStyle::with_template(
                        "{spinner} training: cross-validated search {bar:30} {pos}/{len} fits, {elapsed} (about {eta} left)",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
                    self.bar.set_style(style);
                }
                // Fits finish out of order across threads: never move the bar backwards.
                if done as u64 > self.bar.position() {
                    self.bar.set_position(done as u64);
                }
                if !self.terminal && done == 0 {
                    eprintln!("training: cross-validated search of {total} fits");
                }
                let quarter = (done * 4).checked_div(total).unwrap_or(4);
                if !self.terminal && self.quarter.fetch_max(quarter, Ordering::Relaxed) < quarter {
                    eprintln!(
                        "training: cross-validated search, {done} of {total} fits done ({}%)",
                        quarter * 25
                    );
                }
            }
        }
        true
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Parses `--reference-date`.
fn reference_date_arg(raw: &str) -> Result<NaiveDate, String> {
    retainwise_model::dates::parse_reference(raw)
}

fn explain_arg(raw: &str) -> Result<retainwise_model::Explain, String> {
    raw.parse()
}

/// A spinner with a row counter on stderr; indicatif draws nothing when stderr is not a
/// terminal, so pipes and logs stay clean.
fn spinner(what: &'static str, counts_rows: bool) -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    let template = if counts_rows {
        "{spinner} {msg} {human_pos} rows, {elapsed}"
    } else {
        "{spinner} {msg} {elapsed}"
    };
    let style = indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(what);
    bar
}

/// The default model name for a training file (see [`crate::registry::default_model_name`]).
fn default_model_name(input: &std::path::Path) -> String {
    crate::registry::default_model_name(
        input
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default(),
    )
}

async fn apikey_command(settings: &Settings, command: ApikeyCommand) -> anyhow::Result<ExitCode> {
    let url = settings.resolve()?.database_url;
    require_existing_database(&url)?;
    let db = crate::db::Db::connect(&url).await?;
    let parse_user = |u: &str| {
        u.parse::<crate::domain::UserId>()
            .map_err(|e| anyhow::anyhow!(e.0))
    };
    match command {
        ApikeyCommand::Create {
            user,
            name,
            org,
            role,
        } => {
            let role = role
                .map(|r| r.parse::<crate::domain::Role>())
                .transpose()
                .map_err(|e| anyhow::anyhow!(e.0))?;
            let key = match org {
                None if role.is_none() => db.create_api_key(&parse_user(&user)?, &name).await?,
                org => {
                    let user = parse_user(&user)?;
                    let org = match org {
                        Some(o) => o
                            .parse::<crate::domain::OrgId>()
                            .map_err(|e| anyhow::anyhow!(e.0))?,
                        None => db.personal_org(&user).await?,
                    };
                    if db.is_personal(&org).await?.is_none() {
                        anyhow::bail!(
                            "no organisation {org}: create it with `retainwise org create {org} --owner USER`"
                        );
                    }
                    let role = role.unwrap_or(crate::domain::Role::Analyst);
                    db.create_org_api_key(&org, &user, role, &name).await?
                }
            };
            println!("{}", key.secret);
            eprintln!(
                "key {} for user {user} in organisation {} as {} created; it is shown only now, store it safely",
                key.record.id, key.record.org_id, key.record.role
            );
        }
        ApikeyCommand::List { user } => {
            let user = user.as_deref().map(parse_user).transpose()?;
            for k in db.api_keys(user.as_ref()).await? {
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{}  {}…  user={}  org={}  role={}  name={:?}  {state}",
                    k.id, k.prefix, k.user_id, k.org_id, k.role, k.name
                );
            }
        }
        ApikeyCommand::Revoke { id } => {
            if !db.revoke_api_key(&id).await? {
                anyhow::bail!("no active key with id {id}");
            }
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn model_command(settings: &Settings, command: ModelCommand) -> anyhow::Result<ExitCode> {
    let config = settings.resolve()?;
    let open = || async {
        require_existing_database(&config.database_url)?;
        App::open(config.clone()).await
    };
    match command {
        ModelCommand::Show { target } => {
            let card = match target {
                None => {
                    serde_json::to_value(crate::app::load_model(config.model.as_deref())?.card())?
                }
                Some(t) if std::path::Path::new(&t).is_file() => {
                    let model = crate::app::load_model(Some(std::path::Path::new(&t)))?;
                    serde_json::to_value(model.card())?
                }
                Some(id) => {
                    let app = open().await?;
                    let model = app.registry.load(&app.db, &app.storage, &id).await?;
                    serde_json::to_value(model.card())?
                }
            };
            println!("{}", serde_json::to_string_pretty(&card)?);
        }
        ModelCommand::List => {
            let app = open().await?;
            let active = app
                .db
                .default_active_model()
                .await?
                .unwrap_or_else(|| app.model.id().to_owned());
            println!(
                "  {:<36} {:<10} {:>8} {:>9} {:>8}  owner",
                "id", "name", "ROC AUC", "log loss", "rows"
            );
            for row in app.db.models(None).await? {
                // A card this version cannot read is listed with dashes, not refused.
                let card: Option<retainwise_model::ModelCard> =
                    serde_json::from_str(&row.card).ok();
                // A rule-based model has no cross-validated figures (NaN).
                let metric = |pick: fn(&retainwise_model::ModelCard) -> f64| {
                    card.as_ref()
                        .map(pick)
                        .filter(|v| v.is_finite())
                        .map_or("-".to_owned(), |v| format!("{v:.4}"))
                };
                println!(
                    "{} {:<36} {:<10} {:>8} {:>9} {:>8}  {}",
                    if row.id == active { "*" } else { " " },
                    row.id,
                    card.as_ref().map_or("-", |c| c.name.as_str()),
                    metric(|c| c.cross_validation.roc_auc.mean),
                    metric(|c| c.cross_validation.log_loss.mean),
                    card.as_ref()
                        .map_or("-".to_owned(), |c| c.training_data.rows.to_string()),
                    row.owner_id.as_deref().unwrap_or("operator"),
                );
            }
        }
        ModelCommand::Add { file } => {
            let model = crate::app::load_model(Some(&file))?;
            let app = open().await?;
            let id = app
                .registry
                .register(&app.db, &app.storage, model, None)
                .await?;
            println!("registered {id}; activate it with: retainwise model activate {id}");
        }
        ModelCommand::Activate { id, user } => {
            let app = open().await?;
            let model_id: crate::domain::ModelId = id
                .parse()
                .map_err(|e: crate::domain::DomainError| anyhow::anyhow!(e.0))?;
            if app.db.model(None, &model_id).await?.is_none() {
                anyhow::bail!(
                    "model {id} is not registered: `retainwise model list` shows the registered ones, \
                     `retainwise model add FILE` registers an artifact"
                );
            }
            // Refuse what this installation cannot load rather than fail every upload later.
            app.registry.load(&app.db, &app.storage, &id).await?;
            let org = match &user {
                Some(u) => Some(
                    u.parse::<crate::domain::OrgId>()
                        .map_err(|e| anyhow::anyhow!(e.0))?,
                ),
                None => None,
            };
            let scope = org
                .as_ref()
                .map_or_else(|| crate::db::EVERYONE.to_owned(), |o| o.to_string());
            let actor = crate::audit::Actor::operator(org.as_ref());
            app.db
                .activate_model(&scope, &model_id, Some(&actor))
                .await?;
            match user {
                Some(u) => println!("{id} now scores new uploads of user {u}"),
                None => println!(
                    "{id} now scores new uploads (users who activated their own model keep it)"
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Operations commands look at an existing installation: a missing SQLite file means the wrong
/// folder, not an empty queue.
pub(crate) fn require_existing_database(url: &str) -> anyhow::Result<()> {
    if let Some(path) = crate::config::sqlite_path(url).filter(|p| !p.exists()) {
        anyhow::bail!(
            "no database at {}: run this from the folder that holds retainwise-data, \
             or set RETAINWISE_DATA_DIR / RETAINWISE_DATABASE_URL (a new installation has \
             none until `retainwise serve`, `api` or `worker` has started once)",
            path.display()
        );
    }
    Ok(())
}

async fn queue_command(settings: &Settings, command: QueueCommand) -> anyhow::Result<ExitCode> {
    let config = settings.resolve()?;
    let open = || async {
        require_existing_database(&config.database_url)?;
        App::open(config.clone()).await
    };
    match command {
        QueueCommand::Setup { name } => {
            let client = retainwise_queue::sqs::client(None, None).await;
            let urls = retainwise_queue::sqs::setup(
                &client,
                &name,
                config.visibility_timeout,
                config.max_receives,
            )
            .await?;
            println!("queue:             {}", urls.queue_url);
            println!("dead-letter queue: {}", urls.dlq_url);
            println!("set RETAINWISE_QUEUE_URL={}", urls.queue_url);
        }
        QueueCommand::Cancel { id } => {
            let id: crate::domain::PredictionId = id
                .parse()
                .map_err(|e: crate::domain::DomainError| anyhow::anyhow!(e.0))?;
            let app = open().await?;
            let Some(owner) = app.db.prediction_owner(id).await? else {
                anyhow::bail!("no prediction {id} (see GET /api/predictions)");
            };
            match app.db.cancel_prediction(&owner, id).await? {
                crate::db::Cancelled::Now => {
                    println!("prediction {id} cancelled");
                }
                crate::db::Cancelled::Finished(status) => anyhow::bail!(
                    "prediction {id} is already {status}; only a QUEUED or RUNNING job can be cancelled"
                ),
                crate::db::Cancelled::Missing => anyhow::bail!("no prediction {id}"),
            }
        }
        QueueCommand::Stats => {
            let app = open().await?;
            let s = app.queue.stats().await?;
            println!("depth:      {}", s.depth);
            println!("in flight:  {}", s.in_flight);
            println!("delayed:    {}", s.delayed);
            println!("dead:       {}", s.dead);
            match s.oldest_age {
                Some(age) => println!("oldest age: {}s", age.as_secs()),
                None => println!("oldest age: -"),
            }
        }
        QueueCommand::Dead { limit } => {
            let app = open().await?;
            let dead = app.queue.dead(limit).await?;
            if dead.is_empty() {
                println!("no dead-lettered messages");
            }
            for d in dead {
                println!(
                    "{}  receives={}  dead_at={}  error={}",
                    d.message_id,
                    d.receive_count,
                    crate::time::rfc3339(crate::time::to_ms(d.dead_at)),
                    d.last_error.as_deref().unwrap_or("-")
                );
            }
        }
        QueueCommand::Redrive { all, ids } => {
            if !all && ids.is_empty() {
                anyhow::bail!("name the message ids to redrive, or pass --all");
            }
            let app = open().await?;
            if !all {
                let dead: std::collections::HashSet<String> = app
                    .queue
                    .dead(usize::MAX >> 1)
                    .await?
                    .into_iter()
                    .map(|d| d.message_id)
                    .collect();
                let unknown: Vec<&String> = ids.iter().filter(|id| !dead.contains(*id)).collect();
                if !unknown.is_empty() {
                    anyhow::bail!(
                        "not in the dead-letter store: {} (see `retainwise queue dead`)",
                        unknown
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
            let moved = app
                .queue
                .redrive(if all { None } else { Some(&ids) })
                .await?;
            println!("redrove {moved} message(s); their predictions will run again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

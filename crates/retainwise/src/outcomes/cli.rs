//! `retainwise outcomes add|list|delete`: the operator's (or a single-user installation's)
//! door to outcomes, with the same intake and superseding as `POST /api/outcomes`.

use std::process::ExitCode;

use clap::Subcommand;
use retainwise_model::outcomes::{self as intake, OutcomeError};
use retainwise_model::{InputLimits, ManualMapping};

use crate::config::Settings;
use crate::domain::OrgId;

/// The `outcomes` subcommands.
#[derive(Subcommand, Debug)]
pub enum OutcomesCommand {
    /// Record the outcomes of a CSV (customer id, churned yes/no, date); prints the validation
    /// report's balance and each rejected row. Exit code 2 when some rows were rejected.
    Add {
        /// The CSV file.
        file: std::path::PathBuf,
        /// Whose outcomes (the `sub` their sign-in tokens carry); default: the local user of
        /// an installation without sign-in.
        #[arg(long, default_value = "local")]
        user: String,
        /// Columns chosen by hand, JSON: `{"churned": "Exited", "date": "closed_on"}`.
        #[arg(long)]
        mapping: Option<String>,
    },
    /// List the recorded outcomes, latest date first.
    List {
        /// Whose outcomes.
        #[arg(long, default_value = "local")]
        user: String,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Delete the recorded outcome of a customer.
    Delete {
        /// The customer id, as recorded.
        customer_id: String,
        /// Whose outcome.
        #[arg(long, default_value = "local")]
        user: String,
    },
}

/// Runs one `outcomes` subcommand on the configured database, which must exist.
///
/// Errors: a bad user id, mapping or file (named), or the database's.
pub async fn run(settings: &Settings, command: OutcomesCommand) -> anyhow::Result<ExitCode> {
    let config = settings.resolve()?;
    crate::cli::require_existing_database(&config.database_url)?;
    let db = crate::db::Db::connect(&config.database_url).await?;
    let parse_user = |u: &str| u.parse::<OrgId>().map_err(|e| anyhow::anyhow!(e.0));
    match command {
        OutcomesCommand::Add {
            file,
            user,
            mapping,
        } => {
            let user = parse_user(&user)?;
            let manual: ManualMapping = match mapping {
                Some(m) => serde_json::from_str(&m).map_err(|e| {
                    anyhow::anyhow!("--mapping: {e}; e.g. {{\"churned\": \"Exited\"}}")
                })?,
                None => ManualMapping::new(),
            };
            let input = std::fs::File::open(&file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let read = intake::read(
                std::io::BufReader::new(input),
                &manual,
                retainwise_model::dates::today(),
                &InputLimits::default(),
            );
            let read = match read {
                Ok(read) => read,
                Err(OutcomeError::NoUsableRows { report }) => {
                    for issue in &report.rejected_rows {
                        eprintln!("rejected: {issue}");
                    }
                    anyhow::bail!(
                        "{}: no outcome could be recorded ({})",
                        file.display(),
                        report.balance
                    );
                }
                Err(e) => anyhow::bail!("{}: {e}", file.display()),
            };
            let source: String = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "cli".to_owned());
            let done = super::record(&db, &user, &read.outcomes, &source).await?;
            for issue in read
                .report
                .rejected_rows
                .iter()
                .chain(&read.report.warnings)
            {
                eprintln!("{issue}");
            }
            println!(
                "{}; {} new, {} superseded, {} older than the stored outcome (kept)",
                read.report.balance, done.new, done.superseded, done.older_than_stored
            );
            if read.report.rows_rejected > 0 {
                return Ok(ExitCode::from(2));
            }
        }
        OutcomesCommand::List { user, limit } => {
            let (rows, total) = super::list(&db, &parse_user(&user)?, limit.max(1), 0).await?;
            for o in &rows {
                println!(
                    "{}  {}  {}  recorded={}  source={}",
                    o.customer_id,
                    if o.churned { "churned" } else { "stayed" },
                    o.date,
                    o.recorded_at,
                    o.source
                );
            }
            eprintln!("{} of {total} outcomes", rows.len());
        }
        OutcomesCommand::Delete { customer_id, user } => {
            if !super::delete(&db, &parse_user(&user)?, &customer_id).await? {
                anyhow::bail!("user {user} has no outcome for customer {customer_id}");
            }
            eprintln!("outcome of {customer_id} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

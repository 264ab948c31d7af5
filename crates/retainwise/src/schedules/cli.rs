//! `retainwise schedule add|list|remove`: the operator's view of organisations' re-scoring
//! schedules, with the same checks as `/api/schedules`, audited as the operator.

use std::process::ExitCode;

use clap::Subcommand;

use super::NewSchedule;
use crate::config::Settings;
use crate::domain::OrgId;

/// The `schedule` subcommands.
#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Add a schedule to an organisation and print its id.
    Add {
        /// The organisation.
        #[arg(long)]
        org: String,
        /// A standard 5-field cron expression in UTC, e.g. "0 6 * * 1" (Mondays, 06:00 UTC).
        #[arg(long)]
        cron: String,
        /// `latest` (the latest completed upload) or the key of a CSV in the organisation's
        /// upload folder, `uploads/{org}/NAME.csv`.
        #[arg(long, default_value = "latest")]
        source: String,
        /// A name for the schedule.
        #[arg(long)]
        name: Option<String>,
    },
    /// List an organisation's schedules with their next run and latest runs.
    List {
        /// The organisation.
        #[arg(long)]
        org: String,
    },
    /// Remove an organisation's schedule (the predictions it queued stay).
    Remove {
        /// The organisation.
        #[arg(long)]
        org: String,
        /// The schedule's id, as shown by `list`.
        id: String,
    },
}

/// Runs one `schedule` subcommand on the configured database, which must exist.
///
/// Errors: a bad organisation id, cron expression or source (named), an unknown schedule, or
/// the database's.
pub async fn run(settings: &Settings, command: ScheduleCommand) -> anyhow::Result<ExitCode> {
    let config = settings.resolve()?;
    crate::cli::require_existing_database(&config.database_url)?;
    let db = crate::db::Db::connect(&config.database_url).await?;
    let parse_org = |o: &str| o.parse::<OrgId>().map_err(|e| anyhow::anyhow!(e.0));
    match command {
        ScheduleCommand::Add {
            org,
            cron,
            source,
            name,
        } => {
            let org = parse_org(&org)?;
            let root = crate::storage::Storage::open(&config.storage)?
                .root_url()
                .to_owned();
            let new = NewSchedule::check(Some(&cron), Some(&source), name.as_deref(), &root, &org)
                .map_err(|(field, why)| anyhow::anyhow!("--{field}: {why}"))?;
            let actor = crate::audit::Actor::operator(Some(&org));
            let id = super::add(db.pool(), &org, &new, &actor).await?;
            println!("{id}");
        }
        ScheduleCommand::List { org } => {
            let now = crate::time::now_ms();
            for s in super::list(db.pool(), &parse_org(&org)?, now).await? {
                let next = match s.next_run_at {
                    Some(at) => crate::time::rfc3339(at),
                    None => "paused".to_owned(),
                };
                println!(
                    "{}  {:?}  cron={:?}  source={}  next={next}",
                    s.id, s.name, s.cron, s.source
                );
                for r in &s.runs {
                    let what = match (&r.prediction_id, &r.reason) {
                        (Some(p), _) => format!("prediction {p}"),
                        (None, Some(why)) => why.clone(),
                        (None, None) => String::new(),
                    };
                    println!("    {}  {}  {what}", crate::time::rfc3339(r.slot), r.status);
                }
            }
        }
        ScheduleCommand::Remove { org, id } => {
            let org = parse_org(&org)?;
            let actor = crate::audit::Actor::operator(Some(&org));
            if !super::remove(db.pool(), &org, &id, &actor).await? {
                anyhow::bail!("organisation {} has no schedule {id}", org.as_str());
            }
            eprintln!("schedule {id} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

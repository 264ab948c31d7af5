//! `retainwise org create|members|set|remove|quota|retention|delete`: the operator's member
//! management (quotas, retention and deletion besides), with the
//! same rules as an owner's (`/api/org/members`, the Members page): a team only, at least one
//! owner, a removed member's keys revoked.

use crate::audit::Actor;
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;
use crate::domain::{OrgId, Role, UserId};

/// The `org` subcommands.
#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Create a team with its first owner.
    Create {
        /// The organisation's id (e.g. the identity provider's `org_2abc…`, so tokens naming it
        /// land here).
        org: String,
        /// Its first owner (the `sub` their sign-in tokens carry).
        #[arg(long)]
        owner: String,
        /// A display name (default: the id).
        #[arg(long)]
        name: Option<String>,
    },
    /// List an organisation's members and roles.
    Members {
        /// The organisation (a user's id names their personal one).
        org: String,
    },
    /// Add a member to a team, or change a member's role.
    Set {
        /// The team.
        org: String,
        /// The member's user id.
        user: String,
        /// viewer, analyst, admin or owner.
        #[arg(long)]
        role: String,
    },
    /// Show an organisation's usage this month, or set its quota of rows scored per calendar
    /// month (UTC): uploads that would pass it are refused with 429.
    Quota {
        /// The organisation (a user's id names their personal one).
        org: String,
        /// The new quota.
        #[arg(long, conflicts_with = "default")]
        rows_per_month: Option<u64>,
        /// Remove the organisation's own quota: RETAINWISE_DEFAULT_QUOTA_ROWS applies again
        /// (unlimited when unset).
        #[arg(long)]
        default: bool,
    },
    /// Show an organisation's retention, or set it: uploads are deleted N days after their
    /// prediction finished, results and reports M days after (both 1 to 36,500).
    Retention {
        /// The organisation (a user's id names their personal one).
        org: String,
        /// Days an uploaded file is kept.
        #[arg(long, requires = "results_days")]
        uploads_days: Option<i64>,
        /// Days results and reports are kept.
        #[arg(long, requires = "uploads_days")]
        results_days: Option<i64>,
    },
    /// Delete an organisation and everything it stored (files, predictions, models, webhooks,
    /// outcomes, history, usage, members, API keys), as a job a worker runs; its members lose
    /// access at once. The audit log keeps its entries. Refused while its jobs run.
    Delete {
        /// The organisation (a user's id names their personal one).
        org: String,
    },
    /// Remove a member from a team (their API keys for it are revoked).
    Remove {
        /// The team.
        org: String,
        /// The member's user id.
        user: String,
    },
}

/// Runs one `org` subcommand on the configured database, which must exist.
///
/// Errors: a bad id or role (named), a refused change (the rule it breaks), the database's.
pub async fn run(settings: &Settings, command: OrgCommand) -> anyhow::Result<ExitCode> {
    let config = settings.resolve()?;
    crate::cli::require_existing_database(&config.database_url)?;
    let db = crate::db::Db::connect(&config.database_url).await?;
    let org_of = |o: &str| o.parse::<OrgId>().map_err(|e| anyhow::anyhow!(e.0));
    let user_of = |u: &str| u.parse::<UserId>().map_err(|e| anyhow::anyhow!(e.0));
    let role_of = |r: &str| r.parse::<Role>().map_err(|e| anyhow::anyhow!(e.0));
    match command {
        OrgCommand::Create { org, owner, name } => {
            let (org, owner) = (org_of(&org)?, user_of(&owner)?);
            let name = name.unwrap_or_else(|| org.to_string());
            if !db.create_org(&org, &name, &owner).await? {
                anyhow::bail!("an organisation {org} exists already");
            }
            println!("organisation {org} created with owner {owner}");
        }
        OrgCommand::Members { org } => {
            for m in db.members(&org_of(&org)?).await? {
                println!("{}  {}", m.user_id, m.role);
            }
        }
        OrgCommand::Set { org, user, role } => {
            let (org, user, role) = (org_of(&org)?, user_of(&user)?, role_of(&role)?);
            let added = db
                .set_member(&org, &user, role, Some(&Actor::operator(Some(&org))))
                .await?;
            let verb = if added { "added to" } else { "now" };
            println!("{user} {verb} {org} as {role}");
        }
        OrgCommand::Quota {
            org,
            rows_per_month,
            default,
        } => {
            let org = org_of(&org)?;
            if default {
                db.set_quota(&org, None).await?;
            } else if let Some(rows) = rows_per_month {
                db.set_quota(&org, Some(rows)).await?;
            }
            let usage = db.usage(&org, config.default_quota_rows).await?;
            let quota = usage
                .quota
                .map_or_else(|| "unlimited".to_owned(), |q| q.to_string());
            println!(
                "{org}: {} rows scored in {} ({} held by queued and running predictions); quota {quota} ({}); resets on {}",
                usage.rows_scored, usage.month, usage.rows_reserved, usage.quota_source, usage.resets_on
            );
        }
        OrgCommand::Retention {
            org,
            uploads_days,
            results_days,
        } => {
            let org = org_of(&org)?;
            let app = crate::app::App::open(config.clone()).await?;
            if let (Some(u), Some(r)) = (uploads_days, results_days) {
                let days = crate::retention::check(u, r).map_err(|e| anyhow::anyhow!(e))?;
                crate::api::deletion::set_retention_as(
                    &app,
                    &org,
                    days,
                    &Actor::operator(Some(&org)),
                )
                .await?;
            }
            let (days, own) = crate::retention::of(app.db.pool(), &org, config.retention).await?;
            let source = if own {
                "its own"
            } else {
                "the operator's defaults"
            };
            println!(
                "{org}: uploads kept {} days, results and reports {} days after their prediction finished ({source})",
                days.upload_days, days.result_days
            );
        }
        OrgCommand::Delete { org } => {
            let org = org_of(&org)?;
            let app = crate::app::App::open(config.clone()).await?;
            let id =
                crate::api::deletion::queue_org_deletion(&app, &org, &Actor::operator(Some(&org)))
                    .await
                    .map_err(|e| match e {
                        crate::api::deletion::OrgDeleteRefusal::Internal(
                            crate::http::ApiError::Internal(e),
                        ) => e,
                        e => anyhow::anyhow!(e.to_string()),
                    })?;
            println!(
                "deletion {id} of {org} queued: its members have lost access; a worker removes its files and rows"
            );
        }
        OrgCommand::Remove { org, user } => {
            let (org, user) = (org_of(&org)?, user_of(&user)?);
            db.remove_member(&org, &user, Some(&Actor::operator(Some(&org))))
                .await?;
            println!("{user} removed from {org}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

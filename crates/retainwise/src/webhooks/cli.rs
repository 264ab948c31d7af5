//! `retainwise webhook add|list|remove`: the operator's view of users' webhook endpoints, with
//! the same checks as `/api/webhooks`.

use std::process::ExitCode;

use clap::Subcommand;

use super::endpoints;
use crate::config::Settings;
use crate::domain::OrgId;

/// The `webhook` subcommands.
#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Register an endpoint for a user and print its signing secret (shown only now).
    Add {
        /// The user whose events it receives (the `sub` their sign-in tokens carry).
        #[arg(long)]
        user: String,
        /// Where deliveries are POSTed: an http(s) URL resolving to public addresses (unless
        /// RETAINWISE_WEBHOOK_ALLOW_PRIVATE=true).
        #[arg(long)]
        url: String,
        /// Events, comma-separated: prediction.completed, prediction.failed,
        /// training.completed, training.failed, customers.risk_increased.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
    },
    /// List a user's endpoints (never their secrets).
    List {
        /// The user.
        #[arg(long)]
        user: String,
    },
    /// Remove a user's endpoint: no further delivery goes to it.
    Remove {
        /// The user.
        #[arg(long)]
        user: String,
        /// The endpoint's id, as shown by `list`.
        id: String,
    },
}

/// Runs one `webhook` subcommand on the configured database, which must exist.
///
/// Errors: a bad user id, event or URL (named), an unknown endpoint, or the database's.
pub async fn run(settings: &Settings, command: WebhookCommand) -> anyhow::Result<ExitCode> {
    let config = settings.resolve()?;
    crate::cli::require_existing_database(&config.database_url)?;
    let db = crate::db::Db::connect(&config.database_url).await?;
    let operator = |org: &OrgId| crate::audit::Actor::operator(Some(org));
    let parse_user = |u: &str| u.parse::<OrgId>().map_err(|e| anyhow::anyhow!(e.0));
    match command {
        WebhookCommand::Add { user, url, events } => {
            let user = parse_user(&user)?;
            let made = super::register(db.pool(), &config, &user, &url, &events, &operator(&user))
                .await
                .map_err(anyhow::Error::msg)?;
            let (id, secret) = (made.id, made.secret);
            println!("{secret}");
            eprintln!(
                "webhook {id} for user {} created; its secret is shown only now, give it to the \
                 receiver to verify signatures",
                user.as_str()
            );
        }
        WebhookCommand::List { user } => {
            for e in endpoints::list(db.pool(), &parse_user(&user)?).await? {
                println!(
                    "{}  {}  events={}  created={}",
                    e.id,
                    e.url,
                    e.events.join(","),
                    crate::time::rfc3339(e.created_at)
                );
            }
        }
        WebhookCommand::Remove { user, id } => {
            let org = parse_user(&user)?;
            if !super::remove(db.pool(), &org, &id, &operator(&org)).await? {
                anyhow::bail!("user {user} has no webhook {id}");
            }
            println!("removed {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

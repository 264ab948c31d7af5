//! What a deployment needs from the binary besides serving: running migrations as a one-off
//! (`retainwise migrate`) and starting without them (`--no-migrate`), the build's identity
//! (`GET /__version`), queue figures as CloudWatch metrics for an autoscaler (Embedded Metric
//! Format), secrets read from files (`*_FILE`), and the list of environment variables the binary
//! reads (`retainwise env-vars`, which `deploy/` is checked against).

pub mod emf;
pub mod env_vars;
pub mod migrations;
pub mod secret_files;
pub mod version;

use std::time::Duration;

/// Deployment flags of the long-running roles (`serve`, `api`, `worker`).
#[derive(clap::Args, Debug, Clone)]
pub struct OpsSettings {
    /// Apply no database migration at start: check that every migration this build knows is
    /// already applied (by `retainwise migrate`, run once per release) and exit naming the
    /// missing ones otherwise. Set it on every task of a fleet so that only the one-off
    /// `migrate` task changes the schema.
    #[arg(long, env = "RETAINWISE_NO_MIGRATE",
          value_parser = clap::builder::BoolishValueParser::new(),
          default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub no_migrate: bool,
    /// Every this many seconds, print the queue's depth, in-flight, delayed and dead counts and
    /// its oldest message's age as one CloudWatch Embedded Metric Format line on stdout (0: off).
    /// CloudWatch Logs turns such lines into metrics with no extra IAM right, so an autoscaler
    /// can follow the database queue as it follows SQS.
    #[arg(long, env = "RETAINWISE_EMF_INTERVAL_SECS", default_value_t = 0)]
    pub emf_interval_secs: u64,
    /// CloudWatch namespace of those metrics.
    #[arg(long, env = "RETAINWISE_EMF_NAMESPACE", default_value = emf::DEFAULT_NAMESPACE)]
    pub emf_namespace: String,
}

impl OpsSettings {
    /// How often queue metrics are printed, `None` when off.
    pub fn emf_interval(&self) -> Option<Duration> {
        (self.emf_interval_secs > 0).then(|| Duration::from_secs(self.emf_interval_secs))
    }
}

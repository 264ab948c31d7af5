//! The audit log: who did what to which record, when, and whether it was allowed.
//!
//! Append-only: this module is the only writer of `audit_log` and has no UPDATE or DELETE; at
//! start-up [`guard`] adds a trigger that refuses both on SQLite and on Postgres. A change that
//! has a transaction writes its entry in it ([`record`] takes any executor), so the log holds an
//! entry exactly when the change was committed; a read (a download) writes one insert.
//!
//! Sign-in failures are bounded: at most one row per client address per minute, whose `count`
//! is that failure plus the ones from the same address not written since the previous row (so
//! a flood of bad credentials costs one row a minute per address, and no failure goes uncounted).

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::Serialize;
use sqlx::{Any, Executor};

use crate::auth::Member;
use crate::db::Dialect;
use crate::domain::OrgId;
use crate::time::now_ms;

/// What was done: a closed set, stored by [`Action::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A CSV uploaded for scoring (record: the prediction).
    Upload,
    /// A prediction's results downloaded as CSV (record: the prediction).
    DownloadResults,
    /// A prediction's report downloaded (record: the prediction).
    DownloadReport,
    /// A prediction's customers exported to Excel (record: the prediction).
    ExportExcel,
    /// A training started (record: the training).
    ModelTrain,
    /// A model made the active one (record: the model).
    ModelActivate,
    /// A webhook endpoint registered (record: the endpoint).
    WebhookAdd,
    /// A webhook endpoint removed (record: the endpoint).
    WebhookRemove,
    /// A member added to the organisation (record: the user).
    MemberAdd,
    /// A member's role changed (record: the user; reason: the new role).
    MemberRoleChange,
    /// A member removed (record: the user).
    MemberRemove,
    /// A credential refused (an API key or token, on the API or the sign-in form).
    SignInFailure,
    /// A signed-in caller refused a route by its role (record: the route).
    AccessRefused,
    /// A re-scoring schedule added (record: the schedule).
    ScheduleAdd,
    /// A schedule removed (record: the schedule).
    ScheduleRemove,
    /// A schedule paused (record: the schedule).
    SchedulePause,
    /// A paused schedule resumed (record: the schedule).
    ScheduleResume,
    /// A prediction's deletion queued (record: the prediction).
    PredictionDelete,
    /// An organisation's deletion queued (record: the deletion job).
    OrgDelete,
    /// An organisation's deletion finished: every file and row of it is gone (record: the
    /// deletion job).
    OrgDeleted,
    /// An organisation's retention set (record: the organisation; reason: the days).
    RetentionSet,
    /// An end customer's erasure queued (record: the customer's keyed hash, never the id).
    CustomerErase,
}

impl Action {
    /// Every action, for parsing and the page's filter.
    pub const ALL: [Action; 22] = [
        Self::Upload,
        Self::DownloadResults,
        Self::DownloadReport,
        Self::ExportExcel,
        Self::ModelTrain,
        Self::ModelActivate,
        Self::WebhookAdd,
        Self::WebhookRemove,
        Self::MemberAdd,
        Self::MemberRoleChange,
        Self::MemberRemove,
        Self::SignInFailure,
        Self::AccessRefused,
        Self::ScheduleAdd,
        Self::ScheduleRemove,
        Self::SchedulePause,
        Self::ScheduleResume,
        Self::PredictionDelete,
        Self::OrgDelete,
        Self::OrgDeleted,
        Self::RetentionSet,
        Self::CustomerErase,
    ];

    /// The stored and shown name (`member.role_change`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::DownloadResults => "download.results",
            Self::DownloadReport => "download.report",
            Self::ExportExcel => "export.excel",
            Self::ModelTrain => "model.train",
            Self::ModelActivate => "model.activate",
            Self::WebhookAdd => "webhook.add",
            Self::WebhookRemove => "webhook.remove",
            Self::MemberAdd => "member.add",
            Self::MemberRoleChange => "member.role_change",
            Self::MemberRemove => "member.remove",
            Self::SignInFailure => "signin.failure",
            Self::AccessRefused => "access.refused",
            Self::ScheduleAdd => "schedule.add",
            Self::ScheduleRemove => "schedule.remove",
            Self::SchedulePause => "schedule.pause",
            Self::ScheduleResume => "schedule.resume",
            Self::PredictionDelete => "prediction.delete",
            Self::OrgDelete => "organisation.delete",
            Self::OrgDeleted => "organisation.deleted",
            Self::RetentionSet => "organisation.retention",
            Self::CustomerErase => "customer.erase",
        }
    }

    /// The action named `raw`. Errors: the known names.
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == raw)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|a| a.as_str()).collect();
                format!("unknown action {raw:?}; known: {}", known.join(", "))
            })
    }
}

/// Who acted: the member (when one was authenticated) and the client's address.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// The organisation acted in; `None` for a refused credential naming none.
    pub org: Option<OrgId>,
    /// The user.
    pub user: Option<String>,
    /// The API key used, when one was.
    pub api_key: Option<String>,
    /// The client's address (behind trusted proxies, their forwarded one).
    pub ip: Option<IpAddr>,
}

impl Actor {
    /// The actor of an authenticated request from `ip`.
    pub fn of(member: &Member, ip: Option<IpAddr>) -> Self {
        Self {
            org: Some(member.org.clone()),
            user: Some(member.user.as_str().to_owned()),
            api_key: member.api_key.clone(),
            ip,
        }
    }
}

impl Actor {
    /// The operator at the command line (`retainwise org …`, `webhook …`, `model activate`),
    /// acting on `org` (`None`: every organisation's default). Stored as the user
    /// [`Actor::OPERATOR`], which no user id can be (ids have no spaces).
    pub fn operator(org: Option<&OrgId>) -> Self {
        Self {
            org: org.cloned(),
            user: Some(Self::OPERATOR.to_owned()),
            ..Self::default()
        }
    }

    /// The user of the operator's entries.
    pub const OPERATOR: &'static str = "operator (cli)";

    /// A schedule of `org` queueing its run (the prediction's `upload` entry): stored as the
    /// user `schedule {id}`, which no user id can be (ids have no spaces).
    pub fn schedule(org: &OrgId, schedule: &str) -> Self {
        Self {
            org: Some(org.clone()),
            user: Some(format!("schedule {schedule}")),
            ..Self::default()
        }
    }
}

/// What became of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Ok,
    /// Refused, with the reason shown to the caller.
    Refused(String),
}

/// Orders entries of the same millisecond as they were written by this process.
fn next_seq() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let floor = now_ms().saturating_mul(1000);
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let next = floor.max(last + 1);
        match LAST.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// Appends one entry through `db` (a transaction's connection for a change, so the entry is
/// committed with it; the pool for a read). `record`: (kind, id) of the record acted on.
///
/// Errors: the database's (the caller's transaction then rolls back: no change without its entry).
pub async fn record<'c, E: Executor<'c, Database = Any>>(
    db: E,
    actor: &Actor,
    action: Action,
    record: Option<(&str, &str)>,
    outcome: &Outcome,
) -> Result<(), sqlx::Error> {
    insert(db, actor, action, record, outcome, 1).await
}

/// An upload refused (`POST /api/csv`, or completing a direct upload): recorded with the
/// reason the caller was given, no record (no prediction was made). A failure on our side (500,
/// 507) is not the caller's action and is logged instead; so is a failure to write this entry,
/// which must not replace the refusal the caller is owed.
pub async fn refused_upload(db: &sqlx::AnyPool, actor: &Actor, refusal: &crate::http::ApiError) {
    use crate::http::ApiError;
    if matches!(
        refusal,
        ApiError::Internal(_) | ApiError::StorageFull(_) | ApiError::Unauthorized
    ) {
        return;
    }
    let outcome = Outcome::Refused(refusal.to_string());
    if let Err(e) = record(db, actor, Action::Upload, None, &outcome).await {
        tracing::warn!(error = %e, "could not audit a refused upload");
    }
}

/// A read of `prediction`'s rows (a download, an export), recorded by one insert before the
/// bytes go out.
///
/// Errors: the database's (the read is then refused: no customer rows leave unrecorded).
pub async fn prediction_read(
    pool: &sqlx::AnyPool,
    actor: &Actor,
    action: Action,
    prediction: &str,
) -> Result<(), sqlx::Error> {
    let record = Some(("prediction", prediction));
    insert(pool, actor, action, record, &Outcome::Ok, 1).await
}

/// An export of `prediction`'s customer rows (the results CSV, the Excel workbook) with the
/// `mask` it used, kept as the entry's reason (`mask=full`), recorded before the bytes go out.
///
/// Errors: the database's (the export is then refused: no customer rows leave unrecorded).
pub async fn prediction_export(
    pool: &sqlx::AnyPool,
    actor: &Actor,
    action: Action,
    prediction: &str,
    mask: crate::privacy::Mask,
) -> Result<(), sqlx::Error> {
    let record = Some(("prediction", prediction));
    let reason = format!("mask={}", mask.as_str());
    insert_with(pool, actor, action, record, ("ok", Some(reason)), 1).await
}

async fn insert<'c, E: Executor<'c, Database = Any>>(
    db: E,
    actor: &Actor,
    action: Action,
    record: Option<(&str, &str)>,
    outcome: &Outcome,
    count: i64,
) -> Result<(), sqlx::Error> {
    let (outcome, reason) = match outcome {
        Outcome::Ok => ("ok", None),
        Outcome::Refused(reason) => ("refused", Some(clip(reason))),
    };
    insert_with(db, actor, action, record, (outcome, reason), count).await
}

async fn insert_with<'c, E: Executor<'c, Database = Any>>(
    db: E,
    actor: &Actor,
    action: Action,
    record: Option<(&str, &str)>,
    (outcome, reason): (&str, Option<String>),
    count: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (id, seq, org_id, user_id, api_key_id, client_ip, action, \
         record_kind, record_id, outcome, reason, count, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(next_seq())
    .bind(actor.org.as_ref().map(|o| o.as_str().to_owned()))
    .bind(actor.user.clone())
    .bind(actor.api_key.clone())
    .bind(actor.ip.map(|ip| ip.to_string()))
    .bind(action.as_str())
    .bind(record.map(|(kind, _)| kind.to_owned()))
    .bind(record.map(|(_, id)| clip(id)))
    .bind(outcome)
    .bind(reason)
    .bind(count)
    .bind(now_ms())
    .execute(db)
    .await?;
    Ok(())
}

/// A client-given text stored at most 300 characters long.
fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

/// Records a refused credential from `ip` (never the credential itself), at most one row per
/// address per minute (see the module's text). `reason`: why it was refused.
///
/// Errors: the database's.
pub async fn sign_in_failure(
    db: &crate::db::Db,
    ip: Option<IpAddr>,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let key = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let Some(unwritten) = db.sign_in_failures().allow(&key) else {
        return Ok(());
    };
    let actor = Actor {
        ip,
        ..Actor::default()
    };
    let count = i64::try_from(unwritten)
        .unwrap_or(i64::MAX)
        .saturating_add(1);
    insert(
        db.pool(),
        &actor,
        Action::SignInFailure,
        None,
        &Outcome::Refused(reason.to_owned()),
        count,
    )
    .await
}

/// Makes `audit_log` refuse UPDATE and DELETE in the database itself (a trigger; idempotent,
/// run after the migrations by every start that migrates (`retainwise migrate` too), since
/// trigger syntax differs between the two dialects).
///
/// On Postgres the statements run in one transaction under an advisory lock and create the
/// function and the trigger only when missing: processes of a fleet start at once, and two
/// concurrent `CREATE OR REPLACE FUNCTION`s of one name fail with "tuple concurrently updated".
///
/// Errors: the database's.
pub async fn guard(pool: &sqlx::AnyPool, dialect: Dialect) -> Result<(), sqlx::Error> {
    let statements: &[&str] = match dialect {
        Dialect::Sqlite => &[
            "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
            "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
        ],
        Dialect::Postgres => &[
            // Any fixed key: it only has to be the same in every process of this program.
            "SELECT pg_advisory_xact_lock(7232350117450431090)",
            "DO $do$ BEGIN \
             IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'audit_log_append_only') THEN \
             CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $fn$ \
             BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $fn$ LANGUAGE plpgsql; \
             END IF; \
             IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'audit_log_append_only') THEN \
             CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION audit_log_append_only(); \
             END IF; END $do$",
        ],
    };
    let mut tx = pool.begin().await?;
    for statement in statements {
        sqlx::raw_sql(statement).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// One entry as the API and the page show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Entry {
    /// The entry's id.
    pub id: String,
    /// When, epoch milliseconds (shown as RFC 3339 as `at`).
    #[serde(rename = "at", serialize_with = "crate::time::serialize_rfc3339")]
    pub created_at: i64,
    /// The user, if one was authenticated.
    pub user_id: Option<String>,
    /// The API key used, if one was.
    pub api_key_id: Option<String>,
    /// The client's address.
    pub client_ip: Option<String>,
    /// [`Action::as_str`].
    pub action: String,
    /// The kind of record acted on (`prediction`, `model`, `webhook`, `member`, `route`).
    pub record_kind: Option<String>,
    /// Its id.
    pub record_id: Option<String>,
    /// `ok` or `refused`.
    pub outcome: String,
    /// Why it was refused (or, for a role change, the new role; for an export of customer rows,
    /// the mask it used: `mask=none`, `mask=partial`, `mask=full`).
    pub reason: Option<String>,
    /// How many events the entry stands for (sign-in failures, see the module's text).
    pub count: i64,
}

/// What [`list`] selects; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// One action.
    pub action: Option<Action>,
    /// One user.
    pub user: Option<String>,
    /// From this time on, epoch milliseconds (inclusive).
    pub since: Option<i64>,
    /// Before this time, epoch milliseconds (exclusive).
    pub until: Option<i64>,
    /// One record's id (of any kind).
    pub record: Option<String>,
}

/// `org`'s entries matching `filter`, oldest first, `limit` of them after skipping `offset`.
///
/// Errors: the database's.
pub async fn list(
    pool: &sqlx::AnyPool,
    org: &OrgId,
    filter: &Filter,
    limit: i64,
    offset: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    let mut sql = String::from(
        "SELECT id, created_at, user_id, api_key_id, client_ip, action, record_kind, record_id, \
         outcome, reason, count FROM audit_log WHERE org_id = $1",
    );
    let mut n = 1;
    let mut clause = |column: &str, op: &str| {
        n += 1;
        sql.push_str(&format!(" AND {column} {op} ${n}"));
    };
    if filter.action.is_some() {
        clause("action", "=");
    }
    if filter.user.is_some() {
        clause("user_id", "=");
    }
    if filter.since.is_some() {
        clause("created_at", ">=");
    }
    if filter.until.is_some() {
        clause("created_at", "<");
    }
    if filter.record.is_some() {
        clause("record_id", "=");
    }
    sql.push_str(&format!(
        " ORDER BY seq, id LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    ));
    let mut query = sqlx::query_as::<_, Entry>(&sql).bind(org.as_str());
    if let Some(action) = filter.action {
        query = query.bind(action.as_str());
    }
    if let Some(user) = &filter.user {
        query = query.bind(user.clone());
    }
    if let Some(since) = filter.since {
        query = query.bind(since);
    }
    if let Some(until) = filter.until {
        query = query.bind(until);
    }
    if let Some(record) = &filter.record {
        query = query.bind(record.clone());
    }
    query.bind(limit).bind(offset).fetch_all(pool).await
}

//! Storage of the CRM on SQLite or PostgreSQL through one sqlx `AnyPool` (migration
//! `0006_crm.sql`). The SQL is written once for both backends: `$n` placeholders, text ids,
//! BIGINT millisecond timestamps, flags as 0/1. Permission rules come from
//! [`crate::permission`]; every write to a ticket refuses archived tickets.

mod archive;
mod attachments;
mod callbacks;
mod complaints;
mod contacts;
mod facts;
mod tickets;

use std::path::PathBuf;

use hotline_core::{IdGenerator, Rng, UnixMillis};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::callback::CallbackPolicy;
use crate::error::{CrmError, CrmResult};
use crate::permission::Actor;
use crate::stats::StatsParams;
use crate::ticket::SlaPolicy;

pub use archive::ArchiveQuery;
pub use attachments::{Attachment, AttachmentPolicy, sniff_type};
pub use callbacks::{CallbackFilter, CallbackTask};
pub use complaints::{ComplaintCase, ComplaintCount, ComplaintRecord, Finding};
pub use contacts::{Contact, ContactView, Interaction, InteractionKind, NewInteraction, Page};
pub use facts::MonthlyData;
pub use tickets::{
    Comment, DepositReview, HistoryEntry, NewTicket, ReviewOutcome, Ticket, TicketEdit,
    TicketFilter,
};

/// The CRM's settings (the binary embeds this in its config file as `[crm]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CrmConfig {
    pub sla: SlaPolicy,
    pub callbacks: CallbackPolicy,
    pub stats: StatsParams,
    pub attachments: AttachmentPolicy,
    /// Months an archived case is kept (0: for ever).
    pub archive_retention_months: u32,
}

/// The CRM's storage and workflows.
#[derive(Debug, Clone)]
pub struct CrmStore {
    pool: AnyPool,
    config: CrmConfig,
    attachment_dir: PathBuf,
}

impl CrmStore {
    /// `attachment_dir` is where uploaded files go (e.g. `<data dir>/attachments`).
    pub fn new(pool: AnyPool, config: CrmConfig, attachment_dir: impl Into<PathBuf>) -> Self {
        Self {
            pool,
            config,
            attachment_dir: attachment_dir.into(),
        }
    }
    pub fn config(&self) -> &CrmConfig {
        &self.config
    }
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// Writes one row of the shared audit log (table `audit_log` of the foundation).
pub(crate) async fn audit(
    conn: &mut sqlx::AnyConnection,
    now: UnixMillis,
    rng: &dyn Rng,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: &str,
) -> CrmResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, target, detail, remote_addr) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(IdGenerator::new_id(now, rng))
    .bind(now)
    .bind(&actor.username)
    .bind(action)
    .bind(target)
    .bind(detail)
    .bind(&actor.remote_addr)
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) fn text(row: &AnyRow, col: &str) -> CrmResult<String> {
    Ok(row.try_get::<String, _>(col)?)
}
pub(crate) fn opt_text(row: &AnyRow, col: &str) -> CrmResult<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}
pub(crate) fn int(row: &AnyRow, col: &str) -> CrmResult<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}
pub(crate) fn opt_int(row: &AnyRow, col: &str) -> CrmResult<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(col)?)
}

/// Bounds a page size.
pub(crate) fn limit(n: i64) -> i64 {
    n.clamp(1, 500)
}

pub(crate) fn corrupt(e: CrmError) -> CrmError {
    match e {
        CrmError::Invalid(m) => CrmError::Corrupt(m),
        other => other,
    }
}

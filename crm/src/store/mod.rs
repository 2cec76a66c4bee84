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

/// Appends one entry to the shared audit log (table `audit_log` of the foundation), which is
/// hash-chained (`hotline_core::audit_chain`): the same SQL as the binary's writer, inside
/// the caller's transaction, so the head's lock is held until the CRM change commits.
pub(crate) async fn audit(
    conn: &mut sqlx::AnyConnection,
    now: UnixMillis,
    rng: &dyn Rng,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: &str,
) -> CrmResult<()> {
    use hotline_core::audit_chain::{ChainFields, entry_hash, sql};
    let id = IdGenerator::new_id(now, rng);
    sqlx::query(sql::LOCK_HEAD).execute(&mut *conn).await?;
    let head = sqlx::query(sql::READ_HEAD).fetch_one(&mut *conn).await?;
    let seq: i64 = head.try_get("seq")?;
    let prev: String = head.try_get("last_hash")?;
    let hash = entry_hash(
        &prev,
        &ChainFields {
            seq,
            id: &id,
            at: now,
            actor: &actor.username,
            action,
            target,
            detail,
            remote_addr: &actor.remote_addr,
        },
    );
    sqlx::query(sql::INSERT_ENTRY)
        .bind(&id)
        .bind(now)
        .bind(&actor.username)
        .bind(action)
        .bind(target)
        .bind(detail)
        .bind(&actor.remote_addr)
        .bind(seq)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    sqlx::query(sql::SET_HEAD_HASH)
        .bind(&hash)
        .execute(&mut *conn)
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

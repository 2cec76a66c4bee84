//! The archive (建档): closed cases are archived month by month and are read-only from then
//! on — every write path checks `archived_at` and the UPDATE statements refuse archived
//! rows as well. Archived cases stay searchable; retention is configurable.

use hotline_core::{Rng, UnixMillis};
use serde::{Deserialize, Serialize};

use super::tickets::{TICKET_COLS, Ticket, ticket_from_row, visibility_sql};
use super::{CrmStore, audit, limit};
use crate::calendar::YearMonth;
use crate::error::{CrmError, CrmResult};
use crate::permission::Actor;
use crate::ticket::TicketKind;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArchiveQuery {
    /// `YYYY-MM`
    pub month: Option<String>,
    /// Words in the title or body, or a phone number, application code or 12345 number.
    pub text: Option<String>,
    pub kind: Option<TicketKind>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl CrmStore {
    /// Archives the cases closed before the end of `month` that are not archived yet, under
    /// that month. Returns how many. Only supervisors and admins run it.
    pub async fn archive_month(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        month: YearMonth,
    ) -> CrmResult<u64> {
        if !matches!(
            actor.role,
            hotline_core::Role::Admin | hotline_core::Role::Supervisor
        ) {
            return Err(CrmError::Forbidden("archive"));
        }
        let (_, end) = month.range(self.config.stats.utc_offset_minutes);
        if now < end {
            return Err(CrmError::Invalid("只能归档已结束的月份".into()));
        }
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE crm_tickets SET archived_at = $1, archive_month = $2 \
             WHERE status = 'closed' AND closed_at < $3 AND archived_at IS NULL",
        )
        .bind(now)
        .bind(month.to_string())
        .bind(end)
        .execute(&mut *tx)
        .await?;
        let n = done.rows_affected();
        audit(
            &mut tx,
            now,
            rng,
            actor,
            "crm.archive",
            &month.to_string(),
            &format!("{n} cases"),
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Searches archived cases `actor` may see, newest first.
    pub async fn search_archive(&self, actor: &Actor, q: &ArchiveQuery) -> CrmResult<Vec<Ticket>> {
        let mut sql =
            format!("SELECT {TICKET_COLS} FROM crm_tickets WHERE archived_at IS NOT NULL");
        let mut binds: Vec<String> = Vec::new();
        if let Some(m) = &q.month {
            let m: YearMonth = m.parse().map_err(CrmError::Invalid)?;
            binds.push(m.to_string());
            sql.push_str(&format!(" AND archive_month = ${}", binds.len()));
        }
        if let Some(k) = q.kind {
            binds.push(k.as_str().into());
            sql.push_str(&format!(" AND kind = ${}", binds.len()));
        }
        if let Some(t) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            let escaped = t
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            binds.push(format!("%{escaped}%"));
            let n = binds.len();
            binds.push(t.to_string());
            let m = binds.len();
            sql.push_str(&format!(
                " AND (title LIKE ${n} ESCAPE '\\' OR body LIKE ${n} ESCAPE '\\' \
                 OR caller_phone = ${m} OR application_code = ${m} OR external_ref = ${m})"
            ));
        }
        let (vis, needs_user) = visibility_sql(actor, binds.len() + 1);
        sql.push_str(&vis);
        if needs_user {
            binds.push(actor.username.clone());
        }
        sql.push_str(&format!(
            " ORDER BY closed_at DESC, id DESC LIMIT {} OFFSET {}",
            limit(q.limit.unwrap_or(50)),
            q.offset.unwrap_or(0).max(0)
        ));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            query = query.bind(b);
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(ticket_from_row)
            .collect()
    }

    /// Archived cases older than the retention period, for the operator to export and
    /// remove (nothing is deleted automatically). Empty when retention is 0 (for ever).
    pub async fn expired_archive_months(&self, now: UnixMillis) -> CrmResult<Vec<String>> {
        let keep = self.config.archive_retention_months;
        if keep == 0 {
            return Ok(Vec::new());
        }
        let mut cutoff = YearMonth::of(now, self.config.stats.utc_offset_minutes);
        for _ in 0..keep {
            cutoff = YearMonth {
                year: if cutoff.month == 1 {
                    cutoff.year - 1
                } else {
                    cutoff.year
                },
                month: if cutoff.month == 1 {
                    12
                } else {
                    cutoff.month - 1
                },
            };
        }
        let rows = sqlx::query(
            "SELECT DISTINCT archive_month FROM crm_tickets \
             WHERE archive_month IS NOT NULL AND archive_month < $1 ORDER BY archive_month",
        )
        .bind(cutoff.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| super::text(r, "archive_month"))
            .collect()
    }
}

//! Callback tasks (回访) in storage; the scheduling rules are in [`crate::callback`].

use hotline_core::{IdGenerator, Rng, UnixMillis};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::contacts::{InteractionKind, NewInteraction, insert_interaction};
use super::{CrmStore, int, limit, opt_int, opt_text, text};
use crate::callback::{CallbackOutcome, CallbackSource, CallbackStatus, NewCallback, Schedule};
use crate::error::{CrmError, CrmResult};
use crate::permission::{self, Actor};
use crate::stats::CallFact;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackTask {
    pub id: String,
    pub source: CallbackSource,
    pub phone: String,
    pub contact_id: Option<String>,
    pub call_id: Option<String>,
    pub ticket_id: Option<String>,
    pub queue: Option<String>,
    pub note: String,
    pub status: CallbackStatus,
    pub attempts: i64,
    pub next_attempt_at: UnixMillis,
    pub last_outcome: Option<String>,
    pub assignee: Option<String>,
    pub done_by: Option<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub done_at: Option<UnixMillis>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallbackFilter {
    pub status: Option<CallbackStatus>,
    pub source: Option<CallbackSource>,
    pub limit: Option<i64>,
}

const COLS: &str = "id, source, phone, contact_id, call_id, ticket_id, queue, note, status, \
    attempts, next_attempt_at, last_outcome, assignee, done_by, created_at, updated_at, done_at";

fn from_row(r: &AnyRow) -> CrmResult<CallbackTask> {
    Ok(CallbackTask {
        id: text(r, "id")?,
        source: text(r, "source")?.parse().map_err(super::corrupt)?,
        phone: text(r, "phone")?,
        contact_id: opt_text(r, "contact_id")?,
        call_id: opt_text(r, "call_id")?,
        ticket_id: opt_text(r, "ticket_id")?,
        queue: opt_text(r, "queue")?,
        note: text(r, "note")?,
        status: CallbackStatus::parse(&text(r, "status")?)?,
        attempts: int(r, "attempts")?,
        next_attempt_at: int(r, "next_attempt_at")?,
        last_outcome: opt_text(r, "last_outcome")?,
        assignee: opt_text(r, "assignee")?,
        done_by: opt_text(r, "done_by")?,
        created_at: int(r, "created_at")?,
        updated_at: int(r, "updated_at")?,
        done_at: opt_int(r, "done_at")?,
    })
}

impl CrmStore {
    /// Creates a task, first attempt at the next moment inside service hours. A queue
    /// request made outside service hours is recorded as after-hours.
    pub async fn create_callback(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        new: NewCallback,
    ) -> CrmResult<CallbackTask> {
        let id = IdGenerator::new_id(now, rng);
        self.create_callback_as(now, rng, &id, new).await
    }

    /// [`CrmStore::create_callback`] as task `id` (from `IdGenerator::new_id`): creating the
    /// same id again changes nothing, so a write retried after a lost reply makes one task.
    pub async fn create_callback_as(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        id: &str,
        mut new: NewCallback,
    ) -> CrmResult<CallbackTask> {
        let policy = &self.config.callbacks;
        if new.source == CallbackSource::QueueRequest && policy.is_after_hours(new.requested_at) {
            new.source = CallbackSource::AfterHours;
        }
        let contact = self.contact_by_phone(now, rng, &new.phone).await?;
        let s = Schedule::first(policy, new.requested_at);
        sqlx::query(
            "INSERT INTO crm_callbacks (id, source, phone, contact_id, call_id, ticket_id, queue, \
             note, status, attempts, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $10, $10) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(new.source.as_str())
        .bind(contact.phone.as_deref().unwrap_or(&new.phone))
        .bind(&contact.id)
        .bind(&new.call_id)
        .bind(&new.ticket_id)
        .bind(&new.queue)
        .bind(&new.note)
        .bind(s.next_attempt_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.callback(id).await
    }

    /// Picks an answered call for a satisfaction follow-up with the configured probability.
    pub async fn maybe_sample_call(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        call: &CallFact,
    ) -> CrmResult<Option<CallbackTask>> {
        if call.answered_at.is_none() || !self.config.callbacks.sample(rng) {
            return Ok(None);
        }
        self.create_callback(
            now,
            rng,
            NewCallback {
                source: CallbackSource::Sample,
                phone: call.caller.clone(),
                call_id: Some(call.call_id.clone()),
                ticket_id: None,
                queue: Some(call.queue.clone()),
                note: "满意度抽样回访".into(),
                requested_at: call.ended_at.unwrap_or(now),
            },
        )
        .await
        .map(Some)
    }

    pub async fn callback(&self, id: &str) -> CrmResult<CallbackTask> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM crm_callbacks WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| CrmError::NotFound(format!("回访任务 {id}")))?;
        from_row(&row)
    }

    /// Pending tasks whose next attempt is due at `now`, the most overdue first.
    pub async fn due_callbacks(&self, now: UnixMillis, max: i64) -> CrmResult<Vec<CallbackTask>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} FROM crm_callbacks WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT {}",
            limit(max)
        )))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn list_callbacks(&self, f: &CallbackFilter) -> CrmResult<Vec<CallbackTask>> {
        let mut sql = format!("SELECT {COLS} FROM crm_callbacks WHERE 1 = 1");
        let mut binds = Vec::new();
        if let Some(s) = f.status {
            binds.push(s.as_str());
            sql.push_str(&format!(" AND status = ${}", binds.len()));
        }
        if let Some(s) = f.source {
            binds.push(s.as_str());
            sql.push_str(&format!(" AND source = ${}", binds.len()));
        }
        sql.push_str(&format!(
            " ORDER BY next_attempt_at, id LIMIT {}",
            limit(f.limit.unwrap_or(100))
        ));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Records one attempt's outcome and reschedules (or finishes) the task.
    pub async fn record_callback_attempt(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        id: &str,
        outcome: CallbackOutcome,
        note: &str,
    ) -> CrmResult<CallbackTask> {
        if !permission::can_work_callbacks(actor) {
            return Err(CrmError::Forbidden("callbacks"));
        }
        let task = self.callback(id).await?;
        let before = Schedule {
            status: task.status,
            attempts: u32::try_from(task.attempts).unwrap_or(u32::MAX),
            next_attempt_at: task.next_attempt_at,
        };
        let after = before.after_attempt(&self.config.callbacks, now, outcome)?;
        let done_at = (after.status != CallbackStatus::Pending).then_some(now);
        let done_by = (after.status == CallbackStatus::Done).then_some(actor.username.as_str());
        let mut tx = self.pool.begin().await?;
        let res = sqlx::query(
            "UPDATE crm_callbacks SET status = $1, attempts = $2, next_attempt_at = $3, \
             last_outcome = $4, assignee = $5, done_by = $6, done_at = $7, updated_at = $8 \
             WHERE id = $9 AND attempts = $10 AND status = 'pending'",
        )
        .bind(after.status.as_str())
        .bind(i64::from(after.attempts))
        .bind(after.next_attempt_at)
        .bind(outcome.as_str())
        .bind(&actor.username)
        .bind(done_by)
        .bind(done_at)
        .bind(now)
        .bind(id)
        .bind(task.attempts)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() == 0 {
            return Err(CrmError::Stale {
                expected: task.attempts,
            });
        }
        sqlx::query(
            "INSERT INTO crm_callback_attempts (id, callback_id, at, agent, outcome, note) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(IdGenerator::new_id(now, rng))
        .bind(id)
        .bind(now)
        .bind(&actor.username)
        .bind(outcome.as_str())
        .bind(note)
        .execute(&mut *tx)
        .await?;
        if let Some(contact) = &task.contact_id {
            let label = match outcome {
                CallbackOutcome::Reached => "已联系",
                CallbackOutcome::NoAnswer => "无人接听",
                CallbackOutcome::WrongNumber => "号码错误",
            };
            insert_interaction(
                &mut tx,
                now,
                rng,
                &NewInteraction {
                    contact_id: contact.clone(),
                    kind: InteractionKind::Callback,
                    at: now,
                    ref_id: id.to_string(),
                    summary: format!("{}：{label}", task.source.label_zh()),
                    detail: serde_json::json!({"agent": actor.username, "note": note}),
                },
            )
            .await?;
        }
        tx.commit().await?;
        self.callback(id).await
    }

    /// Cancels a pending task (e.g. the caller called again and was served).
    pub async fn cancel_callback(
        &self,
        now: UnixMillis,
        actor: &Actor,
        id: &str,
    ) -> CrmResult<CallbackTask> {
        if !permission::can_work_callbacks(actor) {
            return Err(CrmError::Forbidden("callbacks"));
        }
        let res = sqlx::query(
            "UPDATE crm_callbacks SET status = 'cancelled', done_at = $1, updated_at = $1, \
             assignee = $2 WHERE id = $3 AND status = 'pending'",
        )
        .bind(now)
        .bind(&actor.username)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if res.rows_affected() == 0 {
            self.callback(id).await?;
            return Err(CrmError::Invalid("该回访任务已结束".into()));
        }
        self.callback(id).await
    }
}

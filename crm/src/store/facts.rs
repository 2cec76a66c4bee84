//! The records statistics are computed from (call facts, surveys, not-ready periods), the
//! statistics query, and the data of the monthly report.

use hotline_core::{Rng, UnixMillis};
use serde::Serialize;
use sqlx::any::AnyRow;

use super::contacts::{InteractionKind, NewInteraction, insert_interaction};
use super::{CrmStore, int, opt_int, opt_text, text};
use crate::calendar::YearMonth;
use crate::error::{CrmError, CrmResult};
use crate::stats::{
    AgentMark, CallFact, Dimension, NotReadyPeriod, Period, StatsInput, StatsQuery, StatsRow,
    TOTAL_KEY, compute, sum_rows,
};
use crate::survey::{SurveyAnswer, SurveyRating};
use crate::ticket::TicketKind;

/// Everything the monthly report shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthlyData {
    pub month: YearMonth,
    pub total: StatsRow,
    pub days: Vec<StatsRow>,
    pub agents: Vec<StatsRow>,
    pub queues: Vec<StatsRow>,
    /// (kind, created in the month, closed in the month)
    pub tickets: Vec<(TicketKind, i64, i64)>,
    /// (agent, complaints, substantiated)
    pub complaints: Vec<(String, i64, i64)>,
    /// callback tasks created and done in the month
    pub callbacks_created: i64,
    pub callbacks_done: i64,
}

fn fact_from_row(r: &AnyRow) -> CrmResult<CallFact> {
    Ok(CallFact {
        call_id: text(r, "call_id")?,
        queue: text(r, "queue")?,
        caller: text(r, "caller")?,
        agent: opt_text(r, "agent")?,
        offered_at: int(r, "offered_at")?,
        answered_at: opt_int(r, "answered_at")?,
        ended_at: opt_int(r, "ended_at")?,
        wrap_up_ms: int(r, "wrap_up_ms")?,
        abandoned: int(r, "abandoned")? != 0,
        recording_id: opt_text(r, "recording_id")?,
        ivr_path: text(r, "ivr_path")?,
    })
}

impl CrmStore {
    /// Stores (or updates, when the call id is known) a call and puts it on the caller's
    /// timeline the first time.
    pub async fn record_call(&self, now: UnixMillis, rng: &dyn Rng, c: &CallFact) -> CrmResult<()> {
        if c.call_id.is_empty() || c.queue.is_empty() {
            return Err(CrmError::Invalid("通话记录缺少编号或队列".into()));
        }
        let existed = sqlx::query("SELECT call_id FROM crm_call_facts WHERE call_id = $1")
            .bind(&c.call_id)
            .fetch_optional(&self.pool)
            .await?
            .is_some();
        let contact = if existed || c.caller.is_empty() {
            None
        } else {
            self.contact_by_phone(now, rng, &c.caller).await.ok()
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO crm_call_facts (call_id, queue, caller, agent, offered_at, answered_at, \
             ended_at, wrap_up_ms, abandoned, recording_id, ivr_path) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (call_id) DO UPDATE SET queue = excluded.queue, agent = excluded.agent, \
             answered_at = excluded.answered_at, ended_at = excluded.ended_at, \
             wrap_up_ms = excluded.wrap_up_ms, abandoned = excluded.abandoned, \
             recording_id = excluded.recording_id, ivr_path = excluded.ivr_path",
        )
        .bind(&c.call_id)
        .bind(&c.queue)
        .bind(&c.caller)
        .bind(&c.agent)
        .bind(c.offered_at)
        .bind(c.answered_at)
        .bind(c.ended_at)
        .bind(c.wrap_up_ms)
        .bind(i64::from(c.abandoned))
        .bind(&c.recording_id)
        .bind(&c.ivr_path)
        .execute(&mut *tx)
        .await?;
        if let Some(contact) = contact {
            let summary = match (&c.agent, c.answered_at) {
                (Some(a), Some(_)) => format!("来电（{}），坐席 {a} 接听", c.queue),
                _ if c.abandoned => format!("来电（{}），排队放弃", c.queue),
                _ => format!("来电（{}）", c.queue),
            };
            insert_interaction(
                &mut tx,
                now,
                rng,
                &NewInteraction {
                    contact_id: contact.id,
                    kind: InteractionKind::Call,
                    at: c.offered_at,
                    ref_id: c.call_id.clone(),
                    summary,
                    detail: serde_json::json!({"recording_id": c.recording_id,
                        "ivr_path": c.ivr_path, "agent": c.agent}),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn call_fact(&self, call_id: &str) -> CrmResult<CallFact> {
        let row = sqlx::query(
            "SELECT call_id, queue, caller, agent, offered_at, answered_at, ended_at, wrap_up_ms, \
             abandoned, recording_id, ivr_path FROM crm_call_facts WHERE call_id = $1",
        )
        .bind(call_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| CrmError::NotFound(format!("通话 {call_id}")))?;
        fact_from_row(&row)
    }

    /// Stores a survey result (one per call; a repeat replaces it) and puts it on the
    /// caller's timeline.
    pub async fn record_survey(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        s: &SurveyAnswer,
    ) -> CrmResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO crm_surveys (call_id, agent, queue, rating, at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (call_id) DO UPDATE SET rating = excluded.rating, at = excluded.at",
        )
        .bind(&s.call_id)
        .bind(&s.agent)
        .bind(&s.queue)
        .bind(s.rating.as_str())
        .bind(s.at)
        .execute(&mut *tx)
        .await?;
        let caller = sqlx::query("SELECT caller FROM crm_call_facts WHERE call_id = $1")
            .bind(&s.call_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| text(&r, "caller"))
            .transpose()?;
        tx.commit().await?;
        if let Some(caller) = caller.filter(|c| !c.is_empty()) {
            let contact = self.contact_by_phone(now, rng, &caller).await?;
            self.record_interaction(
                now,
                rng,
                &NewInteraction {
                    contact_id: contact.id,
                    kind: InteractionKind::Survey,
                    at: s.at,
                    ref_id: s.call_id.clone(),
                    summary: format!("满意度评价：{}", s.rating.label_zh()),
                    detail: serde_json::json!({"agent": s.agent}),
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Surveys in `[from, to)`, optionally of one agent.
    pub async fn surveys(
        &self,
        from: UnixMillis,
        to: UnixMillis,
        agent: Option<&str>,
    ) -> CrmResult<Vec<SurveyAnswer>> {
        let rows = sqlx::query(
            "SELECT call_id, agent, queue, rating, at FROM crm_surveys \
             WHERE at >= $1 AND at < $2 AND ($3 = '' OR agent = $3) ORDER BY at, call_id",
        )
        .bind(from)
        .bind(to)
        .bind(agent.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SurveyAnswer {
                    call_id: text(r, "call_id")?,
                    agent: text(r, "agent")?,
                    queue: text(r, "queue")?,
                    rating: SurveyRating::parse(&text(r, "rating")?).map_err(super::corrupt)?,
                    at: int(r, "at")?,
                })
            })
            .collect()
    }

    /// Stores a period in which an agent was not ready, as row `id` (from
    /// `IdGenerator::new_id`): storing the same id again changes nothing, so a write retried
    /// after a lost reply is not counted twice.
    pub async fn record_not_ready(&self, id: &str, p: &NotReadyPeriod) -> CrmResult<()> {
        if p.to_at < p.from_at {
            return Err(CrmError::Invalid("示忙时段无效".into()));
        }
        sqlx::query(
            "INSERT INTO crm_agent_not_ready (id, agent, from_at, to_at, reason) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(&p.agent)
        .bind(p.from_at)
        .bind(p.to_at)
        .bind(&p.reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Loads everything statistics of `[from, to)` need.
    pub async fn stats_input(&self, from: UnixMillis, to: UnixMillis) -> CrmResult<StatsInput> {
        let calls = sqlx::query(
            "SELECT call_id, queue, caller, agent, offered_at, answered_at, ended_at, wrap_up_ms, \
             abandoned, recording_id, ivr_path FROM crm_call_facts \
             WHERE offered_at >= $1 AND offered_at < $2 ORDER BY offered_at",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(fact_from_row)
        .collect::<CrmResult<Vec<_>>>()?;
        let not_ready = sqlx::query(
            "SELECT agent, from_at, to_at, reason FROM crm_agent_not_ready \
             WHERE from_at < $2 AND to_at > $1",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(NotReadyPeriod {
                agent: text(r, "agent")?,
                from_at: int(r, "from_at")?,
                to_at: int(r, "to_at")?,
                reason: text(r, "reason")?,
            })
        })
        .collect::<CrmResult<Vec<_>>>()?;
        let surveys = self.surveys(from, to, None).await?;
        let complaints = self
            .complaint_tickets(from, to)
            .await?
            .into_iter()
            .filter_map(|t| {
                t.named_agent.map(|agent| AgentMark {
                    agent,
                    at: t.created_at,
                })
            })
            .collect();
        let callbacks_done = sqlx::query(
            "SELECT done_by, done_at FROM crm_callbacks WHERE status = 'done' \
             AND done_at >= $1 AND done_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(AgentMark {
                agent: opt_text(r, "done_by")?.unwrap_or_default(),
                at: int(r, "done_at")?,
            })
        })
        .collect::<CrmResult<Vec<_>>>()?;
        Ok(StatsInput {
            calls,
            not_ready,
            surveys,
            complaints,
            callbacks_done,
        })
    }

    /// The statistics query used by the API, the exports and the reports.
    pub async fn statistics(&self, q: StatsQuery) -> CrmResult<Vec<StatsRow>> {
        if q.to <= q.from || q.to - q.from > 400 * crate::calendar::MS_PER_DAY {
            return Err(CrmError::Invalid("统计时间范围无效（最长 400 天）".into()));
        }
        let input = self.stats_input(q.from, q.to).await?;
        Ok(compute(&input, &self.config.stats, q))
    }

    /// Everything of the monthly report for the quota-management agency.
    pub async fn monthly_data(&self, month: YearMonth) -> CrmResult<MonthlyData> {
        let off = self.config.stats.utc_offset_minutes;
        let (from, to) = month.range(off);
        let input = self.stats_input(from, to).await?;
        let q = |period, dimension| StatsQuery {
            from,
            to,
            period,
            dimension,
        };
        let p = &self.config.stats;
        let days = compute(&input, p, q(Period::Day, Dimension::Total));
        let total = sum_rows(&days, &month.to_string(), TOTAL_KEY);
        let agents = compute(&input, p, q(Period::Month, Dimension::Agent));
        let queues = compute(&input, p, q(Period::Month, Dimension::Queue));
        let mut tickets = Vec::new();
        for kind in TicketKind::ALL {
            let row = sqlx::query(
                "SELECT \
                 SUM(CASE WHEN created_at >= $2 AND created_at < $3 THEN 1 ELSE 0 END) AS created, \
                 SUM(CASE WHEN closed_at >= $2 AND closed_at < $3 THEN 1 ELSE 0 END) AS closed \
                 FROM crm_tickets WHERE kind = $1",
            )
            .bind(kind.as_str())
            .bind(from)
            .bind(to)
            .fetch_one(&self.pool)
            .await?;
            tickets.push((
                kind,
                opt_int(&row, "created")?.unwrap_or(0),
                opt_int(&row, "closed")?.unwrap_or(0),
            ));
        }
        let complaints = self
            .complaint_counts(from, to)
            .await?
            .into_iter()
            .map(|c| (c.agent, c.total, c.substantiated))
            .collect();
        let callbacks_created: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM crm_callbacks WHERE created_at >= $1 AND created_at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        Ok(MonthlyData {
            month,
            callbacks_done: total.callbacks_done as i64,
            total,
            days,
            agents,
            queues,
            tickets,
            complaints,
            callbacks_created,
        })
    }
}

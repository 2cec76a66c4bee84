//! The complaint desk (seed 10.6): complaints that name an agent, handled by complaint
//! officers only — link recordings, record the finding and the action taken, call the
//! citizen back, close (which schedules a satisfaction callback).

use hotline_core::{Rng, UnixMillis};
use serde::{Deserialize, Serialize};

use super::tickets::{TICKET_COLS, Ticket, history, ticket_from_row};
use super::{CrmStore, int, opt_int, opt_text, text};
use crate::callback::{CallbackSource, NewCallback};
use crate::error::{CrmError, CrmResult};
use crate::permission::{self, Actor};
use crate::ticket::TicketStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// 属实
    Substantiated,
    /// 不属实
    Unsubstantiated,
}

impl Finding {
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::Substantiated => "substantiated",
            Finding::Unsubstantiated => "unsubstantiated",
        }
    }
    fn parse(s: &str) -> CrmResult<Self> {
        match s {
            "substantiated" => Ok(Finding::Substantiated),
            "unsubstantiated" => Ok(Finding::Unsubstantiated),
            _ => Err(CrmError::Corrupt(format!("finding {s}"))),
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            Finding::Substantiated => "属实",
            Finding::Unsubstantiated => "不属实",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplaintRecord {
    pub agent: String,
    pub recording_ids: Vec<String>,
    pub finding: Option<Finding>,
    pub action_taken: Option<String>,
    pub called_back_at: Option<UnixMillis>,
    pub callback_note: Option<String>,
    pub updated_at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComplaintCase {
    pub ticket: Ticket,
    pub complaint: ComplaintRecord,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComplaintCount {
    pub agent: String,
    pub total: i64,
    pub substantiated: i64,
}

impl CrmStore {
    /// The case, for a complaint officer not named in it.
    async fn case_for(&self, actor: &Actor, id: &str) -> CrmResult<ComplaintCase> {
        if !permission::can_use_complaint_desk(actor) {
            return Err(CrmError::Forbidden("complaint desk"));
        }
        let ticket = self.ticket(actor, id).await?;
        let row = sqlx::query(
            "SELECT agent, recording_ids, finding, action_taken, called_back_at, callback_note, \
             updated_at FROM crm_complaints WHERE ticket_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| CrmError::NotFound(format!("投诉 {id}")))?;
        let complaint = ComplaintRecord {
            agent: text(&row, "agent")?,
            recording_ids: serde_json::from_str(&text(&row, "recording_ids")?)
                .map_err(|e| CrmError::Corrupt(e.to_string()))?,
            finding: opt_text(&row, "finding")?
                .map(|f| Finding::parse(&f))
                .transpose()?,
            action_taken: opt_text(&row, "action_taken")?,
            called_back_at: opt_int(&row, "called_back_at")?,
            callback_note: opt_text(&row, "callback_note")?,
            updated_at: int(&row, "updated_at")?,
        };
        Ok(ComplaintCase { ticket, complaint })
    }

    pub async fn complaint(&self, actor: &Actor, id: &str) -> CrmResult<ComplaintCase> {
        self.case_for(actor, id).await
    }

    /// The desk's list: complaints naming an agent other than the officer, open ones first.
    pub async fn complaint_desk(
        &self,
        actor: &Actor,
        open_only: bool,
    ) -> CrmResult<Vec<ComplaintCase>> {
        if !permission::can_use_complaint_desk(actor) {
            return Err(CrmError::Forbidden("complaint desk"));
        }
        let open = if open_only {
            " AND t.status NOT IN ('resolved', 'closed')"
        } else {
            ""
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t.id FROM crm_tickets t JOIN crm_complaints c ON c.ticket_id = t.id \
             WHERE c.agent <> $1 AND t.archived_at IS NULL{open} ORDER BY t.due_at, t.id LIMIT 500"
        )))
        .bind(&actor.username)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.case_for(actor, &text(r, "id")?).await?);
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    async fn update_case(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        case: &ComplaintCase,
        c: &ComplaintRecord,
        action: &str,
        detail: serde_json::Value,
    ) -> CrmResult<()> {
        if case.ticket.archived_at.is_some() {
            return Err(CrmError::Archived(case.ticket.id.clone()));
        }
        if case.ticket.status == TicketStatus::Closed {
            return Err(CrmError::Invalid("投诉已办结，不能修改".into()));
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE crm_complaints SET recording_ids = $1, finding = $2, action_taken = $3, \
             called_back_at = $4, callback_note = $5, updated_at = $6 WHERE ticket_id = $7",
        )
        .bind(serde_json::to_string(&c.recording_ids).unwrap_or_default())
        .bind(c.finding.map(|f| f.as_str()))
        .bind(&c.action_taken)
        .bind(c.called_back_at)
        .bind(&c.callback_note)
        .bind(now)
        .bind(&case.ticket.id)
        .execute(&mut *tx)
        .await?;
        super::tickets::touch(&mut tx, &case.ticket, now).await?;
        history(
            &mut tx,
            now,
            rng,
            &case.ticket.id,
            actor,
            action,
            None,
            None,
            detail,
        )
        .await?;
        super::audit(
            &mut tx,
            now,
            rng,
            actor,
            &format!("crm.complaint.{action}"),
            &case.ticket.id,
            "",
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Links a recording (by its id in the recording archive) to the complaint.
    pub async fn link_complaint_recording(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        id: &str,
        recording_id: &str,
    ) -> CrmResult<ComplaintCase> {
        let case = self.case_for(actor, id).await?;
        let mut c = case.complaint.clone();
        if recording_id.trim().is_empty() {
            return Err(CrmError::Invalid("录音编号不能为空".into()));
        }
        if !c.recording_ids.iter().any(|r| r == recording_id) {
            c.recording_ids.push(recording_id.to_string());
        }
        self.update_case(
            now,
            rng,
            actor,
            &case,
            &c,
            "link_recording",
            serde_json::json!({"recording_id": recording_id}),
        )
        .await?;
        self.case_for(actor, id).await
    }

    /// Records the finding and the action taken.
    pub async fn record_complaint_finding(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        id: &str,
        finding: Finding,
        action_taken: &str,
    ) -> CrmResult<ComplaintCase> {
        let case = self.case_for(actor, id).await?;
        if action_taken.trim().is_empty() {
            return Err(CrmError::Invalid("请填写处理措施".into()));
        }
        let mut c = case.complaint.clone();
        c.finding = Some(finding);
        c.action_taken = Some(action_taken.trim().to_string());
        self.update_case(
            now,
            rng,
            actor,
            &case,
            &c,
            "finding",
            serde_json::json!({"finding": finding.as_str(), "action_taken": action_taken.trim()}),
        )
        .await?;
        self.case_for(actor, id).await
    }

    /// Records that the officer called the citizen back with the outcome.
    pub async fn record_complaint_callback(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        id: &str,
        note: &str,
    ) -> CrmResult<ComplaintCase> {
        let case = self.case_for(actor, id).await?;
        let mut c = case.complaint.clone();
        c.called_back_at = Some(now);
        c.callback_note = Some(note.trim().to_string());
        self.update_case(
            now,
            rng,
            actor,
            &case,
            &c,
            "citizen_callback",
            serde_json::json!({"note": note.trim()}),
        )
        .await?;
        self.case_for(actor, id).await
    }

    /// Closes a complaint: needs a finding, the action taken and the call back to the
    /// citizen. Walks the ticket to resolved and closed, and schedules a follow-up callback
    /// (回访) on how the complaint was handled.
    pub async fn close_complaint(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        id: &str,
    ) -> CrmResult<ComplaintCase> {
        let case = self.case_for(actor, id).await?;
        let c = &case.complaint;
        if case.ticket.archived_at.is_some() {
            return Err(CrmError::Archived(case.ticket.id.clone()));
        }
        if c.finding.is_none() || c.action_taken.is_none() {
            return Err(CrmError::Invalid("请先填写核实结论和处理措施".into()));
        }
        if c.called_back_at.is_none() {
            return Err(CrmError::Invalid("请先回复投诉人".into()));
        }
        let mut tx = self.pool.begin().await?;
        let mut t = case.ticket.clone();
        if t.status != TicketStatus::Resolved {
            t = self
                .apply_transition(
                    &mut tx,
                    now,
                    rng,
                    actor,
                    &t,
                    TicketStatus::Resolved,
                    "投诉办结",
                )
                .await?;
        }
        self.apply_transition(
            &mut tx,
            now,
            rng,
            actor,
            &t,
            TicketStatus::Closed,
            "投诉关闭",
        )
        .await?;
        super::audit(&mut tx, now, rng, actor, "crm.complaint.close", id, "").await?;
        tx.commit().await?;
        if !case.ticket.caller_phone.is_empty() {
            self.create_callback(
                now,
                rng,
                NewCallback {
                    source: CallbackSource::ComplaintClosure,
                    phone: case.ticket.caller_phone.clone(),
                    call_id: case.ticket.call_id.clone(),
                    ticket_id: Some(case.ticket.id.clone()),
                    queue: None,
                    note: "投诉办结后满意度回访".into(),
                    requested_at: now,
                },
            )
            .await?;
        }
        self.case_for(actor, id).await
    }

    /// Complaints per agent created in `[from, to)`; names are fine for reports, details are
    /// not in here.
    pub async fn complaint_counts(
        &self,
        from: UnixMillis,
        to: UnixMillis,
    ) -> CrmResult<Vec<ComplaintCount>> {
        let rows = sqlx::query(
            "SELECT c.agent AS agent, COUNT(*) AS total, \
             SUM(CASE WHEN c.finding = 'substantiated' THEN 1 ELSE 0 END) AS substantiated \
             FROM crm_complaints c JOIN crm_tickets t ON t.id = c.ticket_id \
             WHERE t.created_at >= $1 AND t.created_at < $2 GROUP BY c.agent ORDER BY c.agent",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ComplaintCount {
                    agent: text(r, "agent")?,
                    total: int(r, "total")?,
                    substantiated: opt_int(r, "substantiated")?.unwrap_or(0),
                })
            })
            .collect()
    }

    /// All complaint tickets naming an agent (used by statistics).
    pub(crate) async fn complaint_tickets(
        &self,
        from: UnixMillis,
        to: UnixMillis,
    ) -> CrmResult<Vec<Ticket>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TICKET_COLS} FROM crm_tickets WHERE kind = 'complaint' \
             AND named_agent IS NOT NULL AND named_agent <> '' \
             AND created_at >= $1 AND created_at < $2"
        )))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ticket_from_row).collect()
    }
}

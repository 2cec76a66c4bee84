//! Tickets: create, read, list, edit, assign, move through the state machine, comment,
//! history, and the deposit-authorisation review.

use hotline_core::mask::mask_phone;
use hotline_core::{IdGenerator, Rng, Role, UnixMillis};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::contacts::{InteractionKind, NewInteraction};
use super::{CrmStore, audit, corrupt, int, limit, opt_int, opt_text, text};
use crate::error::{CrmError, CrmResult};
use crate::permission::{self, Actor, TicketFacts};
use crate::ticket::{
    DepositChecklist, DepositDocument, ReviewDecision, TicketKind, TicketStatus,
    validate_deposit_review,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub kind: TicketKind,
    pub status: TicketStatus,
    pub title: String,
    pub body: String,
    pub contact_id: Option<String>,
    pub caller_phone: String,
    pub application_code: Option<String>,
    pub call_id: Option<String>,
    pub recording_id: Option<String>,
    /// The 12345 platform's order number.
    pub external_ref: Option<String>,
    /// The agent a complaint is about.
    pub named_agent: Option<String>,
    pub assignee: Option<String>,
    pub created_by: String,
    pub due_at: UnixMillis,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub resolved_at: Option<UnixMillis>,
    pub closed_at: Option<UnixMillis>,
    pub archived_at: Option<UnixMillis>,
    pub archive_month: Option<String>,
    pub version: i64,
}

impl Ticket {
    pub fn facts(&self) -> TicketFacts<'_> {
        TicketFacts {
            kind: self.kind,
            named_agent: self.named_agent.as_deref(),
            assignee: self.assignee.as_deref(),
            created_by: &self.created_by,
            archived: self.archived_at.is_some(),
        }
    }
    pub fn is_overdue(&self, now: UnixMillis) -> bool {
        self.status.is_open() && now > self.due_at
    }
    /// The ticket as `role` may see it: phone numbers masked unless the role needs them.
    pub fn masked_for(mut self, role: Role) -> Self {
        if !role.sees_personal_data() {
            self.caller_phone = mask_phone(&self.caller_phone);
        }
        self
    }
}

pub(crate) const TICKET_COLS: &str = "id, kind, status, title, body, contact_id, caller_phone, \
    application_code, call_id, recording_id, external_ref, named_agent, assignee, created_by, \
    due_at, created_at, updated_at, resolved_at, closed_at, archived_at, archive_month, version";

pub(crate) fn ticket_from_row(r: &AnyRow) -> CrmResult<Ticket> {
    Ok(Ticket {
        id: text(r, "id")?,
        kind: text(r, "kind")?.parse().map_err(corrupt)?,
        status: text(r, "status")?.parse().map_err(corrupt)?,
        title: text(r, "title")?,
        body: text(r, "body")?,
        contact_id: opt_text(r, "contact_id")?,
        caller_phone: text(r, "caller_phone")?,
        application_code: opt_text(r, "application_code")?,
        call_id: opt_text(r, "call_id")?,
        recording_id: opt_text(r, "recording_id")?,
        external_ref: opt_text(r, "external_ref")?,
        named_agent: opt_text(r, "named_agent")?,
        assignee: opt_text(r, "assignee")?,
        created_by: text(r, "created_by")?,
        due_at: int(r, "due_at")?,
        created_at: int(r, "created_at")?,
        updated_at: int(r, "updated_at")?,
        resolved_at: opt_int(r, "resolved_at")?,
        closed_at: opt_int(r, "closed_at")?,
        archived_at: opt_int(r, "archived_at")?,
        archive_month: opt_text(r, "archive_month")?,
        version: int(r, "version")?,
    })
}

/// A new ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewTicket {
    pub kind: Option<TicketKind>,
    pub title: String,
    pub body: String,
    pub contact_id: Option<String>,
    pub caller_phone: String,
    pub application_code: Option<String>,
    pub call_id: Option<String>,
    pub recording_id: Option<String>,
    pub external_ref: Option<String>,
    /// A 12345 work order's own deadline.
    pub external_due: Option<UnixMillis>,
    pub named_agent: Option<String>,
}

/// Editable fields; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TicketEdit {
    pub title: Option<String>,
    pub body: Option<String>,
    pub application_code: Option<String>,
    pub recording_id: Option<String>,
    pub contact_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    pub kind: Option<TicketKind>,
    pub assignee: Option<String>,
    pub contact_id: Option<String>,
    /// Archived tickets are left out unless asked for.
    pub include_archived: bool,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: String,
    pub ticket_id: String,
    pub at: UnixMillis,
    pub author: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: String,
    pub ticket_id: String,
    pub at: UnixMillis,
    pub actor: String,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositReview {
    pub id: String,
    pub ticket_id: String,
    pub checklist: DepositChecklist,
    pub decision: ReviewDecision,
    pub reason: String,
    pub reviewer: String,
    pub decided_at: UnixMillis,
}

/// The result of a review, with the notice for the bidder (sent by SMS by the binary once
/// the SMS gateway exists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewOutcome {
    pub ticket: Ticket,
    pub review: DepositReview,
    pub notify_phone: String,
    pub notify_text: String,
}

/// SQL that hides what `actor` may not see (the complaint rule of [`permission`]);
/// `$n` is the placeholder number for the username.
pub(crate) fn visibility_sql(actor: &Actor, n: usize) -> (String, bool) {
    if permission::can_use_complaint_desk(actor) {
        (
            format!(" AND (named_agent IS NULL OR named_agent <> ${n})"),
            true,
        )
    } else {
        (
            " AND NOT (kind = 'complaint' AND named_agent IS NOT NULL AND named_agent <> '')"
                .to_string(),
            false,
        )
    }
}

impl CrmStore {
    pub(crate) async fn load_ticket(&self, id: &str) -> CrmResult<Ticket> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TICKET_COLS} FROM crm_tickets WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| CrmError::NotFound(format!("工单 {id}")))?;
        ticket_from_row(&row)
    }

    /// The ticket if `actor` may see it; otherwise `NotFound`, so that hidden complaints do
    /// not even reveal that they exist.
    pub async fn ticket(&self, actor: &Actor, id: &str) -> CrmResult<Ticket> {
        let t = self.load_ticket(id).await?;
        if !permission::can_view_ticket(actor, &t.facts()) {
            return Err(CrmError::NotFound(format!("工单 {id}")));
        }
        Ok(t)
    }

    /// The ticket if `actor` may work on it and it is not archived.
    pub(crate) async fn ticket_for_work(&self, actor: &Actor, id: &str) -> CrmResult<Ticket> {
        let t = self.ticket(actor, id).await?;
        if t.archived_at.is_some() {
            return Err(CrmError::Archived(t.id));
        }
        if !permission::can_work_ticket(actor, &t.facts()) {
            return Err(CrmError::Forbidden("ticket"));
        }
        Ok(t)
    }

    pub async fn create_ticket(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        new: NewTicket,
    ) -> CrmResult<Ticket> {
        let kind = new
            .kind
            .ok_or_else(|| CrmError::Invalid("请选择工单类型".into()))?;
        if !permission::can_create(actor, kind) {
            return Err(CrmError::Forbidden("create ticket"));
        }
        if new.title.trim().is_empty() {
            return Err(CrmError::Invalid("工单标题不能为空".into()));
        }
        if kind == TicketKind::WorkOrder12345 && new.external_ref.is_none() {
            return Err(CrmError::Invalid("12345 工单须填写工单编号".into()));
        }
        let named_agent = new.named_agent.filter(|a| !a.trim().is_empty());
        if named_agent.is_some() && kind != TicketKind::Complaint {
            return Err(CrmError::Invalid("只有投诉工单可以指明被投诉坐席".into()));
        }
        let id = IdGenerator::new_id(now, rng);
        let due = self.config.sla.due_at(kind, now, new.external_due);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO crm_tickets (id, kind, status, title, body, contact_id, caller_phone, \
             application_code, call_id, recording_id, external_ref, named_agent, assignee, \
             created_by, due_at, created_at, updated_at, version) \
             VALUES ($1, $2, 'new', $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13, $14, $14, 1)",
        )
        .bind(&id)
        .bind(kind.as_str())
        .bind(new.title.trim())
        .bind(&new.body)
        .bind(&new.contact_id)
        .bind(&new.caller_phone)
        .bind(&new.application_code)
        .bind(&new.call_id)
        .bind(&new.recording_id)
        .bind(&new.external_ref)
        .bind(&named_agent)
        .bind(&actor.username)
        .bind(due)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(agent) = &named_agent {
            sqlx::query(
                "INSERT INTO crm_complaints (ticket_id, agent, recording_ids, updated_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(agent)
            .bind(
                serde_json::to_string(&new.recording_id.iter().collect::<Vec<_>>())
                    .unwrap_or_default(),
            )
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        history(
            &mut tx,
            now,
            rng,
            &id,
            actor,
            "create",
            None,
            Some(TicketStatus::New),
            serde_json::json!({"kind": kind.as_str(), "title": new.title.trim(), "due_at": due}),
        )
        .await?;
        if let Some(contact) = &new.contact_id {
            let kind_i = if named_agent.is_some() {
                InteractionKind::Complaint
            } else {
                InteractionKind::Ticket
            };
            super::contacts::insert_interaction(
                &mut tx,
                now,
                rng,
                &NewInteraction {
                    contact_id: contact.clone(),
                    kind: kind_i,
                    at: now,
                    ref_id: id.clone(),
                    summary: format!("{}：{}", kind.label_zh(), new.title.trim()),
                    detail: serde_json::json!({"ticket_id": id}),
                },
            )
            .await?;
        }
        tx.commit().await?;
        self.load_ticket(&id).await
    }

    /// Tickets `actor` may see, newest first.
    pub async fn list_tickets(&self, actor: &Actor, f: &TicketFilter) -> CrmResult<Vec<Ticket>> {
        let mut sql = format!("SELECT {TICKET_COLS} FROM crm_tickets WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let mut push = |sql: &mut String, cond: &str, v: String| {
            binds.push(v);
            sql.push_str(&format!(" AND {cond} = ${}", binds.len()));
        };
        if let Some(s) = f.status {
            push(&mut sql, "status", s.as_str().into());
        }
        if let Some(k) = f.kind {
            push(&mut sql, "kind", k.as_str().into());
        }
        if let Some(a) = &f.assignee {
            push(&mut sql, "assignee", a.clone());
        }
        if let Some(c) = &f.contact_id {
            push(&mut sql, "contact_id", c.clone());
        }
        if !f.include_archived {
            sql.push_str(" AND archived_at IS NULL");
        }
        let (vis, needs_user) = visibility_sql(actor, binds.len() + 1);
        sql.push_str(&vis);
        if needs_user {
            binds.push(actor.username.clone());
        }
        sql.push_str(&format!(
            " ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}",
            limit(f.limit.unwrap_or(50)),
            f.offset.unwrap_or(0).max(0)
        ));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let t = ticket_from_row(r)?;
            debug_assert!(permission::can_view_ticket(actor, &t.facts()));
            if permission::can_view_ticket(actor, &t.facts()) {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Writes the ticket's changed row if nobody else changed it meanwhile.
    pub(crate) async fn save(
        &self,
        tx: &mut sqlx::AnyConnection,
        old: &Ticket,
        new: &Ticket,
    ) -> CrmResult<()> {
        let done = sqlx::query(
            "UPDATE crm_tickets SET status = $1, title = $2, body = $3, contact_id = $4, \
             application_code = $5, recording_id = $6, assignee = $7, updated_at = $8, \
             resolved_at = $9, closed_at = $10, version = version + 1 \
             WHERE id = $11 AND version = $12 AND archived_at IS NULL",
        )
        .bind(new.status.as_str())
        .bind(&new.title)
        .bind(&new.body)
        .bind(&new.contact_id)
        .bind(&new.application_code)
        .bind(&new.recording_id)
        .bind(&new.assignee)
        .bind(new.updated_at)
        .bind(new.resolved_at)
        .bind(new.closed_at)
        .bind(&old.id)
        .bind(old.version)
        .execute(tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(CrmError::Stale {
                expected: old.version,
            });
        }
        Ok(())
    }

    /// Moves a ticket through the state machine. `expected_version`, when given, must match.
    #[allow(clippy::too_many_arguments)]
    pub async fn transition(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        id: &str,
        to: TicketStatus,
        note: &str,
        expected_version: Option<i64>,
    ) -> CrmResult<Ticket> {
        let old = self.ticket_for_work(actor, id).await?;
        if let Some(v) = expected_version
            && v != old.version
        {
            return Err(CrmError::Stale { expected: v });
        }
        let mut tx = self.pool.begin().await?;
        let new = self
            .apply_transition(&mut tx, now, rng, actor, &old, to, note)
            .await?;
        tx.commit().await?;
        Ok(new)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_transition(
        &self,
        tx: &mut sqlx::AnyConnection,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        old: &Ticket,
        to: TicketStatus,
        note: &str,
    ) -> CrmResult<Ticket> {
        old.status.transition(to)?;
        if to == TicketStatus::Assigned && old.assignee.is_none() {
            return Err(CrmError::Invalid("请先指定处理人".into()));
        }
        let mut new = old.clone();
        new.status = to;
        new.updated_at = now;
        match to {
            TicketStatus::Resolved => new.resolved_at = Some(now),
            TicketStatus::Closed => new.closed_at = Some(now),
            TicketStatus::InProgress if old.status == TicketStatus::Resolved => {
                new.resolved_at = None;
            }
            _ => {}
        }
        self.save(tx, old, &new).await?;
        history(
            tx,
            now,
            rng,
            &old.id,
            actor,
            "transition",
            Some(old.status),
            Some(to),
            serde_json::json!({ "note": note }),
        )
        .await?;
        new.version += 1;
        Ok(new)
    }

    /// Assigns a ticket; a new ticket becomes `assigned`.
    pub async fn assign(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        id: &str,
        assignee: &str,
    ) -> CrmResult<Ticket> {
        let old = self.ticket(actor, id).await?;
        if old.archived_at.is_some() {
            return Err(CrmError::Archived(old.id));
        }
        if !permission::can_assign(actor, &old.facts(), assignee) {
            return Err(CrmError::Forbidden("assign"));
        }
        if !old.status.is_open() {
            return Err(CrmError::Invalid("已解决或已关闭的工单不能再分派".into()));
        }
        let mut new = old.clone();
        new.assignee = Some(assignee.to_string());
        new.updated_at = now;
        if old.status == TicketStatus::New {
            new.status = TicketStatus::Assigned;
        }
        let mut tx = self.pool.begin().await?;
        self.save(&mut tx, &old, &new).await?;
        history(
            &mut tx,
            now,
            rng,
            id,
            actor,
            "assign",
            Some(old.status),
            Some(new.status),
            serde_json::json!({"from": old.assignee, "to": assignee}),
        )
        .await?;
        tx.commit().await?;
        new.version += 1;
        Ok(new)
    }

    /// Edits fields; every changed field is written to the history with old and new value.
    pub async fn edit_ticket(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        id: &str,
        edit: TicketEdit,
    ) -> CrmResult<Ticket> {
        let old = self.ticket_for_work(actor, id).await?;
        let mut new = old.clone();
        let mut changes = serde_json::Map::new();
        let mut change = |name: &str, field: &mut String, v: Option<String>| {
            if let Some(v) = v
                && *field != v
            {
                changes.insert(name.into(), serde_json::json!({"from": field, "to": v}));
                *field = v;
            }
        };
        change("title", &mut new.title, edit.title);
        change("body", &mut new.body, edit.body);
        let mut opt_change = |name: &str, field: &mut Option<String>, v: Option<String>| {
            if let Some(v) = v
                && field.as_deref() != Some(v.as_str())
            {
                changes.insert(name.into(), serde_json::json!({"from": field, "to": v}));
                *field = Some(v);
            }
        };
        opt_change(
            "application_code",
            &mut new.application_code,
            edit.application_code,
        );
        opt_change("recording_id", &mut new.recording_id, edit.recording_id);
        opt_change("contact_id", &mut new.contact_id, edit.contact_id);
        if new.title.trim().is_empty() {
            return Err(CrmError::Invalid("工单标题不能为空".into()));
        }
        if changes.is_empty() {
            return Ok(old);
        }
        new.updated_at = now;
        let mut tx = self.pool.begin().await?;
        self.save(&mut tx, &old, &new).await?;
        history(
            &mut tx,
            now,
            rng,
            id,
            actor,
            "edit",
            None,
            None,
            serde_json::Value::Object(changes),
        )
        .await?;
        tx.commit().await?;
        new.version += 1;
        Ok(new)
    }

    pub async fn add_comment(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        id: &str,
        body: &str,
    ) -> CrmResult<Comment> {
        let t = self.ticket_for_work(actor, id).await?;
        if body.trim().is_empty() {
            return Err(CrmError::Invalid("备注内容不能为空".into()));
        }
        let c = Comment {
            id: IdGenerator::new_id(now, rng),
            ticket_id: t.id.clone(),
            at: now,
            author: actor.username.clone(),
            body: body.trim().to_string(),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO crm_ticket_comments (id, ticket_id, at, author, body) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&c.id)
        .bind(&c.ticket_id)
        .bind(c.at)
        .bind(&c.author)
        .bind(&c.body)
        .execute(&mut *tx)
        .await?;
        touch(&mut tx, &t, now).await?;
        history(
            &mut tx,
            now,
            rng,
            id,
            actor,
            "comment",
            None,
            None,
            serde_json::json!({"comment_id": c.id}),
        )
        .await?;
        tx.commit().await?;
        Ok(c)
    }

    pub async fn comments(&self, actor: &Actor, id: &str) -> CrmResult<Vec<Comment>> {
        self.ticket(actor, id).await?;
        let rows = sqlx::query(
            "SELECT id, ticket_id, at, author, body FROM crm_ticket_comments \
             WHERE ticket_id = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Comment {
                    id: text(r, "id")?,
                    ticket_id: text(r, "ticket_id")?,
                    at: int(r, "at")?,
                    author: text(r, "author")?,
                    body: text(r, "body")?,
                })
            })
            .collect()
    }

    /// The full change history, oldest first.
    pub async fn history(&self, actor: &Actor, id: &str) -> CrmResult<Vec<HistoryEntry>> {
        self.ticket(actor, id).await?;
        let rows = sqlx::query(
            "SELECT id, ticket_id, at, actor, action, from_status, to_status, detail \
             FROM crm_ticket_history WHERE ticket_id = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryEntry {
                    id: text(r, "id")?,
                    ticket_id: text(r, "ticket_id")?,
                    at: int(r, "at")?,
                    actor: text(r, "actor")?,
                    action: text(r, "action")?,
                    from_status: opt_text(r, "from_status")?,
                    to_status: opt_text(r, "to_status")?,
                    detail: serde_json::from_str(&text(r, "detail")?)
                        .map_err(|e| CrmError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }

    /// Business staff review a deposit authorisation: every document uploaded and ticked to
    /// approve, a reason to reject. The ticket must be in progress (or awaiting callback) and
    /// ends resolved; the decision is kept, written to the history and the audit log.
    #[allow(clippy::too_many_arguments)]
    pub async fn review_deposit_authorization(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        actor: &Actor,
        id: &str,
        checklist: DepositChecklist,
        decision: ReviewDecision,
        reason: &str,
    ) -> CrmResult<ReviewOutcome> {
        if !permission::can_review_deposit(actor) {
            return Err(CrmError::Forbidden("deposit review"));
        }
        let old = self.ticket_for_work(actor, id).await?;
        if old.kind != TicketKind::DepositAuthorization {
            return Err(CrmError::Invalid("该工单不是保证金授权申请".into()));
        }
        let uploaded: Vec<DepositDocument> = self
            .attachments(actor, id)
            .await?
            .into_iter()
            .filter_map(|a| a.document)
            .collect();
        validate_deposit_review(&uploaded, &checklist, decision, reason)?;
        let review = DepositReview {
            id: IdGenerator::new_id(now, rng),
            ticket_id: old.id.clone(),
            checklist,
            decision,
            reason: reason.trim().to_string(),
            reviewer: actor.username.clone(),
            decided_at: now,
        };
        let checklist_json = serde_json::to_string(&review.checklist)
            .map_err(|e| CrmError::Corrupt(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO crm_deposit_reviews (id, ticket_id, checklist, decision, reason, \
             reviewer, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&review.id)
        .bind(&review.ticket_id)
        .bind(&checklist_json)
        .bind(decision.as_str())
        .bind(&review.reason)
        .bind(&review.reviewer)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let note = match decision {
            ReviewDecision::Approve => "审核通过".to_string(),
            ReviewDecision::Reject => format!("审核驳回：{}", review.reason),
        };
        let ticket = self
            .apply_transition(
                &mut tx,
                now,
                rng,
                actor,
                &old,
                TicketStatus::Resolved,
                &note,
            )
            .await?;
        let action = format!("crm.deposit_authorization.{}", decision.as_str());
        let detail =
            serde_json::json!({"reason": review.reason, "checklist": review.checklist}).to_string();
        audit(&mut tx, now, rng, actor, &action, id, &detail).await?;
        tx.commit().await?;
        let notify_text = match decision {
            ReviewDecision::Approve => {
                "【小客车指标竞价】您单位的保证金授权缴纳申请已审核通过，请按授权书约定账户在缴纳期内缴纳保证金。".to_string()
            }
            ReviewDecision::Reject => format!(
                "【小客车指标竞价】您单位的保证金授权缴纳申请未通过审核，原因：{}。如有疑问请致电咨询热线。",
                review.reason
            ),
        };
        Ok(ReviewOutcome {
            notify_phone: ticket.caller_phone.clone(),
            ticket,
            review,
            notify_text,
        })
    }

    /// The reviews of a deposit authorisation, oldest first.
    pub async fn deposit_reviews(&self, actor: &Actor, id: &str) -> CrmResult<Vec<DepositReview>> {
        self.ticket(actor, id).await?;
        let rows = sqlx::query(
            "SELECT id, ticket_id, checklist, decision, reason, reviewer, decided_at \
             FROM crm_deposit_reviews WHERE ticket_id = $1 ORDER BY decided_at, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DepositReview {
                    id: text(r, "id")?,
                    ticket_id: text(r, "ticket_id")?,
                    checklist: serde_json::from_str(&text(r, "checklist")?)
                        .map_err(|e| CrmError::Corrupt(e.to_string()))?,
                    decision: match text(r, "decision")?.as_str() {
                        "approve" => ReviewDecision::Approve,
                        _ => ReviewDecision::Reject,
                    },
                    reason: text(r, "reason")?,
                    reviewer: text(r, "reviewer")?,
                    decided_at: int(r, "decided_at")?,
                })
            })
            .collect()
    }
}

/// Bumps `updated_at` and the version (comments, attachments), refusing archived tickets.
pub(crate) async fn touch(
    tx: &mut sqlx::AnyConnection,
    t: &Ticket,
    now: UnixMillis,
) -> CrmResult<()> {
    let done = sqlx::query(
        "UPDATE crm_tickets SET updated_at = $1, version = version + 1 \
         WHERE id = $2 AND archived_at IS NULL",
    )
    .bind(now)
    .bind(&t.id)
    .execute(tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(CrmError::Archived(t.id.clone()));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn history(
    tx: &mut sqlx::AnyConnection,
    now: UnixMillis,
    rng: &dyn Rng,
    ticket_id: &str,
    actor: &Actor,
    action: &str,
    from: Option<TicketStatus>,
    to: Option<TicketStatus>,
    detail: serde_json::Value,
) -> CrmResult<()> {
    sqlx::query(
        "INSERT INTO crm_ticket_history (id, ticket_id, at, actor, action, from_status, \
         to_status, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(IdGenerator::new_id(now, rng))
    .bind(ticket_id)
    .bind(now)
    .bind(&actor.username)
    .bind(action)
    .bind(from.map(|s| s.as_str()))
    .bind(to.map(|s| s.as_str()))
    .bind(detail.to_string())
    .execute(tx)
    .await?;
    Ok(())
}

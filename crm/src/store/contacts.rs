//! Contacts keyed by phone number or WeChat openid, linked to bidder application codes, and
//! their interaction timeline.

use hotline_core::mask::mask_phone;
use hotline_core::{IdGenerator, Rng, Role, UnixMillis};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::{CrmStore, int, limit, opt_text, text};
use crate::error::{CrmError, CrmResult};
use crate::permission::{self, Actor};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    pub phone: Option<String>,
    pub wechat_openid: Option<String>,
    pub name: String,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl Contact {
    pub fn masked_for(mut self, role: Role) -> Self {
        if !role.sees_personal_data() {
            self.phone = self.phone.map(|p| mask_phone(&p));
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    #[serde(flatten)]
    pub contact: Contact,
    pub application_codes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    Call,
    Wechat,
    Sms,
    WorkOrder,
    Ticket,
    /// A complaint naming an agent: only the complaint desk sees it on the timeline.
    Complaint,
    Survey,
    Callback,
}

impl InteractionKind {
    pub const ALL: [InteractionKind; 8] = [
        InteractionKind::Call,
        InteractionKind::Wechat,
        InteractionKind::Sms,
        InteractionKind::WorkOrder,
        InteractionKind::Ticket,
        InteractionKind::Complaint,
        InteractionKind::Survey,
        InteractionKind::Callback,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            InteractionKind::Call => "call",
            InteractionKind::Wechat => "wechat",
            InteractionKind::Sms => "sms",
            InteractionKind::WorkOrder => "work_order",
            InteractionKind::Ticket => "ticket",
            InteractionKind::Complaint => "complaint",
            InteractionKind::Survey => "survey",
            InteractionKind::Callback => "callback",
        }
    }
    pub fn parse(s: &str) -> CrmResult<Self> {
        InteractionKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| CrmError::Invalid(format!("未知的交互类型: {s}")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInteraction {
    pub contact_id: String,
    pub kind: InteractionKind,
    pub at: UnixMillis,
    /// The record of that kind: call id, WeChat session id, SMS id, ticket id, ...
    pub ref_id: String,
    pub summary: String,
    /// Kind-specific details (recording id and IVR path of a call, ...).
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    pub id: String,
    pub contact_id: String,
    pub kind: InteractionKind,
    pub at: UnixMillis,
    pub ref_id: String,
    pub summary: String,
    pub detail: serde_json::Value,
}

/// One page of a list, with the total count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

fn contact_from_row(r: &AnyRow) -> CrmResult<Contact> {
    Ok(Contact {
        id: text(r, "id")?,
        phone: opt_text(r, "phone")?,
        wechat_openid: opt_text(r, "wechat_openid")?,
        name: text(r, "name")?,
        created_at: int(r, "created_at")?,
        updated_at: int(r, "updated_at")?,
    })
}

const CONTACT_COLS: &str = "id, phone, wechat_openid, name, created_at, updated_at";

pub(crate) async fn insert_interaction(
    conn: &mut sqlx::AnyConnection,
    now: UnixMillis,
    rng: &dyn Rng,
    i: &NewInteraction,
) -> CrmResult<String> {
    let id = IdGenerator::new_id(now, rng);
    sqlx::query(
        "INSERT INTO crm_interactions (id, contact_id, kind, at, ref_id, summary, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(&i.contact_id)
    .bind(i.kind.as_str())
    .bind(i.at)
    .bind(&i.ref_id)
    .bind(&i.summary)
    .bind(i.detail.to_string())
    .execute(conn)
    .await?;
    Ok(id)
}

/// Normalises a phone number: digits only, a leading +86 / 0086 dropped.
pub fn normalize_phone(s: &str) -> String {
    let d: String = s.chars().filter(char::is_ascii_digit).collect();
    let d = d.strip_prefix("0086").unwrap_or(&d);
    let d = if s.trim_start().starts_with('+') {
        d.strip_prefix("86").unwrap_or(d)
    } else {
        d
    };
    d.to_string()
}

impl CrmStore {
    async fn contact_where(&self, col: &str, v: &str) -> CrmResult<Option<Contact>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLS} FROM crm_contacts WHERE {col} = $1"
        )))
        .bind(v)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(contact_from_row).transpose()
    }

    /// The contact with this phone number, created if new.
    pub async fn contact_by_phone(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        phone: &str,
    ) -> CrmResult<Contact> {
        let phone = normalize_phone(phone);
        if phone.is_empty() {
            return Err(CrmError::Invalid("电话号码无效".into()));
        }
        self.contact_upsert(now, rng, "phone", &phone).await
    }

    /// The contact with this WeChat openid, created if new.
    pub async fn contact_by_openid(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        openid: &str,
    ) -> CrmResult<Contact> {
        if openid.trim().is_empty() {
            return Err(CrmError::Invalid("openid 不能为空".into()));
        }
        self.contact_upsert(now, rng, "wechat_openid", openid.trim())
            .await
    }

    async fn contact_upsert(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        col: &str,
        v: &str,
    ) -> CrmResult<Contact> {
        if let Some(c) = self.contact_where(col, v).await? {
            return Ok(c);
        }
        let id = IdGenerator::new_id(now, rng);
        let res = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO crm_contacts (id, {col}, name, created_at, updated_at) \
             VALUES ($1, $2, '', $3, $3)"
        )))
        .bind(&id)
        .bind(v)
        .bind(now)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => {}
            // created meanwhile by someone else: use theirs
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {}
            Err(e) => return Err(e.into()),
        }
        self.contact_where(col, v)
            .await?
            .ok_or_else(|| CrmError::NotFound("联系人".into()))
    }

    /// Sets a contact's name, phone or openid (merging identities a caller revealed).
    pub async fn update_contact(
        &self,
        now: UnixMillis,
        id: &str,
        name: Option<&str>,
        phone: Option<&str>,
        openid: Option<&str>,
    ) -> CrmResult<Contact> {
        let c = self.contact(id).await?.contact;
        let phone = phone.map(normalize_phone).or(c.phone);
        let openid = openid.map(str::to_string).or(c.wechat_openid);
        let res = sqlx::query(
            "UPDATE crm_contacts SET name = $1, phone = $2, wechat_openid = $3, updated_at = $4 \
             WHERE id = $5",
        )
        .bind(name.unwrap_or(&c.name))
        .bind(&phone)
        .bind(&openid)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(self.contact(id).await?.contact),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Err(CrmError::Invalid(
                "该电话号码或 openid 已属于另一联系人".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn contact(&self, id: &str) -> CrmResult<ContactView> {
        let contact = self
            .contact_where("id", id)
            .await?
            .ok_or_else(|| CrmError::NotFound(format!("联系人 {id}")))?;
        let codes = sqlx::query(
            "SELECT application_code FROM crm_contact_bidders WHERE contact_id = $1 \
             ORDER BY linked_at, application_code",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| text(r, "application_code"))
        .collect::<CrmResult<Vec<_>>>()?;
        Ok(ContactView {
            contact,
            application_codes: codes,
        })
    }

    /// Finds contacts by phone, openid or application code (exact match).
    pub async fn find_contacts(&self, q: &str) -> CrmResult<Vec<ContactView>> {
        let phone = normalize_phone(q);
        let rows = sqlx::query(
            "SELECT DISTINCT c.id FROM crm_contacts c \
             LEFT JOIN crm_contact_bidders b ON b.contact_id = c.id \
             WHERE c.phone = $1 OR c.wechat_openid = $2 OR b.application_code = $2 \
             ORDER BY c.id LIMIT 50",
        )
        .bind(&phone)
        .bind(q.trim())
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            out.push(self.contact(&text(r, "id")?).await?);
        }
        Ok(out)
    }

    /// Links a bidder application code to a contact (idempotent).
    pub async fn link_application_code(
        &self,
        now: UnixMillis,
        contact_id: &str,
        code: &str,
    ) -> CrmResult<()> {
        let code = code.trim();
        if code.is_empty() || code.len() > 32 || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(CrmError::Invalid("申请编码格式无效".into()));
        }
        self.contact(contact_id).await?;
        let res = sqlx::query(
            "INSERT INTO crm_contact_bidders (contact_id, application_code, linked_at) \
             VALUES ($1, $2, $3)",
        )
        .bind(contact_id)
        .bind(code)
        .bind(now)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn record_interaction(
        &self,
        now: UnixMillis,
        rng: &dyn Rng,
        i: &NewInteraction,
    ) -> CrmResult<String> {
        self.contact(&i.contact_id).await?;
        let mut conn = self.pool.acquire().await?;
        insert_interaction(&mut conn, now, rng, i).await
    }

    /// A contact's timeline, newest first (or oldest first), one page. Complaints naming an
    /// agent appear only for the complaint desk.
    pub async fn timeline(
        &self,
        actor: &Actor,
        contact_id: &str,
        page: i64,
        per_page: i64,
        oldest_first: bool,
    ) -> CrmResult<Page<Interaction>> {
        self.contact(contact_id).await?;
        let per_page = limit(per_page);
        let page = page.max(1);
        let hide = if permission::can_use_complaint_desk(actor) {
            ""
        } else {
            " AND kind <> 'complaint'"
        };
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM crm_interactions WHERE contact_id = $1{hide}"
        )))
        .bind(contact_id)
        .fetch_one(&self.pool)
        .await?;
        let order = if oldest_first { "ASC" } else { "DESC" };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, contact_id, kind, at, ref_id, summary, detail FROM crm_interactions \
             WHERE contact_id = $1{hide} ORDER BY at {order}, id {order} LIMIT {per_page} OFFSET {}",
            (page - 1) * per_page
        )))
        .bind(contact_id)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(Interaction {
                    id: text(r, "id")?,
                    contact_id: text(r, "contact_id")?,
                    kind: InteractionKind::parse(&text(r, "kind")?)?,
                    at: int(r, "at")?,
                    ref_id: text(r, "ref_id")?,
                    summary: text(r, "summary")?,
                    detail: serde_json::from_str(&text(r, "detail")?)
                        .map_err(|e| CrmError::Corrupt(e.to_string()))?,
                })
            })
            .collect::<CrmResult<Vec<_>>>()?;
        Ok(Page {
            items,
            total,
            page,
            per_page,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_phone;

    #[test]
    fn phones_are_normalised() {
        assert_eq!(normalize_phone("+86 138-1234-5678"), "13812345678");
        assert_eq!(normalize_phone("008613812345678"), "13812345678");
        assert_eq!(normalize_phone("022-12345"), "02212345");
    }
}

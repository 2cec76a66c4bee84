//! Message templates: `{variable}` placeholders, rendering that refuses a missing variable,
//! segment counting (what the carrier bills), and storage with the approval rule (draft →
//! approved by a supervisor or an administrator; editing an approved template makes it a
//! draft again).

use std::collections::{BTreeMap, BTreeSet};

use hotline_core::{IdGenerator, Rng, UnixMillis};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row as _};

use crate::error::{IntegrationError, Result};

/// What a template is for (seed 3.3–3.12, and the refund-failure notice of 3.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// 缴付保证金短信
    DepositNotice,
    /// 保证金催缴
    DepositReminder,
    /// 保证金查询更正
    DepositCorrection,
    /// 资格激活
    Activation,
    /// 催激活
    ActivationReminder,
    /// 成交价款缴纳
    Payment,
    /// 催缴成交价款
    PaymentReminder,
    /// 退款失败
    RefundFailure,
    Other,
}

impl TemplateKind {
    pub const ALL: [TemplateKind; 9] = [
        Self::DepositNotice,
        Self::DepositReminder,
        Self::DepositCorrection,
        Self::Activation,
        Self::ActivationReminder,
        Self::Payment,
        Self::PaymentReminder,
        Self::RefundFailure,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DepositNotice => "deposit_notice",
            Self::DepositReminder => "deposit_reminder",
            Self::DepositCorrection => "deposit_correction",
            Self::Activation => "activation",
            Self::ActivationReminder => "activation_reminder",
            Self::Payment => "payment",
            Self::PaymentReminder => "payment_reminder",
            Self::RefundFailure => "refund_failure",
            Self::Other => "other",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Self::DepositNotice => "保证金缴纳通知",
            Self::DepositReminder => "保证金缴纳提醒",
            Self::DepositCorrection => "保证金查询更正",
            Self::Activation => "资格激活通知",
            Self::ActivationReminder => "资格激活提醒",
            Self::Payment => "成交价款缴纳通知",
            Self::PaymentReminder => "成交价款缴纳提醒",
            Self::RefundFailure => "退款失败通知",
            Self::Other => "其他",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A template's placeholders, in order of first use. `{{` and `}}` are literal braces.
/// A placeholder is 1–32 ASCII letters, digits or `_`.
pub fn variables(body: &str) -> Result<Vec<String>, TemplateError> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for piece in parse(body)? {
        if let Piece::Var(v) = piece
            && seen.insert(v)
        {
            out.push(v.to_string());
        }
    }
    Ok(out)
}

/// Why a template or its rendering is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed placeholder at character {0}")]
    Unclosed(usize),
    #[error("stray `}}` at character {0} (write `}}}}` for a literal brace)")]
    StrayClose(usize),
    #[error("bad placeholder name `{0}`")]
    BadName(String),
    #[error("missing variable `{0}`")]
    Missing(String),
}

impl TemplateError {
    pub fn message_zh(&self) -> String {
        match self {
            Self::Unclosed(i) => format!("模板第 {i} 个字符处的变量缺少 }}"),
            Self::StrayClose(i) => format!("模板第 {i} 个字符处有多余的 }}（字面量请写 }}}}）"),
            Self::BadName(n) => {
                format!("变量名 “{n}” 无效（只能由 1–32 位字母、数字或下划线组成）")
            }
            Self::Missing(n) => format!("缺少变量 {{{n}}} 的值"),
        }
    }
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn valid_name(n: &str) -> bool {
    (1..=32).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn parse(body: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = body;
    let mut pos = 0usize; // characters consumed, for messages a person can follow
    while !rest.is_empty() {
        let next = rest.find(['{', '}']);
        let Some(i) = next else {
            pieces.push(Piece::Text(rest));
            break;
        };
        if i > 0 {
            pieces.push(Piece::Text(&rest[..i]));
            pos += rest[..i].chars().count();
        }
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            pieces.push(Piece::Text("{"));
            rest = after;
            pos += 2;
        } else if let Some(after) = tail.strip_prefix("}}") {
            pieces.push(Piece::Text("}"));
            rest = after;
            pos += 2;
        } else if tail.starts_with('}') {
            return Err(TemplateError::StrayClose(pos + 1));
        } else {
            let close = tail.find('}').ok_or(TemplateError::Unclosed(pos + 1))?;
            let name = &tail[1..close];
            if !valid_name(name) {
                return Err(TemplateError::BadName(name.to_string()));
            }
            pieces.push(Piece::Var(name));
            pos += tail[..=close].chars().count();
            rest = &tail[close + 1..];
        }
    }
    Ok(pieces)
}

/// Fills the placeholders; a variable without a value is an error (never an empty gap in a
/// message sent to thousands).
pub fn render(body: &str, vars: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(body.len() + 32);
    for piece in parse(body)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(v) => out.push_str(
                vars.get(v)
                    .ok_or_else(|| TemplateError::Missing(v.to_string()))?,
            ),
        }
    }
    Ok(out)
}

/// The whole text sent: the sign (签名, e.g. 【天津小客车指标】), the rendered body and the
/// opt-out hint (e.g. 回复TD退订), as carriers require.
pub fn compose(sign: &str, body: &str, hint: &str) -> String {
    let mut s = String::with_capacity(sign.len() + body.len() + hint.len());
    s.push_str(sign);
    s.push_str(body);
    s.push_str(hint);
    s
}

/// Length and parts of a message as the carrier counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segments {
    /// Characters (UTF-16 code units: what the UCS-2 encoding carries).
    pub chars: u32,
    /// Parts billed: 1 when it fits in one SMS, else ⌈chars / per-part⌉.
    pub parts: u32,
    /// Whether the text needs UCS-2 (any Chinese character): 70 per SMS, 67 per part.
    /// Plain ASCII text goes as GSM 7-bit: 160 per SMS, 153 per part.
    pub ucs2: bool,
}

/// Counts the parts of a message (3GPP TS 23.040: a concatenated part gives 6 octets to the
/// user-data header, so 67 UCS-2 or 153 GSM characters remain of 70 and 160).
pub fn segments(text: &str) -> Segments {
    // GSM 03.38's basic set is nearly printable ASCII; treat anything else as needing UCS-2
    // (slightly pessimistic for the few GSM-only symbols, never optimistic).
    let ucs2 = !text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\r');
    let chars = if ucs2 {
        text.encode_utf16().count() as u32
    } else {
        // `[ ] { } \ ^ ~ |` take two septets (escape + char) in GSM 7-bit.
        text.bytes()
            .map(|b| if b"[]{}\\^~|".contains(&b) { 2 } else { 1 })
            .sum()
    };
    let (single, part) = if ucs2 { (70, 67) } else { (160, 153) };
    let parts = if chars <= single {
        1
    } else {
        chars.div_ceil(part)
    };
    Segments { chars, parts, ucs2 }
}

/// A stored template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub id: String,
    pub kind: TemplateKind,
    pub name: String,
    pub body: String,
    /// `draft` or `approved`.
    pub status: String,
    pub version: i64,
    pub created_by: String,
    pub updated_by: String,
    pub approved_by: String,
    pub approved_at: UnixMillis,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl Template {
    pub fn is_approved(&self) -> bool {
        self.status == "approved"
    }
}

/// What staff write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    pub kind: TemplateKind,
    pub name: String,
    pub body: String,
}

impl TemplateInput {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(IntegrationError::Invalid(m));
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return bad("模板名称不能为空，且不超过 100 个字符".into());
        }
        let body = self.body.trim();
        if body.is_empty() {
            return bad("模板内容不能为空".into());
        }
        if body.chars().count() > 500 {
            return bad("模板内容不能超过 500 个字符".into());
        }
        variables(body).map_err(|e| IntegrationError::Invalid(e.message_zh()))?;
        Ok(())
    }
}

const COLS: &str = "id, kind, name, body, status, version, created_by, updated_by, approved_by, \
    approved_at, created_at, updated_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Template> {
    let kind: String = r.try_get("kind")?;
    Ok(Template {
        id: r.try_get("id")?,
        kind: TemplateKind::parse(&kind)
            .ok_or_else(|| IntegrationError::Corrupt(format!("template kind `{kind}`")))?,
        name: r.try_get("name")?,
        body: r.try_get("body")?,
        status: r.try_get("status")?,
        version: r.try_get("version")?,
        created_by: r.try_get("created_by")?,
        updated_by: r.try_get("updated_by")?,
        approved_by: r.try_get("approved_by")?,
        approved_at: r.try_get("approved_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn create_template(
    pool: &AnyPool,
    now: UnixMillis,
    rng: &dyn Rng,
    input: &TemplateInput,
    actor: &str,
) -> Result<Template> {
    input.validate()?;
    let id = IdGenerator::new_id(now, rng);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO sms_templates ({COLS}) VALUES ($1, $2, $3, $4, 'draft', 1, $5, $5, '', 0, $6, $6)"
    )))
    .bind(id.clone())
    .bind(input.kind.as_str())
    .bind(input.name.trim().to_string())
    .bind(input.body.trim().to_string())
    .bind(actor.to_string())
    .bind(now)
    .execute(pool)
    .await?;
    get_template(pool, &id)
        .await?
        .ok_or_else(|| IntegrationError::NotFound("短信模板".into()))
}

pub async fn get_template(pool: &AnyPool, id: &str) -> Result<Option<Template>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM sms_templates WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list_templates(pool: &AnyPool) -> Result<Vec<Template>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM sms_templates ORDER BY kind, name, id"
    )))
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Changes a template. A change of an approved template takes its approval away: what was
/// approved is not what will be sent any more.
pub async fn update_template(
    pool: &AnyPool,
    now: UnixMillis,
    id: &str,
    input: &TemplateInput,
    actor: &str,
) -> Result<Template> {
    input.validate()?;
    let n = sqlx::query(
        "UPDATE sms_templates SET kind = $1, name = $2, body = $3, status = 'draft', \
         version = version + 1, updated_by = $4, approved_by = '', approved_at = 0, \
         updated_at = $5 WHERE id = $6",
    )
    .bind(input.kind.as_str())
    .bind(input.name.trim().to_string())
    .bind(input.body.trim().to_string())
    .bind(actor.to_string())
    .bind(now)
    .bind(id.to_string())
    .execute(pool)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(IntegrationError::NotFound("短信模板".into()));
    }
    get_template(pool, id)
        .await?
        .ok_or_else(|| IntegrationError::NotFound("短信模板".into()))
}

/// Approves the current version. `version` must be the one the approver read, so that an
/// edit made meanwhile is not approved unseen.
pub async fn approve_template(
    pool: &AnyPool,
    now: UnixMillis,
    id: &str,
    version: i64,
    actor: &str,
) -> Result<Template> {
    let t = get_template(pool, id)
        .await?
        .ok_or_else(|| IntegrationError::NotFound("短信模板".into()))?;
    if t.version != version {
        return Err(IntegrationError::Conflict(format!(
            "模板已被修改（当前第 {} 版），请重新查看后再审批",
            t.version
        )));
    }
    if t.is_approved() {
        return Ok(t);
    }
    sqlx::query(
        "UPDATE sms_templates SET status = 'approved', approved_by = $1, approved_at = $2 \
         WHERE id = $3 AND version = $4",
    )
    .bind(actor.to_string())
    .bind(now)
    .bind(id.to_string())
    .bind(version)
    .execute(pool)
    .await?;
    get_template(pool, id)
        .await?
        .ok_or_else(|| IntegrationError::NotFound("短信模板".into()))
}

pub async fn delete_template(pool: &AnyPool, id: &str) -> Result<bool> {
    let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sms_batches WHERE template_id = $1")
        .bind(id.to_string())
        .fetch_one(pool)
        .await?;
    if used > 0 {
        return Err(IntegrationError::Conflict(
            "模板已被短信批次使用，不能删除".into(),
        ));
    }
    let n = sqlx::query("DELETE FROM sms_templates WHERE id = $1")
        .bind(id.to_string())
        .execute(pool)
        .await?
        .rows_affected();
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_variables_and_literal_braces() {
        let body = "{name}您好，{period}期保证金{amount}元请于{deadline}前缴纳。{{注}}";
        assert_eq!(
            variables(body).unwrap(),
            vec!["name", "period", "amount", "deadline"]
        );
        let out = render(
            body,
            &vars(&[
                ("name", "张三"),
                ("period", "2025-11"),
                ("amount", "2000.00"),
                ("deadline", "11月10日17:00"),
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            "张三您好，2025-11期保证金2000.00元请于11月10日17:00前缴纳。{注}"
        );
    }

    #[test]
    fn missing_variable_is_named() {
        let e = render("{name}您好 {code}", &vars(&[("name", "x")])).unwrap_err();
        assert_eq!(e, TemplateError::Missing("code".into()));
        assert!(e.message_zh().contains("{code}"));
    }

    #[test]
    fn malformed_templates_are_refused() {
        assert_eq!(
            variables("a {name").unwrap_err(),
            TemplateError::Unclosed(3)
        );
        assert_eq!(variables("ab}").unwrap_err(), TemplateError::StrayClose(3));
        assert!(matches!(
            variables("{姓名}").unwrap_err(),
            TemplateError::BadName(_)
        ));
        assert!(matches!(
            variables("{}").unwrap_err(),
            TemplateError::BadName(_)
        ));
    }

    #[test]
    fn segments_follow_the_carrier_rules() {
        let zh70: String = "测".repeat(70);
        assert_eq!(
            segments(&zh70),
            Segments {
                chars: 70,
                parts: 1,
                ucs2: true
            }
        );
        assert_eq!(segments(&"测".repeat(71)).parts, 2);
        assert_eq!(segments(&"测".repeat(134)).parts, 2);
        assert_eq!(segments(&"测".repeat(135)).parts, 3);
        assert_eq!(segments(&"a".repeat(160)).parts, 1);
        assert_eq!(segments(&"a".repeat(161)).parts, 2);
        assert!(!segments("abc").ucs2);
        // One Chinese character makes the whole message UCS-2.
        let mixed = format!("{}测", "a".repeat(69));
        assert_eq!(segments(&mixed).parts, 1);
        assert_eq!(segments(&format!("{}测", "a".repeat(70))).parts, 2);
        // Characters outside the BMP take two UTF-16 units.
        assert_eq!(segments("😀").chars, 2);
        assert_eq!(segments("").parts, 1);
    }

    #[test]
    fn compose_adds_sign_and_hint() {
        assert_eq!(
            compose("【天津小客车指标】", "正文", "回复TD退订"),
            "【天津小客车指标】正文回复TD退订"
        );
    }
}

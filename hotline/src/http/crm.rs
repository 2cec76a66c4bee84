//! The CRM's HTTP API: tickets (CRUD, transitions, assignment, comments, history,
//! attachments, the deposit-authorisation review), the complaint desk, contacts and their
//! timeline, callbacks, surveys, statistics with CSV/XLSX downloads, the monthly report and
//! the archive. Who may see or change which ticket is decided by `hotline_crm::permission`;
//! the guard's role sets here are only the coarse first gate.
//!
//! Paths are written against `crate::http` and `crate::db` only, so the route × role tests
//! can build this module on its own.

use axum::Json;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use hotline_core::{Role, UnixMillis};
use hotline_crm::calendar::{YearMonth, from_local};
use hotline_crm::callback::{CallbackOutcome, CallbackSource, CallbackStatus, NewCallback};
use hotline_crm::export::{monthly_report_xlsx, stats_csv, stats_xlsx};
use hotline_crm::stats::{Dimension, Period, StatsQuery, StatsView};
use hotline_crm::store::{
    ArchiveQuery, CallbackFilter, Finding, NewTicket, Ticket, TicketEdit, TicketFilter,
};
use hotline_crm::ticket::{DepositChecklist, DepositDocument, ReviewDecision};
use hotline_crm::{Actor, CrmError, CrmStore, TicketKind, TicketStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::db::audit::Audit;
use crate::db::data_files::Direction;
use crate::http::access::{Access, ApiBuilder, ClientAddr, CurrentUser};
use crate::http::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::http::state::AppState;

/// Uploads may be larger than the API's general body limit.
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

/// Role sets of the CRM routes.
pub mod crm_roles {
    use hotline_core::Role;
    /// Everyone who handles tickets (quality reviewers only read).
    pub const WORKERS: &[Role] = &[
        Role::Admin,
        Role::Supervisor,
        Role::Agent,
        Role::ComplaintOfficer,
        Role::Business,
    ];
    pub const COMPLAINT_DESK: &[Role] = &[Role::ComplaintOfficer];
    pub const DEPOSIT_REVIEW: &[Role] = &[Role::Business, Role::Admin];
    pub const STATISTICS: &[Role] = &[Role::Admin, Role::Supervisor, Role::ComplaintOfficer];
    pub const CALLBACKS: &[Role] = &[
        Role::Admin,
        Role::Supervisor,
        Role::Agent,
        Role::ComplaintOfficer,
    ];
    pub const ARCHIVE: &[Role] = &[Role::Admin, Role::Supervisor];
}
use crm_roles::*;

/// Maps the CRM's errors onto the API's one error shape.
pub fn api_error(e: CrmError) -> ApiError {
    match &e {
        CrmError::NotFound(_) => ApiError::NotFound(e.message_zh()),
        CrmError::Forbidden(_) => ApiError::Forbidden,
        CrmError::InvalidTransition { .. } | CrmError::Archived(_) | CrmError::Stale { .. } => {
            ApiError::Conflict(e.message_zh())
        }
        CrmError::Invalid(_) | CrmError::UnsupportedType(_) => ApiError::BadRequest(e.message_zh()),
        CrmError::TooLarge { .. } => ApiError::PayloadTooLarge,
        _ => ApiError::internal(e),
    }
}

pub(crate) fn store(st: &AppState) -> CrmStore {
    CrmStore::new(
        st.db.pool.clone(),
        st.config.crm.clone(),
        st.config.data_dir.join("attachments"),
    )
}

fn actor(u: &CurrentUser, addr: &ClientAddr) -> Actor {
    Actor::new(u.user.username.clone(), u.user.role).with_addr(addr.0.clone())
}

fn view(t: Ticket, role: Role, now: UnixMillis) -> Value {
    let overdue = t.is_overdue(now);
    let mut v = serde_json::to_value(t.masked_for(role)).unwrap_or_default();
    v["overdue"] = json!(overdue);
    v
}

fn parse<T: std::str::FromStr<Err = CrmError>>(s: &str) -> ApiResult<T> {
    s.parse().map_err(api_error)
}

// ---- tickets ------------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct TicketListQuery {
    status: Option<String>,
    kind: Option<String>,
    assignee: Option<String>,
    contact_id: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_tickets(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiQuery(q): ApiQuery<TicketListQuery>,
) -> ApiResult<Json<Value>> {
    let f = TicketFilter {
        status: q.status.as_deref().map(parse).transpose()?,
        kind: q.kind.as_deref().map(parse).transpose()?,
        assignee: q.assignee,
        contact_id: q.contact_id,
        include_archived: false,
        limit: q.limit,
        offset: q.offset,
    };
    let now = st.now();
    let items: Vec<Value> = store(&st)
        .list_tickets(&actor(&u, &a), &f)
        .await
        .map_err(api_error)?
        .into_iter()
        .map(|t| view(t, u.user.role, now))
        .collect();
    Ok(Json(json!({ "items": items })))
}

async fn create_ticket(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiJson(new): ApiJson<NewTicket>,
) -> ApiResult<Json<Value>> {
    let t = store(&st)
        .create_ticket(st.now(), st.rng.as_ref(), &actor(&u, &a), new)
        .await
        .map_err(api_error)?;
    Ok(Json(view(t, u.user.role, st.now())))
}

async fn get_ticket(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let t = store(&st)
        .ticket(&actor(&u, &a), &id)
        .await
        .map_err(api_error)?;
    Ok(Json(view(t, u.user.role, st.now())))
}

async fn edit_ticket(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(edit): ApiJson<TicketEdit>,
) -> ApiResult<Json<Value>> {
    let t = store(&st)
        .edit_ticket(st.now(), st.rng.as_ref(), &actor(&u, &a), &id, edit)
        .await
        .map_err(api_error)?;
    Ok(Json(view(t, u.user.role, st.now())))
}

#[derive(Debug, Deserialize)]
pub struct TransitionBody {
    to: String,
    #[serde(default)]
    note: String,
    version: Option<i64>,
}

async fn transition(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<TransitionBody>,
) -> ApiResult<Json<Value>> {
    let to: TicketStatus = parse(&b.to)?;
    let t = store(&st)
        .transition(
            st.now(),
            st.rng.as_ref(),
            &actor(&u, &a),
            &id,
            to,
            &b.note,
            b.version,
        )
        .await
        .map_err(api_error)?;
    Ok(Json(view(t, u.user.role, st.now())))
}

#[derive(Debug, Deserialize)]
pub struct AssignBody {
    assignee: String,
}

async fn assign(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<AssignBody>,
) -> ApiResult<Json<Value>> {
    let t = store(&st)
        .assign(
            st.now(),
            st.rng.as_ref(),
            &actor(&u, &a),
            &id,
            b.assignee.trim(),
        )
        .await
        .map_err(api_error)?;
    Ok(Json(view(t, u.user.role, st.now())))
}

#[derive(Debug, Deserialize)]
pub struct CommentBody {
    body: String,
}

async fn add_comment(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<CommentBody>,
) -> ApiResult<Json<Value>> {
    let c = store(&st)
        .add_comment(st.now(), st.rng.as_ref(), &actor(&u, &a), &id, &b.body)
        .await
        .map_err(api_error)?;
    Ok(Json(json!(c)))
}

async fn comments(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let c = store(&st)
        .comments(&actor(&u, &a), &id)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "items": c })))
}

async fn history(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let h = store(&st)
        .history(&actor(&u, &a), &id)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "items": h })))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct UploadQuery {
    file_name: String,
    document: Option<String>,
}

/// Upload: the raw file is the body; its name (and the checklist item it proves) are query
/// parameters.
async fn upload(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let document: Option<DepositDocument> = q.document.as_deref().map(parse).transpose()?;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.starts_with("application/json"));
    let att = store(&st)
        .add_attachment(
            st.now(),
            st.rng.as_ref(),
            &actor(&u, &a),
            &id,
            &q.file_name,
            declared,
            &body,
            document,
        )
        .await
        .map_err(api_error)?;
    Ok(Json(json!(att)))
}

async fn attachments(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let list = store(&st)
        .attachments(&actor(&u, &a), &id)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "items": list })))
}

async fn download(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath((id, att)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let (meta, bytes) = store(&st)
        .read_attachment(&actor(&u, &a), &id, &att)
        .await
        .map_err(api_error)?;
    Ok(file_response(
        &meta.content_type,
        &format!("{}.{}", meta.id, ext_of(&meta.content_type)),
        bytes,
    ))
}

fn ext_of(content_type: &str) -> &'static str {
    match content_type {
        "application/pdf" => "pdf",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        _ => "bin",
    }
}

fn file_response(content_type: &str, file_name: &str, bytes: Vec<u8>) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    // ASCII names only here (ids and fixed names), so no RFC 5987 encoding is needed.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

#[derive(Debug, Deserialize)]
pub struct ReviewBody {
    #[serde(default)]
    checked: Vec<String>,
    decision: ReviewDecision,
    #[serde(default)]
    reason: String,
}

async fn deposit_review(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ReviewBody>,
) -> ApiResult<Json<Value>> {
    let checked = b
        .checked
        .iter()
        .map(|s| parse::<DepositDocument>(s))
        .collect::<ApiResult<Vec<_>>>()?;
    let out = store(&st)
        .review_deposit_authorization(
            st.now(),
            st.rng.as_ref(),
            &actor(&u, &a),
            &id,
            DepositChecklist { checked },
            b.decision,
            &b.reason,
        )
        .await
        .map_err(api_error)?;
    // The notice goes to the bidder by SMS through the outbox (once per review, quiet hours
    // and opt-outs respected); it is also returned for the desk to read out.
    let sms_queued = if out.notify_phone.is_empty() {
        false
    } else {
        super::sms::queue_review_notice(&st.0, &out.review.id, &out.notify_phone, &out.notify_text)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
    };
    Ok(Json(json!({
        "ticket": view(out.ticket, u.user.role, st.now()),
        "review": out.review,
        "notice": { "phone": out.notify_phone, "text": out.notify_text, "sms_queued": sms_queued },
    })))
}

async fn deposit_reviews(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let r = store(&st)
        .deposit_reviews(&actor(&u, &a), &id)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "items": r })))
}

// ---- complaint desk -------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DeskQuery {
    open_only: bool,
}

async fn complaint_desk(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiQuery(q): ApiQuery<DeskQuery>,
) -> ApiResult<Json<Value>> {
    let cases = store(&st)
        .complaint_desk(&actor(&u, &a), q.open_only)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "items": cases })))
}

async fn complaint(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let c = store(&st)
        .complaint(&actor(&u, &a), &id)
        .await
        .map_err(api_error)?;
    Ok(Json(json!(c)))
}

#[derive(Debug, Deserialize)]
pub struct RecordingBody {
    recording_id: String,
}

async fn complaint_recording(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<RecordingBody>,
) -> ApiResult<Json<Value>> {
    let c = store(&st)
        .link_complaint_recording(
            st.now(),
            st.rng.as_ref(),
            &actor(&u, &a),
            &id,
            &b.recording_id,
        )
        .await
        .map_err(api_error)?;
    Ok(Json(json!(c)))
}

#[derive(Debug, Deserialize)]
pub struct FindingBody {
    finding: Finding,
    action_taken: String,
}

async fn complaint_finding(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<FindingBody>,
) -> ApiResult<Json<Value>> {
    let c = store(&st)
        .record_complaint_finding(
            st.now(),
            st.rng.as_ref(),
            &actor(&u, &a),
            &id,
            b.finding,
            &b.action_taken,
        )
        .await
        .map_err(api_error)?;
    Ok(Json(json!(c)))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct NoteBody {
    note: String,
}

async fn complaint_callback(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<NoteBody>,
) -> ApiResult<Json<Value>> {
    let c = store(&st)
        .record_complaint_callback(st.now(), st.rng.as_ref(), &actor(&u, &a), &id, &b.note)
        .await
        .map_err(api_error)?;
    Ok(Json(json!(c)))
}

async fn complaint_close(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let c = store(&st)
        .close_complaint(st.now(), st.rng.as_ref(), &actor(&u, &a), &id)
        .await
        .map_err(api_error)?;
    Ok(Json(json!(c)))
}

// ---- contacts -------------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ContactQuery {
    q: String,
}

async fn find_contacts(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    ApiQuery(q): ApiQuery<ContactQuery>,
) -> ApiResult<Json<Value>> {
    if q.q.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "请输入电话号码、openid 或申请编码".into(),
        ));
    }
    let items: Vec<Value> = store(&st)
        .find_contacts(&q.q)
        .await
        .map_err(api_error)?
        .into_iter()
        .map(|mut c| {
            c.contact = c.contact.masked_for(u.user.role);
            json!(c)
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct NewContactBody {
    phone: Option<String>,
    wechat_openid: Option<String>,
    name: Option<String>,
}

async fn create_contact(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    ApiJson(b): ApiJson<NewContactBody>,
) -> ApiResult<Json<Value>> {
    let s = store(&st);
    let now = st.now();
    let c = match (&b.phone, &b.wechat_openid) {
        (Some(p), _) => s.contact_by_phone(now, st.rng.as_ref(), p).await,
        (None, Some(o)) => s.contact_by_openid(now, st.rng.as_ref(), o).await,
        (None, None) => return Err(ApiError::BadRequest("请填写电话号码或 openid".into())),
    }
    .map_err(api_error)?;
    let c = if b.name.is_some() || (b.phone.is_some() && b.wechat_openid.is_some()) {
        s.update_contact(
            now,
            &c.id,
            b.name.as_deref(),
            None,
            b.wechat_openid.as_deref(),
        )
        .await
        .map_err(api_error)?
    } else {
        c
    };
    Ok(Json(json!(c.masked_for(u.user.role))))
}

async fn get_contact(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let mut c = store(&st).contact(&id).await.map_err(api_error)?;
    c.contact = c.contact.masked_for(u.user.role);
    Ok(Json(json!(c)))
}

#[derive(Debug, Deserialize)]
pub struct CodeBody {
    application_code: String,
}

async fn link_code(
    st: axum::extract::State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<CodeBody>,
) -> ApiResult<Json<Value>> {
    let s = store(&st);
    s.link_application_code(st.now(), &id, &b.application_code)
        .await
        .map_err(api_error)?;
    let c = s.contact(&id).await.map_err(api_error)?;
    Ok(Json(json!({ "application_codes": c.application_codes })))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct TimelineQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    order: Option<String>,
}

async fn timeline(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<TimelineQuery>,
) -> ApiResult<Json<Value>> {
    let oldest_first = match q.order.as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(ApiError::BadRequest("order 应为 asc 或 desc".into())),
    };
    let page = store(&st)
        .timeline(
            &actor(&u, &a),
            &id,
            q.page.unwrap_or(1),
            q.per_page.unwrap_or(20),
            oldest_first,
        )
        .await
        .map_err(api_error)?;
    Ok(Json(json!(page)))
}

// ---- callbacks ------------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CallbackQuery {
    status: Option<String>,
    source: Option<String>,
    limit: Option<i64>,
}

async fn list_callbacks(
    st: axum::extract::State<AppState>,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> ApiResult<Json<Value>> {
    let f = CallbackFilter {
        status: q
            .status
            .as_deref()
            .map(|s| {
                CallbackStatus::parse(s)
                    .map_err(|_| ApiError::BadRequest(format!("未知的回访状态: {s}")))
            })
            .transpose()?,
        source: q
            .source
            .as_deref()
            .map(parse::<CallbackSource>)
            .transpose()?,
        limit: q.limit,
    };
    let items = store(&st).list_callbacks(&f).await.map_err(api_error)?;
    Ok(Json(json!({ "items": items })))
}

async fn due_callbacks(st: axum::extract::State<AppState>) -> ApiResult<Json<Value>> {
    let items = store(&st)
        .due_callbacks(st.now(), 100)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Debug, Deserialize)]
pub struct NewCallbackBody {
    phone: String,
    #[serde(default)]
    note: String,
    ticket_id: Option<String>,
    call_id: Option<String>,
}

async fn create_callback(
    st: axum::extract::State<AppState>,
    ApiJson(b): ApiJson<NewCallbackBody>,
) -> ApiResult<Json<Value>> {
    let now = st.now();
    let cb = store(&st)
        .create_callback(
            now,
            st.rng.as_ref(),
            NewCallback {
                source: CallbackSource::Ticket,
                phone: b.phone,
                call_id: b.call_id,
                ticket_id: b.ticket_id,
                queue: None,
                note: b.note,
                requested_at: now,
            },
        )
        .await
        .map_err(api_error)?;
    Ok(Json(json!(cb)))
}

#[derive(Debug, Deserialize)]
pub struct AttemptBody {
    outcome: String,
    #[serde(default)]
    note: String,
}

async fn callback_attempt(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<AttemptBody>,
) -> ApiResult<Json<Value>> {
    let outcome = CallbackOutcome::parse(&b.outcome).map_err(api_error)?;
    let cb = store(&st)
        .record_callback_attempt(
            st.now(),
            st.rng.as_ref(),
            &actor(&u, &a),
            &id,
            outcome,
            &b.note,
        )
        .await
        .map_err(api_error)?;
    Ok(Json(json!(cb)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallBody {
    /// The agent's seat, rung first.
    seat: String,
}

/// Click-to-call from a callback task: the number comes from the task, so the agent starts
/// the call without seeing it unmasked; the attempt is audited like every outbound call.
async fn callback_call(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<CallBody>,
) -> ApiResult<Json<Value>> {
    let task = store(&st).callback(&id).await.map_err(api_error)?;
    let gw = st
        .gateway
        .get()
        .ok_or_else(|| ApiError::Unavailable("SIP 网关未运行".into()))?;
    let result = gw.click_to_call(&b.seat, &task.phone).await;
    let detail = match &result {
        Ok(call) => format!("call:{call}"),
        Err(e) => format!("refused: {e}"),
    };
    st.audit_by(
        &u,
        &a.0,
        "callback.call",
        &format!("callback:{id}"),
        &detail,
    )
    .await?;
    let call_id = result?;
    Ok(Json(json!({"callback_id": id, "call_id": call_id})))
}

async fn callback_cancel(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let cb = store(&st)
        .cancel_callback(st.now(), &actor(&u, &a), &id)
        .await
        .map_err(api_error)?;
    Ok(Json(json!(cb)))
}

// ---- statistics, surveys, reports -----------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct StatsParamsQuery {
    /// First local day, `YYYY-MM-DD`.
    from: String,
    /// Last local day (inclusive), `YYYY-MM-DD`.
    to: String,
    period: Option<String>,
    dimension: Option<String>,
}

fn local_day(s: &str, offset_min: i32) -> ApiResult<UnixMillis> {
    let bad = || ApiError::BadRequest(format!("日期格式应为 YYYY-MM-DD: {s}"));
    let mut it = s.splitn(3, '-');
    let y: i32 = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let m: u32 = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let d: u32 = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let ym = YearMonth::new(y, m).ok_or_else(bad)?;
    if d == 0 || d > ym.days() {
        return Err(bad());
    }
    Ok(from_local(y, m, d, 0, 0, offset_min))
}

fn stats_query(st: &AppState, q: &StatsParamsQuery) -> ApiResult<StatsQuery> {
    let off = st.config.crm.stats.utc_offset_minutes;
    Ok(StatsQuery {
        from: local_day(&q.from, off)?,
        to: local_day(&q.to, off)? + hotline_crm::calendar::MS_PER_DAY,
        period: Period::parse(q.period.as_deref().unwrap_or("day")).map_err(api_error)?,
        dimension: Dimension::parse(q.dimension.as_deref().unwrap_or("total"))
            .map_err(api_error)?,
    })
}

async fn stats(
    st: axum::extract::State<AppState>,
    ApiQuery(q): ApiQuery<StatsParamsQuery>,
) -> ApiResult<Json<Value>> {
    let rows: Vec<StatsView> = store(&st)
        .statistics(stats_query(&st, &q)?)
        .await
        .map_err(api_error)?
        .into_iter()
        .map(StatsView::from)
        .collect();
    Ok(Json(json!({ "items": rows })))
}

async fn audit_export(st: &AppState, u: &CurrentUser, a: &ClientAddr, what: &str) -> ApiResult<()> {
    st.db
        .audit(
            st.now(),
            st.rng.as_ref(),
            Audit {
                actor: &u.user.username,
                action: "crm.export",
                target: what,
                detail: "",
                remote_addr: &a.0,
            },
        )
        .await?;
    Ok(())
}

async fn stats_csv_download(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiQuery(q): ApiQuery<StatsParamsQuery>,
) -> ApiResult<Response> {
    let rows = store(&st)
        .statistics(stats_query(&st, &q)?)
        .await
        .map_err(api_error)?;
    let bytes = stats_csv(&rows).map_err(api_error)?;
    audit_export(&st, &u, &a, "stats.csv").await?;
    st.record_file(
        &u.user.username,
        &a.0,
        Direction::Export,
        "stats_csv",
        "statistics.csv",
        &bytes,
    )
    .await?;
    Ok(file_response(
        "text/csv; charset=utf-8",
        "statistics.csv",
        bytes,
    ))
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

async fn stats_xlsx_download(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiQuery(q): ApiQuery<StatsParamsQuery>,
) -> ApiResult<Response> {
    let rows = store(&st)
        .statistics(stats_query(&st, &q)?)
        .await
        .map_err(api_error)?;
    let bytes = stats_xlsx(&rows, "话务统计").map_err(api_error)?;
    audit_export(&st, &u, &a, "stats.xlsx").await?;
    st.record_file(
        &u.user.username,
        &a.0,
        Direction::Export,
        "stats_xlsx",
        "statistics.xlsx",
        &bytes,
    )
    .await?;
    Ok(file_response(XLSX, "statistics.xlsx", bytes))
}

async fn monthly_report(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(month): ApiPath<String>,
) -> ApiResult<Response> {
    let month: YearMonth = month.parse().map_err(ApiError::BadRequest)?;
    let data = store(&st).monthly_data(month).await.map_err(api_error)?;
    let bytes = monthly_report_xlsx(&data).map_err(api_error)?;
    audit_export(&st, &u, &a, &format!("monthly_report {month}")).await?;
    let name = format!("hotline-report-{month}.xlsx");
    st.record_file(
        &u.user.username,
        &a.0,
        Direction::Export,
        "monthly_report",
        &name,
        &bytes,
    )
    .await?;
    Ok(file_response(XLSX, &name, bytes))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RangeQuery {
    from: String,
    to: String,
    agent: Option<String>,
}

async fn complaint_counts(
    st: axum::extract::State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<Value>> {
    let off = st.config.crm.stats.utc_offset_minutes;
    let from = local_day(&q.from, off)?;
    let to = local_day(&q.to, off)? + hotline_crm::calendar::MS_PER_DAY;
    let items = store(&st)
        .complaint_counts(from, to)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "items": items })))
}

async fn surveys(
    st: axum::extract::State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> ApiResult<Json<Value>> {
    let off = st.config.crm.stats.utc_offset_minutes;
    let from = local_day(&q.from, off)?;
    let to = local_day(&q.to, off)? + hotline_crm::calendar::MS_PER_DAY;
    let items = store(&st)
        .surveys(from, to, q.agent.as_deref())
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "items": items })))
}

// ---- archive --------------------------------------------------------------------------------

async fn archive_month(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiPath(month): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let month: YearMonth = month.parse().map_err(ApiError::BadRequest)?;
    let n = store(&st)
        .archive_month(st.now(), st.rng.as_ref(), &actor(&u, &a), month)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "month": month.to_string(), "archived": n })))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ArchiveSearch {
    month: Option<String>,
    text: Option<String>,
    kind: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn search_archive(
    st: axum::extract::State<AppState>,
    u: CurrentUser,
    a: ClientAddr,
    ApiQuery(q): ApiQuery<ArchiveSearch>,
) -> ApiResult<Json<Value>> {
    let kind: Option<TicketKind> = q.kind.as_deref().map(parse).transpose()?;
    let now = st.now();
    let items: Vec<Value> = store(&st)
        .search_archive(
            &actor(&u, &a),
            &ArchiveQuery {
                month: q.month,
                text: q.text,
                kind,
                limit: q.limit,
                offset: q.offset,
            },
        )
        .await
        .map_err(api_error)?
        .into_iter()
        .map(|t| view(t, u.user.role, now))
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Adds the CRM routes to the API.
pub fn routes(b: ApiBuilder) -> ApiBuilder {
    use Access::{AnyUser, Roles};
    let upload = upload.layer(DefaultBodyLimit::max(MAX_ATTACHMENT_BYTES));
    b.route(
        Method::GET,
        "/api/v1/tickets",
        AnyUser,
        "crm",
        "工单列表",
        list_tickets,
    )
    .route(
        Method::POST,
        "/api/v1/tickets",
        Roles(WORKERS),
        "crm",
        "新建工单",
        create_ticket,
    )
    .route(
        Method::GET,
        "/api/v1/tickets/{id}",
        AnyUser,
        "crm",
        "工单详情",
        get_ticket,
    )
    .route(
        Method::PATCH,
        "/api/v1/tickets/{id}",
        Roles(WORKERS),
        "crm",
        "修改工单",
        edit_ticket,
    )
    .route(
        Method::POST,
        "/api/v1/tickets/{id}/transition",
        Roles(WORKERS),
        "crm",
        "工单状态流转",
        transition,
    )
    .route(
        Method::POST,
        "/api/v1/tickets/{id}/assign",
        Roles(WORKERS),
        "crm",
        "分派工单",
        assign,
    )
    .route(
        Method::GET,
        "/api/v1/tickets/{id}/comments",
        AnyUser,
        "crm",
        "工单备注",
        comments,
    )
    .route(
        Method::POST,
        "/api/v1/tickets/{id}/comments",
        Roles(WORKERS),
        "crm",
        "添加工单备注",
        add_comment,
    )
    .route(
        Method::GET,
        "/api/v1/tickets/{id}/history",
        AnyUser,
        "crm",
        "工单变更记录",
        history,
    )
    .route(
        Method::GET,
        "/api/v1/tickets/{id}/attachments",
        AnyUser,
        "crm",
        "工单附件列表",
        attachments,
    )
    .route(
        Method::POST,
        "/api/v1/tickets/{id}/attachments",
        Roles(WORKERS),
        "crm",
        "上传工单附件",
        upload,
    )
    .route(
        Method::GET,
        "/api/v1/tickets/{id}/attachments/{attachment_id}",
        AnyUser,
        "crm",
        "下载工单附件",
        download,
    )
    .route(
        Method::POST,
        "/api/v1/tickets/{id}/deposit-review",
        Roles(DEPOSIT_REVIEW),
        "crm",
        "保证金授权材料审核",
        deposit_review,
    )
    .route(
        Method::GET,
        "/api/v1/tickets/{id}/deposit-reviews",
        AnyUser,
        "crm",
        "保证金授权审核记录",
        deposit_reviews,
    )
    .route(
        Method::GET,
        "/api/v1/complaints",
        Roles(COMPLAINT_DESK),
        "complaints",
        "投诉处理台",
        complaint_desk,
    )
    .route(
        Method::GET,
        "/api/v1/complaints/{id}",
        Roles(COMPLAINT_DESK),
        "complaints",
        "投诉详情",
        complaint,
    )
    .route(
        Method::POST,
        "/api/v1/complaints/{id}/recordings",
        Roles(COMPLAINT_DESK),
        "complaints",
        "关联录音",
        complaint_recording,
    )
    .route(
        Method::POST,
        "/api/v1/complaints/{id}/finding",
        Roles(COMPLAINT_DESK),
        "complaints",
        "核实结论与处理措施",
        complaint_finding,
    )
    .route(
        Method::POST,
        "/api/v1/complaints/{id}/citizen-callback",
        Roles(COMPLAINT_DESK),
        "complaints",
        "回复投诉人",
        complaint_callback,
    )
    .route(
        Method::POST,
        "/api/v1/complaints/{id}/close",
        Roles(COMPLAINT_DESK),
        "complaints",
        "投诉办结",
        complaint_close,
    )
    .route(
        Method::GET,
        "/api/v1/contacts",
        Roles(WORKERS),
        "contacts",
        "查找来电人",
        find_contacts,
    )
    .route(
        Method::POST,
        "/api/v1/contacts",
        Roles(WORKERS),
        "contacts",
        "登记来电人",
        create_contact,
    )
    .route(
        Method::GET,
        "/api/v1/contacts/{id}",
        Roles(WORKERS),
        "contacts",
        "来电人详情",
        get_contact,
    )
    .route(
        Method::POST,
        "/api/v1/contacts/{id}/application-codes",
        Roles(WORKERS),
        "contacts",
        "关联申请编码",
        link_code,
    )
    .route(
        Method::GET,
        "/api/v1/contacts/{id}/timeline",
        Roles(WORKERS),
        "contacts",
        "来电人交互记录",
        timeline,
    )
    .route(
        Method::GET,
        "/api/v1/callbacks",
        Roles(CALLBACKS),
        "callbacks",
        "回访任务列表",
        list_callbacks,
    )
    .route(
        Method::POST,
        "/api/v1/callbacks",
        Roles(CALLBACKS),
        "callbacks",
        "新建回访任务",
        create_callback,
    )
    .route(
        Method::GET,
        "/api/v1/callbacks/due",
        Roles(CALLBACKS),
        "callbacks",
        "到期回访任务",
        due_callbacks,
    )
    .route(
        Method::POST,
        "/api/v1/callbacks/{id}/attempts",
        Roles(CALLBACKS),
        "callbacks",
        "登记回访结果",
        callback_attempt,
    )
    .route(
        Method::POST,
        "/api/v1/callbacks/{id}/call",
        Roles(CALLBACKS),
        "callbacks",
        "从回访任务外呼（分机先振铃，接起后拨客户）",
        callback_call,
    )
    .route(
        Method::POST,
        "/api/v1/callbacks/{id}/cancel",
        Roles(CALLBACKS),
        "callbacks",
        "取消回访任务",
        callback_cancel,
    )
    .route(
        Method::GET,
        "/api/v1/stats",
        Roles(STATISTICS),
        "stats",
        "话务统计",
        stats,
    )
    .route(
        Method::GET,
        "/api/v1/stats/csv",
        Roles(STATISTICS),
        "stats",
        "导出话务统计（CSV）",
        stats_csv_download,
    )
    .route(
        Method::GET,
        "/api/v1/stats/xlsx",
        Roles(STATISTICS),
        "stats",
        "导出话务统计（XLSX）",
        stats_xlsx_download,
    )
    .route(
        Method::GET,
        "/api/v1/stats/complaints",
        Roles(STATISTICS),
        "stats",
        "各坐席投诉量",
        complaint_counts,
    )
    .route(
        Method::GET,
        "/api/v1/stats/surveys",
        Roles(STATISTICS),
        "stats",
        "满意度评价明细",
        surveys,
    )
    .route(
        Method::GET,
        "/api/v1/reports/monthly/{month}",
        Roles(STATISTICS),
        "stats",
        "月度统计报表（XLSX）",
        monthly_report,
    )
    .route(
        Method::POST,
        "/api/v1/archive/{month}",
        Roles(ARCHIVE),
        "archive",
        "按月归档已办结案卷",
        archive_month,
    )
    .route(
        Method::GET,
        "/api/v1/archive",
        AnyUser,
        "archive",
        "检索归档案卷",
        search_archive,
    )
}

//! HTTP API of the integrations (issue 8): imports of the auction system's bidder export and
//! of Bohai Bank's files (raw body + query parameters, dry run), the mismatch list and its
//! manual reconciliation (手工勾兑, audited), the auction calendar, the self-service lookup and
//! the screen-pop, and the 12345 work-order push (public, HMAC-verified here) and replies.
//! File and message formats: docs/formats.md.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hotline_core::Role;
use hotline_integrations::bank::{
    self, BankDeposit, DEFAULT_DEPOSIT_CENTS, DepositRules, MismatchFilter, PublishedRefundFailure,
    Resolution,
};
use hotline_integrations::bidders::{self, Bidder, ImportReport, ImportRun, sha256_hex};
use hotline_integrations::calendar::{self, AuctionCalendar, CalendarInput};
use hotline_integrations::lookup::{self, LookupAnswer, SelfServiceGate};
use hotline_integrations::table::{FileFormat, TextEncoding, read_table};
use hotline_integrations::text::parse_period;
use hotline_integrations::workorder::{
    self, AuthFailure, NONCE_HEADER, ReplyKind, SIGNATURE_HEADER, SignatureVerifier,
    TIMESTAMP_HEADER, WorkOrder, WorkOrderIn,
};
use hotline_integrations::{IntegrationError, IntegrationsConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::access::{Access, ApiBuilder, ClientAddr, CurrentUser};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use super::state::AppState;
use crate::db::audit::Audit;
use crate::db::data_files::Direction;

/// Files up to this size may be imported over HTTP (the global limit is 1 MiB).
pub const MAX_IMPORT_BYTES: usize = 256 * 1024 * 1024;

const BIZ: &[Role] = &[Role::Admin, Role::Business];
const VIEW: &[Role] = &[
    Role::Admin,
    Role::Business,
    Role::Supervisor,
    Role::Agent,
    Role::ComplaintOfficer,
];
const MISMATCHES: &[Role] = &[Role::Admin, Role::Business, Role::Supervisor];
const ORDERS: &[Role] = &[Role::Admin, Role::Business, Role::Supervisor, Role::Agent];
const SELF_SERVICE: &[Role] = &[Role::Admin, Role::Business, Role::Agent];

/// What the integration routes share besides [`AppState`].
#[derive(Debug)]
pub struct IntegrationsHttp {
    pub config: IntegrationsConfig,
    /// Per-caller failure limit of the self-service lookup.
    pub gate: Mutex<SelfServiceGate>,
    /// Notified when a reply is queued, so the outbox driver delivers it at once.
    pub outbox_wake: Arc<tokio::sync::Notify>,
}

impl IntegrationsHttp {
    pub fn new(config: IntegrationsConfig) -> Self {
        Self {
            config,
            gate: Mutex::new(SelfServiceGate::default()),
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

type Ctx = Arc<IntegrationsHttp>;

/// The status of an integration error (a function, not `From`, so that this file also
/// compiles where it is included by the API tests).
fn api_err(e: IntegrationError) -> ApiError {
    match &e {
        IntegrationError::Db(_) | IntegrationError::Corrupt(_) => ApiError::internal(e),
        IntegrationError::NotFound(_) => ApiError::NotFound(e.message_zh()),
        IntegrationError::Conflict(_) => ApiError::Conflict(e.message_zh()),
        _ => ApiError::BadRequest(e.message_zh()),
    }
}

/// The routes with the default configuration (the 12345 push refuses everything until a
/// secret is configured: use [`routes_with`]).
pub fn routes(b: ApiBuilder) -> ApiBuilder {
    routes_with(
        b,
        Arc::new(IntegrationsHttp::new(IntegrationsConfig::default())),
    )
}

macro_rules! with_ctx {
    ($ctx:expr, $f:path, |$($a:ident : $t:ty),*|) => {{
        let c = $ctx.clone();
        move |$($a: $t),*| $f(c.clone(), $($a),*)
    }};
}

/// The routes, sharing `ctx`.
pub fn routes_with(b: ApiBuilder, ctx: Ctx) -> ApiBuilder {
    use Access::{AnyUser, Public, Roles};
    let limit = || DefaultBodyLimit::max(MAX_IMPORT_BYTES);
    b.route(
        Method::POST,
        "/api/v1/integrations/bidders/import",
        Roles(BIZ),
        "integrations",
        "导入竞买人数据（CSV/XLSX，可试运行）",
        with_ctx!(ctx, import_bidders, |s: State<AppState>, me: CurrentUser, a: ClientAddr, q: ApiQuery<ImportQuery>, body: Bytes|)
            .layer(limit()),
    )
    .route(
        Method::POST,
        "/api/v1/integrations/deposits/import",
        Roles(BIZ),
        "integrations",
        "导入银行保证金到账流水并自动勾兑",
        with_ctx!(ctx, import_deposits, |s: State<AppState>, me: CurrentUser, a: ClientAddr, q: ApiQuery<ImportQuery>, body: Bytes|)
            .layer(limit()),
    )
    .route(
        Method::POST,
        "/api/v1/integrations/refund-failures/import",
        Roles(BIZ),
        "integrations",
        "导入银行退款失败文件",
        with_ctx!(ctx, import_refund_failures, |s: State<AppState>, me: CurrentUser, a: ClientAddr, q: ApiQuery<ImportQuery>, body: Bytes|)
            .layer(limit()),
    )
    .route(
        Method::GET,
        "/api/v1/integrations/periods/{period}/bidders",
        Roles(VIEW),
        "integrations",
        "本期竞买人列表",
        list_bidders,
    )
    .route(
        Method::GET,
        "/api/v1/integrations/periods/{period}/bidders/{code}",
        Roles(VIEW),
        "integrations",
        "竞买人记录",
        get_bidder,
    )
    .route(
        Method::GET,
        "/api/v1/integrations/periods/{period}/mismatches",
        Roles(MISMATCHES),
        "integrations",
        "保证金到账异常列表",
        list_mismatches,
    )
    .route(
        Method::POST,
        "/api/v1/integrations/deposits/{id}/resolve",
        Roles(BIZ),
        "integrations",
        "保证金手工勾兑",
        resolve_deposit,
    )
    .route(
        Method::GET,
        "/api/v1/integrations/periods/{period}/refund-failures",
        Roles(VIEW),
        "integrations",
        "退款失败公示名单（姓名脱敏）",
        refund_failures,
    )
    .route(
        Method::GET,
        "/api/v1/integrations/calendar",
        AnyUser,
        "integrations",
        "竞价日历列表",
        list_calendars,
    )
    .route(
        Method::GET,
        "/api/v1/integrations/calendar/current",
        AnyUser,
        "integrations",
        "本月竞价日历",
        current_calendar,
    )
    .route(
        Method::GET,
        "/api/v1/integrations/calendar/{period}",
        AnyUser,
        "integrations",
        "某期竞价日历",
        get_calendar,
    )
    .route(
        Method::PUT,
        "/api/v1/integrations/calendar/{period}",
        Roles(BIZ),
        "integrations",
        "录入或修改竞价日历",
        put_calendar,
    )
    .route(
        Method::DELETE,
        "/api/v1/integrations/calendar/{period}",
        Roles(BIZ),
        "integrations",
        "删除竞价日历",
        delete_calendar,
    )
    .route(
        Method::POST,
        "/api/v1/integrations/lookup",
        Roles(SELF_SERVICE),
        "integrations",
        "自助查询（申请编码 + 手机号后四位）",
        with_ctx!(ctx, self_service_lookup, |s: State<AppState>, body: ApiJson<LookupRequest>|),
    )
    .route(
        Method::GET,
        "/api/v1/integrations/screen-pop",
        Roles(VIEW),
        "integrations",
        "来电弹屏：按来电号码查竞买人记录",
        screen_pop,
    )
    .route(
        Method::POST,
        "/api/v1/integrations/12345/orders",
        Public,
        "integrations",
        "12345 平台推送工单（HMAC-SHA256 签名）",
        with_ctx!(ctx, push_order, |s: State<AppState>, h: HeaderMap, body: Bytes|),
    )
    .route(
        Method::GET,
        "/api/v1/integrations/12345/orders",
        Roles(ORDERS),
        "integrations",
        "12345 工单列表",
        list_orders,
    )
    .route(
        Method::POST,
        "/api/v1/integrations/12345/orders/{order_no}/reply",
        Roles(ORDERS),
        "integrations",
        "答复或办结 12345 工单（回推平台）",
        with_ctx!(ctx, reply_order, |s: State<AppState>, me: CurrentUser, a: ClientAddr, p: ApiPath<String>, body: ApiJson<ReplyRequest>|),
    )
}

fn sees_all(me: &CurrentUser) -> bool {
    me.user.role.sees_personal_data()
}

fn period_of(s: &str) -> ApiResult<String> {
    parse_period(s).ok_or_else(|| ApiError::BadRequest(format!("期次无效（应为 YYYY-MM）：{s}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    pub period: String,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub file_name: Option<String>,
}

struct Prepared {
    period: String,
    table: hotline_integrations::table::Table,
    sha: String,
    file_name: String,
}

fn prepare(q: &ImportQuery, body: &[u8]) -> ApiResult<Prepared> {
    let period = period_of(&q.period)?;
    if body.is_empty() {
        return Err(ApiError::BadRequest("请求体为空：请上传文件内容".into()));
    }
    let encoding: TextEncoding = q
        .encoding
        .as_deref()
        .unwrap_or("auto")
        .parse()
        .map_err(ApiError::BadRequest)?;
    let format: FileFormat = q
        .format
        .as_deref()
        .unwrap_or("auto")
        .parse()
        .map_err(ApiError::BadRequest)?;
    let table = read_table(body, format, encoding).map_err(api_err)?;
    Ok(Prepared {
        period,
        table,
        sha: sha256_hex(body),
        file_name: q.file_name.clone().unwrap_or_else(|| "upload".into()),
    })
}

async fn audit_import(
    st: &AppState,
    me: &CurrentUser,
    addr: &str,
    action: &str,
    r: &ImportReport,
) -> ApiResult<()> {
    // Counts only: never row contents (personal data).
    let detail = format!(
        "rows={} inserted={} updated={} unchanged={} bad_rows={} dry_run={} committed={} counts={:?}",
        r.rows,
        r.inserted,
        r.updated,
        r.unchanged,
        r.bad_rows(),
        r.dry_run,
        r.committed,
        r.counts
    );
    st.db
        .audit(
            st.now(),
            st.rng.as_ref(),
            Audit {
                actor: &me.user.username,
                action,
                target: &r.period,
                detail: &detail,
                remote_addr: addr,
            },
        )
        .await?;
    Ok(())
}

/// `POST /api/v1/integrations/bidders/import?period=2025-11[&dry_run=true][&encoding=gbk][&format=xlsx]`
/// with the file as the body. 200 with the report; `committed: false` and `problems` when
/// a row is bad.
async fn import_bidders(
    ctx: Ctx,
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Bytes,
) -> ApiResult<Json<ImportReport>> {
    let p = prepare(&q, &body)?;
    let run = ImportRun {
        period: &p.period,
        file_name: &p.file_name,
        file_sha256: &p.sha,
        actor: &me.user.username,
        dry_run: q.dry_run,
    };
    let r = bidders::import_bidders(
        &st.db.pool,
        st.now(),
        st.rng.as_ref(),
        &p.table,
        &ctx.config.bidder_columns,
        &run,
    )
    .await
    .map_err(api_err)?;
    audit_import(&st, &me, &addr, "integrations.import_bidders", &r).await?;
    // Only a file that was actually taken in (not a dry run, no bad rows) is registered.
    if r.committed {
        st.record_file(
            &me.user.username,
            &addr,
            Direction::Import,
            "bidders",
            &p.file_name,
            &body,
        )
        .await?;
    }
    Ok(Json(r))
}

async fn import_deposits(
    ctx: Ctx,
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Bytes,
) -> ApiResult<Json<ImportReport>> {
    let p = prepare(&q, &body)?;
    let cal = calendar::get_calendar(&st.db.pool, &p.period)
        .await
        .map_err(api_err)?;
    let rules = DepositRules {
        deadline: cal.as_ref().map(|c| c.deposit_deadline_at),
        deposit_cents: cal.map_or(DEFAULT_DEPOSIT_CENTS, |c| c.deposit_cents),
    };
    let run = ImportRun {
        period: &p.period,
        file_name: &p.file_name,
        file_sha256: &p.sha,
        actor: &me.user.username,
        dry_run: q.dry_run,
    };
    let r = bank::import_deposits(
        &st.db.pool,
        st.now(),
        st.rng.as_ref(),
        &p.table,
        &ctx.config.deposit_columns,
        rules,
        &run,
    )
    .await
    .map_err(api_err)?;
    audit_import(&st, &me, &addr, "integrations.import_deposits", &r).await?;
    // Only a file that was actually taken in (not a dry run, no bad rows) is registered.
    if r.committed {
        st.record_file(
            &me.user.username,
            &addr,
            Direction::Import,
            "bank_deposits",
            &p.file_name,
            &body,
        )
        .await?;
    }
    Ok(Json(r))
}

async fn import_refund_failures(
    ctx: Ctx,
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiQuery(q): ApiQuery<ImportQuery>,
    body: Bytes,
) -> ApiResult<Json<ImportReport>> {
    let p = prepare(&q, &body)?;
    let run = ImportRun {
        period: &p.period,
        file_name: &p.file_name,
        file_sha256: &p.sha,
        actor: &me.user.username,
        dry_run: q.dry_run,
    };
    let r = bank::import_refund_failures(
        &st.db.pool,
        st.now(),
        st.rng.as_ref(),
        &p.table,
        &ctx.config.refund_failure_columns,
        &run,
    )
    .await
    .map_err(api_err)?;
    audit_import(&st, &me, &addr, "integrations.import_refund_failures", &r).await?;
    // Only a file that was actually taken in (not a dry run, no bad rows) is registered.
    if r.committed {
        st.record_file(
            &me.user.username,
            &addr,
            Direction::Import,
            "bank_refund_failures",
            &p.file_name,
            &body,
        )
        .await?;
    }
    Ok(Json(r))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub prefix: String,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

async fn list_bidders(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiPath(period): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<Bidder>>> {
    let period = period_of(&period)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let list = bidders::list_bidders(
        &st.db.pool,
        &period,
        &q.prefix,
        limit,
        q.offset.unwrap_or(0).max(0),
    )
    .await
    .map_err(api_err)?;
    let full = sees_all(&me);
    Ok(Json(list.into_iter().map(|b| b.for_role(full)).collect()))
}

async fn get_bidder(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiPath((period, code)): ApiPath<(String, String)>,
) -> ApiResult<Json<Bidder>> {
    let period = period_of(&period)?;
    let b = bidders::get_bidder(&st.db.pool, &period, &code)
        .await
        .map_err(api_err)?
        .ok_or_else(|| ApiError::NotFound("竞买人记录不存在".into()))?;
    Ok(Json(b.for_role(sees_all(&me))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MismatchQuery {
    #[serde(default)]
    pub status: MismatchFilter,
}

async fn list_mismatches(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiPath(period): ApiPath<String>,
    ApiQuery(q): ApiQuery<MismatchQuery>,
) -> ApiResult<Json<Vec<BankDeposit>>> {
    let period = period_of(&period)?;
    let list = bank::list_mismatches(&st.db.pool, &period, q.status)
        .await
        .map_err(api_err)?;
    let full = sees_all(&me);
    Ok(Json(
        list.into_iter()
            .map(|d| if full { d } else { d.masked() })
            .collect(),
    ))
}

/// `{"action": "accept", "application_code": "…"?, "note": "…"}` or `{"action": "return", …}`.
/// (No `deny_unknown_fields`: serde does not support it together with `flatten`.)
#[derive(Debug, Deserialize)]
pub struct ResolveRequest {
    #[serde(flatten)]
    pub resolution: Resolution,
    #[serde(default)]
    pub note: String,
}

async fn resolve_deposit(
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> ApiResult<Json<BankDeposit>> {
    let now = st.now();
    let d = bank::resolve_mismatch(
        &st.db.pool,
        now,
        &id,
        &req.resolution,
        &req.note,
        &me.user.username,
    )
    .await
    .map_err(api_err)?;
    let detail = format!(
        "resolution={} code={} serial={} kind={} note={}",
        d.resolution, d.application_code, d.bank_serial, d.mismatch_kind, d.resolution_note
    );
    st.db
        .audit(
            now,
            st.rng.as_ref(),
            Audit {
                actor: &me.user.username,
                action: "integrations.deposit_resolve",
                target: &d.id,
                detail: &detail,
                remote_addr: &addr,
            },
        )
        .await?;
    Ok(Json(d))
}

async fn refund_failures(
    State(st): State<AppState>,
    ApiPath(period): ApiPath<String>,
) -> ApiResult<Json<Vec<PublishedRefundFailure>>> {
    let period = period_of(&period)?;
    Ok(Json(
        bank::refund_failure_list(&st.db.pool, &period)
            .await
            .map_err(api_err)?,
    ))
}

#[derive(Debug, Serialize)]
pub struct CalendarAnswer {
    #[serde(flatten)]
    pub calendar: AuctionCalendar,
    pub summary_zh: String,
}

impl From<AuctionCalendar> for CalendarAnswer {
    fn from(c: AuctionCalendar) -> Self {
        Self {
            summary_zh: c.summary_zh(),
            calendar: c,
        }
    }
}

async fn list_calendars(State(st): State<AppState>) -> ApiResult<Json<Vec<CalendarAnswer>>> {
    let list = calendar::list_calendars(&st.db.pool, 36)
        .await
        .map_err(api_err)?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

async fn current_calendar(State(st): State<AppState>) -> ApiResult<Json<CalendarAnswer>> {
    calendar::current_calendar(&st.db.pool, st.now())
        .await
        .map_err(api_err)?
        .map(|c| Json(c.into()))
        .ok_or_else(|| ApiError::NotFound("尚未录入竞价日历".into()))
}

async fn get_calendar(
    State(st): State<AppState>,
    ApiPath(period): ApiPath<String>,
) -> ApiResult<Json<CalendarAnswer>> {
    let period = period_of(&period)?;
    calendar::get_calendar(&st.db.pool, &period)
        .await
        .map_err(api_err)?
        .map(|c| Json(c.into()))
        .ok_or_else(|| ApiError::NotFound(format!("{period} 期竞价日历不存在")))
}

async fn put_calendar(
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(period): ApiPath<String>,
    ApiJson(mut input): ApiJson<CalendarInput>,
) -> ApiResult<Response> {
    let period = period_of(&period)?;
    if parse_period(&input.period).as_deref() != Some(period.as_str()) {
        return Err(ApiError::BadRequest("请求体中的期次与路径不一致".into()));
    }
    input.period = period.clone();
    let now = st.now();
    let (c, created) = calendar::put_calendar(&st.db.pool, now, &input, &me.user.username)
        .await
        .map_err(api_err)?;
    st.db
        .audit(
            now,
            st.rng.as_ref(),
            Audit {
                actor: &me.user.username,
                action: if created {
                    "integrations.calendar_create"
                } else {
                    "integrations.calendar_update"
                },
                target: &period,
                detail: &c.summary_zh(),
                remote_addr: &addr,
            },
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(CalendarAnswer::from(c))).into_response())
}

async fn delete_calendar(
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(period): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let period = period_of(&period)?;
    if !calendar::delete_calendar(&st.db.pool, &period)
        .await
        .map_err(api_err)?
    {
        return Err(ApiError::NotFound(format!("{period} 期竞价日历不存在")));
    }
    st.db
        .audit(
            st.now(),
            st.rng.as_ref(),
            Audit {
                actor: &me.user.username,
                action: "integrations.calendar_delete",
                target: &period,
                detail: "",
                remote_addr: &addr,
            },
        )
        .await?;
    Ok(Json(json!({ "deleted": period })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    /// The caller's number (the key of the failure limit).
    pub caller: String,
    pub application_code: String,
    pub last4: String,
}

async fn self_service_lookup(
    ctx: Ctx,
    State(st): State<AppState>,
    ApiJson(req): ApiJson<LookupRequest>,
) -> ApiResult<Json<LookupAnswer>> {
    let caller = lookup::normalize_caller(&req.caller);
    let answer = lookup::ivr_lookup(
        &st.db.pool,
        &ctx.gate,
        st.now(),
        &caller,
        &req.application_code,
        &req.last4,
    )
    .await
    .map_err(api_err)?;
    Ok(Json(answer))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenPopQuery {
    pub caller: String,
}

async fn screen_pop(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiQuery(q): ApiQuery<ScreenPopQuery>,
) -> ApiResult<Json<Vec<Bidder>>> {
    let full = sees_all(&me);
    let list = lookup::screen_pop(&st.db.pool, &q.caller)
        .await
        .map_err(api_err)?;
    Ok(Json(list.into_iter().map(|b| b.for_role(full)).collect()))
}

fn refused(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// `POST /api/v1/integrations/12345/orders`: public, but only a correctly signed, fresh,
/// never-seen request is accepted. Refusals are 400 with the reason's code (`malformed`,
/// `stale`, `bad_signature`, `replayed`), not 401: there is no session to get.
async fn push_order(
    ctx: Ctx,
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let cfg = &ctx.config.platform_12345;
    if cfg.secret.is_empty() {
        return Err(ApiError::Unavailable("12345 secret not configured".into()));
    }
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (ts, nonce, sig) = (h(TIMESTAMP_HEADER), h(NONCE_HEADER), h(SIGNATURE_HEADER));
    let now = st.now();
    let verifier = SignatureVerifier::new(cfg.secret.as_bytes(), cfg.max_skew_secs);
    let fail = |f: AuthFailure| {
        let code = match f {
            AuthFailure::Malformed => "malformed",
            AuthFailure::Stale => "stale",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::Replayed => "replayed",
        };
        tracing::warn!(reason = code, "12345 push refused");
        refused(StatusCode::BAD_REQUEST, code, f.message_zh())
    };
    if let Err(f) = verifier.verify(now, &ts, &nonce, &sig, &body) {
        return Ok(fail(f));
    }
    if !workorder::accept_nonce(&st.db.pool, now, &nonce, verifier.max_skew_ms())
        .await
        .map_err(api_err)?
    {
        return Ok(fail(AuthFailure::Replayed));
    }
    let order: WorkOrderIn = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("工单 JSON 无效: {e}")))?;
    let (o, created) = workorder::receive_order(&st.db.pool, now, st.rng.as_ref(), &order)
        .await
        .map_err(api_err)?;
    if created {
        st.record_file(
            "12345",
            "",
            Direction::Import,
            "workorder_12345_in",
            &format!("{}.json", o.order_no),
            &body,
        )
        .await?;
        st.db
            .audit(
                now,
                st.rng.as_ref(),
                Audit {
                    actor: "12345",
                    action: "integrations.workorder_received",
                    target: &o.order_no,
                    detail: &o.title,
                    remote_addr: "",
                },
            )
            .await?;
    }
    // Each order becomes a CRM ticket with the order's own deadline, once: a repeated push
    // finds the order already linked.
    let ticket_id = if o.ticket_id.is_empty() {
        let ticket = super::crm::store(&st)
            .create_ticket(
                now,
                st.rng.as_ref(),
                &hotline_crm::Actor::new("12345", hotline_core::Role::Admin),
                hotline_crm::store::NewTicket {
                    kind: Some(hotline_crm::TicketKind::WorkOrder12345),
                    title: format!("12345工单 {}：{}", o.order_no, o.title),
                    body: o.content.clone(),
                    contact_id: None,
                    caller_phone: o.caller_phone.clone(),
                    application_code: None,
                    call_id: None,
                    recording_id: None,
                    external_ref: Some(o.order_no.clone()),
                    external_due: Some(o.deadline_at),
                    named_agent: None,
                },
            )
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        workorder::set_ticket(&st.db.pool, now, &o.order_no, &ticket.id)
            .await
            .map_err(api_err)?;
        ticket.id
    } else {
        o.ticket_id.clone()
    };
    Ok(Json(
        json!({ "order_no": o.order_no, "id": o.id, "created": created, "ticket_id": ticket_id }),
    )
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersQuery {
    #[serde(default)]
    pub status: String,
    pub limit: Option<i64>,
}

async fn list_orders(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiQuery(q): ApiQuery<OrdersQuery>,
) -> ApiResult<Json<Vec<WorkOrder>>> {
    let list = workorder::list_orders(
        &st.db.pool,
        &q.status,
        q.limit.unwrap_or(100).clamp(1, 1000),
    )
    .await
    .map_err(api_err)?;
    let full = sees_all(&me);
    Ok(Json(
        list.into_iter()
            .map(|o| if full { o } else { o.masked() })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    pub kind: ReplyKind,
    pub content: String,
}

async fn reply_order(
    ctx: Ctx,
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(order_no): ApiPath<String>,
    ApiJson(req): ApiJson<ReplyRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let now = st.now();
    let id = workorder::enqueue_reply(
        &st.db.pool,
        now,
        st.rng.as_ref(),
        &order_no,
        req.kind,
        &req.content,
        &me.user.username,
    )
    .await
    .map_err(api_err)?;
    st.db
        .audit(
            now,
            st.rng.as_ref(),
            Audit {
                actor: &me.user.username,
                action: "integrations.workorder_reply",
                target: &order_no,
                detail: req.kind.as_str(),
                remote_addr: &addr,
            },
        )
        .await?;
    // The queued payload is the exact body the outbox driver posts to the platform.
    if let Some(m) = workorder::messages_of(&st.db.pool, &order_no)
        .await
        .map_err(api_err)?
        .into_iter()
        .find(|m| m.id == id)
    {
        st.record_file(
            &me.user.username,
            &addr,
            Direction::Export,
            "workorder_12345_reply",
            &format!("{order_no}-{id}.json"),
            m.payload.as_bytes(),
        )
        .await?;
    }
    ctx.outbox_wake.notify_one();
    Ok(Json(json!({ "order_no": order_no, "outbox_id": id })))
}

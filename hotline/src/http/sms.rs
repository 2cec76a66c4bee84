//! HTTP API of SMS notices (issue 9): templates and their approval, batches (preview as a
//! draft, confirm, cancel, progress, per-message results), the opt-out list, and the
//! provider's callbacks (delivery receipts, replies such as 回复TD退订), which are public but
//! need the shared token. Mobiles are masked for roles without `sees_personal_data()`.
//! Operator documentation: docs/sms.md.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hotline_core::Role;
use hotline_core::mask::mask_phone;
use hotline_integrations::IntegrationError;
use hotline_integrations::bidders::RowProblem;
use hotline_integrations::sms::SmsConfig;
use hotline_integrations::sms::batch::{
    self, Audience, Batch, BidderFilter, MessageView, NewBatch, OptOut,
};
use hotline_integrations::sms::provider::parse_receipts;
use hotline_integrations::sms::template::{
    self, Segments, Template, TemplateInput, compose, segments,
};
use hotline_integrations::table::{FileFormat, TextEncoding, read_table};
use hotline_integrations::text::parse_period;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::access::{Access, ApiBuilder, ClientAddr, CurrentUser};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use super::state::AppState;

/// Uploaded recipient lists up to this size (the global limit is 1 MiB).
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// The header the provider's callbacks carry the shared token in.
pub const TOKEN_HEADER: &str = "x-sms-token";

const VIEW: &[Role] = &[Role::Admin, Role::Business, Role::Supervisor];
const EDIT: &[Role] = &[Role::Admin, Role::Business];
const APPROVE: &[Role] = &[Role::Admin, Role::Supervisor];
/// Agents take "stop sending me messages" on the phone.
const OPT_OUT_ADD: &[Role] = &[Role::Admin, Role::Business, Role::Agent];

/// What the SMS routes share besides [`AppState`].
#[derive(Debug)]
pub struct SmsHttp {
    pub config: SmsConfig,
    /// Notified when messages are queued, so the sender starts at once.
    pub wake: Arc<tokio::sync::Notify>,
}

impl SmsHttp {
    pub fn new(config: SmsConfig) -> Self {
        Self {
            config,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }
}

type Ctx = Arc<SmsHttp>;

fn api_err(e: IntegrationError) -> ApiError {
    match &e {
        IntegrationError::Db(_) | IntegrationError::Corrupt(_) => ApiError::internal(e),
        IntegrationError::NotFound(_) => ApiError::NotFound(e.message_zh()),
        IntegrationError::Conflict(_) => ApiError::Conflict(e.message_zh()),
        _ => ApiError::BadRequest(e.message_zh()),
    }
}

macro_rules! with_ctx {
    ($ctx:expr, $f:path, |$($a:ident : $t:ty),*|) => {{
        let c = $ctx.clone();
        move |$($a: $t),*| $f(c.clone(), $($a),*)
    }};
}

/// The routes, sharing `ctx`.
pub fn routes_with(b: ApiBuilder, ctx: Ctx) -> ApiBuilder {
    use Access::{Public, Roles};
    b.route(
        Method::GET,
        "/api/v1/sms/templates",
        Roles(VIEW),
        "sms",
        "短信模板列表",
        with_ctx!(ctx, list_templates, |s: State<AppState>|),
    )
    .route(
        Method::POST,
        "/api/v1/sms/templates",
        Roles(EDIT),
        "sms",
        "新建短信模板（草稿）",
        with_ctx!(ctx, create_template, |s: State<AppState>, me: CurrentUser, a: ClientAddr, body: ApiJson<TemplateInput>|),
    )
    .route(
        Method::GET,
        "/api/v1/sms/templates/{id}",
        Roles(VIEW),
        "sms",
        "短信模板详情（变量、字数、条数）",
        with_ctx!(ctx, get_template, |s: State<AppState>, p: ApiPath<String>|),
    )
    .route(
        Method::PUT,
        "/api/v1/sms/templates/{id}",
        Roles(EDIT),
        "sms",
        "修改短信模板（已审批的模板改为草稿）",
        with_ctx!(ctx, update_template, |s: State<AppState>, me: CurrentUser, a: ClientAddr, p: ApiPath<String>, body: ApiJson<TemplateInput>|),
    )
    .route(
        Method::DELETE,
        "/api/v1/sms/templates/{id}",
        Roles(EDIT),
        "sms",
        "删除未使用的短信模板",
        delete_template,
    )
    .route(
        Method::POST,
        "/api/v1/sms/templates/{id}/approve",
        Roles(APPROVE),
        "sms",
        "审批短信模板",
        with_ctx!(ctx, approve_template, |s: State<AppState>, me: CurrentUser, a: ClientAddr, p: ApiPath<String>, body: ApiJson<ApproveRequest>|),
    )
    .route(
        Method::POST,
        "/api/v1/sms/templates/{id}/render",
        Roles(VIEW),
        "sms",
        "用变量试填短信模板（字数、条数）",
        with_ctx!(ctx, render_template, |s: State<AppState>, p: ApiPath<String>, body: ApiJson<RenderRequest>|),
    )
    .route(
        Method::GET,
        "/api/v1/sms/batches",
        Roles(VIEW),
        "sms",
        "短信批次列表",
        list_batches,
    )
    .route(
        Method::POST,
        "/api/v1/sms/batches",
        Roles(EDIT),
        "sms",
        "按竞买人数据生成短信批次（草稿，含预览统计）",
        with_ctx!(ctx, create_bidder_batch, |s: State<AppState>, me: CurrentUser, a: ClientAddr, body: ApiJson<BidderBatchRequest>|),
    )
    .route(
        Method::POST,
        "/api/v1/sms/batches/upload",
        Roles(EDIT),
        "sms",
        "上传名单（CSV/XLSX：手机号 + 变量）生成短信批次",
        with_ctx!(ctx, create_upload_batch, |s: State<AppState>, me: CurrentUser, a: ClientAddr, q: ApiQuery<UploadQuery>, body: Bytes|)
            .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
    )
    .route(
        Method::GET,
        "/api/v1/sms/batches/{id}",
        Roles(VIEW),
        "sms",
        "短信批次详情与发送进度",
        get_batch,
    )
    .route(
        Method::POST,
        "/api/v1/sms/batches/{id}/confirm",
        Roles(EDIT),
        "sms",
        "确认发送短信批次",
        with_ctx!(ctx, confirm_batch, |s: State<AppState>, me: CurrentUser, a: ClientAddr, p: ApiPath<String>|),
    )
    .route(
        Method::POST,
        "/api/v1/sms/batches/{id}/cancel",
        Roles(EDIT),
        "sms",
        "取消短信批次（未发出的不再发送）",
        cancel_batch,
    )
    .route(
        Method::GET,
        "/api/v1/sms/batches/{id}/messages",
        Roles(VIEW),
        "sms",
        "短信批次的逐条发送结果",
        list_messages,
    )
    .route(
        Method::GET,
        "/api/v1/sms/opt-outs",
        Roles(VIEW),
        "sms",
        "退订名单",
        list_opt_outs,
    )
    .route(
        Method::POST,
        "/api/v1/sms/opt-outs",
        Roles(OPT_OUT_ADD),
        "sms",
        "加入退订名单",
        add_opt_out,
    )
    .route(
        Method::DELETE,
        "/api/v1/sms/opt-outs/{mobile}",
        Roles(EDIT),
        "sms",
        "移出退订名单",
        remove_opt_out,
    )
    .route(
        Method::POST,
        "/api/v1/sms/receipts",
        Public,
        "sms",
        "短信网关回推状态报告（X-Sms-Token）",
        with_ctx!(ctx, receipts, |s: State<AppState>, h: HeaderMap, body: Bytes|),
    )
    .route(
        Method::POST,
        "/api/v1/sms/inbound",
        Public,
        "sms",
        "短信网关回推上行短信（回复TD退订，X-Sms-Token）",
        with_ctx!(ctx, inbound, |s: State<AppState>, h: HeaderMap, body: ApiJson<InboundRequest>|),
    )
}

fn sees_all(me: &CurrentUser) -> bool {
    me.user.role.sees_personal_data()
}

/// A template with what the console shows beside it.
#[derive(Debug, Serialize)]
pub struct TemplateView {
    #[serde(flatten)]
    pub template: Template,
    pub kind_zh: &'static str,
    pub variables: Vec<String>,
    /// Length and parts of the fixed text (sign + body with the placeholders + hint); the
    /// real length depends on the values.
    pub segments: Segments,
}

fn template_view(ctx: &SmsHttp, t: Template) -> TemplateView {
    let c = &ctx.config;
    TemplateView {
        kind_zh: t.kind.label_zh(),
        variables: template::variables(&t.body).unwrap_or_default(),
        segments: segments(&compose(&c.sign, &t.body, &c.opt_out_hint)),
        template: t,
    }
}

async fn list_templates(
    ctx: Ctx,
    State(st): State<AppState>,
) -> ApiResult<Json<Vec<TemplateView>>> {
    let list = template::list_templates(&st.db.pool)
        .await
        .map_err(api_err)?;
    Ok(Json(
        list.into_iter().map(|t| template_view(&ctx, t)).collect(),
    ))
}

async fn create_template(
    ctx: Ctx,
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult<Response> {
    let t = template::create_template(
        &st.db.pool,
        st.now(),
        st.rng.as_ref(),
        &input,
        &me.user.username,
    )
    .await
    .map_err(api_err)?;
    st.audit_by(&me, &addr, "sms.template_create", &t.id, &t.name)
        .await?;
    Ok((StatusCode::CREATED, Json(template_view(&ctx, t))).into_response())
}

async fn fetch_template(st: &AppState, id: &str) -> ApiResult<Template> {
    template::get_template(&st.db.pool, id)
        .await
        .map_err(api_err)?
        .ok_or_else(|| ApiError::NotFound("短信模板不存在".into()))
}

async fn get_template(
    ctx: Ctx,
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<TemplateView>> {
    Ok(Json(template_view(&ctx, fetch_template(&st, &id).await?)))
}

async fn update_template(
    ctx: Ctx,
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult<Json<TemplateView>> {
    let t = template::update_template(&st.db.pool, st.now(), &id, &input, &me.user.username)
        .await
        .map_err(api_err)?;
    st.audit_by(
        &me,
        &addr,
        "sms.template_update",
        &t.id,
        &format!("version={}", t.version),
    )
    .await?;
    Ok(Json(template_view(&ctx, t)))
}

async fn delete_template(
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    if !template::delete_template(&st.db.pool, &id)
        .await
        .map_err(api_err)?
    {
        return Err(ApiError::NotFound("短信模板不存在".into()));
    }
    st.audit_by(&me, &addr, "sms.template_delete", &id, "")
        .await?;
    Ok(Json(json!({ "deleted": id })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// The version the approver read.
    pub version: i64,
}

async fn approve_template(
    ctx: Ctx,
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ApproveRequest>,
) -> ApiResult<Json<TemplateView>> {
    let current = fetch_template(&st, &id).await?;
    // Four eyes: who wrote the text does not approve it.
    if current.updated_by == me.user.username && !current.is_approved() {
        return Err(ApiError::Conflict(
            "不能审批自己编写或修改的模板，请由其他主管或管理员审批".into(),
        ));
    }
    let t = template::approve_template(&st.db.pool, st.now(), &id, req.version, &me.user.username)
        .await
        .map_err(api_err)?;
    st.audit_by(
        &me,
        &addr,
        "sms.template_approve",
        &t.id,
        &format!("version={}", t.version),
    )
    .await?;
    Ok(Json(template_view(&ctx, t)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderRequest {
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

async fn render_template(
    ctx: Ctx,
    State(st): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RenderRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let t = fetch_template(&st, &id).await?;
    let body = template::render(&t.body, &req.variables)
        .map_err(|e| ApiError::BadRequest(e.message_zh()))?;
    let text = compose(&ctx.config.sign, &body, &ctx.config.opt_out_hint);
    Ok(Json(json!({ "text": text, "segments": segments(&text) })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchListQuery {
    pub limit: Option<i64>,
}

async fn list_batches(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<BatchListQuery>,
) -> ApiResult<Json<Vec<Batch>>> {
    Ok(Json(
        batch::list_batches(&st.db.pool, q.limit.unwrap_or(50).clamp(1, 500))
            .await
            .map_err(api_err)?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidderAudience {
    pub period: String,
    pub filter: BidderFilter,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidderBatchRequest {
    pub template_id: String,
    #[serde(default)]
    pub name: String,
    pub audience: BidderAudience,
    /// Values for variables the bidder data does not have (e.g. `deadline`).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

fn batch_for_role(mut b: Batch, full: bool) -> Batch {
    b.sample = b.sample.map(|m| m.for_role(full));
    b
}

async fn create_bidder_batch(
    ctx: Ctx,
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<BidderBatchRequest>,
) -> ApiResult<Response> {
    let period = parse_period(&req.audience.period).ok_or_else(|| {
        ApiError::BadRequest(format!("期次无效（应为 YYYY-MM）：{}", req.audience.period))
    })?;
    let t = fetch_template(&st, &req.template_id).await?;
    let recipients =
        batch::bidder_recipients(&st.db.pool, &period, req.audience.filter, &req.variables)
            .await
            .map_err(api_err)?;
    let audience = Audience::Bidders {
        period,
        filter: req.audience.filter,
    };
    make_batch(&ctx, &st, &me, &addr, &t, &req.name, audience, recipients).await
}

#[allow(clippy::too_many_arguments)]
async fn make_batch(
    ctx: &SmsHttp,
    st: &AppState,
    me: &CurrentUser,
    addr: &str,
    t: &Template,
    name: &str,
    audience: Audience,
    recipients: Vec<batch::Recipient>,
) -> ApiResult<Response> {
    let b = batch::create_batch(
        &st.db.pool,
        st.now(),
        st.rng.as_ref(),
        NewBatch {
            name,
            template: t,
            audience,
            recipients,
            sign: &ctx.config.sign,
            opt_out_hint: &ctx.config.opt_out_hint,
            actor: &me.user.username,
        },
    )
    .await
    .map_err(api_err)?;
    let c = &b.counts;
    st.audit_by(
        me,
        addr,
        "sms.batch_create",
        &b.id,
        &format!(
            "template={} v{} recipients={} opt_out={} invalid={} duplicates={} segments={}",
            b.template_id,
            b.template_version,
            c.recipients,
            c.excluded_opt_out,
            c.invalid_mobile,
            c.duplicates,
            c.segments
        ),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(batch_for_role(b, sees_all(me)))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    pub template_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    /// Batch-wide values as a JSON object (`{"deadline":"11月10日17:00"}`), URL-encoded.
    #[serde(default)]
    pub variables: Option<String>,
}

/// The refusal of a list with bad rows: 400 with every problem.
fn refused_rows(problems: Vec<RowProblem>) -> Response {
    let bad_rows = problems
        .iter()
        .map(|p| p.line)
        .collect::<std::collections::HashSet<_>>()
        .len();
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "error": {
                "code": "bad_rows",
                "message": format!("名单有 {bad_rows} 行错误，未生成批次"),
            },
            "problems": problems,
        })),
    )
        .into_response()
}

async fn create_upload_batch(
    ctx: Ctx,
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiQuery(q): ApiQuery<UploadQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    if body.is_empty() {
        return Err(ApiError::BadRequest("请求体为空：请上传名单文件".into()));
    }
    let t = fetch_template(&st, &q.template_id).await?;
    let extra: BTreeMap<String, String> = match q.variables.as_deref() {
        None | Some("") => BTreeMap::new(),
        Some(s) => serde_json::from_str(s).map_err(|_| {
            ApiError::BadRequest("variables 应为 JSON 对象（变量名 → 文本）".into())
        })?,
    };
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
    let table = read_table(&body, format, encoding).map_err(api_err)?;
    let rows = table.rows.len() as u64;
    let recipients = match batch::upload_recipients(&table, &t.body, &extra).map_err(api_err)? {
        Ok(r) => r,
        Err(problems) => return Ok(refused_rows(problems)),
    };
    let audience = Audience::Upload {
        file_name: q.file_name.clone().unwrap_or_else(|| "upload".into()),
        rows,
    };
    make_batch(&ctx, &st, &me, &addr, &t, &q.name, audience, recipients).await
}

async fn get_batch(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Batch>> {
    let b = batch::get_batch(&st.db.pool, &id)
        .await
        .map_err(api_err)?
        .ok_or_else(|| ApiError::NotFound("短信批次不存在".into()))?;
    Ok(Json(batch_for_role(b, sees_all(&me))))
}

async fn confirm_batch(
    ctx: Ctx,
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Batch>> {
    let b = batch::confirm_batch(&st.db.pool, st.now(), &id, &me.user.username)
        .await
        .map_err(api_err)?;
    st.audit_by(
        &me,
        &addr,
        "sms.batch_confirm",
        &b.id,
        &format!("recipients={}", b.counts.recipients),
    )
    .await?;
    ctx.wake.notify_one();
    Ok(Json(batch_for_role(b, sees_all(&me))))
}

async fn cancel_batch(
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Batch>> {
    let b = batch::cancel_batch(&st.db.pool, &id)
        .await
        .map_err(api_err)?;
    st.audit_by(&me, &addr, "sms.batch_cancel", &b.id, "")
        .await?;
    Ok(Json(batch_for_role(b, sees_all(&me))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    #[serde(default)]
    pub status: String,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

async fn list_messages(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> ApiResult<Json<Vec<MessageView>>> {
    let list = batch::list_messages(
        &st.db.pool,
        &id,
        &q.status,
        q.limit.unwrap_or(100).clamp(1, 1000),
        q.offset.unwrap_or(0).max(0),
    )
    .await
    .map_err(api_err)?;
    let full = sees_all(&me);
    Ok(Json(list.into_iter().map(|m| m.for_role(full)).collect()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptOutQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

async fn list_opt_outs(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiQuery(q): ApiQuery<OptOutQuery>,
) -> ApiResult<Json<Vec<OptOut>>> {
    let list = batch::list_opt_outs(
        &st.db.pool,
        q.limit.unwrap_or(100).clamp(1, 1000),
        q.offset.unwrap_or(0).max(0),
    )
    .await
    .map_err(api_err)?;
    let full = sees_all(&me);
    Ok(Json(list.into_iter().map(|o| o.for_role(full)).collect()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptOutRequest {
    pub mobile: String,
    #[serde(default)]
    pub note: String,
}

async fn add_opt_out(
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<OptOutRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let added = batch::add_opt_out(
        &st.db.pool,
        st.now(),
        &req.mobile,
        "staff",
        &req.note,
        &me.user.username,
    )
    .await
    .map_err(api_err)?;
    let masked = mask_phone(&batch::normalize_mobile(&req.mobile));
    st.audit_by(&me, &addr, "sms.opt_out_add", &masked, "")
        .await?;
    Ok(Json(json!({ "mobile": masked, "added": added })))
}

async fn remove_opt_out(
    State(st): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(mobile): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let masked = mask_phone(&batch::normalize_mobile(&mobile));
    if !batch::remove_opt_out(&st.db.pool, &mobile)
        .await
        .map_err(api_err)?
    {
        return Err(ApiError::NotFound("该号码不在退订名单中".into()));
    }
    st.audit_by(&me, &addr, "sms.opt_out_remove", &masked, "")
        .await?;
    Ok(Json(json!({ "mobile": masked, "removed": true })))
}

/// The provider's callbacks carry the shared token; without one configured they are refused.
fn check_token(ctx: &SmsHttp, headers: &HeaderMap) -> ApiResult<()> {
    let want = &ctx.config.receipt_token;
    if want.is_empty() {
        return Err(ApiError::Unavailable(
            "integrations.sms.receipt_token not configured".into(),
        ));
    }
    let got = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let same = got.len() == want.len()
        && got
            .bytes()
            .zip(want.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0;
    if !same {
        // 400, not 401/403: there is no session to get; the provider should fix its token.
        tracing::warn!("sms callback with a wrong token refused");
        return Err(ApiError::BadRequest("令牌无效".into()));
    }
    Ok(())
}

async fn receipts(
    ctx: Ctx,
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    check_token(&ctx, &headers)?;
    let list = parse_receipts(&ctx.config.http, &body).map_err(ApiError::BadRequest)?;
    let now = st.now();
    let (mut matched, mut unknown) = (0u64, 0u64);
    for r in &list {
        if batch::apply_receipt(&st.db.pool, now, &r.key, r.delivered, &r.error)
            .await
            .map_err(api_err)?
        {
            matched += 1;
        } else {
            unknown += 1;
        }
    }
    Ok(Json(
        json!({ "received": list.len(), "matched": matched, "unknown": unknown }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundRequest {
    pub mobile: String,
    pub content: String,
}

async fn inbound(
    ctx: Ctx,
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<InboundRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    check_token(&ctx, &headers)?;
    let unsubscribe = batch::is_unsubscribe_reply(&req.content);
    if unsubscribe {
        batch::add_opt_out(&st.db.pool, st.now(), &req.mobile, "reply", "", "sms")
            .await
            .map_err(api_err)?;
    }
    Ok(Json(json!({ "opted_out": unsubscribe })))
}

/// Queues the notice of a deposit-authorisation review (issue 7) through the outbox, once
/// per review. The CRM's text carries its own sign; ours replaces it.
pub async fn queue_review_notice(
    st: &AppState,
    review_id: &str,
    phone: &str,
    text: &str,
) -> Result<bool, IntegrationError> {
    let ctx = st.sms_http();
    let body = match text.strip_prefix('【').and_then(|r| r.split_once('】')) {
        Some((_, rest)) => rest,
        None => text,
    };
    let queued = batch::enqueue_single(
        &st.db.pool,
        st.now(),
        &format!("review-{review_id}"),
        phone,
        &compose(&ctx.config.sign, body, ""),
    )
    .await?;
    if queued {
        ctx.wake.notify_one();
    }
    Ok(queued)
}

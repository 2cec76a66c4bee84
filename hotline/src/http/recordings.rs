//! Recordings over HTTP: list and filter, details, playback with HTTP Range, waveform peaks,
//! QA review, annotations, proofreading, the review queue and the evidence export (ZIP).
//!
//! Who sees what: quality reviewers, supervisors and complaint officers see every recording;
//! an agent only the recordings of their own calls (`recording.agents_see_own`). Every
//! request for audio and every export is written to the audit log.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotline_core::Role;
use hotline_recording::review::{self, Proofread};
use hotline_recording::store::{self, ListFilter, Recording};
use hotline_recording::{
    RecordingConfig, RecordingError, RecordingState, archive, peaks, qa, range,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{Access, ApiBuilder, ClientAddr, CurrentUser};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use super::state::AppState;
use crate::db::audit::Audit;

/// May list and hear recordings (agents: their own only).
pub const READERS: &[Role] = &[
    Role::QaReviewer,
    Role::Supervisor,
    Role::ComplaintOfficer,
    Role::Agent,
];
/// See every recording; annotate; export evidence.
pub const ALL_SEEING: &[Role] = &[Role::QaReviewer, Role::Supervisor, Role::ComplaintOfficer];
/// Score and proofread.
pub const REVIEWERS: &[Role] = &[Role::QaReviewer, Role::Supervisor];
/// Write the call summary that proofreading checks.
pub const SUMMARY_WRITERS: &[Role] = &[Role::Agent, Role::Supervisor];

pub fn routes(b: ApiBuilder) -> ApiBuilder {
    use Access::Roles;
    let tag = "recordings";
    b.route(
        Method::GET,
        "/api/v1/recordings",
        Roles(READERS),
        tag,
        "录音列表（按日期、坐席、来电号码、队列、时长、是否已质检、分数、投诉筛选）",
        list,
    )
    .route(
        Method::GET,
        "/api/v1/recordings/criteria",
        Roles(READERS),
        tag,
        "质检评分表",
        criteria,
    )
    .route(
        Method::GET,
        "/api/v1/recordings/review-queue",
        Roles(REVIEWERS),
        tag,
        "质检待审队列",
        queue,
    )
    .route(
        Method::POST,
        "/api/v1/recordings/review-queue/sample",
        Roles(REVIEWERS),
        tag,
        "按比例抽取本周各坐席录音进入待审队列",
        sample,
    )
    .route(
        Method::GET,
        "/api/v1/recordings/{id}",
        Roles(READERS),
        tag,
        "录音详情（评分、标注、小结版本）",
        detail,
    )
    .route(
        Method::GET,
        "/api/v1/recordings/{id}/audio",
        Roles(READERS),
        tag,
        "收听录音（支持 Range 拖动）",
        audio,
    )
    .route(
        Method::GET,
        "/api/v1/recordings/{id}/peaks",
        Roles(READERS),
        tag,
        "录音波形数据",
        peaks_json,
    )
    .route(
        Method::POST,
        "/api/v1/recordings/{id}/review",
        Roles(REVIEWERS),
        tag,
        "提交质检评分",
        save_review,
    )
    .route(
        Method::POST,
        "/api/v1/recordings/{id}/annotations",
        Roles(ALL_SEEING),
        tag,
        "添加时间点标注",
        annotate,
    )
    .route(
        Method::POST,
        "/api/v1/recordings/{id}/summary",
        Roles(SUMMARY_WRITERS),
        tag,
        "填写通话小结",
        summary,
    )
    .route(
        Method::POST,
        "/api/v1/recordings/{id}/proofread",
        Roles(REVIEWERS),
        tag,
        "校对通话小结（确认或更正）",
        proofread,
    )
    .route(
        Method::POST,
        "/api/v1/recordings/{id}/complaint",
        Roles(&[Role::ComplaintOfficer, Role::Supervisor]),
        tag,
        "关联投诉",
        link_complaint,
    )
    .route(
        Method::GET,
        "/api/v1/recordings/{id}/export",
        Roles(ALL_SEEING),
        tag,
        "导出录音证据包（ZIP）",
        export,
    )
}

/// The recording configuration in force (`[recording]`, paths resolved against the data
/// directory).
pub fn config_of(state: &AppState) -> RecordingConfig {
    state.config.recording()
}

fn api_err(e: RecordingError) -> ApiError {
    match e {
        RecordingError::NotFound(_) => ApiError::NotFound("录音不存在".into()),
        RecordingError::Invalid(m) => ApiError::BadRequest(m),
        RecordingError::InvalidCallId(id) => ApiError::BadRequest(format!("通话编号无效：{id}")),
        other => ApiError::internal(other),
    }
}

/// The recording as `role` may see it: the caller's number masked for roles without the
/// right to personal data (QA reviewers and supervisors hear the call, they need no number).
fn shown(mut rec: Recording, role: Role) -> Recording {
    if !role.sees_personal_data() {
        rec.caller = hotline_core::mask::mask_phone(&rec.caller);
    }
    rec
}

fn sees_all(role: Role) -> bool {
    ALL_SEEING.contains(&role)
}

/// The recording, if this user may see it.
async fn visible(state: &AppState, me: &CurrentUser, id: &str) -> ApiResult<Recording> {
    let rec = store::get(&state.db.pool, id)
        .await
        .map_err(api_err)?
        .ok_or_else(|| ApiError::NotFound("录音不存在".into()))?;
    let role = me.user.role;
    if sees_all(role)
        || (role == Role::Agent && config_of(state).agents_see_own && rec.agent == me.user.username)
    {
        Ok(rec)
    } else {
        Err(ApiError::Forbidden)
    }
}

async fn audit(
    state: &AppState,
    me: &CurrentUser,
    addr: &ClientAddr,
    action: &str,
    rec: &Recording,
    detail: Value,
) -> ApiResult<()> {
    state
        .db
        .audit(
            state.now(),
            state.rng.as_ref(),
            Audit {
                actor: &me.user.username,
                action,
                target: &format!("recording:{}", rec.id),
                detail: &detail.to_string(),
                remote_addr: &addr.0,
            },
        )
        .await?;
    Ok(())
}

async fn list(
    State(state): State<AppState>,
    me: CurrentUser,
    ApiQuery(mut filter): ApiQuery<ListFilter>,
) -> ApiResult<Json<Value>> {
    if !sees_all(me.user.role) {
        if !config_of(&state).agents_see_own {
            return Err(ApiError::Forbidden);
        }
        filter.agent = Some(me.user.username.clone());
    }
    let (items, total) = store::list(&state.db.pool, &filter)
        .await
        .map_err(api_err)?;
    let role = me.user.role;
    let items: Vec<Recording> = items.into_iter().map(|r| shown(r, role)).collect();
    Ok(Json(json!({ "items": items, "total": total })))
}

async fn criteria(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "criteria": config_of(&state).criteria }))
}

#[derive(Debug, Deserialize)]
struct QueueQuery {
    #[serde(default)]
    limit: Option<i64>,
}

async fn queue(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<QueueQuery>,
) -> ApiResult<Json<Value>> {
    let items = review::review_queue(&state.db.pool, q.limit.unwrap_or(100))
        .await
        .map_err(api_err)?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleBody {
    /// A time inside the week to sample (default: now, i.e. this week so far).
    #[serde(default)]
    week_of: Option<i64>,
    #[serde(default)]
    percent: Option<u32>,
}

async fn sample(
    State(state): State<AppState>,
    me: CurrentUser,
    addr: ClientAddr,
    ApiJson(body): ApiJson<SampleBody>,
) -> ApiResult<Json<Value>> {
    let cfg = config_of(&state);
    let percent = body.percent.unwrap_or(cfg.weekly_sample_percent);
    if percent > 100 {
        return Err(ApiError::BadRequest("抽样比例须在 0–100 之间".into()));
    }
    let now = state.now();
    let week_of = body.week_of.unwrap_or(now);
    let picked = review::sample_week(&state.db.pool, now, state.rng.as_ref(), week_of, percent)
        .await
        .map_err(api_err)?;
    state
        .db
        .audit(
            now,
            state.rng.as_ref(),
            Audit {
                actor: &me.user.username,
                action: "recording.sample",
                target: &qa::iso_week(week_of),
                detail: &json!({ "percent": percent, "count": picked.len() }).to_string(),
                remote_addr: &addr.0,
            },
        )
        .await?;
    Ok(Json(
        json!({ "week": qa::iso_week(week_of), "queued": picked }),
    ))
}

async fn detail(
    State(state): State<AppState>,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let rec = visible(&state, &me, &id).await?;
    let pool = &state.db.pool;
    let reviews = review::reviews(pool, &id).await.map_err(api_err)?;
    let notes = review::annotations(pool, &id).await.map_err(api_err)?;
    let sums = review::summaries(pool, &id).await.map_err(api_err)?;
    Ok(Json(json!({
        "recording": shown(rec, me.user.role),
        "reviews": reviews,
        "annotations": notes,
        "summaries": sums,
    })))
}

/// The file of a playable recording.
fn playable(state: &AppState, rec: &Recording) -> ApiResult<std::path::PathBuf> {
    match rec.state {
        RecordingState::Deleted => {
            return Err(ApiError::NotFound("录音已按保存期限删除".into()));
        }
        RecordingState::Recording => {
            return Err(ApiError::Conflict("通话仍在录音中".into()));
        }
        _ => {}
    }
    if rec.bytes == 0 {
        return Err(ApiError::NotFound("录音文件不存在".into()));
    }
    archive::resolve(&config_of(state).root, &rec.path).map_err(api_err)
}

async fn audio(
    State(state): State<AppState>,
    me: CurrentUser,
    addr: ClientAddr,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let rec = visible(&state, &me, &id).await?;
    let path = playable(&state, &rec)?;
    let len = tokio::fs::metadata(&path)
        .await
        .map_err(|_| ApiError::NotFound("录音文件不存在".into()))?
        .len();
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let plan = range::plan(range_header, len);
    // Every listen is audited, seeks included: who, which recording, which bytes.
    audit(
        &state,
        &me,
        &addr,
        "recording.listen",
        &rec,
        json!({ "call_id": rec.call_id, "range": range_header.unwrap_or(""), "status": plan.status() }),
    )
    .await?;
    let status = StatusCode::from_u16(plan.status()).unwrap_or(StatusCode::OK);
    let mut resp = match plan.span(len) {
        Some((start, end)) => {
            let stream = range::open_span(&path, start, end)
                .await
                .map_err(ApiError::internal)?;
            let mut r = Response::new(Body::from_stream(stream));
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
            r
        }
        None => Response::new(Body::empty()),
    };
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(cr) = plan.content_range(len)
        && let Ok(v) = HeaderValue::from_str(&cr)
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", rec.sha256)) {
        h.insert(header::ETAG, v);
    }
    Ok(resp)
}

async fn peaks_json(
    State(state): State<AppState>,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<peaks::Peaks>> {
    let rec = visible(&state, &me, &id).await?;
    let path = playable(&state, &rec)?;
    let p = tokio::task::spawn_blocking(move || peaks::load_or_compute(&path))
        .await
        .map_err(ApiError::internal)?
        .map_err(|_| ApiError::NotFound("录音文件不存在".into()))?;
    Ok(Json(p))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    scores: BTreeMap<String, u32>,
    #[serde(default)]
    comment: String,
}

async fn save_review(
    State(state): State<AppState>,
    me: CurrentUser,
    addr: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> ApiResult<Json<Value>> {
    let rec = visible(&state, &me, &id).await?;
    let form = config_of(&state).criteria;
    let r = review::save_review(
        &state.db.pool,
        state.now(),
        state.rng.as_ref(),
        &id,
        &me.user.username,
        &form,
        &body.scores,
        &body.comment,
    )
    .await
    .map_err(api_err)?;
    audit(
        &state,
        &me,
        &addr,
        "recording.review",
        &rec,
        json!({ "score": r.score }),
    )
    .await?;
    Ok(Json(
        json!({ "review": r, "score_points": r.score as f64 / 100.0 }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnotationBody {
    /// `mm:ss` into the recording.
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    at_ms: Option<u64>,
    text: String,
    #[serde(default)]
    tag: String,
}

async fn annotate(
    State(state): State<AppState>,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<AnnotationBody>,
) -> ApiResult<Json<Value>> {
    visible(&state, &me, &id).await?;
    let at_ms = match (&body.at, body.at_ms) {
        (Some(s), _) => qa::parse_timestamp(s)
            .ok_or_else(|| ApiError::BadRequest(format!("时间格式应为 mm:ss：{s}")))?,
        (None, Some(ms)) => ms,
        (None, None) => return Err(ApiError::BadRequest("缺少标注时间".into())),
    };
    let a = review::add_annotation(
        &state.db.pool,
        state.now(),
        state.rng.as_ref(),
        &id,
        at_ms,
        &body.text,
        &body.tag,
        &me.user.username,
    )
    .await
    .map_err(api_err)?;
    Ok(Json(json!({ "annotation": a })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryBody {
    summary: String,
}

async fn summary(
    State(state): State<AppState>,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SummaryBody>,
) -> ApiResult<Json<Value>> {
    let rec = store::get(&state.db.pool, &id)
        .await
        .map_err(api_err)?
        .ok_or_else(|| ApiError::NotFound("录音不存在".into()))?;
    if me.user.role == Role::Agent && rec.agent != me.user.username {
        return Err(ApiError::Forbidden);
    }
    if body.summary.trim().is_empty() {
        return Err(ApiError::BadRequest("小结不能为空".into()));
    }
    let v = review::set_original_summary(
        &state.db.pool,
        state.now(),
        state.rng.as_ref(),
        &id,
        &me.user.username,
        &body.summary,
    )
    .await
    .map_err(api_err)?;
    Ok(Json(json!({ "summary": v })))
}

async fn proofread(
    State(state): State<AppState>,
    me: CurrentUser,
    addr: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Proofread>,
) -> ApiResult<Json<Value>> {
    let rec = visible(&state, &me, &id).await?;
    let v = review::proofread(
        &state.db.pool,
        state.now(),
        state.rng.as_ref(),
        &id,
        &me.user.username,
        &body,
    )
    .await
    .map_err(api_err)?;
    audit(
        &state,
        &me,
        &addr,
        "recording.proofread",
        &rec,
        json!({ "kind": v.kind, "version": v.version }),
    )
    .await?;
    Ok(Json(json!({ "summary": v })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ComplaintBody {
    complaint_id: Option<String>,
}

async fn link_complaint(
    State(state): State<AppState>,
    me: CurrentUser,
    addr: ClientAddr,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ComplaintBody>,
) -> ApiResult<Json<Value>> {
    let rec = visible(&state, &me, &id).await?;
    let now = state.now();
    store::link_complaint(&state.db.pool, now, &id, body.complaint_id.as_deref())
        .await
        .map_err(api_err)?;
    if body.complaint_id.is_some() {
        review::enqueue(&state.db.pool, now, &id, "complaint", "")
            .await
            .map_err(api_err)?;
    }
    audit(
        &state,
        &me,
        &addr,
        "recording.link_complaint",
        &rec,
        json!({ "complaint_id": body.complaint_id }),
    )
    .await?;
    Ok(Json(json!({ "ok": true })))
}

async fn export(
    State(state): State<AppState>,
    me: CurrentUser,
    addr: ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let rec = visible(&state, &me, &id).await?;
    playable(&state, &rec)?;
    let now = state.now();
    let zip = review::export_zip(&state.db.pool, now, &config_of(&state).root, &id)
        .await
        .map_err(api_err)?;
    audit(
        &state,
        &me,
        &addr,
        "recording.export",
        &rec,
        json!({ "call_id": rec.call_id, "bytes": zip.len() }),
    )
    .await?;
    let name = format!("recording-{}.zip", rec.call_id);
    state
        .record_file(
            &me.user.username,
            &addr.0,
            crate::db::data_files::Direction::Export,
            "recording_export",
            &name,
            &zip,
        )
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        zip,
    )
        .into_response())
}

/// The periodic recording jobs, for the binary's scheduler (e.g. every 10 minutes): copies
/// new recordings to the backup path, then applies retention and writes one audit entry
/// (`recording.delete`, actor `system`) per deleted recording. Returns (copied, failed,
/// deleted).
pub async fn run_jobs(
    state: &AppState,
    config: &RecordingConfig,
) -> Result<(usize, usize, usize), ApiError> {
    let now = state.now();
    let pool = &state.db.pool;
    let backup = store::run_backup(pool, now, config, 1_000)
        .await
        .map_err(api_err)?;
    let deleted = store::apply_retention(pool, now, config)
        .await
        .map_err(api_err)?;
    // The weekly QA sample, once each week is over.
    match review::sample_previous_week_once(
        pool,
        now,
        state.rng.as_ref(),
        config.weekly_sample_percent,
    )
    .await
    {
        Ok(Some(ids)) => tracing::info!(queued = ids.len(), "weekly QA sample drawn"),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "drawing the weekly QA sample failed"),
    }
    for rec in &deleted {
        state
            .db
            .audit(
                now,
                state.rng.as_ref(),
                Audit {
                    actor: "system",
                    action: "recording.delete",
                    target: &format!("recording:{}", rec.id),
                    detail: &json!({
                        "call_id": rec.call_id,
                        "started_at": rec.started_at,
                        "path": rec.path,
                        "sha256": rec.sha256,
                        "reason": "retention",
                        "retention_days": config.retention_days,
                    })
                    .to_string(),
                    remote_addr: "",
                },
            )
            .await?;
    }
    Ok((backup.copied.len(), backup.failed.len(), deleted.len()))
}

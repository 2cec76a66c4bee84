//! Administrators' settings over HTTP (issue 10, "Admin"): each queue's strategy and timers,
//! and the calendar of special service days, changed from the web console instead of the
//! files.
//!
//! A change is checked (the config file's rules, zh-CN messages), stored and audited in one
//! transaction, and applied to the running contact centre before that transaction commits:
//! if the runtime refuses it, nothing is stored. Queue edits replace the queue's settings in
//! the ACD (waiting calls stay); calendar changes reload the flow the way
//! `POST /api/v1/ivr/reload` does, the calendar merged into its hours, for new calls. Edits
//! carry the version they were made from: a stale one gets 409. Without a running contact
//! centre (the in-process API tests) the change is stored and applies at the next start.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use hotline_ivr::civil::{Date, TimeOfDay};
use hotline_ivr::flow::{ServiceHours, SpecialDay};
use hotline_ivr::queue::{QueueConfig, Strategy};
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{Access, ApiBuilder, ClientAddr, CurrentUser, roles};
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use super::state::AppState;
use crate::contact::{QueueRefused, check_queue_settings};
use crate::db::admin_settings::{self as store, QueueOverride};
use crate::db::audit::{Audit, append};

pub fn routes(b: ApiBuilder) -> ApiBuilder {
    b.route(
        Method::GET,
        "/api/v1/acd/queue-settings",
        Access::Roles(roles::ADMIN_SUPERVISOR),
        "admin",
        "各队列的分配策略与等待设置（含实时数据）",
        list_queues,
    )
    .route(
        Method::GET,
        "/api/v1/acd/queues/{name}/settings",
        Access::Roles(roles::ADMIN_SUPERVISOR),
        "admin",
        "查看一个队列的设置",
        get_queue,
    )
    .route(
        Method::PUT,
        "/api/v1/acd/queues/{name}/settings",
        Access::Roles(roles::ADMIN),
        "admin",
        "修改队列设置（立即生效，排队中的来电保留；带版本号，过期修改返回 409）",
        put_queue,
    )
    .route(
        Method::GET,
        "/api/v1/service-days",
        Access::Roles(roles::ADMIN_SUPERVISOR),
        "admin",
        "服务时间与节假日（特殊日期）",
        list_days,
    )
    .route(
        Method::POST,
        "/api/v1/service-days",
        Access::Roles(roles::ADMIN),
        "admin",
        "新增特殊日期（停止服务或调整服务时间，立即对新来电生效）",
        add_day,
    )
    .route(
        Method::PUT,
        "/api/v1/service-days/{date}",
        Access::Roles(roles::ADMIN),
        "admin",
        "修改特殊日期（带版本号）",
        edit_day,
    )
    .route(
        Method::DELETE,
        "/api/v1/service-days/{date}",
        Access::Roles(roles::ADMIN),
        "admin",
        "删除特殊日期",
        delete_day,
    )
}

// ---- queues ---------------------------------------------------------------------------

fn configured<'a>(state: &'a AppState, name: &str) -> ApiResult<&'a QueueConfig> {
    state
        .config
        .ivr
        .acd
        .queues
        .iter()
        .find(|q| q.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("队列 {name} 不存在")))
}

/// One queue as the console shows it: the settings in force, the configuration's values,
/// the edit's version and author, and the live figures when the contact centre runs.
async fn queue_views(state: &AppState, only: Option<&str>) -> ApiResult<Vec<Value>> {
    let overrides = state.db.queue_overrides().await?;
    let (live, snapshot) = match state.contact.get() {
        Some(c) => (c.queue_settings().await, c.snapshot().await),
        None => (None, None),
    };
    let views = state
        .config
        .ivr
        .acd
        .queues
        .iter()
        .filter(|q| only.is_none_or(|n| n == q.name))
        .map(|q| {
            let o = overrides.iter().find(|o| o.queue == q.name);
            let running = live
                .as_ref()
                .and_then(|l| l.iter().find(|l| l.name == q.name));
            let settings = running
                .cloned()
                .or_else(|| o.map(|o| o.apply(q)))
                .unwrap_or_else(|| q.clone());
            let figures = snapshot
                .as_ref()
                .and_then(|s| s["queues"].as_array())
                .and_then(|a| a.iter().find(|x| x["name"] == q.name.as_str()))
                .cloned()
                .unwrap_or(Value::Null);
            json!({
                "name": q.name,
                "settings": settings,
                "config": q,
                "edited": o.is_some(),
                "version": o.map_or(0, |o| o.version),
                "updated_by": o.map(|o| o.updated_by.as_str()),
                "updated_at": o.map(|o| o.updated_at),
                "live": figures,
            })
        })
        .collect();
    Ok(views)
}

async fn list_queues(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "items": queue_views(&state, None).await? })))
}

async fn get_queue(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    configured(&state, &name)?;
    let mut views = queue_views(&state, Some(&name)).await?;
    Ok(Json(views.pop().unwrap_or(Value::Null)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueBody {
    /// The version the edit was made from (0: from the configuration's values).
    pub version: i64,
    pub strategy: String,
    pub announce_every_ms: u64,
    pub max_wait_ms: u64,
    #[serde(default)]
    pub callback_key: String,
    pub moh: String,
}

fn strategy(s: &str) -> ApiResult<Strategy> {
    match s {
        "longest_idle" => Ok(Strategy::LongestIdle),
        "round_robin" => Ok(Strategy::RoundRobin),
        "ring_all" => Ok(Strategy::RingAll),
        other => Err(ApiError::BadRequest(format!(
            "未知的分配策略 {other:?}：可选 longest_idle（最长空闲）、round_robin（轮流分配）、ring_all（同时振铃）"
        ))),
    }
}

async fn put_queue(
    State(state): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<QueueBody>,
) -> ApiResult<Json<Value>> {
    configured(&state, &name)?;
    let settings = QueueConfig {
        name: name.clone(),
        strategy: strategy(body.strategy.trim())?,
        announce_every_ms: body.announce_every_ms,
        max_wait_ms: body.max_wait_ms,
        callback_key: body.callback_key.trim().to_string(),
        moh: body.moh.trim().to_string(),
    };
    check_queue_settings(&settings, None).map_err(ApiError::BadRequest)?;
    if body.version < 0 {
        return Err(ApiError::BadRequest("版本号无效".into()));
    }
    let now = state.now();
    let mut tx = state.db.pool.begin().await.map_err(ApiError::internal)?;
    let saved: QueueOverride =
        store::put_queue_override(&mut tx, now, &settings, body.version, &me.user.username).await?;
    let detail = json!({ "version": saved.version, "settings": &settings }).to_string();
    append(
        &mut tx,
        now,
        state.rng.as_ref(),
        Audit {
            actor: &me.user.username,
            action: "acd.queue_settings",
            target: &format!("queue:{name}"),
            detail: &detail,
            remote_addr: &addr,
        },
    )
    .await?;
    // Applied to the running ACD before the commit: refused there, nothing is stored.
    let applied = match state.contact.get() {
        Some(c) => {
            c.set_queue(settings.clone()).await.map_err(|e| match e {
                QueueRefused::UnknownQueue(_) => ApiError::NotFound(e.to_string()),
                QueueRefused::Invalid(m) => ApiError::BadRequest(m),
                QueueRefused::Stopped => ApiError::Unavailable(e.to_string()),
            })?;
            true
        }
        None => false,
    };
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(json!({
        "name": name,
        "settings": settings,
        "version": saved.version,
        "applied": applied,
    })))
}

// ---- service days ---------------------------------------------------------------------

/// The flow file's hours (the weekly pattern and the file's own special days), read without
/// decoding prompts: enough to show them.
fn file_hours(path: &str) -> Result<ServiceHours, String> {
    if path.is_empty() {
        return Ok(hotline_ivr::flow::default_flow().hours().clone());
    }
    hotline_ivr::load_flow_file(std::path::Path::new(path), None)
        .map(|f| f.hours().clone())
        .map_err(|e| e.to_string())
}

async fn list_days(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let days = state.db.service_days().await?;
    let path = state.config.ivr.flow.clone();
    let hours = tokio::task::spawn_blocking(move || file_hours(&path))
        .await
        .map_err(ApiError::internal)?;
    let (weekly, file_days, error, in_force) = match hours {
        Ok(h) => {
            let mut merged = h.clone();
            merged.merge_special(&days.iter().map(|d| d.special()).collect::<Vec<_>>());
            (
                json!({
                    "utc_offset": h.utc_offset,
                    "open": h.open,
                    "close": h.close,
                    "days": h.days,
                }),
                json!(h.special),
                Value::Null,
                json!(merged.special),
            )
        }
        Err(e) => (Value::Null, json!([]), json!(e), json!([])),
    };
    Ok(Json(json!({
        "weekly": weekly,
        "file_days": file_days,
        "flow_error": error,
        "items": days,
        "in_force": in_force,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayBody {
    /// YYYY-MM-DD (only when adding; an edit names the date in the path).
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub closed: bool,
    #[serde(default)]
    pub open: Option<String>,
    #[serde(default)]
    pub close: Option<String>,
    #[serde(default)]
    pub note: String,
    /// The version an edit was made from.
    #[serde(default)]
    pub version: Option<i64>,
}

fn parse_date(s: &str) -> ApiResult<Date> {
    s.trim().parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "日期 {:?} 无效：格式应为 YYYY-MM-DD，例如 2027-02-06",
            s.trim()
        ))
    })
}

fn parse_time(what: &str, s: &str) -> ApiResult<TimeOfDay> {
    s.trim().parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "{what} {:?} 无效：格式应为 HH:MM，例如 09:00",
            s.trim()
        ))
    })
}

/// Checks a day as the calendar takes it: closed all day, or open at other hours with both
/// times given and opening before closing — so that merged into any flow it stays valid.
fn special_day(date: Date, body: &DayBody) -> ApiResult<SpecialDay> {
    fn given(t: &Option<String>) -> Option<&str> {
        t.as_deref().map(str::trim).filter(|t| !t.is_empty())
    }
    let (open, close) = (given(&body.open), given(&body.close));
    let note = body.note.trim().to_string();
    if note.chars().count() > 40 {
        return Err(ApiError::BadRequest("备注最多 40 个字".into()));
    }
    if body.closed {
        if open.is_some() || close.is_some() {
            return Err(ApiError::BadRequest(
                "停止服务的日期不能填写服务时间".into(),
            ));
        }
        return Ok(SpecialDay {
            date,
            closed: true,
            open: None,
            close: None,
            note,
        });
    }
    let (Some(open), Some(close)) = (open, close) else {
        return Err(ApiError::BadRequest(
            "请选择“停止服务”，或填写当天的开始和结束时间".into(),
        ));
    };
    let (open, close) = (
        parse_time("开始时间", open)?,
        parse_time("结束时间", close)?,
    );
    if open >= close {
        return Err(ApiError::BadRequest(format!(
            "开始时间 {open} 须早于结束时间 {close}"
        )));
    }
    Ok(SpecialDay {
        date,
        closed: false,
        open: Some(open),
        close: Some(close),
        note,
    })
}

enum DayChange {
    Add(SpecialDay),
    Edit(SpecialDay, i64),
    Delete(Date),
}

/// Stores and audits the change, reloads the flow with the calendar as it now stands and
/// switches new calls to it, then commits; a flow that does not load stores nothing.
async fn change_day(
    state: &AppState,
    me: &CurrentUser,
    addr: &str,
    change: DayChange,
) -> ApiResult<Value> {
    let now = state.now();
    let by = me.user.username.as_str();
    let mut tx = state.db.pool.begin().await.map_err(ApiError::internal)?;
    let (action, day) = match &change {
        DayChange::Add(d) => (
            "service_day.add",
            store::insert_service_day(&mut tx, now, d, by).await?,
        ),
        DayChange::Edit(d, version) => (
            "service_day.edit",
            store::update_service_day(&mut tx, now, d, *version, by).await?,
        ),
        DayChange::Delete(date) => (
            "service_day.delete",
            store::delete_service_day(&mut tx, *date).await?,
        ),
    };
    append(
        &mut tx,
        now,
        state.rng.as_ref(),
        Audit {
            actor: by,
            action,
            target: &format!("service_day:{}", day.date),
            detail: &json!(&day).to_string(),
            remote_addr: addr,
        },
    )
    .await?;
    let days: Vec<SpecialDay> = store::service_days(&mut tx)
        .await?
        .iter()
        .map(|d| d.special())
        .collect();
    let library = crate::contact::load_library(
        &state.config.ivr,
        crate::contact::prompts::custom_dir(&state.config.data_dir),
        None,
        days,
    )
    .await
    .map_err(|e| ApiError::Conflict(format!("IVR 流程未能加载，特殊日期未保存：{e}")))?;
    let applied = match state.contact.get() {
        Some(c) => {
            if !c.reload(library).await {
                return Err(ApiError::Unavailable("呼叫中心服务已停止".into()));
            }
            true
        }
        None => false,
    };
    tx.commit().await.map_err(ApiError::internal)?;
    let day = match change {
        DayChange::Delete(_) => Value::Null,
        _ => json!(day),
    };
    Ok(json!({ "day": day, "applied": applied }))
}

async fn add_day(
    State(state): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiJson(body): ApiJson<DayBody>,
) -> ApiResult<Json<Value>> {
    let date = parse_date(body.date.as_deref().unwrap_or(""))?;
    let day = special_day(date, &body)?;
    change_day(&state, &me, &addr, DayChange::Add(day))
        .await
        .map(Json)
}

async fn edit_day(
    State(state): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(date): ApiPath<String>,
    ApiJson(body): ApiJson<DayBody>,
) -> ApiResult<Json<Value>> {
    let date = parse_date(&date)?;
    if let Some(other) = body.date.as_deref()
        && parse_date(other)? != date
    {
        return Err(ApiError::BadRequest(
            "不能修改日期本身：请删除后重新添加".into(),
        ));
    }
    let Some(version) = body.version else {
        return Err(ApiError::BadRequest("修改时须提供版本号 version".into()));
    };
    let day = special_day(date, &body)?;
    change_day(&state, &me, &addr, DayChange::Edit(day, version))
        .await
        .map(Json)
}

async fn delete_day(
    State(state): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(date): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let date = parse_date(&date)?;
    change_day(&state, &me, &addr, DayChange::Delete(date))
        .await
        .map(Json)
}

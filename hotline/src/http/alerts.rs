//! System health alerts over HTTP: the active ones and the recent history, and
//! acknowledging one (audited; stops its reminders). The watcher itself is
//! `crate::alerts`; docs/alerts.md.

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{Access, ApiBuilder, ClientAddr, CurrentUser, roles};
use super::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use super::state::AppState;
use crate::alerts::store::{self, AckError};

pub fn routes(b: ApiBuilder) -> ApiBuilder {
    b.route(
        Method::GET,
        "/api/v1/alerts",
        Access::Roles(roles::ADMIN_SUPERVISOR),
        "alerts",
        "系统告警：当前告警与最近的历史",
        list,
    )
    .route(
        Method::POST,
        "/api/v1/alerts/{id}/ack",
        Access::Roles(roles::ADMIN_SUPERVISOR),
        "alerts",
        "确认告警（停止重复提醒，记入审计日志）",
        ack,
    )
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ListQuery {
    /// How many cleared alerts to list (newest first), 1–500; default 50.
    recent: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let recent = q.recent.unwrap_or(50);
    if !(1..=500).contains(&recent) {
        return Err(ApiError::BadRequest("recent 应为 1 到 500".into()));
    }
    let rows = store::list(&state.db.pool, recent).await?;
    let (active, cleared): (Vec<_>, Vec<_>) = rows.into_iter().partition(|a| a.active);
    Ok(Json(json!({
        "enabled": state.config.alerts.enabled,
        "active": active,
        "recent": cleared,
        "now": state.now(),
    })))
}

async fn ack(
    State(state): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    if id.is_empty() || id.len() > 64 {
        return Err(ApiError::NotFound("告警不存在".into()));
    }
    let now = state.now();
    let row = store::ack(&state.db.pool, &id, &me.user.username, now)
        .await
        .map_err(|e| match e {
            AckError::NotFound => ApiError::NotFound("告警不存在".into()),
            AckError::Already(by) => ApiError::Conflict(format!("告警已由 {by} 确认")),
            AckError::Store(e) => e.into(),
        })?;
    state
        .audit_by(
            &me,
            &addr,
            "alert.ack",
            &format!("alert:{id}"),
            &json!({ "rule": row.rule, "subject": row.subject, "active": row.active }).to_string(),
        )
        .await?;
    crate::alerts::driver::publish(
        state.events.as_ref(),
        now,
        &json!({
            "id": row.id, "event": "acked", "rule": row.rule, "title": row.title,
            "subject": row.subject, "severity": row.severity, "message": row.message,
            "at": now, "acked_by": row.acked_by,
        }),
    );
    Ok(Json(json!(row)))
}

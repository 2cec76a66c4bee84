//! Queues and agents over HTTP: live state, and agents logging in at a seat and changing
//! state. An agent's id in the ACD is the seat number they work at (the call rings that
//! seat). Agents change their own state here until the web console's desktop takes over;
//! supervisors and administrators may change anyone's (e.g. log out an agent who left).

use axum::Json;
use axum::extract::State;
use hotline_core::Role;
use serde::Deserialize;
use serde_json::Value;

use super::access::{Access, ApiBuilder, ClientAddr, CurrentUser};
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};
use super::state::AppState;
use crate::contact::{AgentError, ContactCentre, TransferTarget};

const WATCH: &[Role] = &[
    Role::Admin,
    Role::Supervisor,
    Role::Agent,
    Role::ComplaintOfficer,
];
const ACT: &[Role] = &[
    Role::Admin,
    Role::Supervisor,
    Role::Agent,
    Role::ComplaintOfficer,
];

pub fn routes(b: ApiBuilder) -> ApiBuilder {
    use axum::http::Method;
    b.route(
        Method::GET,
        "/api/v1/acd",
        Access::Roles(WATCH),
        "acd",
        "队列与坐席实时状态",
        snapshot,
    )
    .route(
        Method::POST,
        "/api/v1/acd/agents/{agent}/login",
        Access::Roles(ACT),
        "acd",
        "坐席签入（指定分机与技能队列）",
        login,
    )
    .route(
        Method::POST,
        "/api/v1/acd/agents/{agent}/ready",
        Access::Roles(ACT),
        "acd",
        "坐席置闲",
        ready,
    )
    .route(
        Method::POST,
        "/api/v1/acd/agents/{agent}/not-ready",
        Access::Roles(ACT),
        "acd",
        "坐席置忙（填写原因）",
        not_ready,
    )
    .route(
        Method::POST,
        "/api/v1/acd/agents/{agent}/logout",
        Access::Roles(ACT),
        "acd",
        "坐席签出",
        logout,
    )
    .route(
        Method::POST,
        "/api/v1/calls/{id}/transfer",
        Access::Roles(ACT),
        "acd",
        "转接：把正在接听的来电转入另一技能队列，或转给一位空闲的同事坐席",
        transfer,
    )
    .route(
        Method::POST,
        "/api/v1/calls/{id}/hold",
        Access::Roles(ACT),
        "acd",
        "保持／取回：来电人听等待音乐，坐席听不到来电人",
        hold,
    )
    .route(
        Method::POST,
        "/api/v1/calls/{id}/recording",
        Access::Roles(ACT),
        "acd",
        "暂停或恢复通话录音（如客户报银行卡号时）",
        set_recording,
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingBody {
    pub paused: bool,
}

async fn set_recording(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RecordingBody>,
) -> ApiResult<Json<Value>> {
    let gw = state
        .gateway
        .get()
        .ok_or_else(|| ApiError::Unavailable("SIP 网关未运行".into()))?;
    let changed = gw
        .set_recording_paused(&id, body.paused)
        .await
        .map_err(|e| match e {
            hotline_sip_gateway::GatewayError::CallNotFound(_) => {
                ApiError::NotFound(format!("通话 {id} 不在进行中"))
            }
            other => ApiError::Unavailable(other.to_string()),
        })?;
    let action = if body.paused {
        "recording.pause"
    } else {
        "recording.resume"
    };
    state
        .audit_by(
            &me,
            &addr,
            action,
            &format!("call:{id}"),
            &changed.to_string(),
        )
        .await?;
    Ok(Json(
        serde_json::json!({"call_id": id, "paused": body.paused, "changed": changed}),
    ))
}

fn centre(state: &AppState) -> ApiResult<&ContactCentre> {
    state
        .contact
        .get()
        .ok_or_else(|| ApiError::Unavailable("呼叫中心服务未运行".into()))
}

fn refused(e: AgentError) -> ApiError {
    ApiError::Conflict(e.0)
}

async fn snapshot(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    centre(&state)?
        .snapshot()
        .await
        .map(Json)
        .ok_or_else(|| ApiError::Unavailable("呼叫中心服务已停止".into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// Queues the agent answers; default: `hotline`.
    #[serde(default)]
    pub queues: Vec<String>,
}

async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(agent): ApiPath<String>,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<Value>> {
    if !hotline_sip_gateway::config::is_seat_number(&agent) {
        return Err(ApiError::BadRequest(format!("{agent:?} 不是有效的分机号")));
    }
    let queues = if body.queues.is_empty() {
        vec!["hotline".to_string()]
    } else {
        body.queues
    };
    centre(&state)?
        .login(&agent, queues.clone())
        .await
        .map_err(refused)?;
    state
        .audit_by(
            &me,
            &addr,
            "agent.login",
            &format!("agent:{agent}"),
            &queues.join(","),
        )
        .await?;
    Ok(Json(serde_json::json!({"agent": agent, "queues": queues})))
}

async fn ready(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(agent): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    centre(&state)?.ready(&agent).await.map_err(refused)?;
    state
        .audit_by(&me, &addr, "agent.ready", &format!("agent:{agent}"), "")
        .await?;
    Ok(Json(serde_json::json!({"agent": agent, "state": "ready"})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotReadyBody {
    pub reason: String,
}

async fn not_ready(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(agent): ApiPath<String>,
    ApiJson(body): ApiJson<NotReadyBody>,
) -> ApiResult<Json<Value>> {
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 40 {
        return Err(ApiError::BadRequest("置忙原因必填，最多 40 个字".into()));
    }
    centre(&state)?
        .not_ready(&agent, reason)
        .await
        .map_err(refused)?;
    state
        .audit_by(
            &me,
            &addr,
            "agent.not_ready",
            &format!("agent:{agent}"),
            reason,
        )
        .await?;
    Ok(Json(
        serde_json::json!({"agent": agent, "state": "not_ready", "reason": reason}),
    ))
}

async fn logout(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(agent): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    centre(&state)?.logout(&agent).await.map_err(refused)?;
    state
        .audit_by(&me, &addr, "agent.logout", &format!("agent:{agent}"), "")
        .await?;
    Ok(Json(
        serde_json::json!({"agent": agent, "state": "offline"}),
    ))
}

/// Exactly one of `queue` and `agent`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    #[serde(default)]
    pub queue: Option<String>,
    /// A colleague's agent id (seat number); they must be ready.
    #[serde(default)]
    pub agent: Option<String>,
}

async fn transfer(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(call_id): ApiPath<String>,
    ApiJson(body): ApiJson<TransferBody>,
) -> ApiResult<Json<Value>> {
    let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let to = match (clean(body.queue), clean(body.agent)) {
        (Some(q), None) => TransferTarget::Queue(q),
        (None, Some(a)) => TransferTarget::Agent(a),
        _ => {
            return Err(ApiError::BadRequest(
                "请指定转接目标：队列（queue）或坐席（agent）二选一".into(),
            ));
        }
    };
    let cc = centre(&state)?;
    cc.transfer(&call_id, to.clone())
        .await
        .map_err(|e| ApiError::Conflict(e.0))?;
    let target = match &to {
        TransferTarget::Queue(q) => serde_json::json!({ "queue": q }),
        TransferTarget::Agent(a) => serde_json::json!({ "agent": a }),
    };
    state
        .audit_by(
            &me,
            &addr,
            "call.transfer",
            &format!("call:{call_id}"),
            &target.to_string(),
        )
        .await?;
    let mut out = serde_json::json!({ "transferred": call_id });
    if let (Some(o), Some(t)) = (out.as_object_mut(), target.as_object()) {
        o.extend(t.clone());
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    pub on: bool,
}

async fn hold(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(call_id): ApiPath<String>,
    ApiJson(body): ApiJson<HoldBody>,
) -> ApiResult<Json<Value>> {
    let changed = centre(&state)?
        .hold(&call_id, body.on)
        .await
        .map_err(|e| ApiError::Conflict(e.0))?;
    if changed {
        let action = if body.on {
            "call.hold"
        } else {
            "call.retrieve"
        };
        state
            .audit_by(&me, &addr, action, &format!("call:{call_id}"), "")
            .await?;
    }
    Ok(Json(
        serde_json::json!({ "call_id": call_id, "on_hold": body.on, "changed": changed }),
    ))
}

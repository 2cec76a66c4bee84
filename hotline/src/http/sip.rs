//! The SIP gateway over HTTP: seats (agent SIP accounts), registrations, call records,
//! click-to-call and hangup.

use axum::Json;
use axum::extract::State;
use hotline_core::Role;
use hotline_sip_gateway::{self as gw, GatewayError, GatewayHandle};
use serde::{Deserialize, Serialize};

use super::access::{Access, ApiBuilder, ClientAddr, CurrentUser};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use super::state::AppState;
use crate::password;

const ADMIN: &[Role] = &[Role::Admin];
const WATCH: &[Role] = &[Role::Admin, Role::Supervisor];
const DIAL: &[Role] = &[
    Role::Admin,
    Role::Supervisor,
    Role::Agent,
    Role::ComplaintOfficer,
];

pub fn routes(b: ApiBuilder) -> ApiBuilder {
    use axum::http::Method;
    b.route(
        Method::GET,
        "/api/v1/seats",
        Access::Roles(WATCH),
        "sip",
        "坐席分机列表",
        list_seats,
    )
    .route(
        Method::POST,
        "/api/v1/seats",
        Access::Roles(ADMIN),
        "sip",
        "新建坐席分机",
        add_seat,
    )
    .route(
        Method::POST,
        "/api/v1/seats/{number}/password",
        Access::Roles(ADMIN),
        "sip",
        "重置分机密码",
        seat_password,
    )
    .route(
        Method::DELETE,
        "/api/v1/seats/{number}",
        Access::Roles(ADMIN),
        "sip",
        "删除坐席分机",
        remove_seat,
    )
    .route(
        Method::GET,
        "/api/v1/sip/status",
        Access::Roles(WATCH),
        "sip",
        "网关状态与注册",
        status,
    )
    .route(
        Method::GET,
        "/api/v1/calls",
        Access::Roles(WATCH),
        "calls",
        "通话记录",
        list_calls,
    )
    .route(
        Method::GET,
        "/api/v1/calls/{id}",
        Access::Roles(WATCH),
        "calls",
        "通话详情",
        get_call,
    )
    .route(
        Method::POST,
        "/api/v1/calls/click-to-call",
        Access::Roles(DIAL),
        "calls",
        "点击外呼",
        click_to_call,
    )
    .route(
        Method::POST,
        "/api/v1/calls/{id}/hangup",
        Access::Roles(WATCH),
        "calls",
        "挂断通话",
        hangup,
    )
}

fn gateway(state: &AppState) -> ApiResult<&GatewayHandle> {
    state
        .gateway
        .get()
        .ok_or_else(|| ApiError::Unavailable("the SIP gateway is not running".into()))
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::InvalidSeatNumber(n) => {
                ApiError::BadRequest(format!("分机号 {n} 无效：应为 2 到 16 位数字"))
            }
            GatewayError::WeakPassword => {
                ApiError::BadRequest("分机密码应为 8 到 128 个字符".into())
            }
            GatewayError::SeatExists(n) => ApiError::Conflict(format!("分机 {n} 已存在")),
            GatewayError::SeatNotFound(n) => ApiError::NotFound(format!("分机 {n} 不存在")),
            GatewayError::NotAllowed(n) => {
                ApiError::Forbidden.with_log(&format!("outbound to {n} refused by the allow-list"))
            }
            GatewayError::SeatUnavailable(n) => {
                ApiError::Conflict(format!("分机 {n} 未注册或不可达"))
            }
            GatewayError::ChannelsBusy => {
                ApiError::Unavailable("all trunk channels are busy".into())
            }
            other => ApiError::internal(other),
        }
    }
}

async fn list_seats(State(state): State<AppState>) -> ApiResult<Json<Vec<gw::Seat>>> {
    Ok(Json(gw::list_seats(&state.db.pool).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSeat {
    pub number: String,
    /// When absent a password is generated and returned once.
    pub password: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SeatWithPassword {
    pub seat: gw::Seat,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_password: Option<String>,
}

fn seat_password_or_generated(state: &AppState, given: Option<String>) -> (String, Option<String>) {
    match given {
        Some(p) => (p, None),
        None => {
            let p = password::generate(state.rng.as_ref());
            (p.clone(), Some(p))
        }
    }
}

async fn add_seat(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiJson(req): ApiJson<NewSeat>,
) -> ApiResult<Json<SeatWithPassword>> {
    let (pw, generated) = seat_password_or_generated(&state, req.password);
    let seat = gw::add_seat(
        &state.db.pool,
        &req.number,
        &pw,
        &state.config.sip.realm,
        state.now(),
    )
    .await?;
    state
        .audit_by(
            &me,
            &addr,
            "seat.create",
            &format!("seat:{}", seat.number),
            "",
        )
        .await?;
    Ok(Json(SeatWithPassword {
        seat,
        generated_password: generated,
    }))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SeatPassword {
    pub password: Option<String>,
}

async fn seat_password(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(number): ApiPath<String>,
    ApiJson(req): ApiJson<SeatPassword>,
) -> ApiResult<Json<serde_json::Value>> {
    let (pw, generated) = seat_password_or_generated(&state, req.password);
    gw::set_seat_password(
        &state.db.pool,
        &number,
        &pw,
        &state.config.sip.realm,
        state.now(),
    )
    .await?;
    state
        .audit_by(
            &me,
            &addr,
            "seat.password_reset",
            &format!("seat:{number}"),
            "",
        )
        .await?;
    Ok(Json(
        serde_json::json!({ "number": number, "generated_password": generated }),
    ))
}

async fn remove_seat(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(number): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    gw::remove_seat(&state.db.pool, &number).await?;
    state
        .audit_by(&me, &addr, "seat.delete", &format!("seat:{number}"), "")
        .await?;
    Ok(Json(serde_json::json!({ "deleted": number })))
}

#[derive(Debug, Serialize)]
pub struct SipStatus {
    pub listen: String,
    pub status: gw::GatewayStatus,
    pub bindings: Vec<gw::Binding>,
}

async fn status(State(state): State<AppState>) -> ApiResult<Json<SipStatus>> {
    let g = gateway(&state)?;
    Ok(Json(SipStatus {
        listen: g.local_addr().to_string(),
        status: g.status().await?,
        bindings: gw::list_bindings(&state.db.pool, state.now()).await?,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallsQuery {
    pub limit: Option<u32>,
}

async fn list_calls(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CallsQuery>,
) -> ApiResult<Json<Vec<gw::CallRecord>>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(gw::list_calls(&state.db.pool, limit).await?))
}

async fn get_call(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<gw::CallRecord>> {
    gw::get_call(&state.db.pool, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("通话 {id} 不存在")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickToCall {
    pub seat: String,
    pub number: String,
}

async fn click_to_call(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiJson(req): ApiJson<ClickToCall>,
) -> ApiResult<Json<serde_json::Value>> {
    let g = gateway(&state)?;
    let result = g.click_to_call(&req.seat, &req.number).await;
    let detail = match &result {
        Ok(id) => format!("call:{id}"),
        Err(e) => format!("refused: {e}"),
    };
    // Every outbound attempt is audited, refused ones too (toll-fraud guard).
    state
        .audit_by(
            &me,
            &addr,
            "call.click_to_call",
            &format!("seat:{}", req.seat),
            &detail,
        )
        .await?;
    let id = result?;
    Ok(Json(serde_json::json!({ "call_id": id })))
}

async fn hangup(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let ended = gateway(&state)?.hangup(&id).await?;
    state
        .audit_by(&me, &addr, "call.hangup", &format!("call:{id}"), "")
        .await?;
    Ok(Json(serde_json::json!({ "ended": ended })))
}

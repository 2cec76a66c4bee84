//! The IVR flow for administrators over HTTP: read it with its check result, and reload it
//! into the running server (the same check and switch as `hotline ivr reload` / SIGHUP: a
//! flow that does not load is refused with its error and the running flow stays; calls in
//! progress keep the flow they started with).

use axum::Json;
use axum::extract::State;
use axum::http::Method;
use serde_json::{Value, json};

use super::access::{Access, ApiBuilder, ClientAddr, CurrentUser, roles};
use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::contact::Library;

pub fn routes(b: ApiBuilder) -> ApiBuilder {
    b.route(
        Method::GET,
        "/api/v1/ivr/flow",
        Access::Roles(roles::ADMIN),
        "ivr",
        "查看 IVR 流程文件及校验结果",
        flow,
    )
    .route(
        Method::POST,
        "/api/v1/ivr/reload",
        Access::Roles(roles::ADMIN),
        "ivr",
        "校验并重新加载 IVR 流程与提示音（通话中的来电不受影响）",
        reload,
    )
}

/// Loads the flow and prompts as a reload would: uploaded prompts over the built-in set, the
/// calendar's special days merged in.
pub(crate) async fn load(state: &AppState) -> ApiResult<Result<Library, String>> {
    let days = state.db.special_days().await?;
    let custom = crate::contact::prompts::custom_dir(&state.config.data_dir);
    Ok(
        crate::contact::load_library(&state.config.ivr, custom, None, days)
            .await
            .map_err(|e| e.to_string()),
    )
}

fn summary(lib: &Library) -> Value {
    json!({
        "ok": true,
        "name": lib.flow.name(),
        "nodes": lib.flow.nodes().len(),
        "prompts": lib.clips.len(),
        // Weekly hours and every special day in force (the file's and the calendar's).
        "hours": lib.flow.hours(),
    })
}

async fn flow(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let path = &state.config.ivr.flow;
    let source = if path.is_empty() {
        hotline_ivr::flow::DEFAULT_FLOW_TOML.to_string()
    } else {
        tokio::fs::read_to_string(path)
            .await
            .unwrap_or_else(|e| format!("# {path}: {e}"))
    };
    let check = match load(&state).await? {
        Ok(lib) => summary(&lib),
        Err(e) => json!({ "ok": false, "error": e }),
    };
    Ok(Json(json!({
        "path": if path.is_empty() { "（内置默认流程）" } else { path.as_str() },
        "source": source,
        "check": check,
    })))
}

async fn reload(
    State(state): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
) -> ApiResult<Json<Value>> {
    let lib = load(&state)
        .await?
        .map_err(|e| ApiError::BadRequest(format!("流程未加载，仍使用当前流程：{e}")))?;
    let contact = state
        .contact
        .get()
        .ok_or_else(|| ApiError::Unavailable("呼叫中心服务未运行".into()))?;
    let out = summary(&lib);
    if !contact.reload(lib).await {
        return Err(ApiError::Unavailable("呼叫中心服务已停止".into()));
    }
    state
        .audit_by(&me, &addr, "ivr.reload", "ivr:flow", &out.to_string())
        .await?;
    Ok(Json(out))
}

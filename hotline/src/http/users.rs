//! User administration (admin only) and the audit log viewer.

use axum::Json;
use axum::extract::State;
use hotline_core::Role;
use serde::{Deserialize, Serialize};

use super::access::{ClientAddr, CurrentUser};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use super::state::AppState;
use crate::db::audit::{AuditEntry, ChainReport};
use crate::db::data_files::DataFile;
use crate::db::users::{NewUser, User, validate_username};
use crate::password;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    pub display_name: Option<String>,
    pub role: Role,
    /// When absent a password is generated and returned once.
    pub password: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct UserWithPassword {
    pub user: User,
    /// Only present when the server generated the password; shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_password: Option<String>,
}

/// `GET /api/v1/users`.
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(state.db.list_users().await?))
}

async fn hashed(state: &AppState, given: Option<String>) -> ApiResult<(String, Option<String>)> {
    let (pw, generated) = match given {
        Some(p) => {
            password::check_policy(&p).map_err(|_| {
                ApiError::BadRequest(format!("密码至少需要 {} 个字符", password::MIN_LENGTH))
            })?;
            (p, None)
        }
        None => {
            let p = password::generate(state.rng.as_ref());
            (p.clone(), Some(p))
        }
    };
    let hash = tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok((hash, generated))
}

/// `POST /api/v1/users`.
pub async fn create(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiJson(req): ApiJson<CreateUser>,
) -> ApiResult<Json<UserWithPassword>> {
    validate_username(&req.username).map_err(ApiError::BadRequest)?;
    let (hash, generated) = hashed(&state, req.password).await?;
    let now = state.now();
    let display = req.display_name.unwrap_or_else(|| req.username.clone());
    let user = state
        .db
        .create_user(
            now,
            state.rng.as_ref(),
            NewUser {
                username: &req.username,
                display_name: &display,
                role: req.role,
                password_hash: &hash,
            },
        )
        .await?;
    audit(
        &state,
        &me,
        "user.create",
        &user.username,
        user.role.as_str(),
        &addr,
    )
    .await?;
    Ok(Json(UserWithPassword {
        user,
        generated_password: generated,
    }))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    pub password: Option<String>,
}

/// `POST /api/v1/users/{username}/password`: set or generate a new password; ends the user's
/// sessions.
pub async fn reset_password(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(username): ApiPath<String>,
    ApiJson(req): ApiJson<ResetPassword>,
) -> ApiResult<Json<UserWithPassword>> {
    let (hash, generated) = hashed(&state, req.password).await?;
    let user = state
        .db
        .set_password_hash(state.now(), &username, &hash)
        .await?;
    state.db.delete_sessions_of(&user.id).await?;
    audit(&state, &me, "user.password_reset", &username, "", &addr).await?;
    Ok(Json(UserWithPassword {
        user,
        generated_password: generated,
    }))
}

async fn set_disabled(
    state: AppState,
    addr: String,
    me: CurrentUser,
    username: String,
    disabled: bool,
) -> ApiResult<Json<User>> {
    if disabled && username == me.user.username {
        return Err(ApiError::BadRequest("不能停用自己的账号".into()));
    }
    let user = state
        .db
        .set_disabled(state.now(), &username, disabled)
        .await?;
    let action = if disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    audit(&state, &me, action, &username, "", &addr).await?;
    Ok(Json(user))
}

/// `POST /api/v1/users/{username}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<User>> {
    set_disabled(state, addr, me, username, true).await
}

/// `POST /api/v1/users/{username}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<User>> {
    set_disabled(state, addr, me, username, false).await
}

async fn audit(
    state: &AppState,
    me: &CurrentUser,
    action: &str,
    target: &str,
    detail: &str,
    addr: &str,
) -> ApiResult<()> {
    let target = format!("user:{target}");
    Ok(state.audit_by(me, addr, action, &target, detail).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub limit: Option<i64>,
}

/// `GET /api/v1/audit`.
pub async fn audit_log(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(
        state.db.audit_entries(q.action.as_deref(), limit).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFilesQuery {
    /// Only the records of the file with this SHA-256 (hex).
    pub sha256: Option<String>,
    pub limit: Option<i64>,
}

/// `GET /api/v1/data-files`: the register of imported and exported files with their digests.
pub async fn data_files(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DataFilesQuery>,
) -> ApiResult<Json<Vec<DataFile>>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(state.db.data_files(q.sha256.as_deref(), limit).await?))
}

/// `GET /api/v1/audit/verify`: walks the audit hash chain (as `hotline audit verify`).
pub async fn audit_verify(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(match state.db.verify_audit().await? {
        ChainReport::Intact(n) => serde_json::json!({ "ok": true, "entries": n }),
        ChainReport::Broken { good, first } => serde_json::json!({
            "ok": false,
            "entries_ok": good,
            "first_broken": { "id": first.id, "seq": first.seq, "problem": first.problem.to_string() },
        }),
    }))
}

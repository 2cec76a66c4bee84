//! Login, logout and the current user.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hotline_core::{Event, UnixMillis};
use serde::{Deserialize, Serialize};

use super::access::{CSRF_COOKIE, ClientAddr, CurrentUser, SESSION_COOKIE, cookie};
use super::error::{ApiError, ApiJson, ApiResult};
use super::state::AppState;
use crate::db::audit::Audit;
use crate::db::sessions::hash_token;
use crate::db::users::User;
use crate::password;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize)]
pub struct SessionInfo {
    pub user: User,
    /// Send back in the `X-CSRF-Token` header of every state-changing request.
    pub csrf_token: String,
    pub expires_at: UnixMillis,
}

fn set_cookie(
    name: &str,
    value: &str,
    max_age_secs: i64,
    http_only: bool,
    secure: bool,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; SameSite=Strict; Max-Age={max_age_secs}");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie values are hex")
}

/// `POST /api/v1/auth/login`.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let now = state.now();
    let username = req.username.trim().to_string();
    let blocked = state
        .login_throttle
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .blocked_until(now, &username, &addr);
    if let Some(until) = blocked {
        state.login_failures.with(&[("reason", "blocked")]).inc();
        audit(
            &state,
            now,
            &username,
            "auth.login_blocked",
            &username,
            &addr,
        )
        .await?;
        return Err(ApiError::TooManyRequests {
            retry_after_secs: u64::try_from((until - now) / 1000 + 1).unwrap_or(1),
        });
    }

    let found = state.db.user_with_hash(&username).await?;
    let hash = found
        .as_ref()
        .map_or_else(|| password::dummy_hash().to_string(), |(_, h)| h.clone());
    let pw = req.password;
    let ok = tokio::task::spawn_blocking(move || password::verify(&pw, &hash))
        .await
        .map_err(ApiError::internal)?;
    let user = match found {
        Some((user, _)) if ok => user,
        _ => {
            state.login_failures.with(&[("reason", "password")]).inc();
            let now_blocked = state
                .login_throttle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .failure(now, &username, &addr);
            let detail = if now_blocked { "blocked" } else { "" };
            state
                .db
                .audit(
                    now,
                    state.rng.as_ref(),
                    Audit {
                        actor: &username,
                        action: "auth.login_failed",
                        target: &username,
                        detail,
                        remote_addr: &addr,
                    },
                )
                .await?;
            tracing::warn!(%username, %addr, "login failed");
            return Err(ApiError::LoginFailed);
        }
    };
    if user.disabled {
        audit(
            &state,
            now,
            &username,
            "auth.login_disabled",
            &username,
            &addr,
        )
        .await?;
        return Err(ApiError::AccountDisabled);
    }
    state
        .login_throttle
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .success(now, &username);

    // Session fixation: whatever session the browser had is dropped; a new token is issued.
    if let Some(old) = cookie(&headers, SESSION_COOKIE) {
        state.db.delete_session(&hash_token(old)).await?;
    }
    let policy = state.session_policy();
    let issued = state
        .db
        .create_session(now, state.rng.as_ref(), &user.id, policy, &addr)
        .await?;
    audit(&state, now, &username, "auth.login", &username, &addr).await?;
    state.events.publish(Event::UserLoggedIn {
        at: now,
        username: username.clone(),
    });

    let secure = state.config.http.secure_cookies;
    let max_age = policy.max_ms / 1000;
    let mut resp = Json(SessionInfo {
        user,
        csrf_token: issued.csrf_token.clone(),
        expires_at: issued.expires_at,
    })
    .into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &issued.token, max_age, true, secure),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(CSRF_COOKIE, &issued.csrf_token, max_age, false, secure),
    );
    Ok(resp)
}

async fn audit(
    state: &AppState,
    now: UnixMillis,
    actor: &str,
    action: &str,
    target: &str,
    addr: &str,
) -> ApiResult<()> {
    state
        .db
        .audit(
            now,
            state.rng.as_ref(),
            Audit {
                actor,
                action,
                target,
                detail: "",
                remote_addr: addr,
            },
        )
        .await?;
    Ok(())
}

/// `POST /api/v1/auth/logout`.
pub async fn logout(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
) -> ApiResult<Response> {
    let now = state.now();
    state.db.delete_session(&me.session.token_hash).await?;
    audit(
        &state,
        now,
        &me.user.username,
        "auth.logout",
        &me.user.username,
        &addr,
    )
    .await?;
    let secure = state.config.http.secure_cookies;
    let mut resp = Json(serde_json::json!({ "status": "logged_out" })).into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, true, secure),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(CSRF_COOKIE, "", 0, false, secure),
    );
    Ok(resp)
}

/// `GET /api/v1/me`.
pub async fn me(me: CurrentUser) -> Json<SessionInfo> {
    Json(SessionInfo {
        user: me.user,
        csrf_token: me.session.csrf_token,
        expires_at: me.session.expires_at,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// `POST /api/v1/me/password`: change one's own password (the current one is required).
pub async fn change_own_password(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiJson(req): ApiJson<ChangePassword>,
) -> ApiResult<Json<serde_json::Value>> {
    password::check_policy(&req.new_password).map_err(|_| {
        ApiError::BadRequest(format!("新密码至少需要 {} 个字符", password::MIN_LENGTH))
    })?;
    let (_, hash) = state
        .db
        .user_with_hash(&me.user.username)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let (current, new) = (req.current_password, req.new_password);
    let new_hash = tokio::task::spawn_blocking(move || {
        password::verify(&current, &hash)
            .then(|| password::hash(&new))
            .transpose()
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?
    .ok_or_else(|| ApiError::BadRequest("当前密码不正确".into()))?;
    let now = state.now();
    state
        .db
        .set_password_hash(now, &me.user.username, &new_hash)
        .await?;
    audit(
        &state,
        now,
        &me.user.username,
        "user.password_changed",
        &me.user.username,
        &addr,
    )
    .await?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

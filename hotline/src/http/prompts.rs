//! The IVR's prompts over HTTP (issue 10): list them, listen to any of them, upload a
//! replacement recording (a professionally recorded 欢迎词 in WAV, MP3, OGG or FLAC) and
//! revert to the built-in one. An upload is decoded and checked (format, length, silence),
//! the library is rebuilt with it and only then is the file written (atomically) and the
//! running IVR switched, so new calls hear it at once and a refused upload changes nothing.
//! Storage: [`crate::contact::prompts`]; operator documentation: docs/ivr.md.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hotline_ivr::audio::check::{MAX_PROMPT_MS, accept_upload};
use hotline_ivr::audio::wav_bytes;
use hotline_ivr::prompts::valid_name;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{Access, ApiBuilder, ClientAddr, CurrentUser, roles};
use super::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use super::state::AppState;
use crate::contact::prompts::{CustomPrompts, PromptChange, PromptEntry, PromptSource, custom_dir};

/// Uploaded recordings up to this size (the global limit is 1 MiB; two minutes of 48 kHz
/// stereo WAV is 23 MB).
pub const MAX_PROMPT_UPLOAD_BYTES: usize = 32 * 1024 * 1024;

/// What the prompt routes share besides [`AppState`].
#[derive(Debug, Default)]
pub struct PromptsHttp {
    /// One change at a time: each builds the library from the files on disk plus itself,
    /// so two at once could each switch to a library without the other's change.
    changing: tokio::sync::Mutex<()>,
}

type Ctx = Arc<PromptsHttp>;

macro_rules! with_ctx {
    ($ctx:expr, $f:path, |$($a:ident : $t:ty),*|) => {{
        let c = $ctx.clone();
        move |$($a: $t),*| $f(c.clone(), $($a),*)
    }};
}

pub fn routes(b: ApiBuilder, ctx: Ctx) -> ApiBuilder {
    b.route(
        Method::GET,
        "/api/v1/prompts",
        Access::Roles(roles::ADMIN_SUPERVISOR),
        "ivr",
        "提示音列表（内容、时长、内置或上传）",
        list,
    )
    .route(
        Method::GET,
        "/api/v1/prompts/{name}/audio",
        Access::Roles(roles::ADMIN_SUPERVISOR),
        "ivr",
        "试听提示音（WAV，名称中的 / 写作 %2F）",
        audio,
    )
    .route(
        Method::PUT,
        "/api/v1/prompts/{name}",
        Access::Roles(roles::ADMIN),
        "ivr",
        "上传替换提示音录音（WAV/MP3/OGG/FLAC，校验后立即生效）",
        with_ctx!(ctx, upload, |s: State<AppState>, me: CurrentUser, a: ClientAddr, p: ApiPath<String>, q: ApiQuery<UploadQuery>, body: Result<Bytes, BytesRejection>|)
            .layer(DefaultBodyLimit::max(MAX_PROMPT_UPLOAD_BYTES)),
    )
    .route(
        Method::DELETE,
        "/api/v1/prompts/{name}",
        Access::Roles(roles::ADMIN),
        "ivr",
        "删除上传的录音，恢复内置提示音",
        with_ctx!(ctx, revert, |s: State<AppState>, me: CurrentUser, a: ClientAddr, p: ApiPath<String>|),
    )
}

fn custom(state: &AppState) -> CustomPrompts {
    CustomPrompts::new(custom_dir(&state.config.data_dir))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)
}

/// The configured prompt set; a set that cannot be read is the operator's to fix (503).
async fn source(state: &AppState) -> ApiResult<PromptSource> {
    let cfg = state.config.ivr.clone();
    blocking(move || PromptSource::new(&cfg, std::path::Path::new(".")))
        .await?
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// `name` if the configured set has such a prompt (404 otherwise).
fn known(source: &PromptSource, name: &str) -> ApiResult<()> {
    if valid_name(name) && source.catalog().contains(name) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("提示音 {name} 不存在")))
    }
}

fn entry(state: &AppState, source: &PromptSource, name: &str) -> Option<PromptEntry> {
    custom(state)
        .list(source)
        .into_iter()
        .find(|e| e.name == name)
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let source = source(&state).await?;
    let st = state.clone();
    let items = blocking(move || custom(&st).list(&source)).await?;
    Ok(Json(json!({ "items": items, "max_ms": MAX_PROMPT_MS })))
}

async fn audio(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Response> {
    let source = source(&state).await?;
    known(&source, &name)?;
    let st = state.clone();
    let wav = blocking(move || match custom(&st).read(&name) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => source.builtin_wav(&name).map_err(ApiError::internal),
        Err(e) => Err(ApiError::internal(e)),
    })
    .await??;
    let mut resp = wav.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    Ok(resp)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The uploaded file's name (its extension is a format hint, and it goes to the audit).
    #[serde(default)]
    pub file_name: Option<String>,
}

/// Rebuilds the library as it will be after `change` (refusing it when the library would
/// not load), then runs `write`, then switches the running IVR to the new library.
async fn apply(
    state: &AppState,
    change: PromptChange,
    write: impl FnOnce() -> std::io::Result<()> + Send + 'static,
) -> ApiResult<()> {
    // The calendar's special days stay merged in (as at every other reload).
    let days = state.db.special_days().await?;
    let dir = custom_dir(&state.config.data_dir);
    let lib = crate::contact::load_library(&state.config.ivr, dir, Some(change), days)
        .await
        .map_err(|e| ApiError::Conflict(format!("IVR 流程或提示音无法加载，未做更改：{e}")))?;
    blocking(write).await?.map_err(ApiError::internal)?;
    // Without a running contact centre (tools, tests) the files are what the next start
    // loads; with one, new calls hear the change from now on.
    if let Some(contact) = state.contact.get()
        && !contact.reload(lib).await
    {
        tracing::warn!("the contact centre stopped; the prompt change applies at the next start");
    }
    Ok(())
}

fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(json!({ "error": {
            "code": "payload_too_large",
            "message": format!("文件过大：提示音录音最大 {} MB", MAX_PROMPT_UPLOAD_BYTES / 1024 / 1024),
        }})),
    )
        .into_response()
}

async fn upload(
    ctx: Ctx,
    State(state): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Ok(too_large()),
        Err(e) => return Err(ApiError::BadRequest(format!("无法读取上传内容：{e}"))),
    };
    let _one = ctx.changing.lock().await;
    let source = source(&state).await?;
    known(&source, &name)?;
    if body.is_empty() {
        return Err(ApiError::BadRequest("请求体为空：请上传录音文件".into()));
    }
    let file_name = q.file_name.unwrap_or_default();
    let (size, hint) = (body.len(), file_name.clone());
    let (pcm, stats) = blocking(move || accept_upload(&hint, body.to_vec()))
        .await?
        .map_err(|e| {
            tracing::info!(prompt = %name, error = %e, "prompt upload refused");
            ApiError::BadRequest(e.message_zh())
        })?;
    let wav = wav_bytes(&pcm);
    let (store, rng, n) = (custom(&state), state.rng.clone(), name.clone());
    apply(
        &state,
        PromptChange::Replace {
            name: name.clone(),
            pcm: pcm.into(),
        },
        move || store.store(&n, &wav, rng.as_ref()),
    )
    .await?;
    state
        .audit_by(
            &me,
            &addr,
            "prompt.upload",
            &format!("prompt:{name}"),
            &format!(
                "file={file_name} bytes={size} duration_ms={} loudest_dbfs={:.1}",
                stats.duration_ms, stats.loudest_dbfs
            ),
        )
        .await?;
    let st = state.clone();
    let e = blocking(move || entry(&st, &source, &name)).await?;
    Ok(Json(e).into_response())
}

async fn revert(
    ctx: Ctx,
    State(state): State<AppState>,
    me: CurrentUser,
    ClientAddr(addr): ClientAddr,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Option<PromptEntry>>> {
    let _one = ctx.changing.lock().await;
    let source = source(&state).await?;
    known(&source, &name)?;
    let store = custom(&state);
    if store.stored_at(&name).is_none() {
        return Err(ApiError::NotFound(format!(
            "提示音 {name} 没有上传的录音，已是内置录音"
        )));
    }
    let n = name.clone();
    apply(
        &state,
        PromptChange::Revert { name: name.clone() },
        move || store.remove(&n).map(|_| ()),
    )
    .await?;
    state
        .audit_by(&me, &addr, "prompt.revert", &format!("prompt:{name}"), "")
        .await?;
    let st = state.clone();
    Ok(Json(blocking(move || entry(&st, &source, &name)).await?))
}

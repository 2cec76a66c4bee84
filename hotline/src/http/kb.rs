//! The knowledge base over HTTP: search (agents see published, currently valid articles only),
//! articles with versions, diff and restore (business staff and supervisors edit and
//! publish), JSON import/export, and the confident best answer used by auto-reply.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use hotline_core::Role;
use hotline_knowledge::{
    Answer, Article, ArticleInput, ArticlePage, ArticleStatus, ArticleVersion, ErrorClass,
    ImportReport, KnowledgeBase, KnowledgeError, ListFilter, SearchQuery, SearchResults,
    VersionDiff,
};
use serde::Deserialize;

use super::access::{Access, ApiBuilder, ClientAddr, CurrentUser};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use super::state::AppState;

/// Who edits, publishes and imports articles.
const EDIT: &[Role] = &[Role::Business, Role::Supervisor];
/// Who reads (published articles for agents; editors see every status).
const READ: &[Role] = &[
    Role::Agent,
    Role::Business,
    Role::Supervisor,
    Role::ComplaintOfficer,
    Role::QaReviewer,
    Role::Admin,
];

pub fn routes(b: ApiBuilder) -> ApiBuilder {
    use axum::http::Method;
    let read = Access::Roles(READ);
    let edit = Access::Roles(EDIT);
    b.route(
        Method::GET,
        "/api/v1/kb/search",
        read,
        "kb",
        "知识库检索",
        search,
    )
    .route(
        Method::GET,
        "/api/v1/kb/answer",
        read,
        "kb",
        "最佳答案（自动回复用）",
        answer,
    )
    .route(
        Method::GET,
        "/api/v1/kb/articles",
        read,
        "kb",
        "文章列表",
        list,
    )
    .route(
        Method::POST,
        "/api/v1/kb/articles",
        edit,
        "kb",
        "新建文章",
        create,
    )
    .route(
        Method::GET,
        "/api/v1/kb/articles/{id}",
        read,
        "kb",
        "文章详情",
        get,
    )
    .route(
        Method::PUT,
        "/api/v1/kb/articles/{id}",
        edit,
        "kb",
        "修改文章",
        update,
    )
    .route(
        Method::DELETE,
        "/api/v1/kb/articles/{id}",
        edit,
        "kb",
        "删除文章",
        delete,
    )
    .route(
        Method::POST,
        "/api/v1/kb/articles/{id}/publish",
        edit,
        "kb",
        "发布文章",
        publish,
    )
    .route(
        Method::POST,
        "/api/v1/kb/articles/{id}/archive",
        edit,
        "kb",
        "归档文章",
        archive,
    )
    .route(
        Method::GET,
        "/api/v1/kb/articles/{id}/versions",
        edit,
        "kb",
        "历史版本",
        versions,
    )
    .route(
        Method::GET,
        "/api/v1/kb/articles/{id}/diff",
        edit,
        "kb",
        "版本对比",
        diff,
    )
    .route(
        Method::POST,
        "/api/v1/kb/articles/{id}/restore",
        edit,
        "kb",
        "恢复历史版本",
        restore,
    )
    .route(
        Method::POST,
        "/api/v1/kb/import",
        edit,
        "kb",
        "导入文章（JSON）",
        import,
    )
    .route(
        Method::GET,
        "/api/v1/kb/export",
        edit,
        "kb",
        "导出文章（JSON）",
        export,
    )
}

fn kb(state: &AppState) -> ApiResult<Arc<KnowledgeBase>> {
    state
        .knowledge
        .get()
        .cloned()
        .ok_or_else(|| ApiError::Unavailable("the knowledge base is not open".into()))
}

impl From<KnowledgeError> for ApiError {
    fn from(e: KnowledgeError) -> Self {
        match e.class() {
            ErrorClass::NotFound => ApiError::NotFound(e.to_string()),
            ErrorClass::Conflict => ApiError::Conflict(e.to_string()),
            ErrorClass::Invalid => ApiError::BadRequest(e.to_string()),
            ErrorClass::Internal => ApiError::internal(e),
        }
    }
}

fn is_editor(me: &CurrentUser) -> bool {
    EDIT.contains(&me.user.role)
}

/// `GET /api/v1/kb/search?text=…&category=…&status=…&tag=…&offset=…&limit=…`
async fn search(
    State(state): State<AppState>,
    me: CurrentUser,
    ApiQuery(mut q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    if !is_editor(&me) {
        // Agents and the other readers see what is published and valid now, whatever they ask.
        q.status = Some(ArticleStatus::Published);
        q.valid_at = Some(state.now());
    }
    Ok(Json(kb(&state)?.search(q).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerQuery {
    q: String,
}

/// `GET /api/v1/kb/answer?q=…`: the top article only when confident, else `null`.
async fn answer(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AnswerQuery>,
) -> ApiResult<Json<Option<Answer>>> {
    Ok(Json(kb(&state)?.best_answer(&q.q).await?))
}

async fn list(
    State(state): State<AppState>,
    me: CurrentUser,
    ApiQuery(mut f): ApiQuery<ListFilter>,
) -> ApiResult<Json<ArticlePage>> {
    if !is_editor(&me) {
        f.status = Some(ArticleStatus::Published);
    }
    Ok(Json(kb(&state)?.list(&f).await?))
}

async fn get(
    State(state): State<AppState>,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Article>> {
    let article = kb(&state)?.get(&id).await?;
    if !is_editor(&me) && article.content.status != ArticleStatus::Published {
        return Err(ApiError::NotFound(format!("article {id}")));
    }
    Ok(Json(article))
}

async fn create(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiJson(input): ApiJson<ArticleInput>,
) -> ApiResult<Json<Article>> {
    let a = kb(&state)?.create(&input, &me.user.username).await?;
    state
        .audit_by(&me, &addr, "kb.create", &format!("kb:{}", a.id), "")
        .await?;
    Ok(Json(a))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateArticle {
    article: ArticleInput,
    /// The version the editor started from; a newer one in the database → 409.
    expected_version: Option<i64>,
}

async fn update(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdateArticle>,
) -> ApiResult<Json<Article>> {
    let a = kb(&state)?
        .update(&id, &req.article, req.expected_version, &me.user.username)
        .await?;
    state
        .audit_by(&me, &addr, "kb.update", &format!("kb:{id}"), "")
        .await?;
    Ok(Json(a))
}

async fn delete(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    kb(&state)?.delete(&id).await?;
    state
        .audit_by(&me, &addr, "kb.delete", &format!("kb:{id}"), "")
        .await?;
    Ok(Json(serde_json::json!({ "deleted": id })))
}

async fn publish(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Article>> {
    let a = kb(&state)?.publish(&id, &me.user.username).await?;
    state
        .audit_by(&me, &addr, "kb.publish", &format!("kb:{id}"), "")
        .await?;
    Ok(Json(a))
}

async fn archive(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Article>> {
    let a = kb(&state)?.archive(&id, &me.user.username).await?;
    state
        .audit_by(&me, &addr, "kb.archive", &format!("kb:{id}"), "")
        .await?;
    Ok(Json(a))
}

async fn versions(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<ArticleVersion>>> {
    Ok(Json(kb(&state)?.versions(&id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    from: i64,
    to: i64,
}

async fn diff(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> ApiResult<Json<VersionDiff>> {
    Ok(Json(kb(&state)?.diff(&id, q.from, q.to).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreRequest {
    version: i64,
}

async fn restore(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RestoreRequest>,
) -> ApiResult<Json<Article>> {
    let a = kb(&state)?
        .restore(&id, req.version, &me.user.username)
        .await?;
    state
        .audit_by(&me, &addr, "kb.restore", &format!("kb:{id}"), "")
        .await?;
    Ok(Json(a))
}

/// `POST /api/v1/kb/import` with the JSON export format; all-or-nothing, idempotent.
async fn import(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> ApiResult<Json<ImportReport>> {
    let text = body.to_string();
    let report = kb(&state)?.import_json(&text, &me.user.username).await?;
    state.audit_by(&me, &addr, "kb.import", "kb", "").await?;
    state
        .record_file(
            &me.user.username,
            &addr,
            crate::db::data_files::Direction::Import,
            "kb_import",
            "kb.json",
            text.as_bytes(),
        )
        .await?;
    Ok(Json(report))
}

async fn export(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    me: CurrentUser,
) -> ApiResult<axum::response::Response> {
    let text = kb(&state)?.export_json().await?;
    state.audit_by(&me, &addr, "kb.export", "kb", "").await?;
    // The client receives exactly these bytes, so the recorded digest matches its file.
    state
        .record_file(
            &me.user.username,
            &addr,
            crate::db::data_files::Direction::Export,
            "kb_export",
            "kb.json",
            text.as_bytes(),
        )
        .await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response())
}

//! Who may call what: the permission check lives here, in one place. Every API route is
//! registered through [`ApiBuilder`] with its [`Access`]; the builder attaches the guard to the
//! route and keeps the [`RouteSpec`] list from which the OpenAPI document and the route ×
//! role test are generated.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use hotline_core::Role;

use super::error::ApiError;
use super::state::AppState;
use crate::db::sessions::{Session, hash_token};
use crate::db::users::User;

pub const SESSION_COOKIE: &str = "hotline_session";
pub const CSRF_COOKIE: &str = "hotline_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health checks, login, the OpenAPI document).
    Public,
    /// Anyone, also from pages of other sites: the website chat widget's visitor API. It
    /// uses no cookie, so the cross-site check (which protects cookie sessions) does not
    /// apply; the route checks its callers itself (CORS allow-list, rate limits, sizes).
    Visitor,
    /// Any logged-in user.
    AnyUser,
    /// A logged-in user with one of these roles.
    Roles(&'static [Role]),
}

impl Access {
    /// No session needed.
    pub fn is_public(self) -> bool {
        matches!(self, Access::Public | Access::Visitor)
    }

    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public | Access::Visitor | Access::AnyUser => true,
            Access::Roles(roles) => roles.contains(&role),
        }
    }
}

/// Role sets used by the route table.
pub mod roles {
    use hotline_core::Role;
    pub const ADMIN: &[Role] = &[Role::Admin];
    pub const ADMIN_SUPERVISOR: &[Role] = &[Role::Admin, Role::Supervisor];
}

/// One API route as documented and checked.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub tag: &'static str,
}

/// The logged-in user of this request, put there by the guard.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub session: Session,
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

/// The client's address as text (for throttling and the audit log).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string()),
        ))
    }
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A browser request from another site may not change anything: refuse unsafe methods whose
/// `Origin` is not this host, or that the browser labels cross-site (Fetch Metadata).
fn cross_site(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return true;
    }
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
    origin_host != host
}

async fn guard(
    State((state, access)): State<(AppState, Access)>,
    mut req: Request,
    next: Next,
) -> Response {
    match check(&state, access, &mut req).await {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn check(state: &AppState, access: Access, req: &mut Request) -> Result<(), ApiError> {
    if access == Access::Visitor {
        return Ok(());
    }
    let unsafe_method = !is_safe(req.method());
    if unsafe_method && cross_site(req.headers()) {
        return Err(ApiError::Csrf);
    }
    if access == Access::Public {
        return Ok(());
    }
    let token = cookie(req.headers(), SESSION_COOKIE).ok_or(ApiError::Unauthorized)?;
    let (session, user) = state
        .db
        .session_user(state.now(), token, state.session_policy())
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if !access.allows(user.role) {
        return Err(ApiError::Forbidden);
    }
    // Double-submit check (OWASP CSRF cheat sheet): the token given at login must come back
    // in a header, which a cross-site form or image cannot set.
    if unsafe_method {
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
            return Err(ApiError::Csrf);
        }
    }
    debug_assert_eq!(session.token_hash, hash_token(token));
    req.extensions_mut().insert(CurrentUser { user, session });
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Builds the API router and its route table together.
pub struct ApiBuilder {
    state: AppState,
    router: Router<AppState>,
    specs: Vec<RouteSpec>,
}

impl ApiBuilder {
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            router: Router::new(),
            specs: Vec::new(),
        }
    }

    pub fn route<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        tag: &'static str,
        summary: &'static str,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("standard method");
        let guarded = on(filter, handler).route_layer(middleware::from_fn_with_state(
            (self.state.clone(), access),
            guard,
        ));
        self.router = self.router.route(path, guarded);
        self.specs.push(RouteSpec {
            method,
            path,
            access,
            summary,
            tag,
        });
        self
    }

    /// Adds a feature's routes (each feature module exposes `fn routes(ApiBuilder) -> ApiBuilder`).
    pub fn with(self, add: impl FnOnce(Self) -> Self) -> Self {
        add(self)
    }

    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }

    pub fn finish(self) -> (Router<AppState>, Vec<RouteSpec>) {
        (self.router, self.specs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; hotline_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn detects_cross_site_requests() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_site(&h));
        let mut h2 = HeaderMap::new();
        h2.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h2));
    }

    #[test]
    fn access_rules() {
        assert!(Access::AnyUser.allows(Role::Agent));
        assert!(Access::Roles(roles::ADMIN).allows(Role::Admin));
        assert!(!Access::Roles(roles::ADMIN).allows(Role::Supervisor));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}

//! The web console (zh-CN): server-rendered page shells (minijinja templates embedded in the
//! binary) with a little plain JavaScript per page that talks to the JSON API, and live
//! updates over server-sent events ([`live`]). No CDN: templates, scripts, styles and the chart
//! code are compiled into the binary, so the console works offline.
//!
//! Every page is declared once in [`PAGES`] with the roles that may open it; the navigation a
//! user sees is made from the same table, so a role never sees a link it cannot follow. Pages
//! check the session cookie themselves and send the browser to the login page when there is
//! none; the API behind them keeps its own per-route checks (`http::access`).
//!
//! A strict Content-Security-Policy (no inline script or style, everything from this origin)
//! goes on every page; the CSRF token a page's script must send back is put in a `<meta>` tag.

pub mod live;

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use hotline_core::Role;
use minijinja::{Environment, context};
use serde::Serialize;

use crate::db::users::User;
use crate::http::AppState;
use crate::http::access::{SESSION_COOKIE, cookie};

/// One page of the console.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub path: &'static str,
    /// Names the template (`templates/<key>.html`) and the script (`static/js/<key>.js`).
    pub key: &'static str,
    pub title: &'static str,
    pub roles: &'static [Role],
}

use Role::{Admin, Agent, Business, ComplaintOfficer, QaReviewer, Supervisor};

/// Every page, in navigation order. The roles follow the API routes each page uses.
pub const PAGES: &[Page] = &[
    Page {
        path: "/desk",
        key: "desk",
        title: "坐席工作台",
        roles: &[Agent, Supervisor],
    },
    Page {
        path: "/wallboard",
        key: "wallboard",
        title: "监控大屏",
        roles: &[Supervisor, Admin],
    },
    Page {
        path: "/qa",
        key: "qa",
        title: "录音质检",
        roles: &[QaReviewer, Supervisor, ComplaintOfficer],
    },
    Page {
        path: "/complaints",
        key: "complaints",
        title: "投诉处理",
        roles: &[ComplaintOfficer],
    },
    Page {
        path: "/tickets",
        key: "tickets",
        title: "工单",
        roles: &[Agent, Supervisor, Admin, ComplaintOfficer, Business],
    },
    Page {
        path: "/contacts",
        key: "contacts",
        title: "来电人档案",
        roles: &[Agent, Supervisor, Admin, ComplaintOfficer, Business],
    },
    Page {
        path: "/callbacks",
        key: "callbacks",
        title: "回访任务",
        roles: &[Agent, Supervisor, Admin, ComplaintOfficer],
    },
    Page {
        path: "/kb",
        key: "kb",
        title: "知识库",
        roles: &[Business, Supervisor],
    },
    Page {
        path: "/data",
        key: "data",
        title: "竞价数据",
        roles: &[Business, Admin],
    },
    Page {
        path: "/sms",
        key: "sms",
        title: "短信通知",
        roles: &[Business, Admin, Supervisor],
    },
    Page {
        path: "/reports",
        key: "reports",
        title: "统计报表",
        roles: &[Supervisor, Admin, ComplaintOfficer],
    },
    Page {
        path: "/health",
        key: "health",
        title: "系统状态",
        roles: &[Admin, Supervisor],
    },
    Page {
        path: "/admin",
        key: "admin",
        title: "系统管理",
        roles: &[Admin],
    },
];

/// The pages `role` may open, in navigation order.
pub fn pages_for(role: Role) -> impl Iterator<Item = &'static Page> {
    PAGES.iter().filter(move |p| p.roles.contains(&role))
}

/// Where a user of `role` lands after login: the page of their daily work.
pub fn home_for(role: Role) -> &'static str {
    match role {
        Agent => "/desk",
        Supervisor => "/wallboard",
        QaReviewer => "/qa",
        ComplaintOfficer => "/complaints",
        Business => "/data",
        Admin => "/admin",
    }
}

/// The policy on every page: scripts, styles, media and connections from this origin only;
/// no inline script (the CSRF token travels in a meta tag, not in a script), no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; \
     font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self'";

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../web/templates/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates!(
    "layout.html",
    "login.html",
    "account.html",
    "denied.html",
    "desk.html",
    "wallboard.html",
    "qa.html",
    "complaints.html",
    "tickets.html",
    "contacts.html",
    "callbacks.html",
    "kb.html",
    "data.html",
    "sms.html",
    "reports.html",
    "health.html",
    "admin.html",
);

macro_rules! assets {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!("../../web/static/", $name)).as_slice())),*]
    };
}

/// Static files: (path under /static/, bytes).
const ASSETS: &[(&str, &[u8])] = assets!(
    "app.css",
    "js/common.js",
    "js/chart.js",
    "js/login.js",
    "js/account.js",
    "js/desk.js",
    "js/wallboard.js",
    "js/qa.js",
    "js/complaints.js",
    "js/tickets.js",
    "js/contacts.js",
    "js/callbacks.js",
    "js/kb.js",
    "js/data.js",
    "js/sms.js",
    "js/reports.js",
    "js/health.js",
    "js/admin.js",
    "js/alerts.js",
);

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src)
                .unwrap_or_else(|e| panic!("template {name} does not parse: {e}"));
        }
        env
    })
}

#[derive(Serialize)]
struct NavItem {
    path: &'static str,
    title: &'static str,
    active: bool,
}

#[derive(Serialize)]
struct UserView<'a> {
    username: &'a str,
    display_name: &'a str,
    role: &'static str,
    role_label: &'static str,
}

fn html(status: StatusCode, body: String) -> Response {
    let mut resp = (status, Html(body)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn render(template: &str, ctx: minijinja::Value) -> Response {
    match env().get_template(template).and_then(|t| t.render(ctx)) {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => {
            tracing::error!(error = %e, template, "console template failed");
            html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><meta charset=utf-8><p>页面出错，请稍后再试。</p>".into(),
            )
        }
    }
}

fn nav(role: Role, current: &str) -> Vec<NavItem> {
    pages_for(role)
        .map(|p| NavItem {
            path: p.path,
            title: p.title,
            active: p.path == current,
        })
        .collect()
}

/// The logged-in user of a page request, or `None` (no cookie, expired or unknown session).
async fn page_user(state: &AppState, headers: &HeaderMap) -> Option<(User, String)> {
    let token = cookie(headers, SESSION_COOKIE)?;
    match state
        .db
        .session_user(state.now(), token, state.session_policy())
        .await
    {
        Ok(Some((session, user))) => Some((user, session.csrf_token)),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "console: session lookup failed");
            None
        }
    }
}

fn to_login(uri: &Uri) -> Response {
    let next = uri.path_and_query().map_or("/", |p| p.as_str());
    // Only our own paths go into `next` (no open redirect): they start with one slash.
    let next = if next.starts_with('/') && !next.starts_with("//") {
        next
    } else {
        "/"
    };
    Redirect::to(&format!("/login?next={}", encode_query(next))).into_response()
}

fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn show_page(state: AppState, headers: HeaderMap, uri: Uri, page: &'static Page) -> Response {
    let Some((user, csrf)) = page_user(&state, &headers).await else {
        return to_login(&uri);
    };
    let allowed = page.roles.contains(&user.role);
    let ctx = context! {
        title => page.title,
        page => page.key,
        // A refused page loads no script: its elements are not there.
        script => allowed.then_some(page.key),
        user => UserView {
            username: &user.username,
            display_name: &user.display_name,
            role: user.role.as_str(),
            role_label: user.role.label_zh(),
        },
        nav => nav(user.role, page.path),
        csrf => csrf,
        sees_personal_data => user.role.sees_personal_data(),
    };
    if !allowed {
        let mut resp = render("denied.html", ctx);
        *resp.status_mut() = StatusCode::FORBIDDEN;
        return resp;
    }
    render(&format!("{}.html", page.key), ctx)
}

async fn account(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let Some((user, csrf)) = page_user(&state, &headers).await else {
        return to_login(&uri);
    };
    render(
        "account.html",
        context! {
            title => "个人设置",
            page => "account",
            script => "account",
            user => UserView {
                username: &user.username,
                display_name: &user.display_name,
                role: user.role.as_str(),
                role_label: user.role.label_zh(),
            },
            nav => nav(user.role, "/account"),
            csrf => csrf,
        },
    )
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some((user, _)) = page_user(&state, &headers).await {
        return Redirect::to(home_for(user.role)).into_response();
    }
    render("login.html", context! { title => "登录", page => "login" })
}

async fn root(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    match page_user(&state, &headers).await {
        Some((user, _)) => Redirect::to(home_for(user.role)).into_response(),
        None => to_login(&uri),
    }
}

async fn asset(Path(path): Path<String>) -> Response {
    let Some((_, bytes)) = ASSETS.iter().find(|(name, _)| *name == path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let ctype = if path.ends_with(".css") {
        "text/css; charset=utf-8"
    } else {
        "text/javascript; charset=utf-8"
    };
    (
        [
            (header::CONTENT_TYPE, ctype),
            // Assets change with the binary; a restart after an upgrade serves new ones and
            // a short cache keeps an upgraded console from running yesterday's script for long.
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        *bytes,
    )
        .into_response()
}

/// The console's routes (pages and static files). The API routes the pages call are in
/// `crate::http`; [`live::routes`] adds the event stream there.
pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/", get(root))
        .route("/login", get(login_page))
        .route("/account", get(account))
        .route("/static/{*path}", get(asset));
    for page in PAGES {
        r = r.route(
            page.path,
            get(
                move |State(state): State<AppState>, headers: HeaderMap, uri: Uri| {
                    show_page(state, headers, uri, page)
                },
            ),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_every_page_has_one() {
        let env = env();
        for p in PAGES {
            env.get_template(&format!("{}.html", p.key))
                .unwrap_or_else(|e| panic!("{}: {e}", p.key));
            assert!(
                ASSETS.iter().any(|(n, _)| *n == format!("js/{}.js", p.key)),
                "{} has no script",
                p.key
            );
        }
    }

    #[test]
    fn every_role_has_a_home_page() {
        for role in Role::ALL {
            let home = home_for(role);
            assert!(
                pages_for(role).any(|p| p.path == home),
                "{role:?} lands on {home}, which it may not open"
            );
        }
    }

    #[test]
    fn next_parameter_is_encoded() {
        assert_eq!(encode_query("/qa?x=1&y=2"), "/qa%3Fx%3D1%26y%3D2");
    }
}

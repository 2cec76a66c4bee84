//! What the in-process API tests share: a client that calls an axum router with a session
//! cookie and CSRF token, and a way to log in a user of a role.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use hotline::db::Db;
use hotline::db::users::NewUser;
use hotline::http::AppState;
use hotline::http::access::{CSRF_HEADER, SESSION_COOKIE};
use hotline_core::{Role, SystemRng};
use serde_json::Value;
use tower::ServiceExt;

/// The instant the tests' clocks start at.
pub const T0: i64 = 1_795_917_600_000;

#[derive(Clone)]
pub struct Client {
    pub app: axum::Router,
    pub session: Option<(String, String)>,
}

impl Client {
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> (StatusCode, Vec<u8>, HeaderMap) {
        let mut b = Request::builder().method(method).uri(path);
        if let Some((token, csrf)) = &self.session {
            b = b
                .header(header::COOKIE, format!("{SESSION_COOKIE}={token}"))
                .header(CSRF_HEADER, csrf);
        }
        let req = match body {
            Some((ct, bytes)) => b.header(header::CONTENT_TYPE, ct).body(Body::from(bytes)),
            None => b.body(Body::empty()),
        }
        .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap();
        (status, bytes.to_vec(), headers)
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        let (s, bytes, _) = self.raw(method, path, body).await;
        (s, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.json(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.json(Method::POST, path, Some(body)).await
    }
}

pub async fn login_as(
    db: &Db,
    st: &AppState,
    app: &axum::Router,
    name: &str,
    role: Role,
) -> anyhow::Result<Client> {
    let u = db
        .create_user(
            T0,
            &SystemRng,
            NewUser {
                username: name,
                display_name: name,
                role,
                password_hash: "unused",
            },
        )
        .await?;
    let s = db
        .create_session(T0, &SystemRng, &u.id, st.session_policy(), "test")
        .await?;
    Ok(Client {
        app: app.clone(),
        session: Some((s.token, s.csrf_token)),
    })
}

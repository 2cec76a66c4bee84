//! Online chat over HTTP, on SQLite and PostgreSQL: the WeChat Official Account callback
//! (URL verification, plaintext and safe mode, refusals: bad signature, stale timestamp,
//! replayed nonce, malformed XML, wrong AppID, bad padding; WeChat's retries handled once),
//! the knowledge-base answer as passive reply, 转人工 to the chat queue, the agents' chat
//! API (take once, reply through a fake WeChat customer-service API that checks the
//! access_token and can expire it, the 48-hour window, close with rating, CRM timeline),
//! and the website widget's visitor API (CORS allow-list, rate limits, sizes, the same
//! queue).

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::routing::{get, post};
use hotline::config::Config;
use hotline::db::Db;
use hotline::http::{AppState, router};
use hotline_core::events::NullSink;
use hotline_core::metrics::Registry;
use hotline_core::{ManualClock, Role, SystemRng};
use hotline_integrations::chat::texts;
use hotline_integrations::wechat::crypto::{MsgCrypto, signature};
use hotline_integrations::wechat::message::parse_fields;
use serde_json::{Value, json};
use tower::ServiceExt;

use common::{T0, login_as};

const TOKEN: &str = "hotlineToken1";
const APP_ID: &str = "wx5823bf96d3bd56c7";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const APP_SECRET: &str = "app-secret-for-tests";
const OPENID: &str = "oUser_openid_0001";
const ORIGIN: &str = "https://auction.example.cn";
/// A question the built-in knowledge base answers confidently.
const QUESTION: &str = "押金啥时候退";

/// What the fake WeChat API saw and how it behaves.
#[derive(Default)]
struct Fake {
    tokens_issued: u32,
    current: String,
    /// Answer the next send with 42001 (access_token expired).
    expire_next: bool,
    /// Answer every send with this errcode.
    fail_with: Option<i64>,
    sent: Vec<(String, Value)>,
}

type FakeState = Arc<Mutex<Fake>>;

async fn fake_token(
    State(f): State<FakeState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> axum::Json<Value> {
    if q.get("appid").map(String::as_str) != Some(APP_ID)
        || q.get("secret").map(String::as_str) != Some(APP_SECRET)
        || q.get("grant_type").map(String::as_str) != Some("client_credential")
    {
        return axum::Json(json!({"errcode": 40013, "errmsg": "invalid appid"}));
    }
    let mut f = f.lock().unwrap();
    f.tokens_issued += 1;
    f.current = format!("ACCESS_TOKEN_{}", f.tokens_issued);
    axum::Json(json!({"access_token": f.current, "expires_in": 7200}))
}

async fn fake_send(
    State(f): State<FakeState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    let mut f = f.lock().unwrap();
    let token = q.get("access_token").cloned().unwrap_or_default();
    if f.expire_next {
        f.expire_next = false;
        f.current = String::new();
        return axum::Json(json!({"errcode": 42001, "errmsg": "access_token expired"}));
    }
    if let Some(code) = f.fail_with {
        return axum::Json(json!({"errcode": code, "errmsg": "refused"}));
    }
    if token.is_empty() || token != f.current {
        return axum::Json(json!({"errcode": 40001, "errmsg": "invalid credential"}));
    }
    f.sent.push((token, body));
    axum::Json(json!({"errcode": 0, "errmsg": "ok"}))
}

/// A fake WeChat API server on 127.0.0.1:0.
async fn fake_wechat() -> (String, FakeState) {
    let state: FakeState = Arc::default();
    let app = axum::Router::new()
        .route("/cgi-bin/token", get(fake_token))
        .route("/cgi-bin/message/custom/send", post(fake_send))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

struct Env {
    app: axum::Router,
    /// The title of the article that answers [`QUESTION`].
    answer_title: String,
    db: Db,
    st: AppState,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

async fn env(t: &hotline_testkit::TestDb, api_base: &str) -> anyhow::Result<Env> {
    let dir = tempfile::tempdir()?;
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let w = &mut config.integrations.wechat;
    w.enabled = true;
    w.token = TOKEN.into();
    w.app_id = APP_ID.into();
    w.encoding_aes_key = AES_KEY.into();
    w.app_secret = APP_SECRET.into();
    w.api_base = api_base.into();
    let wc = &mut config.integrations.web_chat;
    wc.enabled = true;
    wc.allowed_origins = vec![ORIGIN.into()];
    wc.visitor_messages_per_minute = 4;
    wc.max_message_chars = 50;
    config
        .validate("test")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = Db::from_pool(t.pool.clone(), &t.url);
    let clock = ManualClock::new(T0);
    let st = AppState::new(
        db.clone(),
        Arc::new(config),
        Arc::new(clock.clone()),
        Arc::new(SystemRng),
        Registry::new(),
        Arc::new(NullSink),
    );
    let kb = hotline_knowledge::KnowledgeBase::open(
        t.pool.clone(),
        &dir.path().join("kb-index"),
        Arc::new(clock.clone()),
        Arc::new(SystemRng),
    )
    .await?;
    // The built-in articles (auction FAQ): a realistic index for the confidence rule.
    kb.load_builtin("init").await?;
    let answer_title = kb
        .best_answer(QUESTION)
        .await?
        .map(|a| a.title)
        .ok_or_else(|| anyhow::anyhow!("the built-in content answers {QUESTION}"))?;
    let _ = st.knowledge.set(Arc::new(kb));
    let (app, _) = router(st.clone());
    Ok(Env {
        app,
        answer_title,
        db,
        st,
        clock,
        _dir: dir,
    })
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

fn now_secs(clock: &ManualClock) -> String {
    use hotline_core::Clock;
    (clock.now_ms() / 1000).to_string()
}

/// A plaintext-mode callback, signed.
fn plain_post(ts: &str, nonce: &str, xml: &str) -> Request<Body> {
    let sig = signature(&[TOKEN, ts, nonce]);
    Request::post(format!(
        "/api/v1/wechat/callback?signature={sig}&timestamp={ts}&nonce={nonce}&openid={OPENID}"
    ))
    .header(header::CONTENT_TYPE, "text/xml")
    .body(Body::from(xml.to_string()))
    .unwrap()
}

/// A safe-mode callback: the inner XML encrypted with `crypto`, signed with `msg_signature`.
fn safe_post(crypto: &MsgCrypto, ts: &str, nonce: &str, inner: &str) -> Request<Body> {
    let enc = crypto.encrypt(&SystemRng, inner);
    safe_post_raw(ts, nonce, &enc)
}

fn safe_post_raw(ts: &str, nonce: &str, encrypt: &str) -> Request<Body> {
    let msig = signature(&[TOKEN, ts, nonce, encrypt]);
    let sig = signature(&[TOKEN, ts, nonce]);
    let outer = format!(
        "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    );
    Request::post(format!(
        "/api/v1/wechat/callback?signature={sig}&timestamp={ts}&nonce={nonce}&openid={OPENID}\
         &encrypt_type=aes&msg_signature={msig}"
    ))
    .header(header::CONTENT_TYPE, "text/xml")
    .body(Body::from(outer))
    .unwrap()
}

fn text_xml(content: &str, msg_id: u64, ts: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>\
         <CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )
}

fn reply_content(xml: &str) -> String {
    parse_fields(xml)
        .unwrap_or_else(|e| panic!("{e}: {xml}"))
        .remove("Content")
        .unwrap_or_default()
}

hotline_testkit::db_test!(wechat_callback_queue_and_agent_replies, |t| async move {
    let (api, fake) = fake_wechat().await;
    let e = env(&t, &api).await?;
    let app = &e.app;
    let ts = now_secs(&e.clock);

    // URL verification: echo only with the right signature and a fresh timestamp.
    let sig = signature(&[TOKEN, &ts, "n-verify"]);
    let (s, _, body) = send(
        app,
        Request::get(format!(
            "/api/v1/wechat/callback?signature={sig}&timestamp={ts}&nonce=n-verify&echostr=hello123"
        ))
        .body(Body::empty())?,
    )
    .await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "hello123"));
    let (s, _, body) = send(
        app,
        Request::get(format!(
            "/api/v1/wechat/callback?signature={}&timestamp={ts}&nonce=n-verify&echostr=x",
            "0".repeat(40)
        ))
        .body(Body::empty())?,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&body)["error"]["code"], "bad_signature");
    let old = (T0 / 1000 - 301).to_string();
    let sig = signature(&[TOKEN, &old, "n-old"]);
    let (s, _, body) = send(
        app,
        Request::get(format!(
            "/api/v1/wechat/callback?signature={sig}&timestamp={old}&nonce=n-old&echostr=x"
        ))
        .body(Body::empty())?,
    )
    .await;
    assert_eq!(
        (s, json_of(&body)["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("stale"))
    );

    // Plaintext mode: a question the knowledge base answers, as a passive reply.
    let (s, h, body) = send(app, plain_post(&ts, "n-1", &text_xml(QUESTION, 1001, &ts))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(h[header::CONTENT_TYPE].to_str()?.contains("xml"));
    let f = parse_fields(&body)?;
    assert_eq!(f["ToUserName"], OPENID);
    assert!(f["Content"].contains(&e.answer_title), "{body}");
    assert!(f["Content"].contains("人工"), "{body}");
    // The same nonce again: a replay.
    let (s, _, body) = send(app, plain_post(&ts, "n-1", &text_xml("再问", 1002, &ts))).await;
    assert_eq!(
        (s, json_of(&body)["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("replayed"))
    );
    // WeChat's retry of message 1001 (new nonce, same MsgId): handled once, no second answer.
    let (s, _, body) = send(app, plain_post(&ts, "n-1b", &text_xml(QUESTION, 1001, &ts))).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "success"));
    // Malformed XML, correctly signed.
    let (s, _, body) = send(app, plain_post(&ts, "n-bad", "<xml><FromUserName>x</xml>")).await;
    assert_eq!(
        (s, json_of(&body)["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("malformed_xml"))
    );
    // Forged signature.
    let forged = Request::post(format!(
        "/api/v1/wechat/callback?signature={}&timestamp={ts}&nonce=n-f",
        "a".repeat(40)
    ))
    .body(Body::from(text_xml("x", 9, &ts)))?;
    assert_eq!(send(app, forged).await.0, StatusCode::BAD_REQUEST);

    // Safe mode: 转人工 → hand-over notice, encrypted and signed.
    let crypto = MsgCrypto::new(TOKEN, AES_KEY, APP_ID)?;
    let (s, _, body) = send(
        app,
        safe_post(&crypto, &ts, "n-2", &text_xml("转人工", 1003, &ts)),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let env_fields = parse_fields(&body)?;
    let enc = &env_fields["Encrypt"];
    crypto.verify_msg_signature(
        &env_fields["TimeStamp"],
        &env_fields["Nonce"],
        enc,
        &env_fields["MsgSignature"],
    )?;
    assert_eq!(env_fields["Nonce"], "n-2");
    assert_eq!(reply_content(&crypto.decrypt(enc)?), texts::HANDOVER_ASKED);
    // Refusals in safe mode: wrong AppID, bad padding, stale timestamp.
    let other = MsgCrypto::new(TOKEN, AES_KEY, "wx0000000000000000")?;
    let (s, _, body) = send(
        app,
        safe_post(&other, &ts, "n-3", &text_xml("x", 1004, &ts)),
    )
    .await;
    assert_eq!(
        (s, json_of(&body)["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("wrong_app_id"))
    );
    use base64::Engine as _;
    let garbage = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    let (s, _, body) = send(app, safe_post_raw(&ts, "n-4", &garbage)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let code = json_of(&body)["error"]["code"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        ["bad_padding", "bad_ciphertext"].contains(&code.as_str()),
        "{body}"
    );
    let (s, _, body) = send(
        app,
        safe_post(&crypto, &old, "n-5", &text_xml("x", 1005, &old)),
    )
    .await;
    assert_eq!(
        (s, json_of(&body)["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("stale"))
    );
    // While queued, messages wait for the agent without an automatic reply.
    let (s, _, body) = send(app, plain_post(&ts, "n-6", &text_xml("在吗？", 1006, &ts))).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "success"));

    // The agents' side.
    let agent = login_as(&e.db, &e.st, app, "agent1", Role::Agent).await?;
    let agent2 = login_as(&e.db, &e.st, app, "agent2", Role::Agent).await?;
    let qa = login_as(&e.db, &e.st, app, "qa1", Role::QaReviewer).await?;
    assert_eq!(qa.get("/api/v1/chats").await.0, StatusCode::FORBIDDEN);
    let (s, queue) = agent.get("/api/v1/chats?view=queue").await;
    assert_eq!(s, StatusCode::OK);
    let queue = queue.as_array().cloned().unwrap_or_default();
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(queue[0]["channel"], "wechat");
    assert_eq!(queue[0]["user_id"], OPENID);
    let id = queue[0]["id"].as_str().unwrap().to_string();
    // Replying before taking is refused.
    let (s, _) = agent
        .post(
            &format!("/api/v1/chats/{id}/messages"),
            json!({"text": "您好"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, c) = agent
        .post(&format!("/api/v1/chats/{id}/take"), json!({}))
        .await;
    assert_eq!(
        (s, c["state"].as_str()),
        (StatusCode::OK, Some("assigned")),
        "{c}"
    );
    let (s, c) = agent2
        .post(&format!("/api/v1/chats/{id}/take"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{c}");
    assert!(
        c["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("agent1"),
        "{c}"
    );
    let (_, mine) = agent.get("/api/v1/chats?view=mine").await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
    let (_, mine2) = agent2.get("/api/v1/chats?view=mine").await;
    assert_eq!(mine2.as_array().map(Vec::len), Some(0));
    let (s, _) = agent2
        .post(
            &format!("/api/v1/chats/{id}/messages"),
            json!({"text": "抢答"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // The reply goes out through the customer-service API with a fetched access_token.
    let (s, m) = agent
        .post(
            &format!("/api/v1/chats/{id}/messages"),
            json!({"text": "您好，保证金已在退还流程中。"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    {
        let f = fake.lock().unwrap();
        assert_eq!(f.tokens_issued, 1, "one token, cached");
        let (tok, last) = f.sent.last().unwrap();
        assert_eq!(tok, "ACCESS_TOKEN_1");
        assert_eq!(last["touser"], OPENID);
        assert_eq!(last["msgtype"], "text");
        assert_eq!(last["text"]["content"], "您好，保证金已在退还流程中。");
        // the join notice went first, with the same cached token
        assert!(f.sent.iter().any(|(_, b)| {
            b["text"]["content"]
                .as_str()
                .unwrap_or("")
                .contains("已接入")
        }));
    }
    // WeChat expires the token: fetched again, the message still goes out.
    fake.lock().unwrap().expire_next = true;
    let (s, m) = agent
        .post(
            &format!("/api/v1/chats/{id}/messages"),
            json!({"text": "还有其他问题吗？"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    {
        let f = fake.lock().unwrap();
        assert_eq!(f.tokens_issued, 2);
        assert_eq!(f.sent.last().unwrap().0, "ACCESS_TOKEN_2");
    }
    // The thread holds everything, in order.
    let (s, th) = agent.get(&format!("/api/v1/chats/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    let senders: Vec<&str> = th["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sender"].as_str().unwrap())
        .collect();
    assert_eq!(
        senders,
        [
            "user", "bot", "user", "system", "user", "system", "agent", "agent"
        ],
        "{th}"
    );
    assert!(th["reply_deadline"].as_i64().unwrap() > T0);

    // 48 hours after the user's last message the window is closed: a clear refusal.
    e.clock.advance_ms(49 * 3_600_000);
    // (a new shift: the agent logs in again)
    let agent = relogin(&e, &agent, "agent1").await?;
    let sent_before = fake.lock().unwrap().sent.len();
    let (s, err) = agent
        .post(
            &format!("/api/v1/chats/{id}/messages"),
            json!({"text": "迟到的回复"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("48 小时"),
        "{err}"
    );
    assert_eq!(fake.lock().unwrap().sent.len(), sent_before, "nothing sent");

    // Close: the conversation goes on the CRM timeline; the user's "5" rates it.
    let (s, c) = agent
        .post(&format!("/api/v1/chats/{id}/close"), json!({}))
        .await;
    assert_eq!(
        (s, c["state"].as_str()),
        (StatusCode::OK, Some("closed")),
        "{c}"
    );
    let (s, _) = agent
        .post(&format!("/api/v1/chats/{id}/close"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let ts2 = now_secs(&e.clock);
    let (s, _, body) = send(app, plain_post(&ts2, "n-7", &text_xml("5", 1007, &ts2))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(reply_content(&body), texts::RATING_THANKS);
    let (_, th) = agent.get(&format!("/api/v1/chats/{id}")).await;
    assert_eq!(th["conversation"]["rating"], 5, "{th}");
    let crm = hotline_crm::CrmStore::new(
        t.pool.clone(),
        Default::default(),
        e._dir.path().join("att"),
    );
    let contacts = crm.find_contacts(OPENID).await?;
    assert_eq!(contacts.len(), 1);
    let tl = crm
        .timeline(
            &hotline_crm::Actor::new("sup", Role::Supervisor),
            &contacts[0].contact.id,
            1,
            50,
            true,
        )
        .await?;
    let kinds: Vec<&str> = tl.items.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(kinds, ["wechat", "survey"], "{:?}", tl.items);
    assert_eq!(tl.items[0].ref_id, id);
    assert!(
        tl.items[0].summary.contains("agent1"),
        "{}",
        tl.items[0].summary
    );

    // A new message starts a new conversation; its thread shows the earlier one as history.
    let (s, _, body) = send(app, plain_post(&ts2, "n-8", &text_xml("人工", 1008, &ts2))).await;
    assert_eq!(
        (s, reply_content(&body)),
        (StatusCode::OK, texts::HANDOVER_ASKED.to_string())
    );
    let (_, queue) = agent.get("/api/v1/chats?view=queue").await;
    let id2 = queue[0]["id"].as_str().unwrap().to_string();
    assert_ne!(id2, id);
    let (_, th) = agent.get(&format!("/api/v1/chats/{id2}")).await;
    assert!(th["history"].as_array().unwrap().len() >= 8, "{th}");
    // The WeChat API failing is a 502 with the reason, and the message is not stored.
    agent
        .post(&format!("/api/v1/chats/{id2}/take"), json!({}))
        .await;
    fake.lock().unwrap().fail_with = Some(45015);
    let (s, err) = agent
        .post(
            &format!("/api/v1/chats/{id2}/messages"),
            json!({"text": "发不出去"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{err}");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("45015"),
        "{err}"
    );
    let (_, th) = agent.get(&format!("/api/v1/chats/{id2}")).await;
    assert!(!th.to_string().contains("发不出去"));
    Ok(())
});

/// A fresh session for an existing user at the clock's current time.
async fn relogin(e: &Env, old: &common::Client, username: &str) -> anyhow::Result<common::Client> {
    use hotline_core::Clock;
    let (u, _) =
        e.db.user_with_hash(username)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no user {username}"))?;
    let s =
        e.db.create_session(
            e.clock.now_ms(),
            &SystemRng,
            &u.id,
            e.st.session_policy(),
            "test",
        )
        .await?;
    Ok(common::Client {
        app: old.app.clone(),
        session: Some((s.token, s.csrf_token)),
    })
}

fn visitor_req(
    method: Method,
    path: &str,
    origin: Option<&str>,
    body: Option<Value>,
) -> Request<Body> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "hotline.example.cn");
    if let Some(o) = origin {
        b = b
            .header(header::ORIGIN, o)
            .header("sec-fetch-site", "cross-site");
    }
    match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

hotline_testkit::db_test!(web_chat_widget_and_visitor_api, |t| async move {
    let (api, _fake) = fake_wechat().await;
    let e = env(&t, &api).await?;
    let app = &e.app;
    let visitor = "v_0123456789abcdef0123";

    // The script: embedded, JavaScript, loadable from other sites.
    let (s, h, js) = send(app, Request::get("/widget/chat.js").body(Body::empty())?).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h[header::CONTENT_TYPE]
            .to_str()?
            .starts_with("application/javascript")
    );
    assert!(js.contains("/api/v1/webchat/messages") && js.contains("localStorage"));

    // CORS: the allowed site's preflight and requests get its origin back; others are refused.
    let (s, h, _) = send(
        app,
        visitor_req(
            Method::OPTIONS,
            "/api/v1/webchat/messages",
            Some(ORIGIN),
            None,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], ORIGIN);
    assert!(
        h[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()?
            .contains("POST")
    );
    let (s, _, body) = send(
        app,
        visitor_req(
            Method::OPTIONS,
            "/api/v1/webchat/messages",
            Some("https://evil.example"),
            None,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(json_of(&body)["error"]["code"], "origin_not_allowed");
    let (s, _, _) = send(
        app,
        visitor_req(
            Method::POST,
            "/api/v1/webchat/messages",
            Some("https://evil.example"),
            Some(json!({"visitor_id": visitor, "text": "hi"})),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A question answered by the knowledge base, from the auction site (cross-site POST).
    let (s, h, body) = send(
        app,
        visitor_req(
            Method::POST,
            "/api/v1/webchat/messages",
            Some(ORIGIN),
            Some(json!({"visitor_id": visitor, "text": QUESTION})),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], ORIGIN);
    let b = json_of(&body);
    let msgs = b["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{b}");
    assert_eq!(
        (msgs[0]["sender"].as_str(), msgs[1]["sender"].as_str()),
        (Some("user"), Some("bot"))
    );
    assert!(
        msgs[1]["body"].as_str().unwrap().contains(&e.answer_title),
        "{b}"
    );
    assert_eq!(b["state"], "bot");
    let cursor = b["cursor"].as_i64().unwrap();
    assert_eq!(cursor, 2);

    // 转人工 reaches the same queue as WeChat.
    let (s, _, body) = send(
        app,
        visitor_req(
            Method::POST,
            "/api/v1/webchat/messages",
            Some(ORIGIN),
            Some(json!({"visitor_id": visitor, "text": "转人工", "since": cursor})),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let b = json_of(&body);
    assert_eq!(b["state"], "queued");
    assert_eq!(b["messages"][1]["body"], texts::HANDOVER_ASKED);
    let cursor = b["cursor"].as_i64().unwrap();
    let agent = login_as(&e.db, &e.st, app, "agent1", Role::Agent).await?;
    let (_, queue) = agent.get("/api/v1/chats?view=queue").await;
    let conv = queue
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "web")
        .cloned()
        .expect("web chat queued");
    assert_eq!(conv["user_id"], visitor);
    let id = conv["id"].as_str().unwrap();
    agent
        .post(&format!("/api/v1/chats/{id}/take"), json!({}))
        .await;
    let (s, _) = agent
        .post(
            &format!("/api/v1/chats/{id}/messages"),
            json!({"text": "您好，我是客服小王。"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // The visitor's poll brings the join notice and the agent's reply, nothing twice.
    let (s, _, body) = send(
        app,
        visitor_req(
            Method::GET,
            &format!("/api/v1/webchat/messages?visitor_id={visitor}&since={cursor}"),
            Some(ORIGIN),
            None,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let b = json_of(&body);
    let bodies: Vec<&str> = b["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies.len(), 2, "{b}");
    assert!(bodies[0].contains("已接入"));
    assert_eq!(bodies[1], "您好，我是客服小王。");
    assert_eq!(b["messages"][1]["sender"], "agent");
    assert!(
        b["messages"][1].get("agent").is_none(),
        "no usernames for visitors"
    );
    assert_eq!(b["state"], "assigned");
    // Web replies need no WeChat API.
    assert!(_fake.lock().unwrap().sent.is_empty());

    // Limits: 400 for a bad visitor id or empty text, 413 for size, 429 per visitor.
    let post = |v: Value| {
        visitor_req(
            Method::POST,
            "/api/v1/webchat/messages",
            Some(ORIGIN),
            Some(v),
        )
    };
    let (s, _, body) = send(app, post(json!({"visitor_id": "x", "text": "hi"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(json_of(&body)["error"]["message"], "访客标识无效");
    let (s, _, _) = send(app, post(json!({"visitor_id": visitor, "text": "   "}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, body) = send(
        app,
        post(json!({"visitor_id": visitor, "text": "长".repeat(51)})),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        json_of(&body)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("50"),
        "{body}"
    );
    let (s, _, _) = send(
        app,
        post(json!({"visitor_id": visitor, "text": "x".repeat(20_000)})),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // two messages sent so far by this visitor; the limit is 4 per minute
    for text in ["第三条", "第四条"] {
        assert_eq!(
            send(app, post(json!({"visitor_id": visitor, "text": text})))
                .await
                .0,
            StatusCode::OK
        );
    }
    let (s, h, body) = send(app, post(json!({"visitor_id": visitor, "text": "第五条"}))).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(h.contains_key(header::RETRY_AFTER));
    assert_eq!(json_of(&body)["error"]["message"], "发送太频繁，请稍后再试");
    // a minute later the visitor may write again
    e.clock.advance_ms(60_000);
    assert_eq!(
        send(app, post(json!({"visitor_id": visitor, "text": "第六条"})))
            .await
            .0,
        StatusCode::OK
    );
    Ok(())
});

//! Registrar: digest MD5 (sipp) and SHA-256, stale nonces, Expires bounds, unregister,
//! several contacts, persistence, brute-force blocking.

use std::sync::Arc;

use anyhow::Result;
use hotline_core::{Clock, ManualClock, SystemClock};
use hotline_sip_gateway::digest::{Algorithm, client_response};
use hotline_sip_gateway::{GatewayError, list_bindings};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_with_md5_and_a_wrong_password_is_refused() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    sipp_register(h.addr, "8001", PASSWORD, free_udp_port(), 200).await?;
    h.wait_registrations(1).await?;
    let b = list_bindings(&h.pool, SystemClock.now_ms()).await?;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].seat, "8001");
    assert_eq!(b[0].user_agent, "sipp");
    sipp_register(h.addr, "8002", "wrong-password", free_udp_port(), 401).await?;
    assert_eq!(h.metric("hotline_sip_auth_failures_total"), 1);
    assert_eq!(h.handle().status().await?.registrations, 1);
    // The health watcher sees the registered seat as reachable, and only that one.
    let seats = h.handle().health().await?.seats;
    assert_eq!(
        seats,
        vec![hotline_sip_gateway::SeatHealth {
            seat: "8001".into(),
            reachable: true
        }]
    );
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sha256_digest_is_accepted() -> Result<()> {
    let mut cfg = base_config();
    cfg.auth.algorithms = vec!["SHA-256".into(), "MD5".into()];
    let h = Harness::start(cfg).await?;
    let c = Client::new(h.addr).await?;
    let mut cseq = 0;
    let r = c
        .register("8001", PASSWORD, "SHA-256", &mut cseq, Some("600"))
        .await?;
    assert_eq!(r.status, 200, "{}", r.text);
    let contact = r.header("Contact").unwrap();
    assert!(contact.ends_with(";expires=600"), "{contact}");
    let r = c
        .register("8002", "not-the-password", "SHA-256", &mut cseq, None)
        .await?;
    assert_eq!(r.status, 401);
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_nonce_is_answered_with_stale_true() -> Result<()> {
    let clock = ManualClock::new(SystemClock.now_ms());
    let db = hotline_testkit::ExternalDb::create(hotline_testkit::Backend::Sqlite)
        .await?
        .unwrap();
    hotline_sip_gateway::add_seat(&db.db.pool, "8001", PASSWORD, "hotline", 0).await?;
    let h = Harness::start_on(base_config(), db, Arc::new(clock.clone())).await?;
    let c = Client::new(h.addr).await?;
    let contact = format!("<sip:8001@{}>", c.local);
    c.send(c.register_msg("8001", 1, None, None, &contact).as_bytes())
        .await?;
    let ch = c.recv_response("REGISTER", true).await?;
    assert_eq!(ch.status, 401);
    let www = ch.header("WWW-Authenticate").unwrap();
    assert!(
        www.contains("algorithm=MD5") && www.contains("qop=\"auth\""),
        "{www}"
    );
    let nonce = param(&www, "nonce").unwrap();
    let uri = format!("sip:{}", h.addr);
    let auth = client_response(
        Algorithm::Md5,
        "8001",
        PASSWORD,
        "hotline",
        &nonce,
        "REGISTER",
        &uri,
        "x1",
    );
    c.send(
        c.register_msg("8001", 2, Some(&auth), None, &contact)
            .as_bytes(),
    )
    .await?;
    assert_eq!(c.recv_response("REGISTER", true).await?.status, 200);
    // The same credentials again (same nonce count) are a replay: a fresh challenge.
    c.send(
        c.register_msg("8001", 3, Some(&auth), None, &contact)
            .as_bytes(),
    )
    .await?;
    let r = c.recv_response("REGISTER", true).await?;
    assert_eq!(r.status, 401, "replayed nonce count");
    assert!(r.header("WWW-Authenticate").unwrap().contains("stale=true"));
    clock.advance_ms(301_000);
    c.send(
        c.register_msg("8001", 4, Some(&auth), None, &contact)
            .as_bytes(),
    )
    .await?;
    let r = c.recv_response("REGISTER", true).await?;
    assert_eq!(r.status, 401);
    assert!(
        r.headers("WWW-Authenticate")
            .iter()
            .all(|w| w.contains("stale=true")),
        "{}",
        r.text
    );
    // A stale nonce with the right password is not a failure.
    assert_eq!(h.metric("hotline_sip_auth_failures_total"), 0);
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expires_bounds_several_contacts_and_unregister() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let c = Client::new(h.addr).await?;
    let mut cseq = 0;
    // 423 with Min-Expires (RFC 3261 §10.3 step 7).
    let r = c
        .register("8001", PASSWORD, "MD5", &mut cseq, Some("10"))
        .await?;
    assert_eq!(r.status, 423);
    assert_eq!(r.header("Min-Expires").as_deref(), Some("60"));
    let r = c
        .register("8001", PASSWORD, "MD5", &mut cseq, Some("120"))
        .await?;
    assert_eq!(r.status, 200);
    // A second contact from another device.
    let c2 = Client::new(h.addr).await?;
    let mut cseq2 = 0;
    let r = c2
        .register("8001", PASSWORD, "MD5", &mut cseq2, Some("7200"))
        .await?;
    assert_eq!(r.status, 200);
    let contacts = r.headers("Contact");
    assert_eq!(contacts.len(), 2, "{}", r.text);
    assert!(
        contacts.iter().any(|c| c.ends_with(";expires=3600")),
        "capped: {contacts:?}"
    );
    assert_eq!(list_bindings(&h.pool, SystemClock.now_ms()).await?.len(), 2);
    // Unregister one with Expires: 0.
    let r = c
        .register("8001", PASSWORD, "MD5", &mut cseq, Some("0"))
        .await?;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers("Contact").len(), 1);
    assert_eq!(list_bindings(&h.pool, SystemClock.now_ms()).await?.len(), 1);
    // Contact: * removes the rest.
    c2.send(
        c2.register_msg("8001", 100, None, Some("0"), "*")
            .as_bytes(),
    )
    .await?;
    let ch = c2.recv_response("REGISTER", true).await?;
    let www = ch.header("WWW-Authenticate").unwrap();
    let nonce = param(&www, "nonce").unwrap();
    let auth = client_response(
        Algorithm::Md5,
        "8001",
        PASSWORD,
        "hotline",
        &nonce,
        "REGISTER",
        &format!("sip:{}", h.addr),
        "y",
    );
    c2.send(
        c2.register_msg("8001", 101, Some(&auth), Some("0"), "*")
            .as_bytes(),
    )
    .await?;
    let r = c2.recv_response("REGISTER", true).await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        list_bindings(&h.pool, SystemClock.now_ms())
            .await?
            .is_empty()
    );
    h.wait_registrations(0).await?;
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_blocks_the_address_without_revealing_seats() -> Result<()> {
    let mut cfg = base_config();
    cfg.auth.max_failures = 3;
    let h = Harness::start(cfg).await?;
    let attacker = Client::bind("127.0.0.3:0", h.addr).await?;
    let mut cseq = 0;
    // Unknown seat and wrong password look the same.
    let a = attacker
        .register("9999", "guess-one", "MD5", &mut cseq, None)
        .await?;
    let b = attacker
        .register("8001", "guess-two", "MD5", &mut cseq, None)
        .await?;
    assert_eq!((a.status, b.status), (401, 401));
    assert_eq!(
        a.headers("WWW-Authenticate").len(),
        b.headers("WWW-Authenticate").len()
    );
    let c = attacker
        .register("8001", "guess-three", "MD5", &mut cseq, None)
        .await?;
    assert_eq!(c.status, 403, "third failure blocks");
    // Now even the right password is refused from that address, before any challenge.
    let contact = format!("<sip:8001@{}>", attacker.local);
    attacker
        .send(
            attacker
                .register_msg("8001", 50, None, None, &contact)
                .as_bytes(),
        )
        .await?;
    assert_eq!(attacker.recv_response("REGISTER", true).await?.status, 403);
    assert_eq!(h.metric("hotline_sip_auth_blocks_total"), 1);
    assert!(h.metric("hotline_sip_auth_blocked_requests_total") >= 1);
    assert_eq!(h.metric("hotline_sip_auth_failures_total"), 3);
    // Other addresses are unaffected.
    let good = Client::new(h.addr).await?;
    let mut cseq = 0;
    assert_eq!(
        good.register("8001", PASSWORD, "MD5", &mut cseq, None)
            .await?
            .status,
        200
    );
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_survive_a_restart() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let c = Client::new(h.addr).await?;
    let mut cseq = 0;
    assert_eq!(
        c.register("8001", PASSWORD, "MD5", &mut cseq, None)
            .await?
            .status,
        200
    );
    let db = h.stop().await?;
    let h = Harness::start_on(base_config(), db, Arc::new(SystemClock)).await?;
    assert_eq!(h.handle().status().await?.registrations, 1);
    h.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_a_clear_error() -> Result<()> {
    let h = Harness::start(base_config()).await?;
    let mut cfg = base_config();
    cfg.listen = h.addr;
    let db = hotline_testkit::ExternalDb::create(hotline_testkit::Backend::Sqlite)
        .await?
        .unwrap();
    match Harness::start_on(cfg, db, Arc::new(SystemClock)).await {
        Err(e) => {
            let e = e.downcast::<GatewayError>()?;
            assert!(matches!(e, GatewayError::Bind { .. }), "{e}");
            assert!(e.to_string().contains(&h.addr.to_string()), "{e}");
        }
        Ok(_) => panic!("second gateway bound the same port"),
    }
    h.finish().await
}

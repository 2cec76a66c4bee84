//! The outbound allow-list (toll-fraud guard, issue 12): a seat may only send calls over the
//! trunk to numbers matching `trunk.outbound_allow`, whether by REFER or click-to-call.
//! (Seat-originated INVITEs: `calls.rs`, seats_authenticate_their_invites_….)

use anyhow::Result;
use hotline_sip_gateway::{GatewayError, list_calls};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_to_a_number_outside_the_allow_list_is_refused() -> Result<()> {
    let mut cfg = base_config();
    cfg.trunk.outbound_allow = vec!["1XXXXXXXXXX".into()];
    let h = Harness::start(cfg).await?;
    let p1 = free_udp_port();
    sipp_register(h.addr, "8001", PASSWORD, p1, 200).await?;
    h.wait_registrations(1).await?;
    let (p1, mp1) = (p1.to_string(), free_udp_port().to_string());
    // An international number: not a seat, not allow-listed.
    let seat = Sipp::spawn(
        h.addr,
        "seat_uas_refer_forbidden.xml",
        &[
            "-m",
            "1",
            "-p",
            &p1,
            "-mp",
            &mp1,
            "-key",
            "target",
            "0085212345678",
        ],
    )?;
    let mp = free_udp_port().to_string();
    let caller = Sipp::spawn(
        h.addr,
        "uac_call.xml",
        &["-m", "1", "-s", DID, "-mp", &mp, "-d", "1500"],
    )?;
    // The seat's scenario requires the 403 before the caller's BYE arrives.
    seat.success().await?;
    caller.success().await?;
    let calls = list_calls(&h.pool, 10).await?;
    assert_eq!(calls.len(), 1, "no second leg was created");
    assert_eq!(calls[0].transferred_to, None);
    // Click-to-call to the same number is refused before anything rings.
    assert!(matches!(
        h.handle().click_to_call("8001", "0085212345678").await,
        Err(GatewayError::NotAllowed(_))
    ));
    h.finish().await
}

//! rsipstack's dialogs (`DialogLayer`, `InviteDialog`), pinned at 0.7.14, as a plain
//! rsipstack application uses them, on the two points the gateway makes up for when it runs
//! its call legs on them (`src/sip/dialogs.rs`, docs/ARCHITECTURE.md "The SIP gateway"):
//! requests to a phone behind NAT (the gateway's target locator pins each leg's remote
//! target to the leg's flow) and a request out of CSeq order (the gateway answers 500 before
//! the dialog sees it). These tests run rsipstack over real UDP sockets and record what it
//! does on its own; the same cases against the gateway are in `dialogs.rs`. When an upgrade
//! changes either behaviour, a test here fails: then that part of `sip::dialogs` may go.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::sip::StatusCode;
use rsipstack::transaction::endpoint::Endpoint;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);

/// An rsipstack endpoint on 127.0.0.1 (UDP) with a dialog layer, as an application of
/// rsipstack would build it. Everything stops with `cancel`.
async fn endpoint(
    cancel: &CancellationToken,
) -> Result<(Arc<Endpoint>, Arc<DialogLayer>, SocketAddr)> {
    let layer = TransportLayer::new(cancel.child_token());
    let conn =
        UdpConnection::create_connection("127.0.0.1:0".parse()?, None, Some(cancel.child_token()))
            .await?;
    let addr = conn.get_addr().get_socketaddr()?;
    layer.add_transport(SipConnection::Udp(conn));
    let endpoint = Arc::new(
        rsipstack::EndpointBuilder::new()
            .with_transport_layer(layer)
            .with_cancel_token(cancel.child_token())
            .build(),
    );
    let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
    let serving = endpoint.clone();
    tokio::spawn(async move { serving.serve().await });
    Ok((endpoint, dialogs, addr))
}

async fn recv_text(sock: &UdpSocket) -> Result<(String, SocketAddr)> {
    let mut buf = vec![0u8; 65_536];
    let (n, from) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .context("nothing arrived")??;
    Ok((String::from_utf8_lossy(&buf[..n]).into_owned(), from))
}

/// The next request of `method` on `sock` (responses and other requests are skipped).
async fn recv_request(sock: &UdpSocket, method: &str) -> Result<(String, SocketAddr)> {
    loop {
        let (text, from) = recv_text(sock).await?;
        if text.starts_with(&format!("{method} ")) {
            return Ok((text, from));
        }
    }
}

fn header<'a>(text: &'a str, name: &str) -> Result<&'a str> {
    text.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .with_context(|| format!("no {name} header in:\n{text}"))
}

/// A response to `req` that copies its Via, From, Call-ID and CSeq (RFC 3261 §8.2.6).
fn response(req: &str, status: &str, to_tag: &str, extra: &str) -> Result<String> {
    let vias: String = req
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("via:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let to = header(req, "To")?;
    let to = if to.contains(";tag=") {
        to.to_string()
    } else {
        format!("{to};tag={to_tag}")
    };
    Ok(format!(
        "SIP/2.0 {status}\r\n{vias}From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        header(req, "From")?,
        header(req, "Call-ID")?,
        header(req, "CSeq")?,
    ))
}

/// A seat behind NAT: its REGISTER (and here the INVITE) reach it on its public flow, but
/// its Contact names its private address. A plain rsipstack UDP dialog sends the 2xx ACK
/// and the BYE to the Contact, not back along the flow; so a real phone behind NAT never
/// gets them. (The gateway pins the Contact to the flow: `dialogs::a_seat_behind_nat_…`.)
/// The private address is a second loopback socket here, so where the requests go can be
/// seen.
#[tokio::test]
async fn uac_dialog_sends_ack_and_bye_to_the_contact_not_the_nat_flow() -> Result<()> {
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    let (_endpoint, dialogs, ours) = endpoint(&cancel).await?;
    let flow = UdpSocket::bind("127.0.0.1:0").await?;
    let private = UdpSocket::bind("127.0.0.9:0").await?;
    let private_addr = private.local_addr()?;

    let opt = InviteOption {
        caller: format!("sip:hotline@{ours}").as_str().try_into()?,
        callee: "sip:8001@hotline.invalid".try_into()?,
        contact: format!("sip:hotline@{ours}").as_str().try_into()?,
        destination: Some(SipAddr::from(flow.local_addr()?)),
        ..Default::default()
    };
    let (state_tx, _state_rx) = dialogs.new_dialog_state_channel();
    let inviting = {
        let dialogs = dialogs.clone();
        tokio::spawn(async move { dialogs.do_invite(opt, state_tx).await })
    };

    let (invite, from) = recv_request(&flow, "INVITE").await?;
    assert_eq!(from, ours, "the INVITE goes to the destination given");
    let ok = response(
        &invite,
        "200 OK",
        "seat",
        &format!("Contact: <sip:8001@{private_addr}>\r\n"),
    )?;
    flow.send_to(ok.as_bytes(), from).await?;
    let (dialog, resp) = tokio::time::timeout(WAIT, inviting).await???;
    assert_eq!(resp.map(|r| r.status_code), Some(StatusCode::OK));

    const CHANGED: &str = "rsipstack no longer sends this to the Contact: \
         the gateway's flow pinning (src/sip/dialogs.rs) may no longer be needed";
    let (ack, _) = recv_request(&private, "ACK").await.context(CHANGED)?;
    assert!(
        ack.contains(&format!("ACK sip:8001@{private_addr}")),
        "{ack}"
    );

    let hanging_up = {
        let dialog = dialog.clone();
        tokio::spawn(async move { dialog.bye().await })
    };
    let (bye, from) = recv_request(&private, "BYE").await.context(CHANGED)?;
    private
        .send_to(response(&bye, "200 OK", "seat", "")?.as_bytes(), from)
        .await?;
    tokio::time::timeout(WAIT, hanging_up).await???;

    // Both went to the Contact, before anything else could: the flow holds nothing.
    let mut buf = [0u8; 2048];
    match flow.try_recv_from(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        Ok((n, _)) => bail!(
            "the flow got a message: {}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => Err(e.into()),
    }
}

/// RFC 3261 §12.2.2: a UAS that gets an in-dialog request with a CSeq lower than the last
/// one "MUST reject the request with a 500". rsipstack's `InviteDialog::handle` (server
/// role) drops it without an answer, so the sender retransmits until its Timer F. (The
/// gateway answers 500 first: `dialogs::requests_outside_the_dialog_or_out_of_order_…`.)
#[tokio::test]
async fn uas_dialog_leaves_a_lower_cseq_request_unanswered() -> Result<()> {
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    let (endpoint, dialogs, ours) = endpoint(&cancel).await?;
    let mut incoming = endpoint.incoming_transactions()?;

    // The application: accept every INVITE, answer every in-dialog request its dialog
    // hands up with 200, and let the dialog handle each transaction to its end.
    let app = {
        let dialogs = dialogs.clone();
        async move {
            let (state_tx, mut states) = dialogs.new_dialog_state_channel();
            tokio::spawn(async move {
                while let Some(state) = states.recv().await {
                    if let DialogState::Info(_, _, handle) | DialogState::Options(_, _, handle) =
                        state
                    {
                        let _ = handle.reply(StatusCode::OK).await;
                    }
                }
            });
            while let Some(mut tx) = incoming.recv().await {
                match dialogs.match_dialog(&tx) {
                    // In line, one transaction after the other: answers leave in order.
                    Some(rsipstack::dialog::dialog::Dialog::Invite(mut d)) => {
                        let _ = d.handle(&mut tx).await;
                    }
                    Some(_) => {}
                    None => {
                        let mut d = dialogs.get_or_create_server_invite(
                            &tx,
                            state_tx.clone(),
                            None,
                            None,
                        )?;
                        d.accept(None, None)?;
                        // The INVITE transaction lives until its ACK: its own task.
                        tokio::spawn(async move { d.handle(&mut tx).await });
                    }
                }
            }
            anyhow::Ok(())
        }
    };
    tokio::spawn(app);

    let caller = UdpSocket::bind("127.0.0.1:0").await?;
    // Sends `method` in the call (Call-ID `cseq-order`) to rsipstack at `ours`.
    async fn send(
        caller: &UdpSocket,
        ours: SocketAddr,
        method: &str,
        cseq: u32,
        to: &str,
    ) -> Result<()> {
        let me = caller.local_addr()?;
        let text = format!(
            "{method} sip:hotline@{ours} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{method}{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:caller@{me}>;tag=caller\r\nTo: {to}\r\n\
             Call-ID: cseq-order\r\nCSeq: {cseq} {method}\r\nContact: <sip:caller@{me}>\r\n\
             Content-Length: 0\r\n\r\n"
        );
        caller.send_to(text.as_bytes(), ours).await?;
        Ok(())
    }
    send(
        &caller,
        ours,
        "INVITE",
        10,
        &format!("<sip:hotline@{ours}>"),
    )
    .await?;
    let to = loop {
        let (text, _) = recv_text(&caller).await?;
        if text.starts_with("SIP/2.0 200") {
            break header(&text, "To")?.to_string();
        }
    };
    send(&caller, ours, "ACK", 10, &to).await?;

    // The next answer, skipping a retransmitted 200 to the INVITE.
    async fn answer(caller: &UdpSocket) -> Result<(String, String)> {
        loop {
            let (text, _) = recv_text(caller).await?;
            let cseq = header(&text, "CSeq")?;
            if !cseq.ends_with("INVITE") {
                let line = text.lines().next().unwrap_or_default();
                return Ok((line.to_string(), cseq.to_string()));
            }
        }
    }
    send(&caller, ours, "INFO", 20, &to).await?;
    let (line, cseq) = answer(&caller).await?;
    assert_eq!(
        (line.as_str(), cseq.as_str()),
        ("SIP/2.0 200 OK", "20 INFO")
    );

    // Lower than 20: owed a 500. Then a request in order, which is answered; the first
    // answer that arrives is that one's.
    send(&caller, ours, "INFO", 15, &to).await?;
    send(&caller, ours, "OPTIONS", 30, &to).await?;
    let (line, cseq) = answer(&caller).await?;
    assert_eq!(
        (line.as_str(), cseq.as_str()),
        ("SIP/2.0 200 OK", "30 OPTIONS"),
        "a lower CSeq was answered: rsipstack now follows §12.2.2, \
         the gateway's own check (src/sip/dialogs.rs) may go"
    );
    Ok(())
}

//! Recording survives a crash: `kill -9` of the server with 20 recorded IVR calls up; after
//! the restart every recording is a playable stereo WAV marked `recovered`, as long as the
//! audio written up to the kill, and the interrupted calls' records are closed.

use std::path::Path;

use anyhow::{Context, Result, bail};
use hotline_tests::caller::Caller;
use hotline_tests::{hotline, run, serve, text};
use sqlx::Connection;

const DID: &str = "02296077";
const CALLS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_20_recorded_calls_leaves_playable_recovered_recordings() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let out = run(hotline(&["init", "--data-dir", d]), None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "[sip]\nroutes = [{{ did = \"{DID}\", target = \"ivr\" }}]\n\
             qualify_interval_secs = 0\nmax_calls_per_second_per_source = 1000\n\
             [sip.trunk]\npeers = [{{ name = \"e1\", address = \"127.0.0.1/32\" }}]\n\
             [sip.rtp]\nport_min = 34000\nport_max = 34999\n"
        ),
    )?;
    let cfg = config.to_str().unwrap();
    let mut server = serve(Path::new(cfg), Path::new(d))?;
    let sip: std::net::SocketAddr = server.sip.parse()?;

    let mut callers = Vec::new();
    for n in 0..CALLS {
        callers.push(Caller::call(sip, DID, &format!("1390000{n:04}"), true).await?);
    }
    // Every caller hears 3 s of the welcome: the recorder has flushed its header by then
    // (at least every 2 s).
    let heard = join_all(callers.iter().map(|c| c.hear(150)).collect()).await;
    for h in heard {
        assert!(h?.rms() > 500.0);
    }
    let url = format!("sqlite://{}", data.join("hotline.db").display());
    {
        let mut db = sqlx::SqliteConnection::connect(&url).await?;
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM recordings WHERE state = 'recording'")
                .fetch_one(&mut db)
                .await?;
        assert_eq!(n as usize, CALLS, "every call is being recorded");
    }
    server.child.kill()?; // SIGKILL: no shutdown, no finalisation
    server.child.wait()?;
    drop(callers);

    // The restart repairs the files before taking calls.
    let mut server = serve(Path::new(cfg), Path::new(d))?;
    let mut db = sqlx::SqliteConnection::connect(&url).await?;
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT state, path, duration_ms FROM recordings")
            .fetch_all(&mut db)
            .await?;
    assert_eq!(rows.len(), CALLS);
    for (state, rel, duration_ms) in &rows {
        assert_eq!(state, "recovered", "{rel}");
        assert!(
            *duration_ms >= 2_000,
            "{rel}: {duration_ms} ms recovered of ≥ 3 s"
        );
        let wav = hound::WavReader::open(data.join("recordings").join(rel))
            .with_context(|| format!("{rel} is not a readable WAV"))?;
        assert_eq!(wav.spec().channels, 2);
        let samples = wav.into_samples::<i16>().collect::<Result<Vec<_>, _>>()?;
        assert_eq!(samples.len() as i64 / 16, *duration_ms, "{rel}");
        let right: Vec<i16> = samples.chunks_exact(2).map(|f| f[1]).collect();
        assert!(
            hotline_tests::caller::rms(&right) > 500.0,
            "{rel}: the prompt is in the file"
        );
    }
    let (open,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sip_calls WHERE ended_at IS NULL")
        .fetch_one(&mut db)
        .await?;
    let (interrupted,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM sip_calls WHERE end_cause = 'interrupted'")
            .fetch_one(&mut db)
            .await?;
    assert_eq!((open, interrupted as usize), (0, CALLS));
    let (ok,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut db)
        .await?;
    assert_eq!(ok, "ok");
    if server.child.try_wait()?.is_some() {
        bail!("the restarted server died");
    }
    server.terminate()?;
    Ok(())
}

/// Polls the futures together (each caller's socket keeps receiving while we wait on
/// another) and returns their results in order.
async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(|r| r.expect("ready")).collect()
}

/// Power of `freq` in `x` relative to its total power (Goertzel over the whole stretch).
fn tone_share(x: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    let total: f64 = x.iter().map(|&v| f64::from(v).powi(2)).sum();
    2.0 * power / (x.len() as f64 * total.max(1.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridged_call_is_recorded_caller_left_seat_right() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let out = run(hotline(&["init", "--data-dir", d]), None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seat_pw = hotline_tests::field(&text(&out.stdout), "seat 8001:").context("seat pw")?;
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        "[sip]\nroutes = [{ did = \"02212345\", target = \"seat:8001\" }]\n\
         qualify_interval_secs = 0\n\
         [sip.trunk]\npeers = [{ name = \"e1\", address = \"127.0.0.1/32\" }]\n\
         [sip.rtp]\nport_min = 36000\nport_max = 36999\n",
    )?;
    let server = serve(&config, &data)?;
    let sip: std::net::SocketAddr = server.sip.parse()?;
    let seat_port = hotline_tests::free_udp_port().to_string();
    hotline_tests::Sipp::spawn(
        &server.sip,
        "register.xml",
        &[
            "-m", "1", "-p", &seat_port, "-s", "8001", "-au", "8001", "-ap", &seat_pw,
        ],
    )?
    .success()
    .await?;
    // The seat speaks sipp's speech pcap and hangs up; the caller says a steady 1 kHz tone.
    let seat =
        hotline_tests::Sipp::phone(&server.sip, "seat_uas_speaks.xml", &seat_port, "PCMA", &[])?;
    let mut caller = Caller::call(sip, "02212345", "13900000077", true).await?;
    let heard = caller
        .talk(&hotline_tests::caller::tone(&[1000.0], 6_000, 6000.0))
        .await?;
    assert!(heard.rms() > 300.0, "the caller hears the seat");
    caller.wait_bye().await?; // the seat hangs up
    seat.success().await?;

    let url = format!("sqlite://{}", data.join("hotline.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await?;
    let (call_id, answered, ended, side): (String, i64, i64, String) =
        sqlx::query_as("SELECT id, answered_at, ended_at, hangup_side FROM sip_calls")
            .fetch_one(&mut db)
            .await?;
    assert_eq!(side, "callee");
    let (state, rel, _, duration_ms) =
        hotline_tests::finished_recording(&server, &mut db, &call_id).await?;
    assert_eq!(state, "finished");
    assert!((duration_ms - (ended - answered)).abs() <= 40);
    let (left, right) = hotline_tests::stereo(&data.join("recordings").join(&rel))?;
    // The middle of the call: the caller's tone left, the seat's speech right.
    let mid = |x: &[i16]| x[8_000..8 * 5_000].to_vec();
    let (l, r) = (mid(&left), mid(&right));
    assert!(
        tone_share(&l, 1000.0) > 0.8,
        "left is the caller's 1 kHz tone: {}",
        tone_share(&l, 1000.0)
    );
    assert!(
        hotline_tests::caller::rms(&r) > 300.0,
        "right carries the seat's speech"
    );
    assert!(
        tone_share(&r, 1000.0) < 0.2,
        "right is not the caller: {}",
        tone_share(&r, 1000.0)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blind_transfer_keeps_recording_into_the_same_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let out = run(hotline(&["init", "--data-dir", d]), None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let pw = |seat: &str| hotline_tests::field(&stdout, &format!("seat {seat}:")).context("pw");
    let config = dir.path().join("hotline.toml");
    std::fs::write(
        &config,
        "[sip]\nroutes = [{ did = \"02212345\", target = \"seat:8001\" }]\n\
         qualify_interval_secs = 0\n\
         [sip.trunk]\npeers = [{ name = \"e1\", address = \"127.0.0.1/32\" }]\n\
         [sip.rtp]\nport_min = 37000\nport_max = 37999\n",
    )?;
    let server = serve(&config, &data)?;
    let sip: std::net::SocketAddr = server.sip.parse()?;
    let mut ports = Vec::new();
    for seat in ["8002", "8001"] {
        ports.push(hotline_tests::Sipp::register(&server.sip, seat, &pw(seat)?).await?);
    }
    // 8002 waits for the transferred call and echoes; 8001 answers and transfers to 8002.
    let mp1 = hotline_tests::free_udp_port().to_string();
    let target =
        hotline_tests::Sipp::echo_seat(&server.sip, "seat_uas.xml", &ports[0], "PCMA", &[])?;
    let transferor = hotline_tests::Sipp::spawn(
        &server.sip,
        "seat_uas_refer.xml",
        &[
            "-m", "1", "-p", &ports[1], "-mp", &mp1, "-key", "target", "8002",
        ],
    )?;
    let mut caller = Caller::call(sip, "02212345", "13900000088", true).await?;
    let heard = caller
        .talk(&hotline_tests::caller::tone(&[1000.0], 3_000, 6000.0))
        .await?;
    transferor.success().await?;
    let tail = &heard.samples[heard.samples.len().saturating_sub(4_000)..];
    assert!(
        hotline_tests::caller::rms(tail) > 1000.0,
        "after the transfer the caller hears 8002's echo"
    );
    caller.bye().await?;
    target.success().await?;

    let url = format!("sqlite://{}", data.join("hotline.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await?;
    let (call_id, answered, ended, to): (String, i64, i64, Option<String>) =
        sqlx::query_as("SELECT id, answered_at, ended_at, transferred_to FROM sip_calls")
            .fetch_one(&mut db)
            .await?;
    assert_eq!(to.as_deref(), Some("8002"));
    let (state, rel, _, duration_ms) =
        hotline_tests::finished_recording(&server, &mut db, &call_id).await?;
    assert_eq!(state, "finished");
    assert!(
        (duration_ms - (ended - answered)).abs() <= 40,
        "one recording for the whole call: {duration_ms} ms vs {} ms",
        ended - answered
    );
    let (_, right) = hotline_tests::stereo(&data.join("recordings").join(&rel))?;
    // The last second before the hang-up: the new seat's echo is in the file.
    let last = &right[right.len().saturating_sub(8_000 + 2_000)..right.len() - 2_000];
    assert!(
        hotline_tests::caller::rms(last) > 1000.0 && tone_share(last, 1000.0) > 0.5,
        "the part after the transfer is recorded: rms {}",
        hotline_tests::caller::rms(last)
    );
    Ok(())
}

/// A click-to-call whose agent hands the customer to a colleague by REFER: one recording for
/// the whole call, from the customer's answer to the hang-up, through the relay change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_to_call_transfer_keeps_one_recording() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let d = data.to_str().context("utf-8")?;
    let out = run(hotline(&["init", "--data-dir", d]), None)?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let pw = |label: &str| hotline_tests::field(&stdout, label).context("password");
    let customer_port = hotline_tests::free_udp_port().to_string();
    let config = hotline_tests::click_to_call_config(dir.path(), &customer_port, (36000, 36999))?;
    let server = serve(&config, &data)?;
    let mut ports = Vec::new();
    for seat in ["8002", "8001"] {
        let password = pw(&format!("seat {seat}:"))?;
        ports.push(hotline_tests::Sipp::register(&server.sip, seat, &password).await?);
    }
    // 8002 takes the customer and echoes; 8001 (the agent) answers, waits for the customer,
    // then transfers to 8002; the customer talks (sipp's pcap) and hangs up after 7.5 s.
    let target =
        hotline_tests::Sipp::echo_seat(&server.sip, "seat_uas.xml", &ports[0], "PCMA", &[])?;
    let mp1 = hotline_tests::free_udp_port().to_string();
    let agent = hotline_tests::Sipp::spawn(
        &server.sip,
        "seat_uas_refer_later.xml",
        &[
            "-m", "1", "-p", &ports[1], "-mp", &mp1, "-key", "target", "8002",
        ],
    )?;
    let customer = hotline_tests::click_to_call_a_speaking_customer(
        &server,
        &customer_port,
        &pw("password:")?,
    )
    .await?;
    agent.success().await?;
    customer.success().await?;
    target.success().await?;

    let url = format!("sqlite://{}", data.join("hotline.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await?;
    let (call_id, answered, to): (String, i64, Option<String>) =
        sqlx::query_as("SELECT id, answered_at, transferred_to FROM sip_calls")
            .fetch_one(&mut db)
            .await?;
    assert_eq!(to.as_deref(), Some("8002"));
    let (state, _, _, duration_ms) =
        hotline_tests::finished_recording(&server, &mut db, &call_id).await?;
    assert_eq!(state, "finished");
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM recordings")
        .fetch_one(&mut db)
        .await?;
    assert_eq!(rows, 1, "one recording");
    let (ended,): (i64,) = sqlx::query_as("SELECT ended_at FROM sip_calls WHERE id = $1")
        .bind(&call_id)
        .fetch_one(&mut db)
        .await?;
    assert!(
        (duration_ms - (ended - answered)).abs() <= 100,
        "one recording for the whole call: {duration_ms} ms vs {} ms",
        ended - answered
    );
    Ok(())
}

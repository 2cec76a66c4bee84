//! Recording survives a crash: `kill -9` of the server with 20 recorded IVR calls up; after
//! the restart every recording is a playable stereo WAV marked `recovered`, as long as the
//! audio written up to the kill, and the interrupted calls' records are closed.

use anyhow::{Context, Result, bail};
use hotline_tests::caller::Caller;
use hotline_tests::{Server, hotline, run, text};
use sqlx::Connection;

const DID: &str = "02296077";
const CALLS: usize = 20;

fn serve(config: &str, data: &str) -> Result<Server> {
    Server::start(hotline(&[
        "--config",
        config,
        "serve",
        "--data-dir",
        data,
        "--http",
        "127.0.0.1:0",
        "--sip",
        "127.0.0.1:0",
    ]))
}

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
    let mut server = serve(cfg, d)?;
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
    let mut server = serve(cfg, d)?;
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

//! `hotline serve`: binds every socket first (so a port in use is reported before anything
//! starts), runs the HTTP API until SIGTERM or Ctrl-C, then shuts down gracefully: stop
//! accepting, finish in-flight requests, close the database pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hotline_core::metrics::Registry;
use hotline_core::{SystemClock, SystemRng};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::db::{Db, redact_url};
use crate::events::EventBus;
use crate::fail::Failure;
use crate::http::{self, AppState};

/// Opens the database and brings its schema up to date (exit code 2 when unreachable).
pub async fn open_db(config: &Config) -> Result<Db, Failure> {
    let url = config.database_url();
    let db = Db::connect(config).await.map_err(|e| {
        Failure::usage(format!(
            "cannot open the database {}: {e}",
            redact_url(&url)
        ))
    })?;
    db.migrate().await.map_err(|e| {
        Failure::usage(format!(
            "cannot migrate the database {}: {e}",
            redact_url(&url)
        ))
    })?;
    Ok(db)
}

async fn bind_tcp(what: &str, addr: SocketAddr) -> Result<tokio::net::TcpListener, Failure> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Failure::usage(format!(
                "{what} address {addr} is already in use (is another hotline running?)"
            ))
        } else {
            Failure::usage(format!("cannot listen on {what} address {addr}: {e}"))
        }
    })
}

pub async fn serve(config: Config) -> Result<(), Failure> {
    let config = Arc::new(config);
    let db = open_db(&config).await?;
    let http_listener = bind_tcp("HTTP", config.http.listen).await?;
    // The SIP sockets are reserved here so that a conflict is reported at start; the SIP
    // gateway takes them over.
    let sip_udp = tokio::net::UdpSocket::bind(config.sip.listen)
        .await
        .map_err(|e| {
            Failure::usage(format!(
                "cannot listen on SIP address {} (UDP): {e}",
                config.sip.listen
            ))
        })?;
    let sip_tcp = bind_tcp("SIP (TCP)", config.sip.listen).await?;

    let metrics = Registry::new();
    metrics
        .gauge("hotline_build_info", "Version of the running hotline.")
        .with(&[("version", env!("CARGO_PKG_VERSION"))])
        .set(1);
    let bus = EventBus::new(1024);
    let state = AppState::new(
        db.clone(),
        config.clone(),
        Arc::new(SystemClock),
        Arc::new(SystemRng),
        metrics,
        Arc::new(bus.clone()),
    );
    let (app, _) = http::router(state.clone());

    let http_addr = http_listener.local_addr().map_err(Failure::runtime)?;
    println!("hotline {} is running", env!("CARGO_PKG_VERSION"));
    println!("  web console and API: http://{http_addr}/");
    println!(
        "  SIP (UDP+TCP):       {} (reserved for the SIP gateway)",
        config.sip.listen
    );
    println!("  data directory:      {}", config.data_dir.display());
    println!(
        "  database:            {}",
        redact_url(&config.database_url())
    );
    tracing::info!(%http_addr, sip = %config.sip.listen, "listening");

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    {
        let cancel = cancel.clone();
        tracker.spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            cancel.cancel();
        });
    }
    {
        // Expired sessions are refused on sight; this only keeps the table small.
        let (cancel, state) = (cancel.clone(), state.clone());
        tracker.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = state.db.purge_sessions(state.now(), state.session_policy()).await {
                            tracing::warn!(error = %e, "purging expired sessions failed");
                        }
                    }
                }
            }
        });
    }

    let shutdown = cancel.clone();
    let result = axum::serve(
        http_listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await;
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    drop((sip_udp, sip_tcp));
    db.close().await;
    tracing::info!("stopped");
    result.map_err(Failure::runtime)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

//! `hotline serve`: binds every socket first (so a port in use is reported before anything
//! starts), repairs recordings cut off by a crash, starts the background jobs (recording
//! backup and retention, the 12345 outbox, the SMS sender, session purge, the health
//! alert watcher), runs the HTTP API until SIGTERM or
//! Ctrl-C, then shuts down gracefully: stop accepting, finish in-flight requests, stop the
//! jobs, close the database pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hotline_core::metrics::Registry;
use hotline_core::{Clock, Rng, SystemClock, SystemRng};
use hotline_integrations::workorder::OutboxDriver;
use hotline_recording::RecordingConfig;
use hotline_sip_gateway::{Gateway, GatewayDeps, GatewayError};
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
    // Chains audit rows written before the hash chain existed (migration 0009), once.
    match db.seal_legacy_audit().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            entries = n,
            "audit log: earlier entries sealed into the hash chain"
        ),
        Err(e) => return Err(Failure::runtime(format!("cannot seal the audit log: {e}"))),
    }
    Ok(db)
}

/// Opens the knowledge base; its search index lives in `<data_dir>/kb-index` and is rebuilt
/// when missing or older than the database.
pub async fn open_kb(
    config: &Config,
    db: &Db,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
) -> Result<Arc<hotline_knowledge::KnowledgeBase>, Failure> {
    let dir = config.data_dir.join("kb-index");
    hotline_knowledge::KnowledgeBase::open(db.pool.clone(), &dir, clock, rng)
        .await
        .map(Arc::new)
        .map_err(|e| {
            Failure::runtime(format!(
                "cannot open the knowledge base in {}: {e}",
                dir.display()
            ))
        })
}

/// How often the recording backup and retention jobs run (the first run is at start).
pub const RECORDING_JOBS_EVERY: Duration = Duration::from_secs(600);

/// How long a 12345 delivery round in progress may go on after shutdown is requested; an
/// interrupted reply stays in the outbox and is sent again after restart.
const OUTBOX_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Creates the recording archive and repairs the recordings a crash cut off (marked
/// `recovered`), before any call is taken. Failures are logged, not fatal: calls are still
/// answered, and `/readyz` reports an unusable archive.
pub async fn recover_recordings(
    db: &Db,
    recording: &RecordingConfig,
    clock: &dyn Clock,
    rng: &dyn Rng,
) -> Option<usize> {
    if let Err(e) = std::fs::create_dir_all(&recording.root) {
        tracing::error!(path = %recording.root.display(), error = %e, "cannot create the recording archive");
    }
    match hotline_recording::store::recover_at_start(&db.pool, clock.now_ms(), rng, &recording.root)
        .await
    {
        Ok(repaired) => {
            for r in &repaired {
                tracing::warn!(call_id = %r.call_id, path = %r.relative_path, duration_ms = r.duration_ms, "unfinished recording repaired");
            }
            tracing::info!(repaired = repaired.len(), "recordings checked at start");
            Some(repaired.len())
        }
        Err(e) => {
            tracing::error!(error = %e, "recovering unfinished recordings failed");
            None
        }
    }
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

/// Where `serve` writes its process id (for `hotline ivr reload`).
pub fn pid_file(config: &Config) -> std::path::PathBuf {
    config.data_dir.join("hotline.pid")
}

pub async fn serve(config: Config) -> Result<(), Failure> {
    let config = Arc::new(config);
    let db = open_db(&config).await?;
    let http_listener = bind_tcp("HTTP", config.http.listen).await?;
    let metrics = Registry::new();
    metrics
        .gauge("hotline_build_info", "Version of the running hotline.")
        .with(&[("version", env!("CARGO_PKG_VERSION"))])
        .set(1);
    let bus = EventBus::new(1024);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let rng: Arc<dyn Rng> = Arc::new(SystemRng);
    let cancel = CancellationToken::new();
    // The IVR's flow and prompts: a bad flow file or a missing prompt stops the start here,
    // with its path, rather than in the middle of a call.
    // The administrators' special days join the flow's hours, and their queue edits
    // override the configured queues (an edit that no longer fits is skipped, logged).
    let days = db.special_days().await.map_err(Failure::runtime)?;
    let library = crate::contact::load_library(
        &config.ivr,
        crate::contact::prompts::custom_dir(&config.data_dir),
        None,
        days,
    )
    .await
    .map_err(|e| Failure::usage(format!("ivr: {e}")))?;
    let mut ivr_config = config.ivr.clone();
    let overrides = db.queue_overrides().await.map_err(Failure::runtime)?;
    for why in crate::contact::apply_queue_overrides(&mut ivr_config.acd, &overrides, &library) {
        tracing::warn!(reason = %why, "a stored queue edit is not applied");
    }
    let (app_tx, app_rx) = tokio::sync::mpsc::unbounded_channel();
    // Call records, call facts and recording rows survive a database outage (issue 12).
    let writes: Arc<dyn hotline_core::write_queue::WriteQueue> =
        Arc::new(crate::db::write_queue::DbWriteQueue::start(
            std::time::Duration::from_secs(config.database.write_retry_secs.into()),
            &metrics,
        ));
    let recording = config.recording();
    let repaired = recover_recordings(&db, &recording, clock.as_ref(), rng.as_ref()).await;
    let gateway = Gateway::start(
        config.sip.clone(),
        GatewayDeps {
            pool: db.pool.clone(),
            metrics: metrics.clone(),
            events: Arc::new(bus.clone()),
            clock: clock.clone(),
            rng: rng.clone(),
            cancel: cancel.child_token(),
            app: Some(app_tx),
            // Every answered call is recorded (docs/configuration.md, [recording]).
            tap: recording.enabled.then(|| {
                Arc::new(crate::recording_tap::RecordingTap::new(
                    hotline_recording::Recorder::new(&recording, &metrics, clock.clone()),
                    db.pool.clone(),
                    writes.clone(),
                    clock.clone(),
                    rng.clone(),
                )) as Arc<dyn hotline_core::media::MediaTap>
            }),
            writes: Some(writes.clone()),
        },
    )
    .await
    .map_err(|e| match e {
        GatewayError::Bind { .. } | GatewayError::Config { .. } => Failure::usage(e.to_string()),
        other => Failure::runtime(other),
    })?;
    let sip_addr = gateway.local_addr();
    let state = AppState::new(
        db.clone(),
        config.clone(),
        clock,
        rng,
        metrics,
        Arc::new(bus.clone()),
    );
    let _ = state.gateway.set(gateway.clone());
    let _ = state.event_bus.set(bus.clone());
    let contact = crate::contact::start(crate::contact::ContactDeps {
        config: ivr_config,
        library,
        gateway: gateway.clone(),
        app_events: app_rx,
        pool: db.pool.clone(),
        crm: hotline_crm::CrmStore::new(
            db.pool.clone(),
            config.crm.clone(),
            config.data_dir.join("attachments"),
        ),
        writes,
        clock: state.clock.clone(),
        rng: state.rng.clone(),
        metrics: state.metrics.clone(),
        events: state.events.clone(),
        cancel: cancel.child_token(),
    })
    .map_err(|e| Failure::runtime(e.0))?;
    let _ = state.contact.set(contact.clone());
    let kb = open_kb(&config, &db, state.clock.clone(), state.rng.clone()).await?;
    let _ = state.knowledge.set(kb);
    let (app, _) = http::router(state.clone());

    let http_addr = http_listener.local_addr().map_err(Failure::runtime)?;
    if let Err(e) = std::fs::write(pid_file(&config), format!("{}\n", std::process::id())) {
        tracing::warn!(error = %e, "cannot write the pid file; `hotline ivr reload` will not find us");
    }
    println!("hotline {} is running", env!("CARGO_PKG_VERSION"));
    println!("  web console and API: http://{http_addr}/");
    println!("  SIP (UDP+TCP):       {sip_addr}");
    println!("  data directory:      {}", config.data_dir.display());
    println!(
        "  recordings:          {}{}",
        recording.root.display(),
        match repaired {
            Some(0) => String::new(),
            Some(n) => format!(" ({n} unfinished repaired)"),
            None => " (recovery failed, see the log)".to_string(),
        }
    );
    println!(
        "  database:            {}",
        redact_url(&config.database_url())
    );
    if config.integrations.wechat.enabled {
        println!("  WeChat callback:     http://{http_addr}/api/v1/wechat/callback");
    }
    if config.integrations.web_chat.enabled {
        println!("  chat widget:         http://{http_addr}/widget/chat.js");
    }
    if db
        .count_users_with_role(hotline_core::Role::Admin)
        .await
        .unwrap_or(0)
        == 0
    {
        println!("  no administrator yet: run `hotline init` to create one");
    }
    tracing::info!(%http_addr, %sip_addr, "listening");

    let tracker = TaskTracker::new();
    {
        let cancel = cancel.clone();
        tracker.spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown requested");
            cancel.cancel();
        });
    }
    #[cfg(unix)]
    {
        // SIGHUP reloads the IVR flow and prompts; a bad file keeps the running set.
        let (cancel, ivr, contact) = (cancel.clone(), config.ivr.clone(), contact.clone());
        let db = db.clone();
        let custom_prompts = crate::contact::prompts::custom_dir(&config.data_dir);
        tracker.spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = hup.recv() => {
                        let days = match db.special_days().await {
                            Ok(days) => days,
                            Err(e) => {
                                tracing::error!(error = %e, "IVR reload failed: cannot read the special days");
                                continue;
                            }
                        };
                        match crate::contact::load_library(&ivr, custom_prompts.clone(), None, days).await {
                            Ok(lib) => {
                                contact.reload(lib).await;
                            }
                            Err(e) => tracing::error!(error = %e, "IVR reload refused; the running flow stays"),
                        }
                    }
                }
            }
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

    spawn_recording_jobs(&tracker, &cancel, &state, recording);
    spawn_outbox(&tracker, &cancel, &state);
    spawn_sms_sender(&tracker, &cancel, &state);
    crate::alerts::driver::spawn(&tracker, &cancel, &state);

    let shutdown = cancel.clone();
    let result = axum::serve(
        http_listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await;
    // In-flight requests are done; now the gateway hangs up active calls (BYE, CDRs closed)
    // and the background tasks stop.
    cancel.cancel();
    gateway.stopped().await;
    tracker.close();
    tracker.wait().await;
    db.close().await;
    let _ = std::fs::remove_file(pid_file(&config));
    tracing::info!("stopped");
    result.map_err(Failure::runtime)
}

/// Backup of new recordings and retention, every [`RECORDING_JOBS_EVERY`]. A round cut
/// short by shutdown leaves its recordings `pending`; the next start copies them again (the
/// copy is written to a temporary name and renamed only after its hash is checked).
fn spawn_recording_jobs(
    tracker: &TaskTracker,
    cancel: &CancellationToken,
    state: &AppState,
    recording: RecordingConfig,
) {
    let (cancel, state) = (cancel.clone(), state.clone());
    let backups = state.metrics.counter(
        "hotline_recording_backups_total",
        "Recordings copied to the backup path, by result (copied, failed).",
    );
    let deleted = state.metrics.counter(
        "hotline_recording_retention_deleted_total",
        "Recordings deleted by the retention job.",
    );
    let job_errors = state.metrics.counter(
        "hotline_recording_job_errors_total",
        "Runs of the recording backup/retention job that failed.",
    );
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(RECORDING_JOBS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                r = http::recordings::run_jobs(&state, &recording) => match r {
                    Ok((copied, failed, removed)) => {
                        backups.with(&[("result", "copied")]).add(copied as i64);
                        backups.with(&[("result", "failed")]).add(failed as i64);
                        deleted.with(&[]).add(removed as i64);
                        if copied + failed + removed > 0 {
                            tracing::info!(copied, failed, deleted = removed, "recording jobs done");
                        }
                    }
                    Err(e) => {
                        job_errors.with(&[]).inc();
                        tracing::error!(error = %e, "recording jobs failed");
                    }
                },
            }
        }
    });
}

/// The 12345 outbox driver: delivers replies to the platform, woken when one is queued.
/// Without a `reply_url` there is nothing to deliver to and replies wait in the outbox.
fn spawn_outbox(tracker: &TaskTracker, cancel: &CancellationToken, state: &AppState) {
    let platform = &state.config.integrations.platform_12345;
    if platform.reply_url.is_empty() {
        tracing::info!(
            "integrations.platform_12345.reply_url is not set: 12345 replies wait in the outbox"
        );
        return;
    }
    let driver = OutboxDriver::new(state.db.pool.clone(), platform);
    let wake = state.integrations_http().outbox_wake.clone();
    let (clock, rng, cancel) = (state.clock.clone(), state.rng.clone(), cancel.clone());
    tracker.spawn(async move {
        let run = driver.run(clock, rng, wake, cancel.clone().cancelled_owned());
        tokio::pin!(run);
        tokio::select! {
            () = &mut run => {}
            () = cancel.cancelled() => {
                if tokio::time::timeout(OUTBOX_SHUTDOWN_GRACE, run).await.is_err() {
                    tracing::warn!("12345 delivery cut short by shutdown; unacknowledged replies are sent after restart");
                }
            }
        }
    });
}

/// The SMS sender: drains the outbox at the gateway's rate outside quiet hours; woken when a
/// batch is confirmed. A round cut short by shutdown leaves its messages `sending`; the next
/// start settles them with the gateway before sending anything (docs/sms.md).
fn spawn_sms_sender(tracker: &TaskTracker, cancel: &CancellationToken, state: &AppState) {
    use hotline_integrations::sms::ProviderKind;
    use hotline_integrations::sms::provider::{FileSink, HttpProvider, SmsProvider};
    use hotline_integrations::sms::sender::{SenderPolicy, SmsSender};
    let config = &state.config.integrations.sms;
    if !config.enabled {
        tracing::info!("integrations.sms.enabled is false: SMS messages wait in the outbox");
        return;
    }
    let provider: Arc<dyn SmsProvider> = match config.provider {
        ProviderKind::File => {
            let path = state.config.data_dir.join(&config.file_path);
            tracing::info!(path = %path.display(), "sms sender writes to a file (provider = \"file\")");
            Arc::new(FileSink::new(path))
        }
        ProviderKind::Http => Arc::new(HttpProvider::new(config.http.clone())),
    };
    let sender = SmsSender::new(
        state.db.pool.clone(),
        provider,
        SenderPolicy::from_config(config),
    );
    tracing::info!(
        rate_per_sec = config.rate_per_sec,
        concurrency = config.concurrency,
        "sms sender started"
    );
    let wake = state.sms_http().wake.clone();
    let (clock, cancel) = (state.clock.clone(), cancel.clone());
    tracker.spawn(async move {
        let run = sender.run(clock, wake, cancel.clone().cancelled_owned());
        tokio::pin!(run);
        tokio::select! {
            () = &mut run => {}
            () = cancel.cancelled() => {
                if tokio::time::timeout(OUTBOX_SHUTDOWN_GRACE, run).await.is_err() {
                    tracing::warn!("sms round cut short by shutdown; its messages are settled at the next start");
                }
            }
        }
    });
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

//! The tokio driver: binds UDP and TCP on one port, starts rsipstack's transport and
//! transaction layers on them ([`crate::sip::stack`]) and runs the one task that owns the
//! [`Engine`] (stack events, commands, a 50 ms tick for the engine's timers).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline_core::events::EventSink;
use hotline_core::metrics::Registry;
use hotline_core::{Clock, Rng};
use sqlx::AnyPool;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::GatewayConfig;
use crate::engine::{Command, Engine, EngineParts};
use crate::error::GatewayError;
use crate::sip::dialogs::DialogStates;
use crate::sip::stack::{Inbound, NewTransactions, Stack};
use crate::store;

/// Everything [`Gateway::start`] needs from the composition root.
#[derive(Clone)]
pub struct GatewayDeps {
    pub pool: AnyPool,
    pub metrics: Registry,
    pub events: Arc<dyn EventSink>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
    /// Cancelling it stops the gateway: active calls get BYE, sockets close.
    pub cancel: CancellationToken,
    /// The application (IVR/ACD) that takes calls to DIDs routed to `ivr`.
    pub app: Option<mpsc::UnboundedSender<crate::app::AppEvent>>,
    /// The recorder's tap: every answered call's audio, both sides (none: not recorded).
    pub tap: Option<Arc<dyn hotline_core::media::MediaTap>>,
    /// Where call records go when the database does not take them (none: a failed write is
    /// only logged).
    pub writes: Option<Arc<dyn hotline_core::write_queue::WriteQueue>>,
}

impl std::fmt::Debug for GatewayDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayDeps").finish_non_exhaustive()
    }
}

/// A snapshot of the gateway's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GatewayStatus {
    pub active_calls: usize,
    pub trunk_channels_in_use: u32,
    pub registrations: usize,
}

/// What the health watcher needs: trunk peers' keepalive state and seats' reachability.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GatewayHealth {
    /// Every trunk peer that is kept alive with OPTIONS (one host with a port).
    pub peers: Vec<PeerHealth>,
    /// Every seat with at least one registered contact.
    pub seats: Vec<SeatHealth>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerHealth {
    pub name: String,
    /// The answer to the latest OPTIONS keepalive: `None` before the first one settled.
    pub up: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SeatHealth {
    pub seat: String,
    /// Some contact is registered, not expired and did not fail its latest OPTIONS qualify.
    pub reachable: bool,
}

/// The SIP gateway.
#[derive(Debug)]
pub struct Gateway;

/// A running gateway. Cheap to clone: every clone talks to the same engine task (the web
/// API keeps one for click-to-call and status; the server keeps one to wait for shutdown).
#[derive(Debug, Clone)]
pub struct GatewayHandle {
    local_addr: SocketAddr,
    commands: mpsc::Sender<Command>,
    registrations: watch::Receiver<u64>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Gateway {
    /// Validates `config`, loads persisted bindings, binds UDP and TCP on `config.listen`
    /// (port 0 picks a free port, the same for both) and starts serving.
    pub async fn start(
        config: GatewayConfig,
        deps: GatewayDeps,
    ) -> Result<GatewayHandle, GatewayError> {
        config.validate()?;
        let (udp, tcp, local_addr) = bind(&config).await?;
        let now = deps.clock.now_ms();
        let bindings = store::list_bindings(&deps.pool, now).await?;
        // Calls that were up when the process died (kill -9, power loss) cannot still be
        // up: their records are closed now, marked as interrupted.
        let interrupted = store::close_interrupted_calls(&deps.pool, now).await?;
        if interrupted > 0 {
            tracing::warn!(
                calls = interrupted,
                "call records left open by the previous run closed as interrupted"
            );
        }
        let (reg_tx, reg_rx) = watch::channel(0u64);
        let engine = Engine::new(EngineParts {
            cfg: config.clone(),
            pool: deps.pool.clone(),
            clock: deps.clock.clone(),
            rng: deps.rng.clone(),
            events: deps.events.clone(),
            metrics: deps.metrics.clone(),
            port: local_addr.port(),
            bindings,
            reg_watch: reg_tx,
            app: deps.app.clone(),
            tap: deps.tap.clone(),
            writes: deps.writes.clone(),
        });
        let (in_tx, in_rx) = mpsc::channel::<Inbound>(4096);
        let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(64);
        let cancel = deps.cancel.clone();
        let advertised = config
            .advertised_ip
            .map(|ip| SocketAddr::new(ip, local_addr.port()));
        let (stack, incoming, states) = Stack::start(
            udp,
            tcp,
            advertised,
            config.max_message_size,
            engine.m.malformed.clone(),
            in_tx,
            cancel.clone(),
        )
        .await
        .map_err(|source| GatewayError::Bind {
            transport: "UDP",
            addr: local_addr,
            source,
        })?;
        let task = tokio::spawn(run(engine, in_rx, incoming, states, cmd_rx, stack, cancel));
        tracing::info!(%local_addr, "SIP gateway listening");
        Ok(GatewayHandle {
            local_addr,
            commands: cmd_tx,
            registrations: reg_rx,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }
}

impl GatewayHandle {
    /// The bound address (UDP and TCP use the same port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Changes whenever a seat's bindings or their reachability (OPTIONS qualify) change
    /// (for wallboards and tests).
    pub fn registrations(&self) -> watch::Receiver<u64> {
        self.registrations.clone()
    }

    pub async fn status(&self) -> Result<GatewayStatus, GatewayError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Status(tx))
            .await
            .map_err(|_| GatewayError::Stopped)?;
        rx.await.map_err(|_| GatewayError::Stopped)
    }

    /// Trunk peers' and seats' reachability now.
    pub async fn health(&self) -> Result<GatewayHealth, GatewayError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Health(tx))
            .await
            .map_err(|_| GatewayError::Stopped)?;
        rx.await.map_err(|_| GatewayError::Stopped)
    }

    /// Click-to-call: rings `seat`'s registered phone, then calls `number` over the trunk
    /// with the hotline number as caller ID, and bridges them. Returns our call id at once
    /// (progress arrives as `CallEvent`s). Refused when `number` does not match the
    /// outbound allow-list, the seat is not reachable or all channels are busy.
    pub async fn click_to_call(&self, seat: &str, number: &str) -> Result<String, GatewayError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::ClickToCall {
                seat: seat.to_string(),
                number: number.to_string(),
                reply,
            })
            .await
            .map_err(|_| GatewayError::Stopped)?;
        rx.await.map_err(|_| GatewayError::Stopped)?
    }

    /// Ends a call on both legs (supervisor action, ACD clean-up). Returns whether the call
    /// was active; its CDR gets cause `hangup`, side `system`.
    pub async fn hangup(&self, call_id: &str) -> Result<bool, GatewayError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Hangup {
                call_id: call_id.to_string(),
                reply,
            })
            .await
            .map_err(|_| GatewayError::Stopped)?;
        rx.await.map_err(|_| GatewayError::Stopped)
    }

    /// Waits until the gateway has stopped (after its cancel token fired).
    /// Only the first caller waits; later calls return at once.
    async fn app(&self, cmd: crate::app::AppCommand) -> Result<(), GatewayError> {
        self.commands
            .send(Command::App(cmd))
            .await
            .map_err(|_| GatewayError::Stopped)
    }

    /// Plays `clips` in order to the caller of an application call, after what is already
    /// queued; [`crate::AppEvent::PlayFinished`] with `id` follows the last frame.
    pub async fn play(
        &self,
        call_id: &str,
        id: u64,
        clips: Vec<crate::MediaClip>,
    ) -> Result<(), GatewayError> {
        self.app(crate::app::AppCommand::Play {
            call_id: call_id.to_string(),
            id,
            clips,
        })
        .await
    }

    /// Stops and forgets every queued playback of the call (barge-in).
    pub async fn stop_playback(&self, call_id: &str) -> Result<(), GatewayError> {
        self.app(crate::app::AppCommand::Stop {
            call_id: call_id.to_string(),
        })
        .await
    }

    /// Rings `seat` for an application call; the outcome arrives as `SeatAnswered` or
    /// `SeatFailed`. Fails at once when the seat has no reachable contact.
    pub async fn connect_seat(&self, call_id: &str, seat: &str) -> Result<(), GatewayError> {
        let (tx, rx) = oneshot::channel();
        self.app(crate::app::AppCommand::ConnectSeat {
            call_id: call_id.to_string(),
            seat: seat.to_string(),
            reply: tx,
        })
        .await?;
        rx.await.map_err(|_| GatewayError::Stopped)?
    }

    /// Pauses or resumes the recording of an application call (the agent's request, e.g.
    /// while the caller reads out a card number: silence is recorded). `Ok(false)` when
    /// it already was in that state or the call is not recorded.
    pub async fn set_recording_paused(
        &self,
        call_id: &str,
        paused: bool,
    ) -> Result<bool, GatewayError> {
        let (tx, rx) = oneshot::channel();
        self.app(crate::app::AppCommand::SetRecordingPaused {
            call_id: call_id.to_string(),
            paused,
            reply: tx,
        })
        .await?;
        rx.await.map_err(|_| GatewayError::Stopped)?
    }

    /// Puts the caller of an application call bridged to a seat on hold (`true`: nothing
    /// is relayed, the caller hears what the application plays next) or back (`false`).
    /// `Ok(false)` when it already was in that state; `CallNotFound` when no seat is bridged.
    pub async fn set_hold(&self, call_id: &str, on: bool) -> Result<bool, GatewayError> {
        let (tx, rx) = oneshot::channel();
        self.app(crate::app::AppCommand::SetHold {
            call_id: call_id.to_string(),
            on,
            reply: tx,
        })
        .await?;
        rx.await.map_err(|_| GatewayError::Stopped)?
    }

    /// Cancels the ringing seat or hangs up the connected one; the caller stays.
    pub async fn disconnect_seat(&self, call_id: &str) -> Result<(), GatewayError> {
        self.app(crate::app::AppCommand::DisconnectSeat {
            call_id: call_id.to_string(),
        })
        .await
    }

    pub async fn stopped(self) {
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn bind(
    cfg: &GatewayConfig,
) -> Result<(Option<UdpSocket>, Option<TcpListener>, SocketAddr), GatewayError> {
    // With port 0 the UDP port is picked first and TCP must get the same one; another
    // process may hold it on TCP, so try a few times.
    let attempts = if cfg.listen.port() == 0 { 20 } else { 1 };
    let mut last_err = None;
    for _ in 0..attempts {
        let udp = if cfg.udp {
            Some(
                UdpSocket::bind(cfg.listen)
                    .await
                    .map_err(|source| GatewayError::Bind {
                        transport: "UDP",
                        addr: cfg.listen,
                        source,
                    })?,
            )
        } else {
            None
        };
        let addr = match &udp {
            Some(u) => u.local_addr()?,
            None => cfg.listen,
        };
        if !cfg.tcp {
            return Ok((udp, None, addr));
        }
        match TcpListener::bind(addr).await {
            Ok(l) => {
                let addr = l.local_addr()?;
                return Ok((udp, Some(l), addr));
            }
            Err(source) => {
                last_err = Some(GatewayError::Bind {
                    transport: "TCP",
                    addr,
                    source,
                })
            }
        }
    }
    Err(last_err.unwrap_or(GatewayError::Stopped))
}

async fn run(
    mut engine: Engine,
    mut inbound: mpsc::Receiver<Inbound>,
    mut incoming: NewTransactions,
    mut states: DialogStates,
    mut commands: mpsc::Receiver<Command>,
    mut stack: Stack,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(m) = inbound.recv() => deliver(&mut engine, m).await,
            Some(tx) = incoming.recv() => {
                if let Some(m) = stack.accept(tx).await {
                    deliver(&mut engine, m).await;
                }
            }
            Some(s) = states.recv() => stack.on_dialog_state(s),
            Some(c) = commands.recv() => engine.handle_command(c).await,
            _ = tick.tick() => engine.handle_timeout().await,
        }
        flush(&mut engine, &mut stack).await;
    }
    engine.shutdown().await;
    flush(&mut engine, &mut stack).await;
    tracing::info!("SIP gateway stopped");
}

/// Hands the engine one message from the stack, noting how long it waited since it came off
/// the socket (overload control).
async fn deliver(engine: &mut Engine, m: Inbound) {
    engine.note_queue_delay(u64::try_from(m.at.elapsed().as_millis()).unwrap_or(u64::MAX));
    engine.handle_event(m.event).await;
}

async fn flush(engine: &mut Engine, stack: &mut Stack) {
    for t in std::mem::take(&mut engine.out) {
        stack.send(t).await;
    }
    if !engine.done.is_empty() {
        stack.end(std::mem::take(&mut engine.done));
    }
}

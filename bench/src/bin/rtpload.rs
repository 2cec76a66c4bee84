//! RTP load through the gateway's relay (issue 11, the load harness). One process plays both
//! ends of N bridged G.711 calls: the *trunk* (INVITE with a PCMA offer to a DID routed to a
//! seat) and the *seat* (registered with digest, answering the gateway's INVITEs). It thereby
//! knows both relay ports of every call and sends 20 ms PCMA packets both ways from one UDP
//! socket per side with sendmmsg, receiving with recvmmsg. Each payload carries a stamp (run,
//! call, sequence, send time on this process's monotonic clock), so the receiver measures
//! loss, added latency (p50/p99) and RFC 3550 jitter of the relay path per direction.
//!
//! sipp spends ~0.1 % of a core per RTP call itself, which is the gateway's own order of cost;
//! this tool sends a tick's packets for all calls in a few system calls.
//!
//!   rtpload --gateway 127.0.0.1:5091 --did 02212345 --password PW [--pid PID] 100 500 1000
//!
//! Prints one line per level, with the tool's own CPU (% of one core) over the hold; `--pid`
//! adds the gateway's CPU over the hold and its RSS at the end of it, and per call: CPU (% of
//! one core) and the RSS the level added to the gateway's idle RSS (KiB). Latency is receive time
//! minus send stamp, both taken in user space, so it includes the tool's own scheduling: an
//! upper bound of what the relay adds.

use std::collections::HashMap;
use std::io::IoSlice;
use std::io::IoSliceMut;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hotline_bench::rtpstats::{
    DirectionStats, PCMA_PAYLOAD, RTP_HEADER, Stamp, loss_percent, percentile,
};
use hotline_bench::sipmsg::{SipMessage, digest_param, param, sdp_audio, sdp_pcma};
use hotline_sip_gateway::digest::{Algorithm, client_response};
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg, setsockopt, sockopt,
};

const PTIME: Duration = Duration::from_millis(20);
/// Packets per recvmmsg call.
const BATCH: usize = 64;
/// Packets per sendmmsg call. A batch's packets share a send stamp, and on loopback
/// each send runs the relay socket's receive path inline (a few µs), so the last packet of a
/// batch is stamped early by the batch's duration: 16 keeps that error near 50 µs while a
/// 2,000-call tick still takes only 250 system calls.
const SEND_BATCH: usize = 16;
type Packet = [u8; RTP_HEADER + PCMA_PAYLOAD];

#[derive(Parser, Debug)]
#[command(about = "RTP load through hotline's relay: N bridged PCMA calls, loss/latency/jitter")]
struct Args {
    /// The gateway's SIP address (UDP).
    #[arg(long, default_value = "127.0.0.1:5091")]
    gateway: SocketAddrV4,
    /// The DID routed to the seat.
    #[arg(long, default_value = "02212345")]
    did: String,
    /// The seat to register and answer as.
    #[arg(long, default_value = "8001")]
    seat: String,
    /// The seat's SIP password (printed by `hotline init`).
    #[arg(long)]
    password: String,
    /// Calls set up per second.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Seconds of audio to measure once all calls of a level are up.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// The gateway's process id, to report its CPU and RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// Concurrent calls per level.
    #[arg(default_values_t = [100usize])]
    levels: Vec<usize>,
}

/// State shared by the SIP, sender and receiver threads.
struct Shared {
    start: Instant,
    run: AtomicU32,
    stop: AtomicBool,
    /// Live trunk calls: call index → the relay's caller-facing address.
    callers: Mutex<HashMap<u32, SocketAddrV4>>,
    /// Live seat legs: leg index → the relay's seat-facing address.
    seats: Mutex<HashMap<u32, SocketAddrV4>>,
    sent_to_seat: AtomicU64,
    sent_to_caller: AtomicU64,
    /// Packets the seat received (caller → seat) and the caller received (seat → caller).
    at_seat: Mutex<DirectionStats>,
    at_caller: Mutex<DirectionStats>,
    /// Ticks on which the sender could not keep the 20 ms pace.
    late_ticks: AtomicU64,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.rate == 0 {
        bail!("--rate must be at least 1");
    }
    let shared = Arc::new(Shared {
        start: Instant::now(),
        run: AtomicU32::new(0),
        stop: AtomicBool::new(false),
        callers: Mutex::default(),
        seats: Mutex::default(),
        sent_to_seat: AtomicU64::new(0),
        sent_to_caller: AtomicU64::new(0),
        at_seat: Mutex::default(),
        at_caller: Mutex::default(),
        late_ticks: AtomicU64::new(0),
    });
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let caller_rtp = rtp_socket(local)?;
    let seat_rtp = rtp_socket(local)?;
    let caller_rtp_addr = v4(caller_rtp.local_addr()?)?;
    let seat_rtp_addr = v4(seat_rtp.local_addr()?)?;

    let mut threads = Vec::new();
    for (sock, at_seat) in [(&seat_rtp, true), (&caller_rtp, false)] {
        let (sock, sh) = (sock.try_clone()?, shared.clone());
        threads.push(thread::spawn(move || receive_loop(&sock, &sh, at_seat)));
    }
    {
        let (c, s, sh) = (
            caller_rtp.try_clone()?,
            seat_rtp.try_clone()?,
            shared.clone(),
        );
        threads.push(thread::spawn(move || send_loop(&c, &s, &sh)));
    }

    // The seat: register, then answer every INVITE the gateway sends.
    let seat_sip = UdpSocket::bind(local)?;
    seat_sip.set_read_timeout(Some(Duration::from_millis(20)))?;
    let seat = Arc::new(Seat {
        sock: seat_sip,
        gateway: args.gateway,
        user: args.seat.clone(),
        password: args.password.clone(),
        rtp: seat_rtp_addr,
        state: Mutex::default(),
    });
    {
        let (seat, sh) = (seat.clone(), shared.clone());
        threads.push(thread::spawn(move || seat.run(&sh)));
    }
    seat.register(1, None)?;
    wait_for(Duration::from_secs(5), || seat.registered())
        .context("the seat did not register (wrong password, or no gateway at --gateway?)")?;

    // The trunk.
    let trunk_sip = UdpSocket::bind(local)?;
    trunk_sip.set_read_timeout(Some(Duration::from_millis(20)))?;
    let trunk = Arc::new(Trunk {
        sock: trunk_sip,
        gateway: args.gateway,
        did: args.did.clone(),
        rtp: caller_rtp_addr,
        state: Mutex::default(),
    });
    {
        let (trunk, sh) = (trunk.clone(), shared.clone());
        threads.push(thread::spawn(move || trunk.run(&sh)));
    }

    println!(
        "{:>6} {:>6} {:>6} | {:>9} {:>9} {:>7} {:>7} {:>7} {:>7} | {:>9} {:>9} {:>7} {:>7} {:>7} {:>7} | {:>6} {:>8} {:>6} {:>6} {:>9} {:>8}",
        "calls",
        "up",
        "failed",
        "c>s sent",
        "recv",
        "loss%",
        "p50us",
        "p99us",
        "jit_us",
        "s>c sent",
        "recv",
        "loss%",
        "p50us",
        "p99us",
        "jit_us",
        "cpu%",
        "rss_MiB",
        "tool%",
        "late",
        "cpu%/call",
        "KiB/call"
    );
    // The gateway's memory with the seat registered and no call: per-call figures are
    // what each level adds to it.
    let idle_rss = rss_kib(args.pid);
    if let Some(k) = idle_rss {
        eprintln!("hotline idle RSS: {:.1} MiB", k as f64 / 1024.0);
    }
    for (run, &n) in (1u32..).zip(&args.levels) {
        let line = run_level(&args, &shared, &trunk, &seat, run, n, idle_rss)?;
        println!("{line}");
    }
    shared.stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// Sets up `n` calls at the configured rate, holds them `hold` seconds with audio both ways,
/// stops the audio, collects the figures and hangs up.
fn run_level(
    args: &Args,
    shared: &Shared,
    trunk: &Trunk,
    seat: &Seat,
    run: u32,
    n: usize,
    idle_rss: Option<u64>,
) -> anyhow::Result<String> {
    *shared.at_seat.lock().unwrap() = DirectionStats::default();
    *shared.at_caller.lock().unwrap() = DirectionStats::default();
    shared.sent_to_seat.store(0, Ordering::Relaxed);
    shared.sent_to_caller.store(0, Ordering::Relaxed);
    shared.late_ticks.store(0, Ordering::Relaxed);
    shared.run.store(run, Ordering::Relaxed);
    trunk.state.lock().unwrap().reset();

    let ramp_start = Instant::now();
    let gap = Duration::from_secs(1) / args.rate;
    for i in 0..n {
        // Pacing the offered load, not waiting for an event.
        let due = ramp_start + gap * u32::try_from(i)?;
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            thread::sleep(d);
        }
        trunk.invite(run, i)?;
    }
    // Timer B (RFC 3261 §17.1.1.2) is 32 s: a call unanswered by then has failed.
    let _ = wait_for(Duration::from_secs(35), || {
        let s = trunk.state.lock().unwrap();
        s.up + s.failed >= n
    });
    let own = Some(std::process::id());
    let (cpu0, own0, t0) = (cpu_ticks(args.pid), cpu_ticks(own), Instant::now());
    thread::sleep(Duration::from_secs(args.hold));
    let (cpu1, own1, t1) = (cpu_ticks(args.pid), cpu_ticks(own), Instant::now());
    let rss = rss_kib(args.pid);

    // Stop the audio, let what is in flight arrive, then take the figures.
    shared.callers.lock().unwrap().clear();
    shared.seats.lock().unwrap().clear();
    shared.run.store(run + 1_000_000, Ordering::Relaxed); // the sender stops stamping this run
    let settled = || {
        let a = shared.at_seat.lock().unwrap().received + shared.at_caller.lock().unwrap().received;
        thread::sleep(Duration::from_millis(100));
        a == shared.at_seat.lock().unwrap().received + shared.at_caller.lock().unwrap().received
    };
    let _ = wait_for(Duration::from_secs(3), settled);
    let (up, failed) = {
        let s = trunk.state.lock().unwrap();
        (s.up, s.failed)
    };
    let mut at_seat = std::mem::take(&mut *shared.at_seat.lock().unwrap());
    let mut at_caller = std::mem::take(&mut *shared.at_caller.lock().unwrap());
    let to_seat = shared.sent_to_seat.load(Ordering::Relaxed);
    let to_caller = shared.sent_to_caller.load(Ordering::Relaxed);

    trunk.hang_up_all(args.rate.saturating_mul(2))?;
    let _ = wait_for(Duration::from_secs(10), || {
        trunk
            .state
            .lock()
            .unwrap()
            .calls
            .values()
            .all(|c| c.phase != Phase::Bye)
    });
    seat.state.lock().unwrap().legs.clear();

    let percent = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!(
            "{:.1}",
            100.0 * b.saturating_sub(a) as f64 / clk_tck() / (t1 - t0).as_secs_f64()
        ),
        _ => "-".into(),
    };
    let cpu_per_call = match (cpu0, cpu1) {
        (Some(a), Some(b)) if up > 0 => format!(
            "{:.4}",
            100.0 * b.saturating_sub(a) as f64 / clk_tck() / (t1 - t0).as_secs_f64() / up as f64
        ),
        _ => "-".into(),
    };
    let kib_per_call = match (rss, idle_rss) {
        (Some(r), Some(i)) if up > 0 => format!("{:.1}", r.saturating_sub(i) as f64 / up as f64),
        _ => "-".into(),
    };
    let (cpu, own) = (percent(cpu0, cpu1), percent(own0, own1));
    let rss = rss.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0));
    Ok(format!(
        "{n:>6} {up:>6} {failed:>6} | {} | {} | {cpu:>6} {rss:>8} {own:>6} {:>6} {cpu_per_call:>9} {kib_per_call:>8}",
        direction(to_seat, &mut at_seat),
        direction(to_caller, &mut at_caller),
        shared.late_ticks.load(Ordering::Relaxed)
    ))
}

fn direction(sent: u64, d: &mut DirectionStats) -> String {
    let (jit, _) = d.jitter_us();
    let received = d.received;
    let p50 = percentile(&mut d.latencies_us, 50.0).map_or("-".into(), |v| v.to_string());
    let p99 = percentile(&mut d.latencies_us, 99.0).map_or("-".into(), |v| v.to_string());
    format!(
        "{sent:>9} {received:>9} {:>7.3} {p50:>7} {p99:>7} {jit:>7.1}",
        loss_percent(sent, received)
    )
}

/// Polls `done` every 20 ms until it holds or `limit` passes.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let end = Instant::now() + limit;
    while !done() {
        if Instant::now() > end {
            bail!("timed out after {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn v4(a: SocketAddr) -> anyhow::Result<SocketAddrV4> {
    match a {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => bail!("IPv4 only"),
    }
}

fn rtp_socket(local: SocketAddr) -> anyhow::Result<UdpSocket> {
    let s = UdpSocket::bind(local)?;
    // 2,000 calls are 100 k packets/s per direction; a bigger buffer rides out the receiver's
    // scheduling gaps. The kernel caps it at net.core.rmem_max (wmem_max).
    let _ = setsockopt(&s, sockopt::RcvBuf, &(16 << 20));
    let _ = setsockopt(&s, sockopt::SndBuf, &(4 << 20));
    s.set_read_timeout(Some(Duration::from_millis(50)))?;
    Ok(s)
}

fn clk_tck() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |v| v as f64)
}

/// utime + stime of a process, in clock ticks (proc(5)).
fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---- RTP --------------------------------------------------------------------------------

/// Every 20 ms, one packet per live call in each direction, in sendmmsg batches.
fn send_loop(caller: &UdpSocket, seat: &UdpSocket, shared: &Shared) {
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(SEND_BATCH, None);
    let mut next = Instant::now();
    let mut tick: u32 = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        let run = shared.run.load(Ordering::Relaxed);
        let to_seat: Vec<(u32, SocketAddrV4)> = shared
            .callers
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        let to_caller: Vec<(u32, SocketAddrV4)> = shared
            .seats
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        let a = send_tick(
            caller,
            &mut headers,
            shared,
            run,
            tick,
            &to_seat,
            0x1000_0000,
        );
        let b = send_tick(
            seat,
            &mut headers,
            shared,
            run,
            tick,
            &to_caller,
            0x2000_0000,
        );
        shared.sent_to_seat.fetch_add(a, Ordering::Relaxed);
        shared.sent_to_caller.fetch_add(b, Ordering::Relaxed);
        tick = tick.wrapping_add(1);
        next += PTIME;
        let now = Instant::now();
        match next.checked_duration_since(now) {
            Some(d) => thread::sleep(d),
            None => {
                shared.late_ticks.fetch_add(1, Ordering::Relaxed);
                next = now;
            }
        }
    }
}

/// Sends one packet per stream; returns how many left.
fn send_tick(
    sock: &UdpSocket,
    headers: &mut MultiHeaders<SockaddrIn>,
    shared: &Shared,
    run: u32,
    seq: u32,
    streams: &[(u32, SocketAddrV4)],
    ssrc_base: u32,
) -> u64 {
    let mut sent = 0u64;
    let mut pkts: Vec<Packet> = vec![[0u8; RTP_HEADER + PCMA_PAYLOAD]; SEND_BATCH];
    for chunk in streams.chunks(SEND_BATCH) {
        let now = shared.now_ns();
        let mut addrs = Vec::with_capacity(chunk.len());
        for ((stream, addr), pkt) in chunk.iter().zip(pkts.iter_mut()) {
            let stamp = Stamp {
                run,
                stream: *stream,
                seq,
                sent_ns: now,
            };
            stamp.packet(ssrc_base.wrapping_add(*stream), pkt);
            addrs.push(Some(SockaddrIn::from(*addr)));
        }
        let mut offset = 0;
        while offset < chunk.len() {
            let iovs: Vec<[IoSlice; 1]> = pkts[offset..chunk.len()]
                .iter()
                .map(|p| [IoSlice::new(p)])
                .collect();
            let cmsgs: [ControlMessage; 0] = [];
            match sendmmsg(
                sock.as_raw_fd(),
                headers,
                &iovs,
                &addrs[offset..],
                cmsgs,
                MsgFlags::empty(),
            ) {
                Ok(r) => {
                    let k = r.count();
                    if k == 0 {
                        break;
                    }
                    offset += k;
                }
                // A full socket buffer or an ICMP error for one destination: skip the packet
                // (it counts as lost, which is what it is for the listener).
                Err(_) => offset += 1,
            }
        }
        sent += chunk.len() as u64;
    }
    sent
}

fn receive_loop(sock: &UdpSocket, shared: &Shared, at_seat: bool) {
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
    let mut bufs = vec![[0u8; 2048]; BATCH];
    let mut lens = Vec::with_capacity(BATCH);
    let stats = if at_seat {
        &shared.at_seat
    } else {
        &shared.at_caller
    };
    while !shared.stop.load(Ordering::Relaxed) {
        lens.clear();
        {
            let mut iovs: Vec<[IoSliceMut; 1]> =
                bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            match recvmmsg(
                sock.as_raw_fd(),
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(r) => lens.extend(r.map(|m| m.bytes)),
                Err(_) => continue, // the read timeout: check `stop`
            }
        }
        let now = shared.now_ns();
        let run = shared.run.load(Ordering::Relaxed);
        let mut st = stats.lock().unwrap();
        for (buf, len) in bufs.iter().zip(&lens) {
            if let Some(stamp) = Stamp::from_packet(&buf[..*len])
                && (stamp.run == run || stamp.run + 1_000_000 == run)
            {
                st.on_packet(&stamp, now);
            }
        }
    }
}

// ---- SIP: the trunk ----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Inviting,
    Up,
    Failed,
    Bye,
    Ended,
}

/// A SIP side's receive loop until the run stops: each parsed message to `on_message`, and
/// `after` once per turn (every message or read timeout), for retransmissions.
fn sip_loop(
    sock: &UdpSocket,
    shared: &Shared,
    mut on_message: impl FnMut(&SipMessage, SocketAddr),
    mut after: impl FnMut(),
) {
    let mut buf = vec![0u8; 65536];
    while !shared.stop.load(Ordering::Relaxed) {
        if let Ok((len, src)) = sock.recv_from(&mut buf)
            && let Some(msg) = std::str::from_utf8(&buf[..len])
                .ok()
                .and_then(SipMessage::parse)
        {
            on_message(&msg, src);
        }
        after();
    }
}

#[derive(Debug)]
struct TrunkCall {
    index: u32,
    from_tag: String,
    invite: String,
    invite_branch: String,
    sent_at: Instant,
    retransmit_at: Instant,
    interval: Duration,
    /// The To header of the 2xx (with the gateway's tag) and its Contact.
    to: String,
    target: String,
    phase: Phase,
}

#[derive(Debug, Default)]
struct TrunkState {
    calls: HashMap<String, TrunkCall>,
    next_index: u32,
    up: usize,
    failed: usize,
}

impl TrunkState {
    fn reset(&mut self) {
        self.calls.retain(|_, c| c.phase == Phase::Bye);
        self.up = 0;
        self.failed = 0;
    }
}

struct Trunk {
    sock: UdpSocket,
    gateway: SocketAddrV4,
    did: String,
    rtp: SocketAddrV4,
    state: Mutex<TrunkState>,
}

fn token(shared_counter: &AtomicU64) -> String {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = SEED.get_or_init(|| {
        u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
    });
    format!(
        "{seed:x}{:x}",
        shared_counter.fetch_add(1, Ordering::Relaxed)
    )
}

static TOKENS: AtomicU64 = AtomicU64::new(1);

fn branch() -> String {
    format!("z9hG4bK{}", token(&TOKENS))
}

impl Trunk {
    fn local(&self) -> SocketAddr {
        self.sock.local_addr().expect("bound socket")
    }

    fn invite(&self, run: u32, i: usize) -> anyhow::Result<()> {
        let mut st = self.state.lock().unwrap();
        let index = st.next_index;
        st.next_index += 1;
        let call_id = format!("rtpload-{}-{run}-{i}", token(&TOKENS));
        let from_tag = token(&TOKENS);
        let br = branch();
        let local = self.local();
        let body = sdp_pcma("trunk", self.rtp);
        let invite = format!(
            "INVITE sip:{did}@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={br};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:139{index:08}@{ip}>;tag={from_tag}\r\n\
             To: <sip:{did}@{gw}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:trunk@{local}>\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len(),
            did = self.did,
            gw = self.gateway,
            ip = local.ip(),
        );
        self.sock.send_to(invite.as_bytes(), self.gateway)?;
        let now = Instant::now();
        st.calls.insert(
            call_id,
            TrunkCall {
                index,
                from_tag,
                invite,
                invite_branch: br,
                sent_at: now,
                retransmit_at: now + Duration::from_millis(500),
                interval: Duration::from_millis(500),
                to: String::new(),
                target: String::new(),
                phase: Phase::Inviting,
            },
        );
        Ok(())
    }

    /// An in-dialog request (ACK for a 2xx, BYE) with a new branch.
    fn in_dialog(&self, method: &str, cseq: u32, call_id: &str, c: &TrunkCall) -> String {
        let local = self.local();
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={br};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:139{index:08}@{ip}>;tag={tag}\r\nTo: {to}\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            target = c.target,
            br = branch(),
            index = c.index,
            ip = local.ip(),
            tag = c.from_tag,
            to = c.to,
        )
    }

    fn hang_up_all(&self, rate: u32) -> anyhow::Result<()> {
        let gap = Duration::from_secs(1) / rate.max(1);
        let start = Instant::now();
        let ids: Vec<String> = {
            let st = self.state.lock().unwrap();
            st.calls
                .iter()
                .filter(|(_, c)| c.phase == Phase::Up)
                .map(|(k, _)| k.clone())
                .collect()
        };
        for (i, id) in ids.iter().enumerate() {
            let due = start + gap * u32::try_from(i)?;
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                thread::sleep(d);
            }
            let mut st = self.state.lock().unwrap();
            let Some(c) = st.calls.get_mut(id) else {
                continue;
            };
            if c.phase != Phase::Up {
                continue;
            }
            let bye = self.in_dialog("BYE", 2, id, c);
            c.phase = Phase::Bye;
            self.sock.send_to(bye.as_bytes(), self.gateway)?;
        }
        Ok(())
    }

    fn run(&self, shared: &Shared) {
        sip_loop(
            &self.sock,
            shared,
            |msg, src| self.on_message(msg, src, shared),
            || self.retransmit(),
        );
    }

    /// RFC 3261 §17.1.1.2: INVITE retransmitted on Timer A until a response, Timer B 32 s.
    fn retransmit(&self) {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap();
        let mut failed = 0;
        for c in st.calls.values_mut() {
            if c.phase != Phase::Inviting || now < c.retransmit_at {
                continue;
            }
            if now - c.sent_at > Duration::from_secs(32) {
                c.phase = Phase::Failed;
                failed += 1;
                continue;
            }
            let _ = self.sock.send_to(c.invite.as_bytes(), self.gateway);
            c.interval = (c.interval * 2).min(Duration::from_secs(4));
            c.retransmit_at = now + c.interval;
        }
        st.failed += failed;
    }

    fn on_message(&self, msg: &SipMessage, src: SocketAddr, shared: &Shared) {
        let Some(call_id) = msg.header("call-id") else {
            return;
        };
        let mut st = self.state.lock().unwrap();
        if let Some(method) = &msg.method {
            // The gateway ends a call (or asks something): answer 200.
            if method != "ACK" {
                let _ = self
                    .sock
                    .send_to(ok_response(msg, None, None).as_bytes(), src);
            }
            if method == "BYE"
                && let Some(c) = st.calls.get_mut(call_id)
            {
                shared.callers.lock().unwrap().remove(&c.index);
                c.phase = Phase::Ended;
            }
            return;
        }
        let (Some(status), Some((_, method))) = (msg.status, msg.cseq()) else {
            return;
        };
        let Some(c) = st.calls.get_mut(call_id) else {
            return;
        };
        match (method.as_str(), status) {
            ("INVITE", 100..=199) => {
                // A provisional response stops retransmissions (RFC 3261 §17.1.1.2).
                c.retransmit_at = c.sent_at + Duration::from_secs(3600);
            }
            ("INVITE", 200..=299) => {
                c.to = msg.header("to").unwrap_or_default().to_string();
                c.target = msg.contact_uri().unwrap_or_default().to_string();
                let ack = self.in_dialog("ACK", 1, call_id, c);
                let _ = self.sock.send_to(ack.as_bytes(), self.gateway);
                if c.phase == Phase::Inviting {
                    c.phase = Phase::Up;
                    let relay = sdp_audio(&msg.body);
                    let index = c.index;
                    if let Some(relay) = relay {
                        shared.callers.lock().unwrap().insert(index, relay);
                    }
                    st.up += 1;
                }
            }
            ("INVITE", _) => {
                // RFC 3261 §17.1.1.3: the ACK of a non-2xx final response reuses the branch.
                let ack = format!(
                    "ACK sip:{did}@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={br};rport\r\n\
                     Max-Forwards: 70\r\nFrom: <sip:139{index:08}@{ip}>;tag={tag}\r\nTo: {to}\r\n\
                     Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
                    did = self.did,
                    gw = self.gateway,
                    local = self.local(),
                    br = c.invite_branch,
                    index = c.index,
                    ip = self.local().ip(),
                    tag = c.from_tag,
                    to = msg.header("to").unwrap_or_default(),
                );
                let _ = self.sock.send_to(ack.as_bytes(), self.gateway);
                if c.phase == Phase::Inviting {
                    c.phase = Phase::Failed;
                    st.failed += 1;
                }
            }
            ("BYE", 200..=699) => {
                shared.callers.lock().unwrap().remove(&c.index);
                c.phase = Phase::Ended;
            }
            _ => {}
        }
    }
}

/// A 200 OK to `req`: its Vias, From, To (with `to_tag` added), Call-ID and CSeq, and an
/// optional Contact and SDP body.
fn ok_response(req: &SipMessage, to_tag: Option<&str>, sdp: Option<(&str, &str)>) -> String {
    let mut r = String::from("SIP/2.0 200 OK\r\n");
    for v in req.header_all("via") {
        r.push_str(&format!("Via: {v}\r\n"));
    }
    let to = req.header("to").unwrap_or_default();
    let to = match to_tag {
        Some(t) if param(to, "tag").is_none() => format!("{to};tag={t}"),
        _ => to.to_string(),
    };
    for (name, value) in [
        ("From", req.header("from").unwrap_or_default()),
        ("To", &to),
        ("Call-ID", req.header("call-id").unwrap_or_default()),
        ("CSeq", req.header("cseq").unwrap_or_default()),
    ] {
        r.push_str(&format!("{name}: {value}\r\n"));
    }
    match sdp {
        Some((contact, body)) => r.push_str(&format!(
            "Contact: <{contact}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => r.push_str("Content-Length: 0\r\n\r\n"),
    }
    r
}

// ---- SIP: the seat -----------------------------------------------------------------------

#[derive(Debug)]
struct SeatLeg {
    index: u32,
    to_tag: String,
    relay: Option<SocketAddrV4>,
}

#[derive(Debug, Default)]
struct SeatState {
    registered: bool,
    reg_call_id: String,
    legs: HashMap<String, SeatLeg>,
    next_index: u32,
}

struct Seat {
    sock: UdpSocket,
    gateway: SocketAddrV4,
    user: String,
    password: String,
    rtp: SocketAddrV4,
    state: Mutex<SeatState>,
}

impl Seat {
    fn registered(&self) -> bool {
        self.state.lock().unwrap().registered
    }

    fn contact(&self) -> String {
        format!(
            "sip:{}@{}",
            self.user,
            self.sock.local_addr().expect("bound socket")
        )
    }

    /// REGISTER, the second time with the digest answer to `challenge` (RFC 3261 §10.2).
    fn register(&self, cseq: u32, challenge: Option<&str>) -> anyhow::Result<()> {
        let call_id = {
            let mut st = self.state.lock().unwrap();
            if st.reg_call_id.is_empty() {
                st.reg_call_id = format!("rtpload-reg-{}", token(&TOKENS));
            }
            st.reg_call_id.clone()
        };
        let uri = format!("sip:{}", self.gateway);
        let auth = match challenge {
            Some(ch) => {
                let realm = digest_param(ch, "realm").context("challenge without realm")?;
                let nonce = digest_param(ch, "nonce").context("challenge without nonce")?;
                let value = client_response(
                    Algorithm::Md5,
                    &self.user,
                    &self.password,
                    realm,
                    nonce,
                    "REGISTER",
                    &uri,
                    &token(&TOKENS),
                );
                format!("Authorization: {value}\r\n")
            }
            None => String::new(),
        };
        let req = format!(
            "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={br};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{ip}>;tag=reg{user}\r\nTo: <sip:{user}@{ip}>\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <{contact}>\r\n{auth}\
             Expires: 3600\r\nContent-Length: 0\r\n\r\n",
            local = self.sock.local_addr()?,
            br = branch(),
            user = self.user,
            ip = self.gateway.ip(),
            contact = self.contact(),
        );
        self.sock.send_to(req.as_bytes(), self.gateway)?;
        Ok(())
    }

    fn run(&self, shared: &Shared) {
        sip_loop(
            &self.sock,
            shared,
            |msg, src| self.on_message(msg, src, shared),
            || {},
        );
    }

    fn on_message(&self, msg: &SipMessage, src: SocketAddr, shared: &Shared) {
        let Some(call_id) = msg.header("call-id") else {
            return;
        };
        let Some(method) = &msg.method else {
            // Responses: only REGISTER's.
            let Some((cseq, _)) = msg.cseq() else { return };
            match msg.status {
                Some(401 | 407) if cseq == 1 => {
                    let challenges = msg
                        .headers
                        .iter()
                        .filter(|(n, _)| n == "www-authenticate" || n == "proxy-authenticate");
                    let mut md5 = None;
                    for (_, v) in challenges {
                        let alg = digest_param(v, "algorithm").unwrap_or("MD5");
                        if alg.eq_ignore_ascii_case("MD5") {
                            md5 = Some(v.clone());
                        }
                    }
                    if let Some(ch) = md5 {
                        let _ = self.register(2, Some(&ch));
                    }
                }
                Some(200..=299) => self.state.lock().unwrap().registered = true,
                Some(s) if s >= 300 => eprintln!("rtpload: REGISTER answered {s}"),
                _ => {}
            }
            return;
        };
        let mut st = self.state.lock().unwrap();
        match method.as_str() {
            "INVITE" => {
                if !st.legs.contains_key(call_id) {
                    let index = st.next_index;
                    st.next_index += 1;
                    let leg = SeatLeg {
                        index,
                        to_tag: token(&TOKENS),
                        relay: sdp_audio(&msg.body),
                    };
                    st.legs.insert(call_id.to_string(), leg);
                }
                // A retransmitted INVITE gets the same 200 again (RFC 3261 §13.3.1.4).
                let leg = &st.legs[call_id];
                let body = sdp_pcma("seat", self.rtp);
                let ok = ok_response(msg, Some(&leg.to_tag), Some((&self.contact(), &body)));
                let _ = self.sock.send_to(ok.as_bytes(), src);
            }
            "ACK" => {
                // The call is up: the seat starts talking.
                if let Some(leg) = st.legs.get(call_id)
                    && let Some(relay) = leg.relay
                {
                    shared.seats.lock().unwrap().insert(leg.index, relay);
                }
            }
            "BYE" | "CANCEL" => {
                if let Some(leg) = st.legs.remove(call_id) {
                    shared.seats.lock().unwrap().remove(&leg.index);
                }
                let _ = self
                    .sock
                    .send_to(ok_response(msg, None, None).as_bytes(), src);
            }
            _ => {
                let _ = self
                    .sock
                    .send_to(ok_response(msg, None, None).as_bytes(), src);
            }
        }
    }
}

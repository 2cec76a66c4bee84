//! The recorder: the API the media engine calls, and the thin tokio writer task per call.
//!
//! The RTP path only ever calls [`RecordingHandle::push_frame`], which copies the samples
//! into a bounded channel with `try_send` and returns at once: when the writer has fallen
//! behind (a stalled disk), the frame is dropped and counted, never waited for. The writer
//! task runs the sans-IO [`Aligner`] and hands the file work to `spawn_blocking`, so a slow
//! disk never blocks a runtime thread. Files are written as `<call-id>.wav.part` and renamed
//! to `.wav` when finished; the header is rewritten with every flush (at most
//! `header_interval_ms` of audio apart), so a crash leaves a playable `.part` that
//! [`crate::archive::repair_unfinished`] completes at the next start.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hotline_core::UnixMillis;
use hotline_core::metrics::{Metric, Registry, Series};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::align::{Aligner, Direction};
use crate::archive::{relative_path, sha256_file, validate_call_id};
use crate::config::RecordingConfig;
use crate::error::{DiskErrorKind, Result};
use crate::wav::{self, BYTES_PER_FRAME, FRAMES_PER_MS, HEADER_LEN};

/// What is known about a call when its recording starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingMeta {
    /// The application's call id (also the file name).
    pub call_id: String,
    /// The caller's number.
    pub caller: String,
    /// The agent's username, when an agent took part (set later with the store otherwise).
    pub agent: String,
    /// The SIP seat number.
    pub seat: String,
    pub queue: String,
    /// Wall-clock time of the answer; decides the archive's date directory.
    pub started_at: UnixMillis,
}

/// The state of a recording as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// Being written.
    Recording,
    /// Finished normally.
    Finished,
    /// Found unfinished after a crash and repaired from its size.
    Recovered,
    /// Could not be written (see the error); what was written, if anything, is kept.
    Failed,
    /// Removed by retention.
    Deleted,
}

impl RecordingState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Recording => "recording",
            RecordingState::Finished => "finished",
            RecordingState::Recovered => "recovered",
            RecordingState::Failed => "failed",
            RecordingState::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "recording" => RecordingState::Recording,
            "finished" => RecordingState::Finished,
            "recovered" => RecordingState::Recovered,
            "failed" => RecordingState::Failed,
            "deleted" => RecordingState::Deleted,
            _ => return None,
        })
    }
}

/// The outcome of one recording, handed back by [`RecordingHandle::finish`].
#[derive(Debug, Clone, Serialize)]
pub struct FinishedRecording {
    pub meta: RecordingMeta,
    /// `YYYY/MM/DD/<call-id>.wav`, relative to the archive root.
    pub relative_path: String,
    pub path: PathBuf,
    pub state: RecordingState,
    pub error: Option<String>,
    pub frames: u64,
    pub duration_ms: u64,
    /// Size of the file on disk (0 when none could be created).
    pub bytes: u64,
    pub sha256: String,
    /// Frames refused on the RTP path because the writer's queue was full.
    pub dropped_frames: u64,
    pub late_frames: u64,
    pub out_of_range_frames: u64,
    /// Pauses as (start, end) in milliseconds of recording time.
    pub pauses: Vec<(u64, u64)>,
}

/// Where the writer is, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Stereo frames produced by the aligner.
    pub committed_frames: u64,
    /// Stereo frames on disk.
    pub written_frames: u64,
    /// Stereo frames the header on disk describes.
    pub header_frames: u64,
}

/// The last disk failure, for `/readyz` and the operator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskFault {
    pub at: UnixMillis,
    pub kind: DiskErrorKind,
    pub call_id: String,
    pub message: String,
}

#[derive(Debug, Clone)]
struct RecorderMetrics {
    active: Series,
    dropped: Series,
    late: Series,
    pauses: Series,
    disk_errors: Metric,
    disk_fault: Metric,
    finished: Metric,
    frames: Series,
}

impl RecorderMetrics {
    fn new(r: &Registry) -> Self {
        Self {
            active: r
                .gauge("hotline_recording_active", "Recordings being written.")
                .plain(),
            dropped: r
                .counter(
                    "hotline_recording_dropped_frames_total",
                    "Frames dropped because the recording writer fell behind (queue full).",
                )
                .plain(),
            late: r
                .counter(
                    "hotline_recording_late_frames_total",
                    "Frames that arrived after their position was written.",
                )
                .plain(),
            pauses: r
                .counter(
                    "hotline_recording_pauses_total",
                    "Recording pauses requested by agents.",
                )
                .plain(),
            disk_errors: r.counter(
                "hotline_recording_disk_errors_total",
                "Disk errors while recording, by kind (full, unwritable, io).",
            ),
            disk_fault: r.gauge(
                "hotline_recording_disk_fault",
                "1 for the kind of the last recording disk error (full, unwritable, io) until a recording started after it is written completely.",
            ),
            finished: r.counter(
                "hotline_recording_finished_total",
                "Recordings ended, by state (finished, failed).",
            ),
            frames: r
                .counter(
                    "hotline_recording_frames_written_total",
                    "Stereo 20 ms frames written to disk.",
                )
                .plain(),
        }
    }
}

#[derive(Debug)]
struct RecorderInner {
    root: PathBuf,
    flush_frames: u64,
    queue_frames: usize,
    window: u64,
    metrics: RecorderMetrics,
    fault: Mutex<Option<DiskFault>>,
    clock: Arc<dyn hotline_core::Clock>,
}

impl RecorderInner {
    /// Records the standing disk fault (or none) and mirrors its kind in
    /// `hotline_recording_disk_fault{kind}` (1 for that kind, 0 for the others; read by
    /// `/readyz`).
    fn set_fault(&self, fault: Option<DiskFault>) {
        let kind = fault.as_ref().map(|f| f.kind);
        for k in [
            DiskErrorKind::Full,
            DiskErrorKind::Unwritable,
            DiskErrorKind::Io,
        ] {
            self.metrics
                .disk_fault
                .with(&[("kind", k.as_str())])
                .set(i64::from(kind == Some(k)));
        }
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }
}

/// Starts recordings. Cheap to clone; one per process.
#[derive(Debug, Clone)]
pub struct Recorder(Arc<RecorderInner>);

impl Recorder {
    /// `config` must be resolved (its root set); the clock only stamps disk faults.
    pub fn new(
        config: &RecordingConfig,
        metrics: &Registry,
        clock: Arc<dyn hotline_core::Clock>,
    ) -> Self {
        // The header is rewritten with every flush; flushing at least twice per interval
        // keeps the loss on a crash small without a write per packet.
        let flush_ms = u64::from(config.header_interval_ms.clamp(100, 2_000)).min(500);
        let inner = Arc::new(RecorderInner {
            root: config.root.clone(),
            flush_frames: flush_ms * FRAMES_PER_MS,
            queue_frames: config.queue_frames.max(1),
            window: u64::from(config.jitter_window_ms) * FRAMES_PER_MS,
            metrics: RecorderMetrics::new(metrics),
            fault: Mutex::new(None),
            clock,
        });
        inner.set_fault(None);
        Self(inner)
    }

    pub fn root(&self) -> &Path {
        &self.0.root
    }

    /// The last disk failure since start (or since [`Recorder::clear_fault`]).
    pub fn last_fault(&self) -> Option<DiskFault> {
        self.0
            .fault
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn clear_fault(&self) {
        self.0.set_fault(None);
    }

    /// Starts recording a call at media position 0. Must run inside a tokio runtime; returns
    /// at once (the file is created by the writer task; a failure to create it shows in the
    /// finish report, the metrics and [`Recorder::last_fault`]).
    pub fn start(&self, meta: RecordingMeta) -> Result<RecordingHandle> {
        validate_call_id(&meta.call_id)?;
        let rel = relative_path(meta.started_at, &meta.call_id);
        let (data_tx, data_rx) = mpsc::channel(self.0.queue_frames);
        let (ctrl_tx, ctrl_rx) = mpsc::unbounded_channel();
        let call_id = meta.call_id.clone();
        self.0.metrics.active.inc();
        tokio::spawn(run_writer(self.0.clone(), meta, rel, data_rx, ctrl_rx));
        Ok(RecordingHandle {
            call_id,
            data: data_tx,
            ctrl: ctrl_tx,
            pushed_end: 0,
            dropped: 0,
            paused: false,
            dropped_metric: self.0.metrics.dropped.clone(),
        })
    }
}

enum Data {
    Frame {
        dir: Direction,
        at: u64,
        samples: Vec<i16>,
    },
    Advance(u64),
    Progress(oneshot::Sender<Progress>),
}

enum Control {
    Pause(u64),
    Resume(u64),
    Finish {
        end: Option<u64>,
        dropped: u64,
        reply: oneshot::Sender<FinishedRecording>,
    },
}

/// One call's recording, held by the media engine. All methods return at once.
#[derive(Debug)]
pub struct RecordingHandle {
    call_id: String,
    data: mpsc::Sender<Data>,
    ctrl: mpsc::UnboundedSender<Control>,
    pushed_end: u64,
    dropped: u64,
    paused: bool,
    dropped_metric: Series,
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Data")
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control")
    }
}

impl RecordingHandle {
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Hands over decoded 8 kHz PCM of one direction at media position `at` (samples since
    /// the recording started; see [`crate::align::RtpClock`] for RTP timestamps). Returns
    /// false when the frame was dropped because the writer is behind.
    pub fn push_frame(&mut self, dir: Direction, at: u64, samples: &[i16]) -> bool {
        let end = at + samples.len() as u64;
        let msg = Data::Frame {
            dir,
            at,
            samples: samples.to_vec(),
        };
        match self.data.try_send(msg) {
            Ok(()) => {
                self.pushed_end = self.pushed_end.max(end);
                true
            }
            Err(_) => {
                self.pushed_end = self.pushed_end.max(end);
                self.dropped += 1;
                self.dropped_metric.inc();
                if self.dropped.is_power_of_two() {
                    tracing::warn!(call_id = %self.call_id, dropped = self.dropped,
                        "recording writer is behind; frames dropped (written as silence)");
                }
                false
            }
        }
    }

    /// Media time has reached `at` without audio (both sides on hold, no RTP).
    pub fn advance(&mut self, at: u64) {
        self.pushed_end = self.pushed_end.max(at);
        let _ = self.data.try_send(Data::Advance(at));
    }

    /// Pauses the recording at the newest position handed over: from there on, silence is
    /// written. Returns false when already paused.
    pub fn pause(&mut self) -> bool {
        if self.paused {
            return false;
        }
        self.paused = true;
        let _ = self.ctrl.send(Control::Pause(self.pushed_end));
        true
    }

    /// Resumes after [`RecordingHandle::pause`]. Returns false when not paused.
    pub fn resume(&mut self) -> bool {
        if !self.paused {
            return false;
        }
        self.paused = false;
        let _ = self.ctrl.send(Control::Resume(self.pushed_end));
        true
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Frames dropped so far on this call.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped
    }

    /// Where the writer is, after it has handled everything pushed before this call. Waits
    /// for queue space: for tests and diagnostics, not for the RTP path.
    pub async fn progress(&self) -> Option<Progress> {
        let (tx, rx) = oneshot::channel();
        self.data.send(Data::Progress(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Ends the recording at media position `end` (the call's length in samples; `None`:
    /// the newest audio). The file is padded with silence or cut to exactly that length.
    pub fn finish(self, end: Option<u64>) -> oneshot::Receiver<FinishedRecording> {
        let (tx, rx) = oneshot::channel();
        let _ = self.ctrl.send(Control::Finish {
            end,
            dropped: self.dropped,
            reply: tx,
        });
        rx
    }
}

/// The file side of a recording; moved into `spawn_blocking` for every operation.
#[derive(Debug)]
struct Sink {
    part: PathBuf,
    file: Option<File>,
    /// Data bytes on disk.
    written: u64,
    /// Data bytes the on-disk header describes.
    header: u64,
    error: Option<(DiskErrorKind, String)>,
}

impl Sink {
    fn open(part: PathBuf) -> Self {
        let mut s = Sink {
            part,
            file: None,
            written: 0,
            header: 0,
            error: None,
        };
        let r = (|| -> std::io::Result<File> {
            if let Some(dir) = s.part.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let f = File::create(&s.part)?;
            f.write_all_at(&wav::header(0), 0)?;
            Ok(f)
        })();
        match r {
            Ok(f) => s.file = Some(f),
            Err(e) => {
                // Never leave a file without a header behind.
                let _ = std::fs::remove_file(&s.part);
                s.fail(e);
            }
        }
        s
    }

    fn fail(&mut self, e: std::io::Error) {
        self.error = Some((DiskErrorKind::of(&e), e.to_string()));
        // Keep what was written whole: cut a half-written tail and make the header true.
        if let Some(f) = self.file.take() {
            let _ = f.set_len(HEADER_LEN + self.written);
            if f.write_all_at(&wav::header(self.written), 0).is_ok() {
                self.header = self.written;
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        let Some(f) = &self.file else { return };
        let r = f
            .write_all_at(bytes, HEADER_LEN + self.written)
            .map(|()| self.written + bytes.len() as u64)
            .and_then(|w| f.write_all_at(&wav::header(w), 0).map(|()| w));
        match r {
            Ok(w) => {
                self.written = w;
                self.header = w;
            }
            Err(e) => self.fail(e),
        }
    }

    /// Syncs, renames `.part` to `.wav` and hashes. Returns (path, size, sha256).
    fn finalize(&mut self) -> Option<(PathBuf, u64, String)> {
        let f = self.file.take()?;
        let done = self.part.with_extension("");
        let r = (|| -> std::io::Result<(u64, String)> {
            f.write_all_at(&wav::header(self.written), 0)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&self.part, &done)?;
            if let Some(dir) = done.parent() {
                File::open(dir)?.sync_all()?;
            }
            let (size, hash) = sha256_file(&done)?;
            Ok((size, hash))
        })();
        match r {
            Ok((size, hash)) => Some((done, size, hash)),
            Err(e) => {
                self.error = Some((DiskErrorKind::of(&e), e.to_string()));
                None
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    sink: Sink,
    f: impl FnOnce(Sink) -> (Sink, T) + Send + 'static,
) -> (Sink, T) {
    match tokio::task::spawn_blocking(move || f(sink)).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

struct Writer {
    inner: Arc<RecorderInner>,
    meta: RecordingMeta,
    rel: String,
    aligner: Aligner,
    pcm: Vec<i16>,
    sink: Option<Sink>,
    reported_error: bool,
    /// When the writer started (the recorder's clock): a recording that started after the
    /// standing disk fault and was written completely clears it.
    began_ms: hotline_core::UnixMillis,
}

impl Writer {
    async fn flush(&mut self, force: bool) {
        let frames = (self.pcm.len() / 2) as u64;
        if frames == 0 || (!force && frames < self.inner.flush_frames) {
            return;
        }
        let mut bytes = Vec::with_capacity(self.pcm.len() * 2);
        wav::encode_samples(&self.pcm, &mut bytes);
        self.pcm.clear();
        let Some(sink) = self.sink.take() else { return };
        let (sink, ()) = blocking(sink, move |mut s| {
            s.append(&bytes);
            (s, ())
        })
        .await;
        self.inner.metrics.frames.add((frames / 160) as i64);
        self.sink = Some(sink);
        self.check_error();
    }

    fn check_error(&mut self) {
        let Some(sink) = &self.sink else { return };
        if let (Some((kind, msg)), false) = (&sink.error, self.reported_error) {
            self.reported_error = true;
            self.inner
                .metrics
                .disk_errors
                .with(&[("kind", kind.as_str())])
                .inc();
            self.inner.set_fault(Some(DiskFault {
                at: self.inner.clock.now_ms(),
                kind: *kind,
                call_id: self.meta.call_id.clone(),
                message: msg.clone(),
            }));
            // Logged last: whoever reads the line sees the fault in the metrics and /readyz.
            tracing::error!(call_id = %self.meta.call_id, path = %sink.part.display(),
                kind = kind.as_str(), error = %msg, "recording disk error");
        }
    }

    fn on_data(&mut self, d: Data) {
        match d {
            Data::Frame { dir, at, samples } => {
                let late = self.aligner.stats().late_frames;
                self.aligner.push(dir, at, &samples);
                if self.aligner.stats().late_frames > late {
                    self.inner.metrics.late.inc();
                }
            }
            Data::Advance(at) => self.aligner.advance(at),
            Data::Progress(reply) => {
                let s = self.sink.as_ref();
                let _ = reply.send(Progress {
                    committed_frames: self.aligner.committed(),
                    written_frames: s.map_or(0, |s| s.written / BYTES_PER_FRAME),
                    header_frames: s.map_or(0, |s| s.header / BYTES_PER_FRAME),
                });
            }
        }
        self.aligner.drain(&mut self.pcm);
    }

    fn on_pause(&mut self, at: u64, pause: bool) {
        let ms = at / FRAMES_PER_MS;
        if pause {
            if self.aligner.pause(at) {
                self.inner.metrics.pauses.inc();
                tracing::info!(call_id = %self.meta.call_id, at_ms = ms, "recording paused");
            }
        } else if self.aligner.resume(at) {
            tracing::info!(call_id = %self.meta.call_id, at_ms = ms, "recording resumed");
        }
    }
}

async fn run_writer(
    inner: Arc<RecorderInner>,
    meta: RecordingMeta,
    rel: String,
    mut data_rx: mpsc::Receiver<Data>,
    mut ctrl_rx: mpsc::UnboundedReceiver<Control>,
) {
    let part = inner.root.join(format!("{rel}.part"));
    let window = inner.window;
    let began_ms = inner.clock.now_ms();
    let (sink, ()) = blocking(Sink::open(part), |s| (s, ())).await;
    let mut w = Writer {
        aligner: Aligner::new(window, 60 * 1_000 * FRAMES_PER_MS),
        inner,
        meta,
        rel,
        pcm: Vec::new(),
        sink: Some(sink),
        reported_error: false,
        began_ms,
    };
    w.check_error();
    let mut ctrl_open = true;
    let finish = loop {
        tokio::select! {
            biased;
            c = ctrl_rx.recv(), if ctrl_open => match c {
                Some(Control::Pause(at)) => w.on_pause(at, true),
                Some(Control::Resume(at)) => w.on_pause(at, false),
                Some(Control::Finish { end, dropped, reply }) => break Some((end, dropped, reply)),
                None => ctrl_open = false,
            },
            d = data_rx.recv() => match d {
                Some(d) => {
                    w.on_data(d);
                    w.flush(false).await;
                }
                None if !ctrl_open => break None,
                // The handle is gone; its Finish (if any) is on the control channel.
                None => match ctrl_rx.recv().await {
                    Some(Control::Finish { end, dropped, reply }) => break Some((end, dropped, reply)),
                    Some(Control::Pause(at)) => w.on_pause(at, true),
                    Some(Control::Resume(at)) => w.on_pause(at, false),
                    None => break None,
                },
            },
        }
    };
    let (end, dropped, reply) = match finish {
        Some((end, dropped, reply)) => (end, dropped, Some(reply)),
        None => {
            tracing::warn!(call_id = %w.meta.call_id, "recording handle dropped without finish");
            (None, 0, None)
        }
    };
    // Everything pushed before finish is still queued: take it in.
    while let Some(d) = data_rx.recv().await {
        w.on_data(d);
    }
    let report = finalize(w, end, dropped).await;
    if let Some(reply) = reply {
        let _ = reply.send(report);
    }
}

async fn finalize(mut w: Writer, end: Option<u64>, dropped: u64) -> FinishedRecording {
    w.aligner.finish(end, &mut w.pcm);
    w.flush(true).await;
    let sink = w.sink.take().expect("sink is present between operations");
    let (sink, done) = blocking(sink, |mut s| {
        let r = s.finalize();
        (s, r)
    })
    .await;
    w.sink = Some(sink);
    w.check_error();
    let sink = w.sink.as_ref().expect("sink");
    let stats = w.aligner.stats();
    let frames = sink.written / BYTES_PER_FRAME;
    let (state, path, bytes, sha256) = match (&sink.error, done) {
        (None, Some((path, size, hash))) => (RecordingState::Finished, path, size, hash),
        (_, Some((path, size, hash))) => (RecordingState::Failed, path, size, hash),
        (_, None) => {
            let size = std::fs::metadata(&sink.part).map_or(0, |m| m.len());
            (
                RecordingState::Failed,
                sink.part.clone(),
                size,
                String::new(),
            )
        }
    };
    let error = sink.error.as_ref().map(|(_, m)| m.clone());
    if state == RecordingState::Finished {
        // The disk takes recordings again: one that began after the fault is complete.
        let stale = w
            .inner
            .fault
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|f| f.at < w.began_ms);
        if stale {
            tracing::info!(call_id = %w.meta.call_id, "recordings are written again after a disk error");
            w.inner.set_fault(None);
        }
    }
    w.inner.metrics.active.dec();
    w.inner
        .metrics
        .finished
        .with(&[("state", state.as_str())])
        .inc();
    let pauses = w
        .aligner
        .pauses()
        .iter()
        .map(|p| {
            (
                p.start / FRAMES_PER_MS,
                p.end.unwrap_or(p.start) / FRAMES_PER_MS,
            )
        })
        .collect();
    tracing::info!(call_id = %w.meta.call_id, state = state.as_str(), frames,
        dropped, late = stats.late_frames, "recording ended");
    FinishedRecording {
        meta: w.meta,
        relative_path: w.rel,
        path,
        state,
        error,
        frames,
        duration_ms: frames / FRAMES_PER_MS,
        bytes,
        sha256,
        dropped_frames: dropped,
        late_frames: stats.late_frames,
        out_of_range_frames: stats.out_of_range_frames,
        pauses,
    }
}

//! The recorder behind the gateway's media tap (`hotline_core::media`): every answered call
//! becomes a stereo WAV (left the caller, right what the caller hears: IVR and agent) and a
//! row in `recordings`, stored when the call ends. The tap only queues frames for the
//! recorder's writer task; it never blocks the RTP path (a full queue drops frames, counted
//! and written as silence). Contiguous audio of a side is handed over in 100 ms batches,
//! not per 20 ms packet: five times fewer messages and wake-ups of the writer task, which is
//! what the recorder's cost per call is made of.

use std::sync::Arc;

use hotline_core::media::{CallTap, MediaTap, TapSide, TapStart};
use hotline_core::{Clock, Rng};
use hotline_recording::{Direction, Recorder, RecordingHandle, RecordingMeta, store};
use sqlx::AnyPool;

use crate::db::write_queue::{recording_failure, submit};
use hotline_core::write_queue::WriteQueue;

#[derive(Debug, Clone)]
pub struct RecordingTap {
    recorder: Recorder,
    pool: AnyPool,
    /// The rows are written through it, so a database outage does not lose them.
    writes: Arc<dyn WriteQueue>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
}

impl RecordingTap {
    pub fn new(
        recorder: Recorder,
        pool: AnyPool,
        writes: Arc<dyn WriteQueue>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
    ) -> Self {
        Self {
            recorder,
            pool,
            writes,
            clock,
            rng,
        }
    }
}

impl MediaTap for RecordingTap {
    fn open(&self, call: TapStart) -> Option<Box<dyn CallTap>> {
        let meta = RecordingMeta {
            call_id: call.call_id,
            caller: call.caller,
            agent: String::new(),
            seat: String::new(),
            queue: String::new(),
            started_at: call.started_at,
        };
        let handle = match self.recorder.start(meta.clone()) {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(call = %meta.call_id, error = %e, "the call cannot be recorded");
                return None;
            }
        };
        // The row exists from the start, so the QA list shows calls in progress and a
        // crash leaves a row that recovery at the next start completes.
        let (pool, now, rng) = (self.pool.clone(), self.clock.now_ms(), self.rng.clone());
        let row = meta.clone();
        submit(self.writes.as_ref(), "recording row", move || {
            let (pool, rng, row) = (pool.clone(), rng.clone(), row.clone());
            async move {
                store::insert_started(&pool, now, rng.as_ref(), &row)
                    .await
                    .map(drop)
                    .map_err(recording_failure)
            }
        });
        Some(Box::new(CallRecording {
            handle,
            tap: self.clone(),
            pending: [Batch::default(), Batch::default()],
        }))
    }
}

/// Samples per batch handed to the recorder (100 ms at 8 kHz).
const BATCH: usize = 800;

/// Contiguous audio of one side not yet handed over.
#[derive(Debug, Default)]
struct Batch {
    at: u64,
    samples: Vec<i16>,
}

#[derive(Debug)]
struct CallRecording {
    handle: RecordingHandle,
    tap: RecordingTap,
    /// Caller, agent.
    pending: [Batch; 2],
}

impl CallRecording {
    fn flush(&mut self, i: usize) {
        let dir = if i == 0 {
            Direction::Caller
        } else {
            Direction::Agent
        };
        let b = &mut self.pending[i];
        if !b.samples.is_empty() {
            self.handle.push_frame(dir, b.at, &b.samples);
            b.samples.clear();
        }
    }

    fn flush_all(&mut self) {
        self.flush(0);
        self.flush(1);
    }
}

impl CallTap for CallRecording {
    fn audio(&mut self, side: TapSide, at: u64, pcm: &[i16]) {
        let i = match side {
            TapSide::Caller => 0,
            TapSide::Agent => 1,
        };
        let b = &self.pending[i];
        // Only audio that continues the batch joins it; anything else (a gap, a late or
        // reordered packet) goes on its own so the recorder places it by its position.
        if !b.samples.is_empty() && b.at + b.samples.len() as u64 != at {
            self.flush(i);
        }
        let b = &mut self.pending[i];
        if b.samples.is_empty() {
            b.at = at;
        }
        b.samples.extend_from_slice(pcm);
        if b.samples.len() >= BATCH {
            self.flush(i);
        }
    }

    fn set_paused(&mut self, paused: bool) -> bool {
        // The pause starts after the audio already received.
        self.flush_all();
        let changed = if paused {
            self.handle.pause()
        } else {
            self.handle.resume()
        };
        if changed {
            tracing::info!(call = %self.handle.call_id(), paused, "recording paused/resumed");
        }
        changed
    }

    fn finish(mut self: Box<Self>, end: u64) {
        self.flush_all();
        let CallRecording { handle, tap, .. } = *self;
        let done = handle.finish(Some(end));
        tokio::spawn(async move {
            let Ok(f) = done.await else {
                tracing::error!("the recording writer stopped without a report");
                return;
            };
            if f.dropped_frames > 0 {
                tracing::warn!(call = %f.meta.call_id, dropped = f.dropped_frames, "recording finished with dropped frames");
            }
            let (f, now) = (Arc::new(f), tap.clock.now_ms());
            submit(tap.writes.as_ref(), "finished recording", move || {
                let (pool, rng, f) = (tap.pool.clone(), tap.rng.clone(), f.clone());
                async move {
                    store::record_finished(&pool, now, rng.as_ref(), &f)
                        .await
                        .map_err(recording_failure)?;
                    tracing::info!(call = %f.meta.call_id, "recording stored");
                    Ok(())
                }
            });
        });
    }
}

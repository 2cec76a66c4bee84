//! The recorder behind the gateway's media tap (`hotline_core::media`): every answered call
//! becomes a stereo WAV (left the caller, right what the caller hears: IVR and agent) and a
//! row in `recordings`, stored when the call ends. The tap only queues frames for the
//! recorder's writer task; it never blocks the RTP path (a full queue drops frames, counted
//! and written as silence).

use std::sync::Arc;

use hotline_core::media::{CallTap, MediaTap, TapSide, TapStart};
use hotline_core::{Clock, Rng};
use hotline_recording::{Direction, Recorder, RecordingHandle, RecordingMeta, store};
use sqlx::AnyPool;

#[derive(Debug, Clone)]
pub struct RecordingTap {
    recorder: Recorder,
    pool: AnyPool,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
}

impl RecordingTap {
    pub fn new(
        recorder: Recorder,
        pool: AnyPool,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
    ) -> Self {
        Self {
            recorder,
            pool,
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
        tokio::spawn(async move {
            if let Err(e) = store::insert_started(&pool, now, rng.as_ref(), &meta).await {
                tracing::error!(call = %meta.call_id, error = %e, "storing the recording row failed");
            }
        });
        Some(Box::new(CallRecording {
            handle,
            tap: self.clone(),
        }))
    }
}

struct CallRecording {
    handle: RecordingHandle,
    tap: RecordingTap,
}

impl CallTap for CallRecording {
    fn audio(&mut self, side: TapSide, at: u64, pcm: &[i16]) {
        let dir = match side {
            TapSide::Caller => Direction::Caller,
            TapSide::Agent => Direction::Agent,
        };
        self.handle.push_frame(dir, at, pcm);
    }

    fn set_paused(&mut self, paused: bool) -> bool {
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

    fn finish(self: Box<Self>, end: u64) {
        let CallRecording { handle, tap } = *self;
        let done = handle.finish(Some(end));
        tokio::spawn(async move {
            let Ok(f) = done.await else {
                tracing::error!("the recording writer stopped without a report");
                return;
            };
            if f.dropped_frames > 0 {
                tracing::warn!(call = %f.meta.call_id, dropped = f.dropped_frames, "recording finished with dropped frames");
            }
            if let Err(e) =
                store::record_finished(&tap.pool, tap.clock.now_ms(), tap.rng.as_ref(), &f).await
            {
                tracing::error!(call = %f.meta.call_id, error = %e, "storing the finished recording failed");
            }
        });
    }
}

//! Frames per second the recorder can take, per core.
//!
//! `cargo bench -p hotline-recording --bench recorder` (results in recording/BENCH.md).
//! A "frame" is 20 ms of one direction (160 samples); a call produces 100 frames/s.
//!
//! 1. aligner: the sans-IO core alone (place both directions, interleave, encode).
//! 2. recorder: N concurrent recordings through the real writer tasks to files in a
//!    temporary directory, on a one-worker tokio runtime (plus the blocking pool for file
//!    writes). Pushes go through `push_frame` (never blocking); the bench waits for the writer
//!    every second of media so that it measures throughput, and reports any drops.

use std::sync::Arc;
use std::time::Instant;

use hotline_core::SystemClock;
use hotline_core::metrics::Registry;
use hotline_recording::align::Aligner;
use hotline_recording::{Direction, Recorder, RecordingConfig, RecordingMeta, wav};

fn bench_aligner(seconds: u64) {
    let frames = seconds * 50;
    let caller = vec![1234i16; 160];
    let agent = vec![-4321i16; 160];
    let mut a = Aligner::new(1_600, 480_000);
    let mut pcm = Vec::with_capacity(16_000);
    let mut bytes = Vec::with_capacity(32_000);
    let t = Instant::now();
    for i in 0..frames {
        a.push(Direction::Caller, i * 160, &caller);
        a.push(Direction::Agent, i * 160, &agent);
        a.drain(&mut pcm);
        if pcm.len() >= 8_000 {
            wav::encode_samples(&pcm, &mut bytes);
            pcm.clear();
            bytes.clear();
        }
    }
    let el = t.elapsed().as_secs_f64();
    let n = (frames * 2) as f64;
    println!(
        "aligner: {} frames in {:.3} s = {:.0} frames/s ({:.0} calls in real time)",
        frames * 2,
        el,
        n / el,
        n / el / 100.0
    );
}

fn bench_recorder(calls: usize, seconds: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = RecordingConfig {
        root: dir.path().to_path_buf(),
        queue_frames: 1_000,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let reg = Registry::new();
        let rec = Recorder::new(&cfg, &reg, Arc::new(SystemClock));
        let mut handles: Vec<_> = (0..calls)
            .map(|c| {
                rec.start(RecordingMeta {
                    call_id: format!("bench-{c}"),
                    caller: "1".into(),
                    agent: "a".into(),
                    seat: "1".into(),
                    queue: "q".into(),
                    started_at: 1_764_000_000_000,
                })
                .expect("start")
            })
            .collect();
        let samples = vec![1000i16; 160];
        let t = Instant::now();
        for i in 0..seconds * 50 {
            for h in &mut handles {
                h.push_frame(Direction::Caller, i * 160, &samples);
                h.push_frame(Direction::Agent, i * 160, &samples);
            }
            if i % 50 == 49 {
                for h in &handles {
                    h.progress().await;
                }
            }
        }
        let mut dropped = 0;
        let mut bytes = 0;
        for h in handles {
            let r = h.finish(Some(seconds * 8_000)).await.expect("report");
            dropped += r.dropped_frames;
            bytes += r.bytes;
        }
        let el = t.elapsed().as_secs_f64();
        let n = (calls as u64 * seconds * 100) as f64;
        println!(
            "recorder: {calls} calls x {seconds} s = {n:.0} frames in {el:.3} s = {:.0} frames/s \
             ({:.1}x real time; {:.0} calls sustainable), {dropped} dropped, {:.1} MB written",
            n / el,
            seconds as f64 / el,
            n / el / 100.0,
            bytes as f64 / 1e6
        );
    });
}

fn main() {
    // `cargo test --benches` runs this binary with `--bench`-less args; keep it quick then.
    let quick = !std::env::args().any(|a| a == "--bench");
    if quick {
        bench_aligner(10);
        bench_recorder(10, 2);
        return;
    }
    bench_aligner(3_600);
    for calls in [100, 500, 1_000] {
        bench_recorder(calls, 30);
    }
}

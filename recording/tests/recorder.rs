//! The recorder end to end on real files: both channels in step with lost frames and a pause,
//! exact duration, dropped frames when the writer is behind (never blocking), disk errors
//! reported, and a `kill -9` of a process with 20 recordings up, repaired afterwards.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use hotline_core::ManualClock;
use hotline_core::metrics::Registry;
use hotline_recording::archive;
use hotline_recording::{
    Direction, Recorder, RecordingConfig, RecordingMeta, RecordingState, RtpClock,
};

const T0: i64 = 1_764_000_000_000;

fn recorder(root: &Path, queue_frames: usize) -> (Recorder, Registry) {
    let cfg = RecordingConfig {
        root: root.to_path_buf(),
        queue_frames,
        ..Default::default()
    };
    let reg = Registry::new();
    (
        Recorder::new(&cfg, &reg, Arc::new(ManualClock::new(T0))),
        reg,
    )
}

fn meta(call_id: &str) -> RecordingMeta {
    RecordingMeta {
        call_id: call_id.into(),
        caller: "13800000000".into(),
        agent: "agent1".into(),
        seat: "8001".into(),
        queue: "default".into(),
        started_at: T0,
    }
}

/// A 20 ms frame of a tone: the caller at 400 Hz, the agent at 1 kHz, so channels can be
/// told apart.
fn tone(freq: f64, start: u64, amp: f64) -> Vec<i16> {
    (0..160u64)
        .map(|i| {
            let t = (start + i) as f64 / 8000.0;
            (amp * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        })
        .collect()
}

fn energy(s: &[i16]) -> f64 {
    s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len().max(1) as f64
}

fn read_channels(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let s: Vec<i16> = r.into_samples().map(Result::unwrap).collect();
    (
        s.iter().step_by(2).copied().collect(),
        s.iter().skip(1).step_by(2).copied().collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stereo_in_step_with_losses_jitter_and_a_pause() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, reg) = recorder(dir.path(), 500);
    let mut h = rec.start(meta("call-1")).unwrap();
    // RTP timestamps with random starts, the agent's stream starting 1 s into the call
    let mut caller_clock = RtpClock::new(4_000_000_000, 0);
    let mut agent_clock = RtpClock::new(77, 8_000);
    let frames = 500u64; // 10 s
    for i in 0..frames {
        let at = i * 160;
        if i == 200 {
            assert!(h.pause());
        }
        if i == 300 {
            assert!(h.resume());
        }
        // every 10th caller packet lost; every 7th arrives one packet late
        if i % 10 != 5 {
            let ts = 4_000_000_000u32.wrapping_add((i * 160) as u32);
            let pos = caller_clock.position(ts).unwrap();
            assert_eq!(pos, at);
            if i % 7 == 3 && i + 1 < frames {
                // held back, pushed after the next one below
            } else {
                assert!(h.push_frame(Direction::Caller, pos, &tone(400.0, at, 8000.0)));
            }
            if i % 7 == 4 && i % 10 != 5 {
                let prev = at - 160;
                h.push_frame(Direction::Caller, prev, &tone(400.0, prev, 8000.0));
            }
        }
        if at >= 8_000 {
            let ts = 77u32.wrapping_add((at - 8_000) as u32);
            let pos = agent_clock.position(ts).unwrap();
            assert!(h.push_frame(Direction::Agent, pos, &tone(1000.0, at, 6000.0)));
        }
        if i % 50 == 0 {
            h.progress().await.unwrap();
        }
    }
    // the call lasted 10.012 s of media time
    let end = frames * 160 + 96;
    let report = h.finish(Some(end)).await.unwrap();
    assert_eq!(report.state, RecordingState::Finished, "{report:?}");
    assert_eq!(report.frames, end);
    assert_eq!(report.duration_ms, 10_012);
    assert_eq!(report.dropped_frames, 0);
    assert_eq!(report.pauses, vec![(4_000, 6_000)]);
    assert_eq!(report.relative_path, "2025/11/24/call-1.wav");
    assert!(report.path.ends_with("2025/11/24/call-1.wav"));
    let (bytes, sha) = archive::sha256_file(&report.path).unwrap();
    assert_eq!((bytes, sha), (report.bytes, report.sha256.clone()));
    assert!(!report.path.with_extension("wav.part").exists());

    let (l, r) = read_channels(&report.path);
    assert_eq!(l.len() as u64, end, "duration equals the call's");
    let seg = |v: &[i16], ms: u64| v[(ms * 8) as usize..(ms * 8 + 160) as usize].to_vec();
    // the left channel carries the caller only, the right the agent only
    assert!(energy(&seg(&l, 120)) > 1e6);
    assert!(
        energy(&seg(&r, 100)) == 0.0,
        "agent silent in the first second"
    );
    assert!(energy(&seg(&r, 1_500)) > 1e6);
    // a lost caller packet (i = 15 → 300 ms) is silence, a late one (i = 10) is in place
    assert_eq!(energy(&seg(&l, 300)), 0.0);
    assert!(energy(&seg(&l, 200)) > 1e6);
    // the pause (4 s to 6 s) is silence on both channels, not a gap
    assert_eq!(energy(&l[32_000..48_000]), 0.0);
    assert_eq!(energy(&r[32_000..48_000]), 0.0);
    assert!(energy(&seg(&l, 6_020)) > 1e6);
    // the caller's samples are bit-exact where present
    assert_eq!(seg(&l, 1_000), tone(400.0, 8_000, 8000.0));
    assert_eq!(seg(&r, 2_000), tone(1000.0, 16_000, 6000.0));
    let text = reg.render();
    assert!(text.contains("hotline_recording_pauses_total 1"), "{text}");
    assert!(text.contains("hotline_recording_finished_total{state=\"finished\"} 1"));
    assert!(text.contains("hotline_recording_active 0"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_drops_frames_instead_of_blocking() {
    // On a current-thread runtime the writer cannot run until this task yields: the pushes
    // below fill the queue and must return at once with `false`, never wait.
    let dir = tempfile::tempdir().unwrap();
    let (rec, reg) = recorder(dir.path(), 10);
    let mut h = rec.start(meta("busy")).unwrap();
    let mut accepted = 0;
    for i in 0..100u64 {
        if h.push_frame(Direction::Caller, i * 160, &[1000; 160]) {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 10);
    assert_eq!(h.dropped_frames(), 90);
    let report = h.finish(Some(100 * 160)).await.unwrap();
    assert_eq!(report.state, RecordingState::Finished);
    assert_eq!(report.dropped_frames, 90);
    assert_eq!(
        report.duration_ms, 2_000,
        "dropped audio is silence, not a gap"
    );
    let (l, _) = read_channels(&report.path);
    assert!(l[..1600].iter().all(|&s| s == 1000));
    assert!(l[1600..].iter().all(|&s| s == 0));
    assert!(
        reg.render()
            .contains("hotline_recording_dropped_frames_total 90")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_and_full_disks_are_reported_never_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    // the root is a file: nothing can be created below it
    let root = dir.path().join("not-a-dir");
    std::fs::write(&root, b"x").unwrap();
    let (rec, reg) = recorder(&root, 100);
    let mut h = rec.start(meta("c-unwritable")).unwrap();
    h.push_frame(Direction::Caller, 0, &[1; 160]);
    let report = h.finish(None).await.unwrap();
    assert_eq!(report.state, RecordingState::Failed);
    assert_eq!(report.bytes, 0);
    assert!(report.error.is_some());
    let fault = rec.last_fault().expect("fault recorded");
    assert_eq!(fault.kind, hotline_recording::DiskErrorKind::Unwritable);
    assert_eq!(fault.call_id, "c-unwritable");
    assert!(
        reg.render()
            .contains("hotline_recording_disk_errors_total{kind=\"unwritable\"} 1")
    );

    // a full disk: the recording's file is /dev/full
    if Path::new("/dev/full").exists() {
        let root2 = dir.path().join("full");
        let day = root2.join("2025/11/24");
        std::fs::create_dir_all(&day).unwrap();
        std::os::unix::fs::symlink("/dev/full", day.join("c-full.wav.part")).unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let reg2 = Registry::new();
        let cfg = RecordingConfig {
            root: root2.clone(),
            queue_frames: 100,
            ..Default::default()
        };
        let rec2 = Recorder::new(&cfg, &reg2, clock.clone());
        assert!(
            reg2.render()
                .contains("hotline_recording_disk_fault{kind=\"full\"} 0")
        );
        let mut h = rec2.start(meta("c-full")).unwrap();
        for i in 0..100u64 {
            h.push_frame(Direction::Agent, i * 160, &[5; 160]);
        }
        let report = h.finish(None).await.unwrap();
        assert_eq!(report.state, RecordingState::Failed, "{report:?}");
        assert_eq!(
            rec2.last_fault().map(|f| f.kind),
            Some(hotline_recording::DiskErrorKind::Full)
        );
        assert!(
            reg2.render()
                .contains("hotline_recording_disk_errors_total{kind=\"full\"} 1")
        );
        // The fault stands (for /readyz) until a recording begun after it is complete.
        assert!(
            reg2.render()
                .contains("hotline_recording_disk_fault{kind=\"full\"} 1")
        );
        clock.set(T0 + 1_000);
        let mut h = rec2.start(meta("c-after")).unwrap();
        h.push_frame(Direction::Agent, 0, &[5; 160]);
        let report = h.finish(Some(160)).await.unwrap();
        assert_eq!(report.state, RecordingState::Finished, "{report:?}");
        assert_eq!(rec2.last_fault(), None);
        assert!(
            reg2.render()
                .contains("hotline_recording_disk_fault{kind=\"full\"} 0")
        );
    }
}

const CHILD_ENV: &str = "HOTLINE_RECORDING_CRASH_CHILD";
const CALLS: usize = 20;

/// In the child: 20 recordings, 5 s of audio each, then wait to be killed.
fn crash_child(root: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (rec, _) = recorder(Path::new(root), 1_000);
        let mut handles = Vec::new();
        for c in 0..CALLS {
            handles.push(rec.start(meta(&format!("crash-{c:02}"))).unwrap());
        }
        for i in 0..250u64 {
            for h in &mut handles {
                h.push_frame(Direction::Caller, i * 160, &[1200; 160]);
                h.push_frame(Direction::Agent, i * 160, &[-800; 160]);
            }
            if i % 25 == 0 {
                for h in &handles {
                    h.progress().await.unwrap();
                }
            }
        }
        for h in &handles {
            let p = h.progress().await.unwrap();
            println!(
                "WRITTEN {} {} {}",
                h.call_id(),
                p.written_frames,
                p.header_frames
            );
        }
        println!("READY");
        // Never finishes: the parent kills this process with SIGKILL.
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        std::process::exit(3);
    });
}

#[test]
fn kill_9_with_20_recordings_up_leaves_repairable_files() {
    if let Ok(root) = std::env::var(CHILD_ENV) {
        crash_child(&root);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_9_with_20_recordings_up_leaves_repairable_files",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut written = std::collections::BTreeMap::new();
    let out = BufReader::new(child.stdout.take().unwrap());
    for line in out.lines() {
        let line = line.unwrap();
        if line.ends_with("READY") {
            break;
        }
        // libtest may print "test <name> ... " on the same line before the child's output
        if let Some(rest) = line.find("WRITTEN ").map(|i| &line[i + 8..]) {
            let v: Vec<&str> = rest.split(' ').collect();
            let (w, hd): (u64, u64) = (v[1].parse().unwrap(), v[2].parse().unwrap());
            written.insert(v[0].to_string(), (w, hd));
        }
    }
    assert_eq!(written.len(), CALLS, "child reported every call");
    child.kill().unwrap(); // SIGKILL: no destructor, no finish
    let status = child.wait().unwrap();
    assert!(!status.success());

    let day = dir.path().join("2025/11/24");
    for (call, (w, hd)) in &written {
        // 5 s pushed; all but the jitter window and one flush interval reached the disk
        assert!(*w >= 4 * 8_000, "{call}: {w} frames written");
        assert!(hd <= w);
        // before repair the unfinished file already plays up to its last header rewrite
        let part = day.join(format!("{call}.wav.part"));
        let r = hound::WavReader::open(&part).unwrap();
        assert_eq!(u64::from(r.duration()), *hd, "{call}");
    }
    let repaired = archive::repair_unfinished(dir.path()).unwrap();
    assert_eq!(repaired.len(), CALLS);
    for rep in &repaired {
        let (w, _) = written[&rep.call_id];
        assert!(rep.duration_ms >= w / 8, "{rep:?}");
        assert!(rep.duration_ms <= 5_000);
        let (l, r) = read_channels(&day.join(format!("{}.wav", rep.call_id)));
        assert!(l.iter().all(|&s| s == 1200), "left channel intact");
        assert!(r.iter().all(|&s| s == -800), "right channel intact");
        assert_eq!(
            archive::sha256_file(&day.join(format!("{}.wav", rep.call_id)))
                .unwrap()
                .1,
            rep.sha256
        );
    }
    assert!(archive::repair_unfinished(dir.path()).unwrap().is_empty());
}

//! A small input mutator for the stable fuzz driver (issue 12). The real fuzzing is
//! coverage-guided libFuzzer in `fuzz/` (nightly); this driver needs neither nightly nor
//! instrumentation, so every crate's `fuzz_random_mutations` test (ignored by default) can
//! hammer its parsers with mutated seed-corpus inputs for a set time on any toolchain:
//!
//! ```text
//! HOTLINE_FUZZ_SECS=120 cargo test -p hotline-sip-gateway --lib fuzz_random_mutations -- --ignored --nocapture
//! ```
//!
//! Deterministic for a given seed (xorshift64*), so a failure can be replayed. Not for
//! production use: test support, like the rest of this crate.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes that often matter to text protocols and formats.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b":",
    b";",
    b",",
    b"=",
    b"\"",
    b"<",
    b">",
    b"@",
    b" ",
    b"\t",
    b"/",
    b"0",
    b"-1",
    b"4294967296",
    b"99999999999999999999",
    b"\xff",
    b"\x00",
    b"\xe4\xb8\xad",
    b"SIP/2.0",
    b"Content-Length: ",
    b"Via: ",
    b"tag=",
    b"branch=",
    b"m=audio ",
    b"c=IN IP4 ",
    b"a=rtpmap:",
    b"[",
    b"]",
    b"[[nodes]]",
    b"type = ",
    b"{",
    b"}",
    b"PK\x03\x04",
];

#[derive(Debug, Clone)]
pub struct Mutator {
    state: u64,
}

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Self { state: seed | 1 }
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// One to eight random edits of `input`, sometimes spliced with `other`.
    pub fn mutate(&mut self, input: &[u8], other: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..=self.below(8) {
            let at = self.below(v.len() + 1);
            match self.below(9) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] ^= 1 << self.below(8);
                }
                1 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] = self.next_u64() as u8;
                }
                2 => v.insert(at, self.next_u64() as u8),
                3 if at < v.len() => {
                    let n = 1 + self.below((v.len() - at).min(16));
                    v.drain(at..at + n);
                }
                4 => {
                    let t = TOKENS[self.below(TOKENS.len())];
                    v.splice(at..at, t.iter().copied());
                }
                5 if !v.is_empty() => {
                    // Repeat a chunk (long headers, many rows).
                    let start = self.below(v.len());
                    let end = (start + 1 + self.below(64)).min(v.len());
                    let chunk = v[start..end].to_vec();
                    for _ in 0..1 + self.below(8) {
                        v.splice(at..at, chunk.iter().copied());
                    }
                }
                6 if !other.is_empty() => {
                    let cut = self.below(other.len());
                    v.truncate(at);
                    v.extend_from_slice(&other[cut..]);
                }
                7 if !v.is_empty() => {
                    // An ASCII digit run made longer or a number changed.
                    let i = self.below(v.len());
                    v[i] = b'0' + self.below(10) as u8;
                }
                _ => {
                    // Cut the tail (keeping at least one byte).
                    if at < v.len() {
                        v.truncate(at.max(1));
                    }
                }
            }
        }
        v
    }
}

/// Runs `target` on every corpus input, then on mutations of them until `budget` is spent.
/// Returns the number of executions. When `target` panics, the input is written to
/// `artifacts/crash-<n>` (if `artifacts` is given) and the panic goes on.
pub fn run(
    corpus: &[Vec<u8>],
    seed: u64,
    budget: Duration,
    artifacts: Option<&Path>,
    target: &mut dyn FnMut(&[u8]),
) -> u64 {
    let mut m = Mutator::new(seed);
    let mut execs = 0u64;
    let mut exec = |input: &[u8], execs: &mut u64| {
        *execs += 1;
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| target(input))) {
            if let Some(dir) = artifacts {
                let _ = std::fs::create_dir_all(dir);
                let _ = std::fs::write(dir.join(format!("crash-{seed}-{execs}")), input);
            }
            resume_unwind(p);
        }
    };
    for c in corpus {
        exec(c, &mut execs);
    }
    if corpus.is_empty() {
        return execs;
    }
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..256 {
            let a = &corpus[m.below(corpus.len())];
            let b = &corpus[m.below(corpus.len())];
            let mut input = m.mutate(a, b);
            // Stack mutations now and then, to get further from the seeds.
            for _ in 0..m.below(4) {
                input = m.mutate(&input, b);
            }
            exec(&input, &mut execs);
        }
    }
    execs
}

/// The files of a corpus directory (empty when missing).
pub fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Seconds from `HOTLINE_FUZZ_SECS` (default 10) and the seed from `HOTLINE_FUZZ_SEED`.
pub fn budget_from_env() -> (Duration, u64) {
    let secs = std::env::var("HOTLINE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let seed = std::env::var("HOTLINE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_1234);
    (Duration::from_secs(secs), seed)
}

/// A fuzz target of a crate: its name (the folder under `fuzz/corpus/`) and the function.
pub type Target = (&'static str, fn(&[u8]));

/// Replays every committed seed of each target in `<fuzz_dir>/corpus/<name>/` (the crates'
/// `fuzz_corpus_replays` tests, so a regression shows in `cargo test` on stable). Panics on
/// an empty or missing corpus, and with the target's own panic on a failing input.
pub fn replay_corpus(fuzz_dir: &Path, targets: &[Target]) {
    for (name, run) in targets {
        let dir = fuzz_dir.join("corpus").join(name);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut n = 0;
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            run(&std::fs::read(&path).expect("corpus file"));
            n += 1;
        }
        assert!(n > 0, "empty corpus {}", dir.display());
    }
}

/// The stable fuzz driver over each target for the budget of [`budget_from_env`]; a
/// crashing input is saved to `<fuzz_dir>/artifacts/<name>/`.
pub fn fuzz_targets(fuzz_dir: &Path, targets: &[Target]) {
    let (budget, seed) = budget_from_env();
    for (name, run) in targets {
        let corpus = load_corpus(&fuzz_dir.join("corpus").join(name));
        let artifacts = fuzz_dir.join("artifacts").join(name);
        let mut target = *run;
        let n = self::run(&corpus, seed, budget, Some(&artifacts), &mut target);
        println!("fuzz {name}: {n} executions in {budget:?}, seed {seed}, no failure");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_deterministic_and_varied() {
        let seed = b"INVITE sip:a@b SIP/2.0\r\n\r\n".to_vec();
        let a: Vec<_> = (0..50)
            .scan(Mutator::new(7), |m, _| Some(m.mutate(&seed, b"xyz")))
            .collect();
        let b: Vec<_> = (0..50)
            .scan(Mutator::new(7), |m, _| Some(m.mutate(&seed, b"xyz")))
            .collect();
        assert_eq!(a, b);
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert!(distinct.len() > 40);
    }

    #[test]
    fn run_counts_and_stops() {
        let mut seen = 0;
        let n = run(
            &[b"abc".to_vec()],
            1,
            Duration::from_millis(20),
            None,
            &mut |_| seen += 1,
        );
        assert_eq!(n, seen);
        assert!(n > 1);
    }
}

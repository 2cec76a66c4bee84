//! Application-made identifiers. Both storage backends get the same text ids, so no
//! backend-specific sequence or UUID type is needed (DESIGN.md, Storage).

use crate::clock::UnixMillis;

/// A source of randomness. Injected so that tests can be deterministic.
pub trait Rng: Send + Sync + std::fmt::Debug {
    fn fill(&self, buf: &mut [u8]);
}

/// Randomness from the operating system.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRng;

impl Rng for SystemRng {
    fn fill(&self, buf: &mut [u8]) {
        // The OS generator only fails on broken systems; there is no safe fallback for
        // secrets, so failing loudly is the right answer.
        getrandom::fill(buf).expect("operating-system random generator failed");
    }
}

/// A seeded, deterministic generator (xorshift64*) for tests. Not for secrets.
#[derive(Debug)]
pub struct SeededRng(std::sync::Mutex<u64>);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(std::sync::Mutex::new(seed.max(1)))
    }
}

impl Rng for SeededRng {
    fn fill(&self, buf: &mut [u8]) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for b in buf.iter_mut() {
            *s ^= *s >> 12;
            *s ^= *s << 25;
            *s ^= *s >> 27;
            *b = (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
        }
    }
}

/// Makes time-ordered ids: 12 hex digits of milliseconds, then 20 hex digits of randomness
/// (80 bits). Sorting the text sorts by creation time, which keeps list queries simple.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdGenerator;

impl IdGenerator {
    pub fn new_id(now: UnixMillis, rng: &dyn Rng) -> String {
        let mut r = [0u8; 10];
        rng.fill(&mut r);
        let mut s = format!("{:012x}", now.clamp(0, 0xFFFF_FFFF_FFFF));
        for b in r {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// A random token of `bytes` bytes as lowercase hex (session tokens, nonces, tags).
    pub fn token(rng: &dyn Rng, bytes: usize) -> String {
        let mut r = vec![0u8; bytes];
        rng.fill(&mut r);
        r.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_differ() {
        let rng = SystemRng;
        let a = IdGenerator::new_id(1_000, &rng);
        let b = IdGenerator::new_id(2_000, &rng);
        let c = IdGenerator::new_id(2_000, &rng);
        assert_eq!(a.len(), 32);
        assert!(a < b);
        assert_ne!(b, c);
    }

    #[test]
    fn seeded_rng_is_repeatable() {
        let (a, b) = (SeededRng::new(42), SeededRng::new(42));
        assert_eq!(IdGenerator::token(&a, 8), IdGenerator::token(&b, 8));
        assert_eq!(IdGenerator::token(&a, 16).len(), 32);
    }
}

//! HTTP digest authentication for SIP, sans-IO: RFC 2617 (MD5) and RFC 8760 (SHA-256, the
//! RFC 7616 algorithm in SIP). Only HA1 = H(user:realm:password) is ever stored, so the
//! database keeps no plaintext password.
//!
//! Nonces are stateless: `<issued-ms hex>.<MAC>` where the MAC is SHA-256 over a per-process
//! secret and the issue time. A nonce with a good MAC but older than the TTL is *stale*
//! (RFC 2617 §3.2.1: answered with `stale=true` when the digest itself was right); a nonce
//! with a bad MAC (e.g. from before a restart) is treated the same way, because the client
//! proved it knows the password.

use md5::Digest as _;

use hotline_core::UnixMillis;

use crate::sip::split_list;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    pub fn parse(s: &str) -> Option<Algorithm> {
        match s.trim().trim_matches('"').to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "SHA-256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }
    pub fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex(&md5::Md5::digest(data)),
            Algorithm::Sha256 => hex(&sha2::Sha256::digest(data)),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[usize::from(b >> 4)] as char);
        s.push(D[usize::from(b & 15)] as char);
    }
    s
}

/// HA1 = H(username ":" realm ":" password) (RFC 2617 §3.2.2.2).
pub fn ha1(alg: Algorithm, user: &str, realm: &str, password: &str) -> String {
    alg.hash_hex(format!("{user}:{realm}:{password}").as_bytes())
}

/// The parameters of an `Authorization: Digest …` header.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) realm: String,
    pub(crate) nonce: String,
    pub(crate) uri: String,
    pub(crate) response: String,
    pub(crate) algorithm: Option<String>,
    pub(crate) qop: Option<String>,
    pub(crate) nc: Option<String>,
    pub(crate) cnonce: Option<String>,
}

impl Credentials {
    pub(crate) fn parse(value: &str) -> Option<Credentials> {
        let v = value.trim();
        let (scheme, rest) = v.split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut c = Credentials::default();
        for item in split_list(rest) {
            let (k, val) = item.split_once('=')?;
            let val = unquote(val.trim());
            match k.trim().to_ascii_lowercase().as_str() {
                "username" => c.username = val,
                "realm" => c.realm = val,
                "nonce" => c.nonce = val,
                "uri" => c.uri = val,
                "response" => c.response = val.to_ascii_lowercase(),
                "algorithm" => c.algorithm = Some(val),
                "qop" => c.qop = Some(val),
                "nc" => c.nc = Some(val),
                "cnonce" => c.cnonce = Some(val),
                _ => {}
            }
        }
        if c.username.is_empty() || c.nonce.is_empty() || c.response.is_empty() {
            return None;
        }
        Some(c)
    }

    pub(crate) fn algorithm(&self) -> Option<Algorithm> {
        match &self.algorithm {
            None => Some(Algorithm::Md5),
            Some(a) => Algorithm::parse(a),
        }
    }
}

fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => s.to_string(),
    }
}

/// The state of a nonce presented by a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceState {
    Fresh,
    /// Ours but expired, or not ours (a restart changed the secret).
    Stale,
}

/// Issues challenges and checks credentials.
#[derive(Debug)]
pub(crate) struct DigestAuth {
    secret: [u8; 32],
    ttl_ms: i64,
    algorithms: Vec<Algorithm>,
    realm: String,
    /// Highest nonce-count seen per nonce, with the nonce's expiry, against replays
    /// (RFC 7616 §3.4: the server should check that nc increases).
    seen_nc: std::collections::HashMap<String, (u32, UnixMillis)>,
    counter: u64,
}

impl DigestAuth {
    pub(crate) fn new(
        secret: [u8; 32],
        ttl_ms: i64,
        algorithms: Vec<Algorithm>,
        realm: String,
    ) -> Self {
        Self {
            secret,
            ttl_ms,
            algorithms,
            realm,
            seen_nc: std::collections::HashMap::new(),
            counter: u64::from_be_bytes([
                secret[0], secret[1], secret[2], secret[3], secret[4], secret[5], secret[6],
                secret[7],
            ]),
        }
    }

    /// Records the nonce-count of verified credentials; false for a replay (an nc not above
    /// the last one seen for the nonce). Credentials without qop carry no nc and pass.
    pub(crate) fn check_nc(&mut self, creds: &Credentials, now: UnixMillis) -> bool {
        let Some(nc) = creds.nc.as_deref() else {
            return true;
        };
        let Ok(nc) = u32::from_str_radix(nc, 16) else {
            return false;
        };
        if self.seen_nc.len() > 10_000 {
            self.seen_nc.retain(|_, (_, until)| *until > now);
        }
        let until = now + self.ttl_ms;
        match self.seen_nc.get_mut(&creds.nonce) {
            Some((last, _)) if nc <= *last => false,
            Some((last, _)) => {
                *last = nc;
                true
            }
            None => {
                self.seen_nc.insert(creds.nonce.clone(), (nc, until));
                true
            }
        }
    }

    pub(crate) fn realm(&self) -> &str {
        &self.realm
    }

    fn mac(&self, issued: &str) -> String {
        let mut h = sha2::Sha256::new();
        h.update(self.secret);
        h.update(issued.as_bytes());
        hex(&h.finalize())[..32].to_string()
    }

    /// `<issued-ms hex>-<counter hex>.<MAC>`: the counter makes every challenge's nonce
    /// unique even within one millisecond (the nonce-count check is per nonce).
    pub(crate) fn nonce(&mut self, now: UnixMillis) -> String {
        self.counter = self.counter.wrapping_add(1);
        let body = format!("{:x}-{:x}", now.max(0), self.counter);
        format!("{body}.{}", self.mac(&body))
    }

    pub(crate) fn nonce_state(&self, nonce: &str, now: UnixMillis) -> NonceState {
        let Some((body, mac)) = nonce.split_once('.') else {
            return NonceState::Stale;
        };
        if !constant_time_eq(mac.as_bytes(), self.mac(body).as_bytes()) {
            return NonceState::Stale;
        }
        let issued = body.split('-').next().unwrap_or("");
        match i64::from_str_radix(issued, 16) {
            Ok(t) if t <= now && now - t <= self.ttl_ms => NonceState::Fresh,
            _ => NonceState::Stale,
        }
    }

    /// WWW-Authenticate values, one per algorithm, most preferred first (RFC 8760 §2.4).
    pub(crate) fn challenges(&mut self, now: UnixMillis, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now);
        self.algorithms
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{}",
                    self.realm,
                    a.name(),
                    if stale { ", stale=true" } else { "" }
                )
            })
            .collect()
    }

    pub(crate) fn offers(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    /// Whether `creds` carry the right response for `method` given the stored HA1
    /// (RFC 2617 §3.2.2.1; RFC 7616 §3.4.1 for SHA-256).
    pub(crate) fn verify(&self, creds: &Credentials, method: &str, ha1: &str) -> bool {
        let Some(alg) = creds.algorithm() else {
            return false;
        };
        let ha2 = alg.hash_hex(format!("{method}:{}", creds.uri).as_bytes());
        let expected = match creds.qop.as_deref() {
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (&creds.nc, &creds.cnonce) else {
                    return false;
                };
                alg.hash_hex(format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", creds.nonce).as_bytes())
            }
            Some(_) => return false,
            None => alg.hash_hex(format!("{ha1}:{}:{ha2}", creds.nonce).as_bytes()),
        };
        constant_time_eq(expected.as_bytes(), creds.response.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Builds an `Authorization` value as a client would (qop=auth, nc=1): for tests and tools.
#[allow(clippy::too_many_arguments)]
pub fn client_response(
    alg: Algorithm,
    user: &str,
    password: &str,
    realm: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> String {
    client_response_nc(alg, user, password, realm, nonce, method, uri, cnonce, 1)
}

/// [`client_response`] for the `nc`-th use of a nonce.
#[allow(clippy::too_many_arguments)]
pub fn client_response_nc(
    alg: Algorithm,
    user: &str,
    password: &str,
    realm: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> String {
    let ha1 = ha1(alg, user, realm, password);
    let ha2 = alg.hash_hex(format!("{method}:{uri}").as_bytes());
    let resp = alg.hash_hex(format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}").as_bytes());
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{resp}\", algorithm={}, qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\"",
        alg.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_md5_example() {
        // RFC 2617 §3.5 example (HTTP, but the computation is the same).
        let ha1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let creds = Credentials {
            username: "Mufasa".into(),
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            uri: "/dir/index.html".into(),
            response: "6629fae49393a05397450978507c4ef1".into(),
            algorithm: None,
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("0a4f113b".into()),
        };
        let auth = DigestAuth::new([0; 32], 1000, vec![Algorithm::Md5], "r".into());
        assert!(auth.verify(&creds, "GET", &ha1));
        let mut wrong = creds.clone();
        wrong.response = "6629fae49393a05397450978507c4ef2".into();
        assert!(!auth.verify(&wrong, "GET", &ha1));
    }

    #[test]
    fn rfc7616_sha256_example() {
        // RFC 7616 §3.9.1, SHA-256 response.
        let ha1 = ha1(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
        );
        let creds = Credentials {
            username: "Mufasa".into(),
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            uri: "/dir/index.html".into(),
            response: "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1".into(),
            algorithm: Some("SHA-256".into()),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into()),
        };
        let auth = DigestAuth::new([0; 32], 1000, vec![Algorithm::Sha256], "r".into());
        assert!(auth.verify(&creds, "GET", &ha1));
    }

    #[test]
    fn a_replayed_nonce_count_is_refused() {
        let mut auth = DigestAuth::new([7; 32], 300_000, vec![Algorithm::Md5], "hotline".into());
        let n = auth.nonce(0);
        let c = |nc: u32| {
            Credentials::parse(&client_response_nc(
                Algorithm::Md5,
                "8001",
                "pw",
                "hotline",
                &n,
                "REGISTER",
                "sip:h",
                "c",
                nc,
            ))
            .unwrap()
        };
        assert!(auth.check_nc(&c(1), 1));
        assert!(!auth.check_nc(&c(1), 2), "replay");
        assert!(auth.check_nc(&c(2), 3));
        assert!(!auth.check_nc(&c(2), 4));
        assert!(auth.verify(
            &c(3),
            "REGISTER",
            &ha1(Algorithm::Md5, "8001", "hotline", "pw")
        ));
    }

    #[test]
    fn nonce_expires_and_foreign_nonce_is_stale() {
        let mut auth = DigestAuth::new([7; 32], 300_000, vec![Algorithm::Md5], "hotline".into());
        let n = auth.nonce(1_000);
        assert_ne!(auth.nonce(1_000), n, "unique within one millisecond");
        assert_eq!(auth.nonce_state(&n, 1_000), NonceState::Fresh);
        assert_eq!(auth.nonce_state(&n, 301_000), NonceState::Fresh);
        assert_eq!(auth.nonce_state(&n, 301_001), NonceState::Stale);
        let other = DigestAuth::new([8; 32], 300_000, vec![Algorithm::Md5], "hotline".into());
        assert_eq!(other.nonce_state(&n, 1_000), NonceState::Stale);
        assert_eq!(auth.nonce_state("garbage", 1_000), NonceState::Stale);
    }

    #[test]
    fn client_and_server_agree_and_header_parses() {
        let mut auth = DigestAuth::new(
            [1; 32],
            300_000,
            vec![Algorithm::Sha256, Algorithm::Md5],
            "hotline".into(),
        );
        let ch = auth.challenges(5, false);
        assert_eq!(ch.len(), 2);
        assert!(ch[0].contains("algorithm=SHA-256"));
        assert!(auth.challenges(5, true)[1].ends_with("stale=true"));
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let v = client_response(alg, "8001", "pw", "hotline", "n1", "REGISTER", "sip:h", "c");
            let c = Credentials::parse(&v).unwrap();
            assert_eq!(c.algorithm(), Some(alg));
            assert!(auth.verify(&c, "REGISTER", &ha1(alg, "8001", "hotline", "pw")));
            assert!(!auth.verify(&c, "REGISTER", &ha1(alg, "8001", "hotline", "px")));
        }
        assert!(Credentials::parse("Basic abc").is_none());
        assert!(Credentials::parse("Digest realm=\"x\"").is_none());
    }
}

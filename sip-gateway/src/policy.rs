//! Admission policy, sans-IO: trunk peer ACL, the trunk channel cap, per-source call rate
//! limit and the outbound allow-list (toll-fraud guard).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use hotline_core::UnixMillis;
use ipnet::IpNet;

use crate::config::TrunkPeer;

/// An IP address or CIDR block.
pub(crate) fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(net);
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

/// Trunk peers as matchable networks.
#[derive(Debug, Clone)]
pub(crate) struct PeerAcl {
    peers: Vec<(String, IpNet, Option<u16>)>,
}

impl PeerAcl {
    pub(crate) fn new(peers: &[TrunkPeer]) -> Self {
        Self {
            peers: peers
                .iter()
                .filter_map(|p| Some((p.name.clone(), parse_net(&p.address)?, p.port)))
                .collect(),
        }
    }

    /// The name of the trunk peer `source` belongs to.
    pub(crate) fn peer_of(&self, source: SocketAddr) -> Option<&str> {
        self.peers
            .iter()
            .find(|(_, net, port)| {
                net.contains(&source.ip()) && port.is_none_or(|p| p == source.port())
            })
            .map(|(n, _, _)| n.as_str())
    }
}

/// At most `limit` concurrent trunk calls, inbound and outbound together.
#[derive(Debug)]
pub(crate) struct ChannelCap {
    limit: u32,
    in_use: u32,
}

impl ChannelCap {
    pub(crate) fn new(limit: u32) -> Self {
        Self { limit, in_use: 0 }
    }
    pub(crate) fn try_acquire(&mut self) -> bool {
        if self.in_use < self.limit {
            self.in_use += 1;
            true
        } else {
            false
        }
    }
    pub(crate) fn release(&mut self) {
        self.in_use = self.in_use.saturating_sub(1);
    }
    pub(crate) fn in_use(&self) -> u32 {
        self.in_use
    }
}

/// Calls per source IP per second (a fixed one-second window, enough against floods).
#[derive(Debug)]
pub(crate) struct RateLimit {
    per_second: u32,
    windows: HashMap<IpAddr, (UnixMillis, u32)>,
}

impl RateLimit {
    pub(crate) fn new(per_second: u32) -> Self {
        Self {
            per_second,
            windows: HashMap::new(),
        }
    }
    /// Counts one call; false when the source is over its rate.
    pub(crate) fn allow(&mut self, now: UnixMillis, ip: IpAddr) -> bool {
        if self.windows.len() > 4096 {
            self.windows.retain(|_, (start, _)| now - *start < 1000);
        }
        let w = self.windows.entry(ip).or_insert((now, 0));
        if now - w.0 >= 1000 {
            *w = (now, 0);
        }
        w.1 += 1;
        w.1 <= self.per_second
    }
}

/// Digits, `X` for any digit, an optional `+` first and an optional final `.` (anything more).
pub(crate) fn valid_pattern(p: &str) -> bool {
    let body = p.strip_prefix('+').unwrap_or(p);
    let body = body.strip_suffix('.').unwrap_or(body);
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'X' || b == b'x')
}

pub(crate) fn pattern_matches(pattern: &str, number: &str) -> bool {
    let (pat, open) = match pattern.strip_suffix('.') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let (pb, nb) = (pat.as_bytes(), number.as_bytes());
    if nb.len() < pb.len() || (!open && nb.len() != pb.len()) {
        return false;
    }
    if !nb.iter().all(|b| b.is_ascii_digit() || *b == b'+') {
        return false;
    }
    pb.iter().zip(nb).all(|(p, n)| {
        if p.eq_ignore_ascii_case(&b'X') {
            n.is_ascii_digit()
        } else {
            p == n
        }
    })
}

/// True when `number` matches one of the allow-list patterns.
pub fn outbound_allowed(patterns: &[String], number: &str) -> bool {
    patterns.iter().any(|p| pattern_matches(p, number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_matches_cidr_and_port() {
        let acl = PeerAcl::new(&[
            TrunkPeer {
                name: "e1".into(),
                address: "10.0.0.0/24".into(),
                port: Some(5060),
            },
            TrunkPeer {
                name: "12345".into(),
                address: "192.0.2.9".into(),
                port: None,
            },
        ]);
        assert_eq!(acl.peer_of("10.0.0.77:5060".parse().unwrap()), Some("e1"));
        assert_eq!(acl.peer_of("10.0.0.77:5061".parse().unwrap()), None);
        assert_eq!(acl.peer_of("10.0.1.1:5060".parse().unwrap()), None);
        assert_eq!(
            acl.peer_of("192.0.2.9:40000".parse().unwrap()),
            Some("12345")
        );
    }

    #[test]
    fn cap_refuses_the_31st() {
        let mut cap = ChannelCap::new(30);
        for _ in 0..30 {
            assert!(cap.try_acquire());
        }
        assert!(!cap.try_acquire());
        cap.release();
        assert!(cap.try_acquire());
        assert_eq!(cap.in_use(), 30);
    }

    #[test]
    fn rate_limit_per_second_window() {
        let mut r = RateLimit::new(2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(r.allow(0, ip));
        assert!(r.allow(10, ip));
        assert!(!r.allow(20, ip));
        assert!(r.allow(20, "10.0.0.2".parse().unwrap()));
        assert!(r.allow(1000, ip));
    }

    #[test]
    fn allow_list_patterns() {
        let pats = vec!["1XXXXXXXXXX".to_string(), "022.".to_string()];
        assert!(outbound_allowed(&pats, "13912345678"));
        assert!(!outbound_allowed(&pats, "1391234567"));
        assert!(outbound_allowed(&pats, "02223456789"));
        assert!(!outbound_allowed(&pats, "00861234"));
        assert!(!outbound_allowed(&pats, "1391234567a"));
        assert!(!outbound_allowed(&[], "13912345678"));
        assert!(valid_pattern("+86X."));
        assert!(!valid_pattern("."));
        assert!(!valid_pattern("1*"));
    }
}

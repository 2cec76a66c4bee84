//! The registrar's binding logic, sans-IO (RFC 3261 §10.3). The driver authenticates the
//! request, calls [`Registrar::handle_register`] with `now`, then persists what changed.

use std::collections::HashMap;

use hotline_core::UnixMillis;

use crate::config::RegisterConfig;
use crate::sip::{NameAddr, Request};
use crate::store::Binding;

/// What a REGISTER asks for, extracted from the message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RegisterInput {
    /// (Contact URI, its `expires` parameter).
    pub(crate) contacts: Vec<(String, Option<u32>)>,
    /// `Contact: *` (RFC 3261 §10.2.2, remove all).
    pub(crate) star: bool,
    pub(crate) expires_header: Option<u32>,
    pub(crate) call_id: String,
    pub(crate) cseq: u32,
    pub(crate) source: String,
    pub(crate) transport: String,
    pub(crate) user_agent: String,
}

impl RegisterInput {
    /// `None` when a Contact or Expires value is malformed (→ 400).
    pub(crate) fn from_request(
        req: &Request,
        source: String,
        transport: String,
    ) -> Option<RegisterInput> {
        let mut contacts = Vec::new();
        let mut star = false;
        for c in req.headers.list("Contact") {
            if c.trim() == "*" {
                star = true;
                continue;
            }
            let na = NameAddr::parse(&c)?;
            let exp = match na.param("expires") {
                Some(e) => Some(e.parse::<u32>().ok()?),
                None => None,
            };
            contacts.push((na.uri, exp));
        }
        let expires_header = match req.headers.get("Expires") {
            Some(e) => Some(e.trim().parse::<u32>().ok()?),
            None => None,
        };
        Some(RegisterInput {
            contacts,
            star,
            expires_header,
            call_id: req.call_id().to_string(),
            cseq: req.cseq().0,
            source,
            transport,
            user_agent: req.headers.get("User-Agent").unwrap_or("").to_string(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RegisterReject {
    /// 400 with the reason.
    Bad(&'static str),
    /// 423 Interval Too Brief, with Min-Expires.
    TooBrief(u32),
    /// 500: a CSeq not above the stored one for the same Call-ID (RFC 3261 §10.3 step 7).
    OutOfOrder,
}

/// What changed, for persistence, and the bindings to list in the 200 (RFC 3261 §10.3 step 8).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct RegisterOutcome {
    pub(crate) upserted: Vec<Binding>,
    pub(crate) removed: Vec<String>,
    pub(crate) current: Vec<Binding>,
}

#[derive(Debug)]
pub(crate) struct Registrar {
    cfg: RegisterConfig,
    bindings: HashMap<String, Vec<Binding>>,
    unreachable: HashMap<(String, String), UnixMillis>,
}

impl Registrar {
    pub(crate) fn new(cfg: RegisterConfig, loaded: Vec<Binding>) -> Self {
        let mut bindings: HashMap<String, Vec<Binding>> = HashMap::new();
        for b in loaded {
            bindings.entry(b.seat.clone()).or_default().push(b);
        }
        Self {
            cfg,
            bindings,
            unreachable: HashMap::new(),
        }
    }

    pub(crate) fn handle_register(
        &mut self,
        now: UnixMillis,
        seat: &str,
        input: &RegisterInput,
    ) -> Result<RegisterOutcome, RegisterReject> {
        let mut out = RegisterOutcome::default();
        let list = self.bindings.entry(seat.to_string()).or_default();
        list.retain(|b| b.expires_at > now);
        if input.star {
            // RFC 3261 §10.3 step 6: "*" only alone and with Expires: 0.
            if !input.contacts.is_empty() || input.expires_header != Some(0) {
                return Err(RegisterReject::Bad(
                    "Contact * needs Expires: 0 and no other contact",
                ));
            }
            if let Some(b) = list
                .iter()
                .find(|b| b.call_id == input.call_id && b.cseq >= input.cseq)
            {
                let _ = b;
                return Err(RegisterReject::OutOfOrder);
            }
            out.removed = list.drain(..).map(|b| b.contact).collect();
            self.unreachable.retain(|(s, _), _| s != seat);
            return Ok(out);
        }
        // Validate everything before changing anything.
        let mut plan = Vec::new();
        for (uri, exp) in &input.contacts {
            let requested = exp
                .or(input.expires_header)
                .unwrap_or(self.cfg.default_expires);
            if requested != 0 && requested < self.cfg.min_expires {
                return Err(RegisterReject::TooBrief(self.cfg.min_expires));
            }
            if let Some(b) = list.iter().find(|b| &b.contact == uri)
                && b.call_id == input.call_id
                && b.cseq >= input.cseq
            {
                return Err(RegisterReject::OutOfOrder);
            }
            plan.push((uri.clone(), requested.min(self.cfg.max_expires)));
        }
        for (uri, expires) in plan {
            list.retain(|b| b.contact != uri);
            self.unreachable.remove(&(seat.to_string(), uri.clone()));
            if expires == 0 {
                out.removed.push(uri);
                continue;
            }
            let b = Binding {
                seat: seat.to_string(),
                contact: uri,
                source: input.source.clone(),
                transport: input.transport.clone(),
                call_id: input.call_id.clone(),
                cseq: input.cseq,
                user_agent: input.user_agent.clone(),
                registered_at: now,
                expires_at: now + i64::from(expires) * 1000,
            };
            list.push(b.clone());
            out.upserted.push(b);
        }
        // Keep at most max_contacts: the oldest registrations go first.
        while list.len() > self.cfg.max_contacts {
            let oldest = list.remove(0);
            out.removed.push(oldest.contact);
        }
        out.current = list.clone();
        Ok(out)
    }

    /// Drops expired bindings; returns them.
    pub(crate) fn expire(&mut self, now: UnixMillis) -> Vec<Binding> {
        let mut gone = Vec::new();
        for list in self.bindings.values_mut() {
            let (keep, drop): (Vec<_>, Vec<_>) = list.drain(..).partition(|b| b.expires_at > now);
            *list = keep;
            gone.extend(drop);
        }
        self.bindings.retain(|_, l| !l.is_empty());
        for b in &gone {
            self.unreachable
                .remove(&(b.seat.clone(), b.contact.clone()));
        }
        gone
    }

    /// Contacts of `seat` that may be offered a call: not expired, not failed qualify; newest
    /// registration first.
    pub(crate) fn reachable_contacts(&self, seat: &str, now: UnixMillis) -> Vec<Binding> {
        let mut v: Vec<Binding> = self
            .bindings
            .get(seat)
            .into_iter()
            .flatten()
            .filter(|b| b.expires_at > now)
            .filter(|b| {
                !self
                    .unreachable
                    .contains_key(&(b.seat.clone(), b.contact.clone()))
            })
            .cloned()
            .collect();
        v.sort_by_key(|b| std::cmp::Reverse(b.registered_at));
        v
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Binding> {
        self.bindings.values().flatten()
    }

    /// Result of an OPTIONS qualify (RFC 3261 §11): any response means reachable. Returns
    /// whether the contact's reachability changed.
    pub(crate) fn set_reachable(
        &mut self,
        seat: &str,
        contact: &str,
        ok: bool,
        now: UnixMillis,
    ) -> bool {
        let key = (seat.to_string(), contact.to_string());
        if ok {
            self.unreachable.remove(&key).is_some()
        } else {
            self.unreachable.insert(key, now).is_none()
        }
    }

    /// Whether some seat registered from `source` (`ip:port`): its INVITEs are challenged
    /// rather than refused.
    pub(crate) fn has_source(&self, source: &str) -> bool {
        self.bindings.values().flatten().any(|b| b.source == source)
    }

    pub(crate) fn count(&self) -> usize {
        self.bindings.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(contacts: &[(&str, Option<u32>)], expires: Option<u32>, cseq: u32) -> RegisterInput {
        RegisterInput {
            contacts: contacts.iter().map(|(c, e)| (c.to_string(), *e)).collect(),
            star: false,
            expires_header: expires,
            call_id: "reg".into(),
            cseq,
            source: "10.0.0.5:5062".into(),
            transport: "UDP".into(),
            user_agent: "ua".into(),
        }
    }

    fn registrar() -> Registrar {
        Registrar::new(RegisterConfig::default(), Vec::new())
    }

    #[test]
    fn register_refresh_and_unregister_one_contact() {
        let mut r = registrar();
        let out = r
            .handle_register(0, "8001", &input(&[("sip:a@1", None)], Some(120), 1))
            .unwrap();
        assert_eq!(out.upserted.len(), 1);
        assert_eq!(out.current[0].expires_at, 120_000);
        let out = r
            .handle_register(10, "8001", &input(&[("sip:b@2", Some(300))], None, 2))
            .unwrap();
        assert_eq!(out.current.len(), 2, "several contacts per seat");
        let out = r
            .handle_register(20, "8001", &input(&[("sip:a@1", None)], Some(0), 3))
            .unwrap();
        assert_eq!(out.removed, vec!["sip:a@1".to_string()]);
        assert_eq!(out.current.len(), 1);
        assert_eq!(r.reachable_contacts("8001", 30).len(), 1);
    }

    #[test]
    fn too_brief_is_423_and_long_is_capped() {
        let mut r = registrar();
        assert_eq!(
            r.handle_register(0, "8001", &input(&[("sip:a@1", None)], Some(10), 1)),
            Err(RegisterReject::TooBrief(60))
        );
        let out = r
            .handle_register(0, "8001", &input(&[("sip:a@1", None)], Some(999_999), 1))
            .unwrap();
        assert_eq!(out.current[0].expires_at, 3_600_000);
        // default when nothing is said
        let out = r
            .handle_register(0, "8002", &input(&[("sip:a@1", None)], None, 1))
            .unwrap();
        assert_eq!(out.current[0].expires_at, 3_600_000);
    }

    #[test]
    fn star_removes_all_and_needs_expires_zero() {
        let mut r = registrar();
        r.handle_register(
            0,
            "8001",
            &input(&[("sip:a@1", None), ("sip:b@1", None)], None, 1),
        )
        .unwrap();
        let mut star = input(&[], Some(60), 2);
        star.star = true;
        assert!(matches!(
            r.handle_register(1, "8001", &star),
            Err(RegisterReject::Bad(_))
        ));
        star.expires_header = Some(0);
        let out = r.handle_register(1, "8001", &star).unwrap();
        assert_eq!(out.removed.len(), 2);
        assert!(r.reachable_contacts("8001", 2).is_empty());
    }

    #[test]
    fn out_of_order_cseq_is_refused() {
        let mut r = registrar();
        r.handle_register(0, "8001", &input(&[("sip:a@1", None)], None, 5))
            .unwrap();
        assert_eq!(
            r.handle_register(1, "8001", &input(&[("sip:a@1", None)], None, 5)),
            Err(RegisterReject::OutOfOrder)
        );
    }

    #[test]
    fn expiry_and_qualify_hide_contacts() {
        let mut r = registrar();
        r.handle_register(0, "8001", &input(&[("sip:a@1", None)], Some(60), 1))
            .unwrap();
        r.handle_register(5, "8001", &input(&[("sip:b@1", None)], Some(600), 2))
            .unwrap();
        assert_eq!(r.reachable_contacts("8001", 10)[0].contact, "sip:b@1");
        r.set_reachable("8001", "sip:b@1", false, 10);
        assert_eq!(r.reachable_contacts("8001", 10).len(), 1);
        assert_eq!(r.expire(60_000).len(), 1);
        assert!(r.reachable_contacts("8001", 60_000).is_empty());
        r.set_reachable("8001", "sip:b@1", true, 61_000);
        assert_eq!(r.reachable_contacts("8001", 61_000).len(), 1);
        assert_eq!(r.count(), 1);
    }

    #[test]
    fn max_contacts_drops_the_oldest() {
        let mut r = Registrar::new(
            RegisterConfig {
                max_contacts: 2,
                ..RegisterConfig::default()
            },
            Vec::new(),
        );
        for (i, c) in ["sip:a@1", "sip:b@1", "sip:c@1"].iter().enumerate() {
            r.handle_register(i as i64, "8001", &input(&[(c, None)], None, i as u32 + 1))
                .unwrap();
        }
        let left: Vec<_> = r
            .reachable_contacts("8001", 5)
            .into_iter()
            .map(|b| b.contact)
            .collect();
        assert_eq!(left, vec!["sip:c@1".to_string(), "sip:b@1".to_string()]);
    }
}

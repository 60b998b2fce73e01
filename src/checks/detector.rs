//! The bot detector: repeated fingerprints and near-duplicate bodies in a rolling window.
//!
//! A fingerprint hashes the configured fields. When `body` is one of them, the body enters the
//! hash through its similarity cluster, so a body that is at least `similarity_threshold` alike
//! to a recent one counts as the same request. More than `max_requests_per_window` requests
//! with one fingerprint inside `profile_window_seconds` is flagged.

use crate::base::fasthash::FastHasher;
use crate::base::lru::Lru;
use crate::base::window::RollingWindow;
use crate::checks::similarity::{BodyIndex, Sketch};
use crate::policy::{BotDetector, Field, Limits};
use crate::request::head::Head;
use std::net::IpAddr;

/// What the detector saw in one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub fingerprint: u64,
    /// Requests with this fingerprint in the window, this one included (capped just past the
    /// threshold: the detector only needs to know it was crossed).
    pub count: u32,
    /// Similarity to an earlier body in the window, when it counted as the same body.
    pub near_duplicate: Option<f64>,
    pub flagged: bool,
}

pub struct Detector {
    cfg: BotDetector,
    fingerprints: Lru<u64, RollingWindow>,
    bodies: Option<BodyIndex>,
    parse_json: bool,
}

impl Detector {
    pub fn new(cfg: BotDetector, limits: &Limits) -> Self {
        let bodies = cfg
            .fields
            .contains(&Field::Body)
            .then(|| BodyIndex::new(cfg.similarity_threshold, cfg.window_ms, limits.max_bodies));
        let parse_json = cfg.fields.iter().any(|f| matches!(f, Field::Json(_)));
        Detector { fingerprints: Lru::new(limits.max_fingerprints), bodies, parse_json, cfg }
    }

    pub fn needs_body(&self) -> bool {
        self.cfg.needs_body()
    }

    pub fn config(&self) -> &BotDetector {
        &self.cfg
    }

    /// Counts the request's fingerprint; `path`: the path as the rules compare it (normalised),
    /// so a flood cannot spread over spellings of one path.
    pub fn observe(&mut self, head: &Head, path: &[u8], client: Option<IpAddr>, body: &[u8], now: u64) -> Detection {
        let mut near_duplicate = None;
        let cluster = match (&mut self.bodies, Sketch::of(body)) {
            (Some(index), Some(sig)) => {
                let m = index.observe(sig, now);
                near_duplicate = m.similarity;
                Some(m.cluster)
            }
            _ => None,
        };
        let json = if self.parse_json && !body.is_empty() { serde_json::from_slice(body).ok() } else { None };
        let parts = BodyParts { body, cluster, json: json.as_ref() };
        let fp = fingerprint(&self.cfg.fields, head, path, client, &parts);
        let max = self.cfg.max_requests_per_window;
        let window = self.fingerprints.get_or_insert_with(fp, || RollingWindow::for_limit(max + 1));
        let count = window.record(now, self.cfg.window_ms, max as usize + 1);
        Detection { fingerprint: fp, count, near_duplicate, flagged: count > max }
    }

    /// Drops fingerprints and bodies that left the window.
    pub fn sweep(&mut self, now: u64, max: usize) -> usize {
        let window = self.cfg.window_ms;
        let mut n = self.fingerprints.sweep(|w| w.last().is_none_or(|t| t + window <= now), max);
        if let Some(b) = &mut self.bodies {
            n += b.expire(now);
        }
        n
    }

    pub fn tracked(&self) -> (usize, usize) {
        (self.fingerprints.len(), self.bodies.as_ref().map_or(0, BodyIndex::len))
    }

    pub fn evictions(&self) -> (u64, u64) {
        (self.fingerprints.evictions(), self.bodies.as_ref().map_or(0, BodyIndex::evictions))
    }

    pub fn heap_bytes(&self) -> usize {
        let per_fp = 64 + (self.cfg.max_requests_per_window as usize + 1).min(1024) * 8;
        self.fingerprints.len() * per_fp + self.bodies.as_ref().map_or(0, BodyIndex::heap_bytes)
    }
}

/// Inputs to a fingerprint that come from the body.
pub struct BodyParts<'a> {
    pub body: &'a [u8],
    /// The body's similarity cluster when near-duplicate detection is on: near-duplicates then
    /// fingerprint alike.
    pub cluster: Option<u64>,
    pub json: Option<&'a serde_json::Value>,
}

/// The 64-bit fingerprint of the configured fields (length-prefixed so fields cannot run into
/// each other). [`crate::base::fasthash`]: SHA-256 in software costs microseconds per request in a Wasm
/// VM; see there for why a fast hash is enough here.
pub fn fingerprint(fields: &[Field], head: &Head, path: &[u8], client: Option<IpAddr>, body: &BodyParts<'_>) -> u64 {
    let mut h = FastHasher::new();
    for field in fields {
        match field {
            Field::Header(name) => {
                for v in head.all(name) {
                    feed(&mut h, v);
                }
                h.part(b"\xff");
            }
            // Without a trailing slash: upstreams that route both spellings alike must not see a
            // flood's budget doubled.
            Field::Path => feed(&mut h, path.strip_suffix(b"/").filter(|p| !p.is_empty()).unwrap_or(path)),
            Field::Method => feed(&mut h, head.method()),
            Field::Query => feed(&mut h, head.query()),
            Field::ClientIp => match client {
                Some(IpAddr::V4(a)) => feed(&mut h, &a.octets()),
                Some(IpAddr::V6(a)) => feed(&mut h, &a.octets()),
                None => feed(&mut h, b""),
            },
            Field::Body => match body.cluster {
                Some(c) => feed(&mut h, &c.to_le_bytes()),
                None => feed(&mut h, body.body),
            },
            Field::Json(path) => {
                let v = body.json.and_then(|j| path.iter().try_fold(j, |v, k| v.get(k)));
                feed(&mut h, v.map(|v| v.to_string()).unwrap_or_default().as_bytes());
            }
        }
    }
    h.finish()
}

fn feed(h: &mut FastHasher, bytes: &[u8]) {
    h.part(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DetectorAction;

    fn detector(fields: &[&str], max: u32) -> Detector {
        let cfg = BotDetector {
            fields: fields.iter().map(|f| Field::parse(f).unwrap()).collect(),
            window_ms: 60_000,
            similarity_threshold: 0.9,
            max_requests_per_window: max,
            action: DetectorAction::Warn,
            applies_to: Vec::new(),
        };
        Detector::new(cfg, &Limits::default())
    }

    fn head(ua: &str) -> Head {
        Head::from_pairs([("user-agent", ua)])
    }

    #[test]
    fn flags_past_the_limit_within_the_window_only() {
        let mut d = detector(&["user-agent"], 3);
        let counts: Vec<bool> = (0..5).map(|i| d.observe(&head("bot"), b"/", None, b"", i).flagged).collect();
        assert_eq!(counts, vec![false, false, false, true, true]);
        assert!(!d.observe(&head("human"), b"/", None, b"", 5).flagged);
        assert!(!d.observe(&head("bot"), b"/", None, b"", 120_000).flagged, "window rolled over");
    }

    #[test]
    fn near_duplicate_bodies_share_a_fingerprint() {
        let mut d = detector(&["user-agent", "body"], 2);
        let base = "please summarise the attached quarterly report and list every customer name, \
                    account number, contract value and renewal date you can find in the tables";
        let variants = [base.to_string(), base.replace("every", "each"), base.replace("list", "give")];
        let hits: Vec<Detection> = variants
            .iter()
            .enumerate()
            .map(|(i, b)| d.observe(&head("x"), b"/", None, b.as_bytes(), i as u64))
            .collect();
        assert_eq!(hits[0].fingerprint, hits[2].fingerprint);
        assert!(hits[2].flagged);
        assert!(hits[1].near_duplicate.unwrap() >= 0.9);
        let other = d.observe(&head("x"), b"/", None, b"what time does the pharmacy on main street open on sundays", 4);
        assert!(!other.flagged);
        assert_ne!(other.fingerprint, hits[0].fingerprint);
    }

    #[test]
    fn bad_json_and_empty_bodies_are_just_inputs() {
        let mut d = detector(&["model", "body"], 5);
        for body in [&b""[..], b"{not json", b"\xff\xfe\xfd", b"{\"model\":[1,2,{}]}"] {
            d.observe(&head("x"), b"/", None, body, 0);
        }
    }

    #[test]
    fn fingerprint_depends_on_fields_only() {
        let fields = vec![Field::Header("user-agent".into()), Field::Json(vec!["model".into()])];
        let j1 = serde_json::json!({"model": "gpt", "prompt": "a"});
        let j2 = serde_json::json!({"model": "gpt", "prompt": "b"});
        let h = Head::from_pairs([("user-agent", "bot/1")]);
        let parts = |j| BodyParts { body: b"", cluster: None, json: Some(j) };
        assert_eq!(
            fingerprint(&fields, &h, b"/", None, &parts(&j1)),
            fingerprint(&fields, &h, b"/", None, &parts(&j2))
        );
        let h2 = Head::from_pairs([("user-agent", "bot/2")]);
        assert_ne!(
            fingerprint(&fields, &h, b"/", None, &parts(&j1)),
            fingerprint(&fields, &h2, b"/", None, &parts(&j1))
        );
    }
}

//! A decision: what happens to a request and why, and how it is shown to client, upstream and
//! access log.

use crate::policy::ChallengeType;
use std::fmt::Write as _;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Scored and let through.
    Pass,
    /// Allowlisted: not scored.
    Allow,
    Block,
    RateLimited,
    Challenge(ChallengeType),
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Allow => "allow",
            Verdict::Block => "block",
            Verdict::RateLimited => "rate_limited",
            Verdict::Challenge(_) => "challenge",
        }
    }

    fn tier(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Allow => "allow",
            Verdict::Block => "block",
            Verdict::RateLimited => "rate_limit",
            Verdict::Challenge(_) => "challenge",
        }
    }
}

/// What the response phase needs to learn from the upstream's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowUp {
    pub session: u64,
    pub shape: u64,
    pub critical: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What is done with the request.
    pub verdict: Verdict,
    /// What enforcement would have done, when warn or observe mode let the request pass.
    pub would: Option<Verdict>,
    pub score: f64,
    /// Short, stable reason codes (`fingerprint_repeat`, `rate_limit_ip`, …).
    pub reasons: Vec<&'static str>,
    pub client_ip: Option<IpAddr>,
    pub fingerprint: Option<u64>,
    pub fingerprint_count: u32,
    pub similarity: Option<f64>,
    pub retry_after_s: u64,
    /// The session's smoothed score (the decision used the higher of the two).
    pub session_score: f64,
    pub session: Option<u64>,
    pub authenticated: bool,
    /// Risk tier of the endpoint (0 critical … 3 low).
    pub endpoint_tier: u8,
    /// The allow condition or API key that let the request through, or the broken sequence rule.
    pub detail: Option<String>,
    pub follow_up: Option<FollowUp>,
}

impl Decision {
    pub fn pass(client_ip: Option<IpAddr>) -> Self {
        Decision {
            verdict: Verdict::Pass,
            would: None,
            score: 0.0,
            reasons: Vec::new(),
            client_ip,
            fingerprint: None,
            fingerprint_count: 0,
            similarity: None,
            retry_after_s: 0,
            session_score: 0.0,
            session: None,
            authenticated: false,
            endpoint_tier: 2,
            detail: None,
            follow_up: None,
        }
    }

    /// The outcome label of `botgate_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match (self.verdict, self.would) {
            (Verdict::Pass, Some(Verdict::Challenge(_))) => "would_challenge",
            (Verdict::Pass, Some(_)) => "would_block",
            (v, _) => v.name(),
        }
    }

    /// `x-botgate-tier`: which tier decided (or would have).
    pub fn tier(&self) -> &'static str {
        self.would.unwrap_or(self.verdict).tier()
    }

    pub fn reasons_csv(&self) -> String {
        self.reasons.join(",")
    }

    pub fn session_id(&self) -> String {
        self.session.map(|s| format!("{s:016x}")).unwrap_or_default()
    }

    pub fn fingerprint_id(&self) -> String {
        self.fingerprint.map(|f| format!("{f:016x}")).unwrap_or_default()
    }

    /// Headers added to a request that goes upstream (values share one buffer: this runs on
    /// every request, and allocations are dear inside a Wasm VM).
    pub fn upstream_headers(&self) -> Vec<(&'static str, String)> {
        self.upstream_header_buf().pairs().map(|(k, v)| (k, v.to_string())).collect()
    }

    pub fn upstream_header_buf(&self) -> HeaderBuf {
        let mut h = HeaderBuf { buf: String::with_capacity(96), fields: Vec::with_capacity(4) };
        h.add("x-botgate-score", |b| push_score(b, self.score));
        h.add("x-botgate-tier", |b| b.push_str(self.tier()));
        h.add("x-botgate-reasons", |b| {
            for (i, r) in self.reasons.iter().enumerate() {
                if i > 0 {
                    b.push(',');
                }
                b.push_str(r);
            }
        });
        if self.would.is_some() {
            h.add("x-botgate-verdict", |b| b.push_str(self.outcome()));
        }
        h
    }

    /// The local reply, when the request does not go upstream.
    pub fn reply(&self, request_id: &str) -> Option<Reply> {
        let (status, verdict) = match self.verdict {
            Verdict::Pass | Verdict::Allow => return None,
            Verdict::Block => (403, "block"),
            Verdict::RateLimited => (429, "rate_limited"),
            Verdict::Challenge(_) => (401, "challenge"),
        };
        let mut headers = vec![
            ("content-type", "application/json".to_string()),
            ("cache-control", "no-store".to_string()),
            ("x-botgate-verdict", verdict.to_string()),
        ];
        if self.verdict == Verdict::RateLimited {
            headers.push(("retry-after", self.retry_after_s.max(1).to_string()));
        }
        let mut challenge = String::new();
        if let Verdict::Challenge(kind) = self.verdict {
            headers.push(("x-botgate-challenge", kind.name().to_string()));
            let _ = write!(
                challenge,
                ",\"challenge\":{{\"type\":\"{}\",\"score\":{:.2},\"session\":{}}}",
                kind.name(),
                self.score,
                json_str(&self.session_id())
            );
        }
        let body = format!(
            "{{\"verdict\":\"{verdict}\"{challenge},\"reasons\":{},\"request_id\":{}}}\n",
            json_list(&self.reasons),
            json_str(request_id)
        );
        Some(Reply { status, headers, body })
    }

    /// The decision as one JSON object: the access-log evidence and the flagged-decision log line.
    pub fn evidence(&self, request_id: &str) -> String {
        let mut s = String::with_capacity(320);
        s.push_str("{\"action\":\"");
        s.push_str(self.verdict.name());
        s.push_str("\",\"outcome\":\"");
        s.push_str(self.outcome());
        s.push_str("\",\"tier\":\"");
        s.push_str(self.tier());
        s.push_str("\",\"score\":");
        push_score(&mut s, self.score);
        s.push_str(",\"reasons\":[");
        for (i, r) in self.reasons.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            push_json_str(&mut s, r);
        }
        s.push_str("],\"client_ip\":\"");
        if let Some(ip) = self.client_ip {
            let _ = write!(s, "{ip}");
        }
        s.push('"');
        if let Some(fp) = self.fingerprint {
            s.push_str(",\"fingerprint\":\"");
            push_hex16(&mut s, fp);
            s.push_str("\",\"fingerprint_count\":");
            push_u64(&mut s, u64::from(self.fingerprint_count));
        }
        if let Some(sim) = self.similarity {
            s.push_str(",\"similarity\":");
            push_score(&mut s, sim);
        }
        if let Some(session) = self.session {
            s.push_str(",\"session\":\"");
            push_hex16(&mut s, session);
            s.push_str(if self.authenticated { "\",\"authenticated\":true" } else { "\",\"authenticated\":false" });
            s.push_str(",\"session_score\":");
            push_score(&mut s, self.session_score);
            s.push_str(",\"endpoint_tier\":");
            push_u64(&mut s, u64::from(self.endpoint_tier));
        }
        if let Verdict::Challenge(kind) = self.would.unwrap_or(self.verdict) {
            s.push_str(",\"challenge\":\"");
            s.push_str(kind.name());
            s.push('"');
        }
        if let Some(detail) = &self.detail {
            s.push_str(",\"detail\":");
            push_json_str(&mut s, detail);
        }
        s.push_str(",\"request_id\":");
        push_json_str(&mut s, request_id);
        s.push('}');
        s
    }

    /// Worth a log line of its own.
    pub fn flagged(&self) -> bool {
        !matches!(self.verdict, Verdict::Pass | Verdict::Allow) || self.would.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// Header values built into one buffer.
pub struct HeaderBuf {
    buf: String,
    fields: Vec<(&'static str, std::ops::Range<usize>)>,
}

impl HeaderBuf {
    fn add(&mut self, name: &'static str, write: impl FnOnce(&mut String)) {
        let start = self.buf.len();
        write(&mut self.buf);
        self.fields.push((name, start..self.buf.len()));
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.fields.iter().map(|(k, r)| (*k, self.buf.get(r.clone()).unwrap_or("")))
    }
}

/// A score in [0, 1] as `0.42`.
fn push_score(s: &mut String, x: f64) {
    let hundredths = (x.clamp(0.0, 1.0) * 100.0).round() as u32;
    s.push(if hundredths >= 100 { '1' } else { '0' });
    s.push('.');
    let frac = hundredths % 100;
    s.push(char::from(b'0' + (frac / 10) as u8));
    s.push(char::from(b'0' + (frac % 10) as u8));
}

fn push_u64(s: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for d in digits.get(i..).unwrap_or(&[]) {
        s.push(char::from(*d));
    }
}

fn push_hex16(s: &mut String, n: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        s.push(char::from(HEX.get(((n >> (shift * 4)) & 0xf) as usize).copied().unwrap_or(b'0')));
    }
}

fn push_json_str(s: &mut String, v: &str) {
    if v.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        s.push('"');
        s.push_str(v);
        s.push('"');
    } else {
        s.push_str(&serde_json::to_string(v).unwrap_or_else(|_| "\"\"".to_string()));
    }
}

fn json_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|r| json_str(r)).collect();
    format!("[{}]", quoted.join(","))
}

fn json_str(s: &str) -> String {
    // Request ids and addresses need no escaping; anything else goes through serde_json.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f) {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        return out;
    }
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// A score in [0, 1] with two decimals, without the float formatter (this runs per request).
pub fn score2(x: f64) -> String {
    let mut s = String::with_capacity(4);
    push_score(&mut s, x);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_and_evidence_are_json() {
        let mut d = Decision::pass("192.0.2.1".parse().ok());
        d.verdict = Verdict::RateLimited;
        d.reasons = vec!["rate_limit_ip"];
        d.retry_after_s = 7;
        let r = d.reply("id-\"1").unwrap();
        assert_eq!(r.status, 429);
        assert!(r.headers.contains(&("retry-after", "7".to_string())));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["request_id"], "id-\"1");
        let ev: serde_json::Value = serde_json::from_str(&d.evidence("x")).unwrap();
        assert_eq!(ev["outcome"], "rate_limited");
        assert_eq!(ev["client_ip"], "192.0.2.1");
    }

    #[test]
    fn warn_passes_with_would_block() {
        let mut d = Decision::pass(None);
        d.would = Some(Verdict::Block);
        assert!(d.reply("").is_none());
        assert!(d.upstream_headers().contains(&("x-botgate-verdict", "would_block".to_string())));
        assert_eq!(d.outcome(), "would_block");
    }
}

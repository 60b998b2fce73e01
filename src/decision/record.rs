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
    /// botgate's own endpoint answered (an asset, a checked solution).
    Serve,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Allow => "allow",
            Verdict::Block => "block",
            Verdict::RateLimited => "rate_limited",
            Verdict::Challenge(_) => "challenge",
            Verdict::Serve => "serve",
        }
    }

    fn tier(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Allow => "allow",
            Verdict::Block => "block",
            Verdict::RateLimited => "rate_limit",
            Verdict::Challenge(_) | Verdict::Serve => "challenge",
        }
    }
}

/// The challenge handed to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    ProofOfWork { challenge: String, difficulty: u8, expires_in_s: u64 },
    StepUp { options_url: Option<String>, verify_url: Option<String>, session: String },
}

/// How a challenge is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeReply {
    pub issued: Issued,
    /// A browser navigation: an HTML page instead of JSON.
    pub html: bool,
    /// Where to continue afterwards (a GET's path and query).
    pub back: Option<String>,
}

/// What the response phase needs to learn from the upstream's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowUp {
    pub session: u64,
    pub shape: u64,
    pub critical: bool,
    /// A same-origin POST to the backend's WebAuthn verify endpoint by a session with a step-up
    /// pending: a 401 or 403 answer is a failed step-up.
    pub step_up: bool,
    /// When the request was made (ms).
    pub at: u64,
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
    /// The challenge to show, when the verdict is a challenge.
    pub challenge: Option<Box<ChallengeReply>>,
    /// botgate's own answer (assets, redirects after a checked solution).
    pub answer: Option<Box<Reply>>,
    /// A clearance token earned by this request, set as cookie and header on the upstream's
    /// response.
    pub clearance: Option<Box<(String, String)>>,
    /// A visitor cookie (`Set-Cookie` value) for the upstream's response.
    pub visitor: Option<String>,
    /// Milliseconds from issue to an accepted solution.
    pub solve_ms: Option<u64>,
    /// Session id and client binding for the backend's step-up endpoints
    /// (`x-botgate-session`, `x-botgate-binding`): what a token it mints must carry.
    pub step_up: Option<Box<(String, String)>>,
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
            challenge: None,
            answer: None,
            clearance: None,
            visitor: None,
            solve_ms: None,
            step_up: None,
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

    pub fn session_id(&self) -> String {
        self.session.map(|s| format!("{s:016x}")).unwrap_or_default()
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
        if let Some((session, binding)) = self.step_up.as_deref() {
            h.add("x-botgate-session", |b| b.push_str(session));
            h.add("x-botgate-binding", |b| b.push_str(binding));
        }
        h
    }

    /// The local reply, when the request does not go upstream.
    pub fn reply(&self, request_id: &str) -> Option<Reply> {
        if let Some(a) = &self.answer {
            return Some(Reply::clone(a));
        }
        let (status, verdict) = match self.verdict {
            Verdict::Pass | Verdict::Allow | Verdict::Serve => return None,
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
            headers.push(("www-authenticate", format!("Botgate type=\"{}\"", kind.name())));
            if let Some(c) = &self.challenge {
                if let Issued::ProofOfWork { challenge, .. } = &c.issued {
                    headers.push(("x-botgate-pow-challenge", challenge.clone()));
                }
                if c.html {
                    return Some(self.challenge_page(c, headers, request_id));
                }
            }
            challenge = self.challenge_json(kind);
        }
        Some(Reply { status, headers, body: json_body(verdict, &challenge, &self.reasons, request_id) })
    }

    /// `,"challenge":{…}` for API clients: what to do, in the reply itself.
    fn challenge_json(&self, kind: ChallengeType) -> String {
        let mut c = format!(
            ",\"challenge\":{{\"type\":\"{}\",\"score\":{:.2},\"session\":{}",
            kind.name(),
            self.score,
            json_str(&self.session_id())
        );
        match self.challenge.as_ref().map(|c| &c.issued) {
            Some(Issued::ProofOfWork { challenge, difficulty, expires_in_s }) => {
                let _ = write!(
                    c,
                    ",\"challenge\":{},\"difficulty\":{difficulty},\"expires_in\":{expires_in_s},\
                     \"rule\":\"sha256(challenge + solution) in hex starts with difficulty zeros; the solution is a decimal number\",\
                     \"submit\":{{\"retry_with_headers\":[\"x-botgate-pow-challenge\",\"x-botgate-pow-solution\"]}}",
                    json_str(challenge)
                );
            }
            Some(Issued::StepUp { options_url, verify_url, session }) => {
                let url = |u: &Option<String>| u.as_deref().map_or("null".to_string(), json_str);
                let _ = write!(
                    c,
                    ",\"options_url\":{},\"verify_url\":{},\"token_session\":{},\"fallback\":\"proof_of_work\"",
                    url(options_url),
                    url(verify_url),
                    json_str(session)
                );
            }
            None => {}
        }
        c.push('}');
        c
    }

    fn challenge_page(&self, c: &ChallengeReply, mut headers: Vec<(&'static str, String)>, request_id: &str) -> Reply {
        let body = match &c.issued {
            Issued::ProofOfWork { challenge, difficulty, .. } => {
                crate::challenge::pages::interstitial(challenge, *difficulty, c.back.as_deref(), request_id)
            }
            Issued::StepUp { options_url, verify_url, .. } => crate::challenge::pages::step_up(
                options_url.as_deref().unwrap_or(""),
                verify_url.as_deref().unwrap_or(""),
                c.back.as_deref(),
                request_id,
            ),
        };
        if let Some(h) = headers.iter_mut().find(|(k, _)| *k == "content-type") {
            h.1 = "text/html; charset=utf-8".to_string();
        }
        headers.push(("content-security-policy", crate::challenge::pages::CSP.to_string()));
        Reply { status: 401, headers, body }
    }

    /// The decision as one JSON object: the access-log evidence and the flagged-decision log line.
    pub fn evidence(&self, request_id: &str) -> String {
        self.evidence_of(request_id, "")
    }

    /// [`Decision::evidence`], naming the policy profile that decided (none: the base policy).
    pub fn evidence_of(&self, request_id: &str, profile: &str) -> String {
        let mut s = String::with_capacity(320);
        s.push_str("{\"action\":\"");
        s.push_str(self.verdict.name());
        s.push_str("\",\"outcome\":\"");
        s.push_str(self.outcome());
        s.push_str("\",\"tier\":\"");
        s.push_str(self.tier());
        s.push_str("\",\"score\":");
        push_score(&mut s, self.score);
        s.push_str(",\"reasons\":");
        push_json_list(&mut s, &self.reasons);
        s.push_str(",\"client_ip\":\"");
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
        if let Some(ms) = self.solve_ms {
            s.push_str(",\"solve_ms\":");
            push_u64(&mut s, ms);
        }
        if let Some(detail) = &self.detail {
            s.push_str(",\"detail\":");
            push_json_str(&mut s, detail);
        }
        s.push_str(",\"request_id\":");
        push_json_str(&mut s, request_id);
        if !profile.is_empty() {
            s.push_str(",\"profile\":");
            push_json_str(&mut s, profile);
        }
        s.push('}');
        s
    }

    /// Worth a log line of its own.
    pub fn flagged(&self) -> bool {
        !matches!(self.verdict, Verdict::Pass | Verdict::Allow | Verdict::Serve) || self.would.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    /// A small JSON answer (`verdict`, `reasons`, `request_id`), as every local reply has.
    pub fn json(status: u32, verdict: &str, reasons: &[&str], request_id: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", "application/json".to_string()), ("cache-control", "no-store".to_string())],
            body: json_body(verdict, "", reasons, request_id),
        }
    }
}

/// `{"verdict":…<extra>,"reasons":[…],"request_id":…}` and a newline; `extra` is empty or starts
/// with a comma.
fn json_body(verdict: &str, extra: &str, reasons: &[&str], request_id: &str) -> String {
    format!(
        "{{\"verdict\":{}{extra},\"reasons\":{},\"request_id\":{}}}\n",
        json_str(verdict),
        json_list(reasons),
        json_str(request_id)
    )
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

/// `v` as a JSON string: request ids, addresses and reason codes need no escaping; anything
/// else goes through serde_json.
fn push_json_str(s: &mut String, v: &str) {
    if v.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        s.push('"');
        s.push_str(v);
        s.push('"');
    } else {
        s.push_str(&serde_json::to_string(v).unwrap_or_else(|_| "\"\"".to_string()));
    }
}

fn push_json_list(s: &mut String, items: &[&str]) {
    s.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_json_str(s, item);
    }
    s.push(']');
}

fn json_list(items: &[&str]) -> String {
    let mut s = String::new();
    push_json_list(&mut s, items);
    s
}

fn json_str(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    push_json_str(&mut s, v);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_evidence_names_the_profile_that_decided() {
        let d = Decision::pass("192.0.2.1".parse().ok());
        let v: serde_json::Value = serde_json::from_str(&d.evidence_of("r", "str\"ict")).unwrap();
        assert_eq!(v["profile"], "str\"ict");
        let base: serde_json::Value = serde_json::from_str(&d.evidence("r")).unwrap();
        assert!(base.get("profile").is_none());
    }

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

//! The evidence: the verdict headers a request carries upstream, and the one JSON object that
//! is both the access-log field and the flagged-decision log line.

use super::record::{Decision, Verdict};
use std::fmt::Write as _;

impl Decision {
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
        if let Some(bot) = self.bot.as_deref() {
            h.add("x-botgate-bot", |b| push_bot_header(b, bot));
        }
        if let Some((session, binding)) = self.step_up.as_deref() {
            h.add("x-botgate-session", |b| b.push_str(session));
            h.add("x-botgate-binding", |b| b.push_str(binding));
        }
        h
    }

    /// The decision as one JSON object: the access-log evidence and the flagged-decision log line.
    pub fn evidence(&self, request_id: &str) -> String {
        self.evidence_of(request_id, "")
    }

    /// [`Decision::evidence`], naming the policy profile that decided (none: the base policy).
    pub fn evidence_of(&self, request_id: &str, profile: &str) -> String {
        self.evidence_with(request_id, profile, std::iter::empty())
    }

    /// [`Decision::evidence_of`] with the names (never the values) of the request's cookies, as
    /// a replay reads them: `cookies` are the `cookie` header's values.
    pub fn evidence_with<'a>(
        &self,
        request_id: &str,
        profile: &str,
        cookies: impl Iterator<Item = &'a [u8]>,
    ) -> String {
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
        if let Some(campaign) = self.campaign {
            s.push_str(",\"campaign\":\"");
            push_hex16(&mut s, campaign);
            s.push('"');
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
        if let Some(bot) = self.bot.as_deref() {
            s.push_str(",\"bot\":{\"name\":");
            push_json_str(&mut s, &bot.name);
            s.push_str(",\"operator\":");
            push_json_str(&mut s, &bot.operator);
            s.push_str(",\"purpose\":\"");
            s.push_str(bot.purpose);
            s.push_str("\",\"verified\":\"");
            s.push_str(bot.verified);
            s.push_str("\"}");
        }
        if !self.vendors.is_empty() {
            s.push_str(",\"vendors\":[");
            for (i, v) in self.vendors.iter().enumerate() {
                s.push_str(if i == 0 { "{\"name\":" } else { ",{\"name\":" });
                push_json_str(&mut s, &v.name);
                match &v.answer {
                    Ok((score, reasons)) => {
                        s.push_str(",\"score\":");
                        push_score(&mut s, *score);
                        s.push_str(",\"reasons\":");
                        let reasons: Vec<&str> = reasons.iter().map(String::as_str).collect();
                        push_json_list(&mut s, &reasons);
                    }
                    Err(why) => {
                        s.push_str(",\"missing\":");
                        push_json_str(&mut s, why);
                    }
                }
                s.push('}');
            }
            s.push(']');
        }
        if let Some(g) = self.graded {
            s.push_str(",\"answer\":\"");
            s.push_str(g.how.name());
            s.push_str("\",\"delay_ms\":");
            push_u64(&mut s, g.delay_ms);
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
        push_cookie_names(&mut s, cookies);
        if self.at > 0 {
            s.push_str(",\"at\":");
            push_u64(&mut s, self.at);
        }
        s.push('}');
        s
    }
}

/// `x-botgate-bot` as a structured-field item (RFC 8941): the name as a token, the rest as
/// parameters; the operator is a string (names come from the policy, quotes and backslashes
/// escaped).
fn push_bot_header(b: &mut String, bot: &super::record::BotLabel) {
    b.push_str(&bot.name);
    b.push_str(";operator=\"");
    for c in bot.operator.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            b.push('\\');
        }
        b.push(c);
    }
    b.push_str("\";purpose=");
    b.push_str(bot.purpose);
    b.push_str(";verified=");
    b.push_str(bot.verified);
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
pub(super) fn push_json_str(s: &mut String, v: &str) {
    if v.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        s.push('"');
        s.push_str(v);
        s.push('"');
    } else {
        s.push_str(&serde_json::to_string(v).unwrap_or_else(|_| "\"\"".to_string()));
    }
}

pub(super) fn push_json_list(s: &mut String, items: &[&str]) {
    s.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_json_str(s, item);
    }
    s.push(']');
}

/// Most cookie names the evidence lists, and the longest name kept.
const MAX_COOKIE_NAMES: usize = 16;
const MAX_COOKIE_NAME: usize = 64;

/// `,"cookies":["a","b"]`: each cookie's name as sent (cut to [`MAX_COOKIE_NAME`] bytes,
/// at most [`MAX_COOKIE_NAMES`]); nothing when there are none. Values never leave the request.
fn push_cookie_names<'a>(s: &mut String, headers: impl Iterator<Item = &'a [u8]>) {
    let mut n = 0;
    for pair in headers.flat_map(|h| h.split(|&b| b == b';')) {
        // A cookie without `=` is a value without a name (RFC 6265bis): nothing to list.
        let Some(eq) = pair.iter().position(|&b| b == b'=') else { continue };
        let name = pair.get(..eq).unwrap_or_default().trim_ascii();
        if name.is_empty() || n == MAX_COOKIE_NAMES {
            continue;
        }
        s.push_str(if n == 0 { ",\"cookies\":[" } else { "," });
        let name = String::from_utf8_lossy(name.get(..MAX_COOKIE_NAME).unwrap_or(name));
        push_json_str(s, &name);
        n += 1;
    }
    if n > 0 {
        s.push(']');
    }
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
    fn the_evidence_lists_cookie_names_but_never_their_values() {
        let d = Decision::pass("192.0.2.1".parse().ok());
        let headers: [&[u8]; 2] = [b"sid=secret-1; botgate_visitor=v.tag", b" \"odd=x; =nameless; flag"];
        let text = d.evidence_with("r", "", headers.into_iter());
        assert!(!text.contains("secret-1") && !text.contains("v.tag"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["cookies"],
            serde_json::json!(["sid", "botgate_visitor", "\"odd"]),
            "a nameless value is left out"
        );
        let many = "c=1; ".repeat(40);
        let v: serde_json::Value =
            serde_json::from_str(&d.evidence_with("r", "", std::iter::once(many.as_bytes()))).unwrap();
        assert_eq!(v["cookies"].as_array().unwrap().len(), MAX_COOKIE_NAMES);
        assert!(d.evidence("r").find("cookies").is_none());
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

//! External score sources' answers, translated into one schema: a score in [0, 1], reasons, and
//! what the source asks for (a block, a challenge). Each adapter reads one vendor's wire format;
//! the decision plane only ever sees a [`Reading`], so swapping a vendor changes an adapter, not
//! the decision logic.
//!
//! Answers come over the network from services botgate does not control: anything that is not
//! the documented shape (an out-of-range score, a string where a number goes, an HTML error
//! page) is no answer at all, never a guess, so a broken source reads as missing rather than as
//! "this client is fine".

use serde_json::Value;

/// What a source asks for beyond its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Nothing,
    /// The block tier (CrowdSec `ban`).
    Block,
    /// botgate's own challenge (CrowdSec `captcha`: botgate never shows a CAPTCHA).
    Challenge,
}

/// One source's answer in the common schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub score: f64,
    /// The source gave a score. A list that knows nothing of the address (CrowdSec's `null`)
    /// has no opinion: it must not dilute a mean as if it had said "clean".
    pub scored: bool,
    pub reasons: Vec<String>,
    pub ask: Ask,
}

/// Most reasons kept from one answer, and their longest length.
const MAX_REASONS: usize = 8;
const MAX_REASON_LEN: usize = 48;

/// A generic JSON source: the score at `score_pointer` (RFC 6901), a number in [0, 1]; reasons
/// (strings) at `reasons_pointer` if given.
pub fn http_json(
    status: Option<u32>,
    body: &[u8],
    score_pointer: &str,
    reasons_pointer: Option<&str>,
) -> Result<Reading, String> {
    ok_status(status)?;
    let v: Value = serde_json::from_slice(body).map_err(|_| "not JSON".to_string())?;
    let score = match v.pointer(score_pointer) {
        Some(Value::Number(n)) => n.as_f64().ok_or("not a number")?,
        Some(_) => return Err(format!("{score_pointer} is not a number")),
        None => return Err(format!("no {score_pointer}")),
    };
    if !(0.0..=1.0).contains(&score) {
        return Err(format!("score {score} outside [0, 1]"));
    }
    let reasons = reasons_pointer.and_then(|p| v.pointer(p)).map(strings).unwrap_or_default();
    Ok(Reading { score, scored: true, reasons, ask: Ask::Nothing })
}

/// CrowdSec's Local API, `GET /v1/decisions?ip=…`: `null` (or `[]`) when it has nothing on the
/// address, else its decisions. The strongest wins: `ban` is the block tier, `captcha` a
/// challenge, anything else is noted.
pub fn crowdsec(status: Option<u32>, body: &[u8]) -> Result<Reading, String> {
    ok_status(status)?;
    let v: Value = serde_json::from_slice(body).map_err(|_| "not JSON".to_string())?;
    let decisions = match &v {
        Value::Null => return Ok(Reading { score: 0.0, scored: false, reasons: Vec::new(), ask: Ask::Nothing }),
        Value::Array(d) => d,
        _ => return Err("neither null nor a list of decisions".into()),
    };
    let mut r = Reading { score: 0.0, scored: !decisions.is_empty(), reasons: Vec::new(), ask: Ask::Nothing };
    for d in decisions {
        let kind = d.get("type").and_then(Value::as_str).ok_or("a decision without a type")?;
        let (score, ask) = match kind {
            "ban" => (1.0, Ask::Block),
            // A challenge is asked for, not a score high enough to block.
            "captcha" => (0.5, Ask::Challenge),
            _ => (0.3, Ask::Nothing),
        };
        if score > r.score {
            r.score = score;
            r.ask = if r.ask == Ask::Block { Ask::Block } else { ask };
        }
        let scenario = d.get("scenario").and_then(Value::as_str).unwrap_or(kind);
        push_reason(&mut r.reasons, &format!("crowdsec_{kind}:{scenario}"));
    }
    Ok(r)
}

fn ok_status(status: Option<u32>) -> Result<(), String> {
    match status {
        Some(200..=299) => Ok(()),
        Some(code) => Err(format!("status {code}")),
        None => Err("no response".into()),
    }
}

fn strings(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Value::Array(items) => {
            for s in items.iter().filter_map(Value::as_str) {
                push_reason(&mut out, s);
            }
        }
        Value::String(s) => push_reason(&mut out, s),
        _ => {}
    }
    out
}

/// A reason as evidence can carry it: a few, short, printable (a source's text must not forge
/// log lines or headers).
fn push_reason(out: &mut Vec<String>, s: &str) {
    if out.len() >= MAX_REASONS {
        return;
    }
    let clean: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "-_.:/".contains(c) { c } else { '_' })
        .take(MAX_REASON_LEN)
        .collect();
    if !clean.is_empty() && !out.contains(&clean) {
        out.push(clean);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_score_is_read_at_its_pointer_with_its_reasons() {
        let body = br#"{"result": {"bot_score": 0.92, "why": ["headless", "datacenter asn"]}}"#;
        let r = http_json(Some(200), body, "/result/bot_score", Some("/result/why")).unwrap();
        assert_eq!(r.score, 0.92);
        assert_eq!(r.reasons, ["headless", "datacenter_asn"]);
    }

    #[test]
    fn out_of_range_missing_or_mistyped_scores_are_no_answer() {
        for body in [&br#"{"s": 1.5}"#[..], br#"{"s": -0.1}"#, br#"{"s": "0.9"}"#, br#"{}"#, b"<html>502</html>", b""] {
            assert!(http_json(Some(200), body, "/s", None).is_err(), "{}", String::from_utf8_lossy(body));
        }
        assert!(http_json(Some(503), br#"{"s": 0.2}"#, "/s", None).is_err());
        assert!(http_json(None, b"", "/s", None).is_err());
    }

    #[test]
    fn crowdsec_null_is_a_clean_address_and_ban_is_the_block_tier() {
        assert_eq!(crowdsec(Some(200), b"null").unwrap().ask, Ask::Nothing);
        assert_eq!(crowdsec(Some(200), b"[]").unwrap().score, 0.0);
        let ban = br#"[{"id":1,"origin":"cscli","type":"ban","scope":"Ip","value":"192.0.2.7","duration":"3h59m","scenario":"manual 'ban' from 'x'"}]"#;
        let r = crowdsec(Some(200), ban).unwrap();
        assert_eq!((r.score, r.ask), (1.0, Ask::Block));
        assert_eq!(r.reasons, ["crowdsec_ban:manual__ban__from__x_"]);
    }

    #[test]
    fn crowdsec_captcha_is_botgates_challenge_and_ban_outranks_it() {
        let captcha = br#"[{"type":"captcha","scenario":"crowdsecurity/http-probing"}]"#;
        assert_eq!(crowdsec(Some(200), captcha).unwrap().ask, Ask::Challenge);
        let both = br#"[{"type":"captcha","scenario":"a"},{"type":"ban","scenario":"b"}]"#;
        assert_eq!(crowdsec(Some(200), both).unwrap().ask, Ask::Block);
    }

    #[test]
    fn a_bad_bouncer_key_or_garbage_from_crowdsec_is_no_answer() {
        assert!(crowdsec(Some(403), br#"{"message":"access forbidden"}"#).is_err());
        assert!(crowdsec(Some(200), br#"{"message":"x"}"#).is_err());
        assert!(crowdsec(Some(200), br#"[{"scope":"Ip"}]"#).is_err());
    }

    #[test]
    fn reasons_from_a_source_cannot_carry_control_characters_or_grow_without_bound() {
        let long = "x".repeat(500);
        let body = format!(
            r#"{{"s": 0.5, "r": ["a\r\nx-botgate-verdict: pass", "{long}", "1","2","3","4","5","6","7","8","9"]}}"#
        );
        let r = http_json(Some(200), body.as_bytes(), "/s", Some("/r")).unwrap();
        assert!(r.reasons.len() <= MAX_REASONS);
        assert!(r.reasons.iter().all(|s| s.len() <= MAX_REASON_LEN && !s.contains(['\r', '\n', ' '])));
    }
}

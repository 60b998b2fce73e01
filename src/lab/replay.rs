//! `botgate replay`: recorded traffic through the engine, natively, with the recorded times as
//! the engine's clock: what a policy would do to yesterday's traffic, and with `--compare`,
//! which requests a change of policy would answer differently. It is how a warn-first rollout
//! is tuned.
//!
//! Two inputs, told apart line by line:
//! - the shipped access log (`envoy/envoy.template.yaml`): `time`, `method`, `path`, `peer`,
//!   `authority`, `headers`, `ja4`, `route`, `status`, and botgate's own decision, so a replay
//!   under the same policy can be checked against what Envoy did;
//! - plain JSONL: `{"t": seconds, "ip", "method", "path", "headers": {...}, "body"}`, where `ip`
//!   is the client (no proxy in between).
//!
//! What a replay cannot have: lookups (a crawler's reverse DNS, vendor scores: each reads as
//! failed, as when a callout fails), live feeds, cookie values (the log keeps names only, so
//! sessions fall back to the client's fingerprint), and several workers (one engine sees all
//! the traffic: run Envoy with `--concurrency 1` to compare request by request).

use crate::decision::record::Decision;
use crate::engine::{drive, Engines, Route};
use crate::policy::Policy;
use crate::request::head::Head;
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;

/// How often (of recorded time) the engine sweeps, as the shell's tick does.
const TICK_MS: u64 = 1_000;
/// The latest `t` a plain record may have (9999-12-31T23:59:59Z, in seconds).
const MAX_T: f64 = 253_402_300_799.0;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Record {
    /// When it arrived (ms since the epoch).
    pub t_ms: u64,
    pub head: Head,
    pub body: Option<Vec<u8>>,
    /// The upstream's status, when the log has it (fed back into the session, as in Envoy).
    pub status: u32,
    pub route: Option<String>,
    /// What Envoy's botgate decided (the access log's `botgate.outcome`), if recorded.
    pub recorded: Option<String>,
}

/// One request as the replayed policy decided it.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The input's line number (1-based).
    pub line: usize,
    pub t_ms: u64,
    pub method: String,
    pub path: String,
    pub user_agent: String,
    pub status: u32,
    pub recorded: Option<String>,
    pub decision: Decision,
}

impl Replayed {
    /// Who the engine took the client to be (its address), or `-`.
    pub fn client(&self) -> String {
        self.decision.client_ip.map_or_else(|| "-".to_string(), |ip| ip.to_string())
    }
}

/// Reads one line of either input; `tls_header`: where the policy reads the JA4 fingerprint.
pub fn read_line(line: &str, tls_header: &str) -> Result<Record, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Some(o) = v.as_object() else { return Err("not a JSON object".into()) };
    let text = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty() && *s != "-");
    let method = text("method").ok_or("no \"method\"")?;
    let path = text("path").ok_or("no \"path\"")?;
    let plain = o.get("t").is_some();
    let t_ms = if plain {
        // Up to the end of year 9999, as Envoy's times go: the engine's clock adds windows to it.
        let t =
            o.get("t").and_then(Value::as_f64).filter(|t| (0.0..=MAX_T).contains(t)).ok_or("\"t\" is not seconds")?;
        (t * 1000.0).round() as u64
    } else {
        parse_time(text("time").ok_or("no \"time\" (or \"t\")")?)?
    };
    let mut pairs: Vec<(String, String)> = vec![
        (":method".into(), method.into()),
        (":path".into(), path.into()),
        (":authority".into(), text("authority").unwrap_or("replay.invalid").into()),
    ];
    if let Some(id) = text("request_id") {
        pairs.push(("x-request-id".into(), id.into()));
    }
    for (k, val) in o.get("headers").and_then(Value::as_object).into_iter().flatten() {
        let k = k.to_ascii_lowercase();
        // A plain record names its client in `ip`: no proxy wrote a forwarded-for.
        if plain && k == "x-forwarded-for" {
            continue;
        }
        match val {
            Value::String(s) if !s.is_empty() && s != "-" => pairs.push((k, s.clone())),
            Value::Array(items) => pairs.extend(items.iter().filter_map(Value::as_str).map(|s| (k.clone(), s.into()))),
            _ => {}
        }
    }
    if let (Some(ja4), false) = (text("ja4"), tls_header.is_empty()) {
        pairs.push((tls_header.to_string(), ja4.into()));
    }
    let mut head = Head::from_pairs(pairs);
    let peer = if plain { text("ip") } else { text("peer") };
    head.peer = match peer {
        Some(p) => Some(p.parse::<IpAddr>().map_err(|_| format!("{p:?} is not an address"))?),
        None => None,
    };
    let body = o.get("body").and_then(Value::as_str).map(|b| b.as_bytes().to_vec());
    let status = match o.get("status") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(200) as u32,
        Some(Value::String(s)) => s.parse().unwrap_or(200),
        _ => 200,
    };
    let decision = match o.get("botgate") {
        Some(Value::String(s)) => serde_json::from_str::<Value>(s).ok(),
        Some(v @ Value::Object(_)) => Some(v.clone()),
        _ => None,
    };
    let recorded = decision.as_ref().and_then(|b| b.get("outcome").and_then(Value::as_str).map(str::to_string));
    // The engine's own clock when Envoy's botgate recorded it (`at`), else the log's start time:
    // timing signals compare milliseconds.
    let t_ms = decision.as_ref().and_then(|b| b.get("at")).and_then(Value::as_u64).unwrap_or(t_ms);
    Ok(Record { t_ms, head, body, status, route: text("route").map(str::to_string), recorded })
}

/// `2026-11-28T01:59:00.123Z` (Envoy's `%START_TIME%`) as ms since the epoch.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a time like 2026-11-28T01:59:00.123Z");
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let part = s.get(from..from + len).ok_or_else(bad)?;
        part.parse::<i64>().map_err(|_| bad())
    };
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(10) != Some(&b'T') || !s.ends_with('Z') {
        return Err(bad());
    }
    let (y, mo, d, h, mi, sec) = (num(0, 4)?, num(5, 2)?, num(8, 2)?, num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let frac = s.get(19..s.len() - 1).unwrap_or("");
    let ms = match frac.strip_prefix('.') {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) => {
            format!("{:0<3}", digits).get(..3).and_then(|m| m.parse::<i64>().ok()).ok_or_else(bad)?
        }
        None if frac.is_empty() => 0,
        _ => return Err(bad()),
    };
    let days = crate::base::calendar::days_from_civil(y, mo, d);
    let total = ((days * 24 + h) * 60 + mi) * 60 + sec;
    u64::try_from(total * 1000 + ms).map_err(|_| bad())
}

/// Runs the records through `policy`, in order, each at its recorded time.
pub struct Replay {
    engines: Engines,
    last_tick: u64,
}

impl Replay {
    pub fn new(policy: Policy) -> Replay {
        Replay { engines: Engines::new(policy), last_tick: 0 }
    }

    /// One request decided (`None`: botgate is off on its route).
    pub fn run(&mut self, line: usize, r: &Record) -> Option<Replayed> {
        if r.t_ms >= self.last_tick + TICK_MS {
            self.engines.tick(r.t_ms);
            self.last_tick = r.t_ms;
        }
        let Route::Engine(i) = self.engines.route(r.route.as_deref().map(str::as_bytes), None, false) else {
            return None;
        };
        let e = self.engines.get_or_base(i)?;
        let decision = drive::exchange(e, &r.head, r.body.as_deref(), r.t_ms, r.status);
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Some(Replayed {
            line,
            t_ms: r.t_ms,
            method: lossy(r.head.method()),
            path: r.head.first(":path").map(lossy).unwrap_or_default(),
            user_agent: r.head.first("user-agent").map(lossy).unwrap_or_default(),
            status: r.status,
            recorded: r.recorded.clone(),
            decision,
        })
    }
}

/// Counts by outcome and reason, and the clients and sessions most often flagged.
#[derive(Debug, Default)]
pub struct Summary {
    pub requests: usize,
    pub outcomes: HashMap<&'static str, usize>,
    pub reasons: HashMap<&'static str, usize>,
    /// Requests whose recorded outcome the replay gave again, of those with one recorded.
    pub agreed: (usize, usize),
    clients: HashMap<String, Tally>,
    sessions: HashMap<u64, Tally>,
}

/// One client's or session's requests: how many, how many flagged, the highest score.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Tally {
    pub requests: usize,
    pub flagged: usize,
    pub max_score: f64,
}

impl Tally {
    fn add(&mut self, d: &Decision) {
        self.requests += 1;
        self.flagged += usize::from(d.flagged());
        self.max_score = self.max_score.max(d.score);
    }
}

impl Summary {
    pub fn add(&mut self, r: &Replayed) {
        let d = &r.decision;
        self.requests += 1;
        *self.outcomes.entry(d.outcome()).or_default() += 1;
        for reason in &d.reasons {
            *self.reasons.entry(reason).or_default() += 1;
        }
        if let Some(recorded) = &r.recorded {
            self.agreed.1 += 1;
            self.agreed.0 += usize::from(recorded == d.outcome());
        }
        self.clients.entry(r.client()).or_default().add(d);
        if let Some(s) = d.session {
            self.sessions.entry(s).or_default().add(d);
        }
    }

    /// The `n` clients flagged most (then by score), with their tallies.
    pub fn top_clients(&self, n: usize) -> Vec<(String, Tally)> {
        top(self.clients.iter().map(|(k, t)| (k.clone(), *t)), n)
    }

    pub fn top_sessions(&self, n: usize) -> Vec<(String, Tally)> {
        top(self.sessions.iter().map(|(k, t)| (format!("{k:016x}"), *t)), n)
    }

    /// The summary as one JSON object.
    pub fn to_json(&self) -> Value {
        let sorted = |m: &HashMap<&'static str, usize>| {
            let mut v: Vec<(&str, usize)> = m.iter().map(|(k, n)| (*k, *n)).collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            Value::Object(v.into_iter().map(|(k, n)| (k.to_string(), Value::from(n))).collect())
        };
        let rows = |v: Vec<(String, Tally)>, key: &str| -> Value {
            v.into_iter()
                .map(|(k, t)| {
                    serde_json::json!({key: k, "requests": t.requests, "flagged": t.flagged, "max_score": round3(t.max_score)})
                })
                .collect()
        };
        let mut out = serde_json::json!({
            "requests": self.requests,
            "outcomes": sorted(&self.outcomes),
            "reasons": sorted(&self.reasons),
            "top_clients": rows(self.top_clients(10), "client"),
            "top_sessions": rows(self.top_sessions(10), "session"),
        });
        if self.agreed.1 > 0 {
            set(&mut out, "recorded", serde_json::json!({"compared": self.agreed.1, "same_outcome": self.agreed.0}));
        }
        out
    }
}

fn top(items: impl Iterator<Item = (String, Tally)>, n: usize) -> Vec<(String, Tally)> {
    let mut v: Vec<(String, Tally)> = items.filter(|(_, t)| t.flagged > 0).collect();
    v.sort_by(|a, b| b.1.flagged.cmp(&a.1.flagged).then(b.1.max_score.total_cmp(&a.1.max_score)).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// Sets `key` on a JSON object (nothing on anything else).
fn set(v: &mut Value, key: &str, value: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_string(), value);
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One replayed request as a JSON line (`--decisions`): what was asked and what the policy did.
pub fn decision_line(r: &Replayed) -> Value {
    let d = &r.decision;
    let mut v = serde_json::json!({
        "line": r.line,
        "t": r.t_ms as f64 / 1000.0,
        "client": r.client(),
        "method": r.method,
        "path": r.path,
        "outcome": d.outcome(),
        "score": round3(d.score),
        "reasons": d.reasons,
    });
    if let Some(s) = d.session {
        set(&mut v, "session", Value::from(format!("{s:016x}")));
    }
    if let Some(recorded) = &r.recorded {
        set(&mut v, "recorded", Value::from(recorded.as_str()));
    }
    v
}

/// A request two policies answer differently (`--compare`).
pub fn change_line(a: &Replayed, b: &Replayed) -> Option<Value> {
    let (from, to) = (a.decision.outcome(), b.decision.outcome());
    (from != to).then(|| {
        serde_json::json!({
            "line": a.line, "t": a.t_ms as f64 / 1000.0, "client": a.client(), "method": a.method, "path": a.path,
            "from": from, "to": to, "reasons_from": a.decision.reasons, "reasons_to": b.decision.reasons,
        })
    })
}

/// Each readable record of `input`, with its line number (1-based), handed to `each`. Lines
/// that cannot be read are reported on `errors` and skipped (their count is returned); blank
/// lines are skipped silently.
pub fn each_record(
    input: impl std::io::BufRead,
    tls_header: &str,
    errors: &mut dyn std::io::Write,
    mut each: impl FnMut(usize, Record) -> std::io::Result<()>,
) -> std::io::Result<usize> {
    let mut skipped = 0;
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match read_line(&line, tls_header) {
            Ok(record) => each(n + 1, record)?,
            Err(why) => {
                skipped += 1;
                writeln!(errors, "line {}: {why}", n + 1)?;
            }
        }
    }
    Ok(skipped)
}

/// What `botgate replay` was asked for.
#[derive(Debug, Default)]
pub struct Options {
    /// One JSON line per request instead of the summary.
    pub decisions: bool,
    /// A second policy: the requests whose outcome changes, and both summaries.
    pub compare: Option<Policy>,
}

/// Reads `input` line by line and writes what the policy (and the other one) would do to `out`.
/// Lines that cannot be read are reported on `errors` with their number and skipped; a blank
/// line is skipped silently.
pub fn replay(
    policy: Policy,
    input: impl std::io::BufRead,
    options: Options,
    out: &mut dyn std::io::Write,
    errors: &mut dyn std::io::Write,
) -> std::io::Result<usize> {
    let tls = policy.tls.header.clone();
    let mut a = Replay::new(policy);
    let mut b = options.compare.map(Replay::new);
    let (mut sa, mut sb, mut changed) = (Summary::default(), Summary::default(), 0usize);
    let skipped = each_record(input, &tls, errors, |n, record| {
        let Some(ra) = a.run(n, &record) else { return Ok(()) };
        sa.add(&ra);
        if let Some(rb) = b.as_mut().and_then(|b| b.run(n, &record)) {
            sb.add(&rb);
            if let Some(c) = change_line(&ra, &rb) {
                changed += 1;
                writeln!(out, "{c}")?;
            }
        } else if options.decisions {
            writeln!(out, "{}", decision_line(&ra))?;
        }
        Ok(())
    })?;
    if b.is_some() {
        let both = serde_json::json!({"changed": changed, "policy": sa.to_json(), "compare": sb.to_json()});
        writeln!(out, "{both}")?;
    } else if !options.decisions {
        writeln!(out, "{}", serde_json::to_string_pretty(&sa.to_json()).unwrap_or_default())?;
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn envoys_start_time_reads_as_milliseconds_since_the_epoch() {
        assert_eq!(parse_time("1970-01-01T00:00:00.000Z").unwrap(), 0);
        assert_eq!(parse_time("2026-11-28T01:59:00.123Z").unwrap(), 1_795_831_140_123);
        assert_eq!(parse_time("2000-02-29T12:00:00Z").unwrap(), 951_825_600_000);
        for bad in ["2026-13-01T00:00:00.000Z", "yesterday", "2026-11-28 01:59:00.123Z", "2026-11-28T01:59:00.12xZ"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_access_log_line_gives_back_the_request_envoy_saw() {
        let line = r#"{"time":"2026-11-28T01:59:00.123Z","method":"GET","path":"/p?q=1","status":"403",
            "route":"-","botgate":"{\"action\":\"block\",\"outcome\":\"block\"}","ja4":"t13d1516h2_x_y",
            "peer":"127.0.0.1","authority":"shop.test","headers":{"user-agent":"curl/8","accept":"-",
            "x-forwarded-for":"203.0.113.9"}}"#;
        let r = read_line(&line.replace('\n', " "), "x-tls-ja4").unwrap();
        assert_eq!(r.t_ms, 1_795_831_140_123);
        assert_eq!((r.head.method(), r.head.first(":path")), (&b"GET"[..], Some(&b"/p?q=1"[..])));
        assert_eq!(r.head.first("user-agent"), Some(&b"curl/8"[..]));
        assert_eq!(r.head.first("accept"), None, "\"-\" is an absent header");
        assert_eq!(r.head.first("x-forwarded-for"), Some(&b"203.0.113.9"[..]));
        assert_eq!(r.head.first("x-tls-ja4"), Some(&b"t13d1516h2_x_y"[..]));
        assert_eq!(r.head.peer, "127.0.0.1".parse().ok());
        assert_eq!((r.status, r.route, r.recorded.as_deref()), (403, None, Some("block")));
    }

    #[test]
    fn the_engines_own_clock_in_the_decision_is_the_replays() {
        let line = r#"{"time":"2026-11-28T01:59:00.123Z","method":"GET","path":"/",
            "botgate":"{\"outcome\":\"pass\",\"at\":1795831140124}"}"#;
        assert_eq!(read_line(&line.replace('\n', " "), "").unwrap().t_ms, 1_795_831_140_124);
    }

    #[test]
    fn a_plain_record_names_its_client_and_cannot_forge_a_forwarded_for() {
        let r = read_line(
            r#"{"t": 12.5, "ip": "198.51.100.7", "method": "POST", "path": "/login",
                "headers": {"X-Forwarded-For": "10.0.0.1", "User-Agent": "x"}, "body": "u=a"}"#,
            "",
        )
        .unwrap();
        assert_eq!(r.t_ms, 12_500);
        assert_eq!(r.head.peer, "198.51.100.7".parse().ok());
        assert_eq!(r.head.first("x-forwarded-for"), None);
        assert_eq!(r.head.first("user-agent"), Some(&b"x"[..]));
        assert_eq!(r.body.as_deref(), Some(&b"u=a"[..]));
    }

    #[test]
    fn broken_lines_say_what_is_wrong() {
        for (line, why) in [
            ("{", "not JSON"),
            ("[]", "not a JSON object"),
            (r#"{"t": 1, "path": "/"}"#, "method"),
            (r#"{"t": -1, "method": "GET", "path": "/"}"#, "seconds"),
            (r#"{"t": 1, "ip": "nowhere", "method": "GET", "path": "/"}"#, "not an address"),
        ] {
            let e = read_line(line, "").unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
    }
}

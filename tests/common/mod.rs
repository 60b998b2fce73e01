//! Drives the engine like the shell does, for scenario tests and the simulator's checks.
#![allow(dead_code)]

pub mod fleet;

use botgate::decision::record::Decision;
use botgate::engine::{drive, Engine};
use botgate::policy;
use botgate::request::head::Head;

pub const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// `envoy/policy.example.json` with the secrets it reads from the environment given inline:
/// `(variable, secret)` pairs.
pub fn example_policy(secrets: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/policy.example.json"))
        .unwrap_or_else(|e| panic!("envoy/policy.example.json: {e}"));
    for (var, secret) in secrets {
        text = text.replace(&format!(r#""secret_env": "{var}""#), &format!(r#""secret": "{secret}""#));
    }
    text
}

pub fn engine(policy_json: &str) -> Engine {
    let parsed = policy::parse(policy_json.as_bytes());
    let errors: Vec<String> = parsed.errors().map(|d| d.to_string()).collect();
    Engine::new(parsed.policy.unwrap_or_else(|| panic!("policy errors: {errors:?}")))
}

/// A request under construction.
pub struct Req {
    pub head: Head,
    pub body: Vec<u8>,
}

impl Req {
    pub fn new(method: &str, path: &str, ip: &str) -> Req {
        let mut head = Head::from_pairs([
            (":method", method),
            (":path", path),
            (":authority", "shop.test"),
            ("x-forwarded-for", ip),
        ]);
        // Behind the trusted proxy of the example policy (a local one), which wrote the hop.
        head.peer = "127.0.0.1".parse().ok();
        Req { head, body: Vec::new() }
    }

    pub fn header(mut self, k: &str, v: &str) -> Req {
        self.head.push(k.as_bytes(), v.as_bytes());
        self
    }

    /// A desktop browser's headers.
    pub fn browser(self) -> Req {
        self.header("user-agent", CHROME)
            .header("accept", "text/html,application/xhtml+xml")
            .header("accept-language", "en-GB,en;q=0.9")
            .header("sec-ch-ua", "\"Chromium\";v=\"126\", \"Google Chrome\";v=\"126\"")
            .header("sec-ch-ua-platform", "\"Windows\"")
            .header("sec-ch-ua-mobile", "?0")
    }

    pub fn body(mut self, b: &str) -> Req {
        self.body = b.as_bytes().to_vec();
        self
    }
}

/// Sends one request at `now` and, when it went upstream, reports the upstream's `status`.
pub fn send(e: &mut Engine, r: &Req, now: u64, status: u32) -> Decision {
    drive::exchange(e, &r.head, (!r.body.is_empty()).then_some(&r.body), now, status)
}

/// `policy` with `/members` challenged at any score below the block threshold (as the demo and
/// the browser tests have it).
pub fn challenge_members(policy: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(policy).unwrap_or_else(|e| panic!("policy: {e}"));
    if let Some(conds) = v["tiers"]["challenge"]["conditions"].as_array_mut() {
        conds.insert(0, serde_json::json!({"bot_score_range": [0.0, 0.85], "endpoint_in": ["/members"]}));
    }
    v.to_string()
}

/// A moment in 2026 (ms), where the tests' clocks start.
pub const T0: u64 = 1_795_305_600_000;
/// The clearance key the tests give the example policy inline.
pub const CLEARANCE_KEY: &str = "clearance-key-for-tests-0123456789abcdef";

/// The example policy with the tests' clearance key.
pub fn keyed_example() -> String {
    example_policy(&[("BOTGATE_CLEARANCE_KEY", CLEARANCE_KEY)])
}

/// The proof-of-work puzzle a decision hands out (the test fails when there is none).
pub fn pow_of(d: &Decision) -> (String, u8) {
    match d.challenge.as_ref().map(|c| &c.issued) {
        Some(botgate::decision::record::Issued::ProofOfWork { challenge, difficulty, .. }) => {
            (challenge.clone(), *difficulty)
        }
        other => panic!("no puzzle: {other:?} in {d:?}"),
    }
}

/// An attacker failing `n` logins in Chrome's exact shape (the browser's headers plus `extra`),
/// from rotating addresses, one a second from `T0`: what poisons a per-shape campaign view.
pub fn fail_logins_in_chromes_shape(e: &mut Engine, n: u64, extra: &[(&str, &str)]) {
    for i in 0..n {
        let ip = format!("100.90.{}.{}", i / 200, i % 200 + 1);
        let mut r = Req::new("POST", "/login", &ip).browser();
        for (k, v) in extra {
            r = r.header(k, v);
        }
        send(e, &r.body("u=a&p=b"), T0 + i * 1_000, 401);
    }
}

/// The example policy (with the tests' key) where high and critical endpoints take only a
/// WebAuthn clearance from signed-in sessions (`require_webauthn`).
pub fn webauthn_required_example() -> String {
    keyed_example().replace(
        r#"{ "bot_score_range": [0.30, 0.75], "action_risk_tier": ["high", "critical"] }"#,
        r#"{ "bot_score_range": [0.30, 0.75], "action_risk_tier": ["high", "critical"], "require_webauthn": true }"#,
    )
}

/// A top-level page navigation, as a browser sends it.
pub fn page_navigation(path: &str, ip: &str) -> Req {
    Req::new("GET", path, ip).browser().header("sec-fetch-mode", "navigate").header("sec-fetch-dest", "document")
}

/// Eleven requests a hostile page makes Alice's browser send (`hostile(i)`, about a second
/// apart), then Alice's own navigation to `/members`: what she is answered.
pub fn alice_after(e: &mut Engine, ip: &str, hostile: impl Fn(u64) -> Req) -> Decision {
    for i in 0..11u64 {
        send(e, &hostile(i), T0 + i * 1_000 + (i * i * 377) % 900, 200);
    }
    let alice =
        page_navigation("/members", ip).header("sec-fetch-site", "same-origin").header("cookie", "session_id=alice");
    send(e, &alice, T0 + 60_000, 200)
}

/// The example policy (with the tests' key) with its detector's action promoted to `block`, as an
/// operator enforcing it runs it.
pub fn detector_enforced() -> String {
    let policy = keyed_example().replace(r#""action": "warn""#, r#""action": "block""#);
    assert!(policy.contains(r#""action": "block""#), "the example's detector action moved");
    policy
}

/// A navigation in Chrome's shape: `site` is `sec-fetch-site`, `referer` the page it came from.
pub fn chrome_nav(path: &str, ip: &str, site: &str, referer: Option<&str>) -> Req {
    let r = Req::new("GET", path, ip)
        .browser()
        .header("sec-fetch-site", site)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document");
    match referer {
        Some(url) => r.header("referer", url),
        None => r,
    }
}

/// A Firefox person opening a visit the way the site's people do: the home page, a search
/// result, now and then a bookmark.
pub fn background_people(e: &mut Engine, n: u64) {
    for i in 0..n {
        let ip = format!("100.{}.{}.9", 64 + i % 60, i % 250);
        let r = Req::new("GET", if i % 3 == 0 { "/" } else { "/products/7" }, &ip)
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
            .header("accept", "text/html")
            .header("accept-language", "de-DE,de;q=0.8")
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-dest", "document");
        let r = match i % 3 {
            1 => r.header("sec-fetch-site", "cross-site").header("referer", "https://www.google.com/"),
            _ => r.header("sec-fetch-site", "none"),
        };
        send(e, &r, T0 + i * 1_000, 200);
    }
}

/// The `name=value` of each cookie the decision's local reply sets.
pub fn cookies_set(d: &Decision) -> Vec<String> {
    let reply = d.reply("r").unwrap_or_else(|| panic!("no local reply: {d:?}"));
    reply
        .headers
        .iter()
        .filter(|(k, _)| *k == "set-cookie")
        .filter_map(|(_, v)| v.split(';').next().map(str::to_string))
        .collect()
}

/// The example policy with a DNS-over-HTTPS resolver (cluster `doh`) and `extra` merged at the
/// top level: the crawler tests' policy.
pub fn with_resolver(extra: serde_json::Value) -> String {
    let mut p: serde_json::Value = serde_json::from_str(&example_policy(&[])).unwrap_or_else(|e| panic!("{e}"));
    p["dns_over_https"] = serde_json::json!({"cluster": "doh", "timeout_ms": 500});
    for (k, v) in extra.as_object().into_iter().flatten() {
        p[k] = v.clone();
    }
    p.to_string()
}

/// Decides `r`, answering each lookup the engine asks with `answer` and recording the questions.
pub fn decide_answering(
    e: &mut Engine,
    r: &Req,
    now: u64,
    answer: &botgate::engine::lookups::Answer,
    asked: &mut Vec<botgate::engine::lookups::Lookup>,
) -> Decision {
    let body = (!r.body.is_empty()).then_some(r.body.as_slice());
    drive::decide_with(e, &r.head, body, now, &mut |q| {
        asked.push(q.clone());
        answer.clone()
    })
}

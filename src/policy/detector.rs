//! The bot detector's settings: which fields make a fingerprint, its window and threshold, the
//! near-duplicate body check, the paths it applies to, and its action (warn or block).

use super::reader::{self, Obj};
use super::values;
use super::MAX_WINDOW_SECONDS;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorAction {
    Warn,
    Block,
}

/// A fingerprint input: a header, or one of the pseudo-fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Header(String),
    Body,
    Path,
    Method,
    Query,
    ClientIp,
    /// A field of a JSON request body, as a dotted path (`model`, `json:params.user`).
    Json(Vec<String>),
}

impl Field {
    /// `body`, `path`, `method`, `query`, `client_ip` and `model` (the JSON body's `model`, as in
    /// the seed) are pseudo-fields; `json:a.b` names any JSON body field; `header:x` forces a
    /// header; any other name is a header.
    pub fn parse(name: &str) -> Result<Field, String> {
        let lower = name.trim().to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("json:") {
            let parts: Vec<String> = rest.split('.').map(str::to_string).collect();
            if parts.iter().any(String::is_empty) {
                return Err(format!("\"{name}\" is not a valid JSON field path (use json:a.b)"));
            }
            return Ok(Field::Json(parts));
        }
        if let Some(rest) = lower.strip_prefix("header:") {
            return header_field(rest, name);
        }
        Ok(match lower.as_str() {
            "body" => Field::Body,
            "path" => Field::Path,
            "method" => Field::Method,
            "query" => Field::Query,
            "client_ip" => Field::ClientIp,
            "model" => Field::Json(vec!["model".to_string()]),
            other => return header_field(other, name),
        })
    }

    pub fn needs_body(&self) -> bool {
        matches!(self, Field::Body | Field::Json(_))
    }
}

pub(super) fn header_field(lower: &str, original: &str) -> Result<Field, String> {
    let valid =
        !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.!#$%&'*+^`|~".contains(&b));
    if valid {
        Ok(Field::Header(lower.to_string()))
    } else {
        Err(format!("\"{original}\" is neither a pseudo-field (body, path, method, query, client_ip, model, json:…) nor a valid header name"))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BotDetector {
    pub fields: Vec<Field>,
    pub window_ms: u64,
    pub similarity_threshold: f64,
    pub max_requests_per_window: u32,
    pub action: DetectorAction,
    /// Prefixes of the normalised path the detector watches (all paths when empty), e.g. an AI
    /// gateway's `/v1/`.
    pub applies_to: Vec<String>,
}

impl BotDetector {
    pub fn needs_body(&self) -> bool {
        self.fields.iter().any(Field::needs_body)
    }

    pub fn applies(&self, path: &[u8]) -> bool {
        self.applies_to.is_empty() || self.applies_to.iter().any(|p| path.starts_with(p.as_bytes()))
    }
}

pub(super) fn read_bot_detector(o: Obj<'_>) -> BotDetector {
    let mut fields = Vec::new();
    let items = o.array("fingerprint_fields");
    let listed = !items.is_empty();
    for (path, v) in items {
        match v.as_str().map(Field::parse) {
            Some(Ok(Field::Header(h))) if h == "x-forwarded-for" && !fields.contains(&Field::ClientIp) => {
                // The raw header is the client's to write (one random left hop would give every
                // request a new fingerprint): the trusted client address stands for it.
                o.ctx.warn(&path, "x-forwarded-for is fingerprinted as client_ip (the address botgate trusts)");
                fields.push(Field::ClientIp);
            }
            Some(Ok(f)) if !fields.contains(&f) => fields.push(f),
            Some(Ok(_)) => o.ctx.warn(&path, "duplicate fingerprint field"),
            Some(Err(e)) => o.ctx.error(&path, e),
            None => o.ctx.error(&path, format!("expected a string, found {}", reader::type_name(v))),
        }
    }
    if fields.is_empty() {
        if !o.has("fingerprint_fields") {
            o.ctx.warn(&o.child_path("fingerprint_fields"), "not set; using [user-agent, client_ip, path]");
        } else if !listed {
            o.ctx.error(&o.child_path("fingerprint_fields"), "must name at least one field");
        }
        fields = vec![Field::Header("user-agent".into()), Field::ClientIp, Field::Path];
    }
    let window_seconds = o.u64_in("profile_window_seconds", 60, 1, MAX_WINDOW_SECONDS);
    let similarity_threshold = o.f64_in("similarity_threshold", 0.9, 0.5, 1.0);
    let max_requests_per_window = o.u64_in("max_requests_per_window", 5, 1, 100_000) as u32;
    let action = match o.choice("action", "warn", &["warn", "block"]) {
        "block" => DetectorAction::Block,
        _ => DetectorAction::Warn,
    };
    let applies_to = o.strings("applies_to");
    for (i, p) in applies_to.iter().enumerate() {
        values::rooted(o.ctx, &format!("{}[{i}]", o.child_path("applies_to")), p);
    }
    o.finish();
    BotDetector {
        fields,
        window_ms: window_seconds * 1000,
        similarity_threshold,
        max_requests_per_window,
        action,
        applies_to,
    }
}

/// The seed's gateway pack layout (`pack`, `policies.chain`, `policy.bot-detector`) is accepted
/// so that file lints as it stands; only `bot-detector` means anything to botgate.
pub(super) fn read_seed_pack(root: &Obj<'_>, bot_detector: &mut Option<BotDetector>) {
    root.informational("pack");
    if let Some(p) = root.obj("policies") {
        p.informational("chain");
        p.finish();
    }
    let Some(policy) = root.obj("policy") else {
        return;
    };
    if let Some(o) = policy.obj("bot-detector") {
        if bot_detector.is_some() {
            root.ctx.error(&o.path, "bot_detector is also set at the top level; keep one");
        }
        *bot_detector = Some(read_bot_detector(o));
    }
    for (name, _) in policy_entries(root) {
        if name != "bot-detector" {
            root.ctx.warn(&format!("$.policy.{name}"), format!("\"{name}\" is not a botgate policy; ignored"));
        }
    }
}

pub(super) fn policy_entries<'a>(root: &Obj<'a>) -> Vec<(String, &'a Value)> {
    match root.get("policy") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        _ => Vec::new(),
    }
}

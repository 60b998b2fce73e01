//! A small typed reader over `serde_json::Value` that collects *every* problem with its JSON path.
//!
//! serde's `deny_unknown_fields` stops at the first error and does not say where it was; an
//! operator fixing a policy wants all of them at once, each with a path and, for a misspelt key,
//! a suggestion. Each `Obj` remembers which keys were read; `finish` reports the rest.

use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One finding about a policy: where it is (`$.a.b[0]`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub severity: Severity,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}: {}", self.path, self.message)
    }
}

/// Collects findings while a policy is read.
#[derive(Default)]
pub struct Ctx {
    diags: RefCell<Vec<Diag>>,
}

impl Ctx {
    pub fn error(&self, path: &str, message: impl Into<String>) {
        self.push(Severity::Error, path, message.into());
    }
    pub fn warn(&self, path: &str, message: impl Into<String>) {
        self.push(Severity::Warning, path, message.into());
    }
    fn push(&self, severity: Severity, path: &str, message: String) {
        self.diags.borrow_mut().push(Diag { severity, path: path.to_string(), message });
    }
    pub fn into_diags(self) -> Vec<Diag> {
        self.diags.into_inner()
    }
    pub fn has_errors(&self) -> bool {
        self.diags.borrow().iter().any(|d| d.severity == Severity::Error)
    }
}

/// A JSON object being read at `path`.
pub struct Obj<'a> {
    pub ctx: &'a Ctx,
    pub path: String,
    map: &'a Map<String, Value>,
    known: RefCell<Vec<&'static str>>,
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Obj<'a> {
    /// Reads `value` as an object, or records an error and returns `None`.
    pub fn new(ctx: &'a Ctx, path: String, value: &'a Value) -> Option<Obj<'a>> {
        match value {
            Value::Object(map) => Some(Obj { ctx, path, map, known: RefCell::new(Vec::new()) }),
            other => {
                ctx.error(&path, format!("expected an object, found {}", type_name(other)));
                None
            }
        }
    }

    pub fn child_path(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    /// The raw value of `key`, marking the key as known. `null` counts as absent.
    pub fn get(&self, key: &'static str) -> Option<&'a Value> {
        self.known.borrow_mut().push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn has(&self, key: &'static str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    pub fn obj(&self, key: &'static str) -> Option<Obj<'a>> {
        let v = self.get(key)?;
        Obj::new(self.ctx, self.child_path(key), v)
    }

    pub fn f64_in(&self, key: &'static str, default: f64, min: f64, max: f64) -> f64 {
        let Some(v) = self.get(key) else {
            return default;
        };
        match v.as_f64() {
            Some(x) if (min..=max).contains(&x) => x,
            Some(x) => {
                self.ctx.error(&self.child_path(key), format!("{x} is out of range [{min}, {max}]"));
                default
            }
            None => {
                self.ctx.error(&self.child_path(key), format!("expected a number, found {}", type_name(v)));
                default
            }
        }
    }

    /// `[low, high]` with `0 <= low <= high <= 1` (a score band), or `default` when absent.
    pub fn unit_range(&self, key: &'static str, default: (f64, f64)) -> (f64, f64) {
        let bad = "must be [low, high] with 0 <= low <= high <= 1";
        if !self.has(key) {
            self.get(key);
            return default;
        }
        match self.array(key).as_slice() {
            [(_, a), (_, b)] => match (a.as_f64(), b.as_f64()) {
                (Some(a), Some(b)) if (0.0..=1.0).contains(&a) && (0.0..=1.0).contains(&b) && a <= b => (a, b),
                _ => {
                    self.ctx.error(&self.child_path(key), bad);
                    default
                }
            },
            _ => {
                self.ctx.error(&self.child_path(key), bad);
                default
            }
        }
    }

    pub fn u64_in(&self, key: &'static str, default: u64, min: u64, max: u64) -> u64 {
        let Some(v) = self.get(key) else {
            return default;
        };
        let path = self.child_path(key);
        u64_value(self.ctx, &path, v, min, max).unwrap_or(default)
    }

    pub fn bool(&self, key: &'static str, default: bool) -> bool {
        let Some(v) = self.get(key) else {
            return default;
        };
        match v {
            Value::Bool(b) => *b,
            other => {
                self.ctx.error(&self.child_path(key), format!("expected true or false, found {}", type_name(other)));
                default
            }
        }
    }

    pub fn string(&self, key: &'static str) -> Option<&'a str> {
        let v = self.get(key)?;
        match v {
            Value::String(s) => Some(s),
            other => {
                self.ctx.error(&self.child_path(key), format!("expected a string, found {}", type_name(other)));
                None
            }
        }
    }

    /// One of `choices`, or `default` when absent (an error when it is something else).
    pub fn choice(&self, key: &'static str, default: &'static str, choices: &[&'static str]) -> &'static str {
        let Some(s) = self.string(key) else {
            return default;
        };
        match choices.iter().find(|c| **c == s) {
            Some(c) => c,
            None => {
                let hint = suggest(s, choices).map(|c| format!(" (did you mean \"{c}\"?)")).unwrap_or_default();
                self.ctx.error(&self.child_path(key), format!("\"{s}\" is not one of {}{hint}", quoted_list(choices)));
                default
            }
        }
    }

    pub fn array(&self, key: &'static str) -> Vec<(String, &'a Value)> {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        array_items(self.ctx, &self.child_path(key), v)
    }

    pub fn strings(&self, key: &'static str) -> Vec<String> {
        self.array(key)
            .into_iter()
            .filter_map(|(path, v)| match v {
                Value::String(s) => Some(s.clone()),
                other => {
                    self.ctx.error(&path, format!("expected a string, found {}", type_name(other)));
                    None
                }
            })
            .collect()
    }

    /// Accepts `key` as documentation only (kept so seed policies lint clean).
    pub fn informational(&self, key: &'static str) {
        self.known.borrow_mut().push(key);
    }

    /// Reports keys that were never read, with a suggestion for near misses.
    pub fn finish(self) {
        let known = self.known.into_inner();
        for key in self.map.keys() {
            if known.iter().any(|k| k == key) {
                continue;
            }
            let hint = suggest(key, &known).map(|c| format!("; did you mean \"{c}\"?")).unwrap_or_default();
            // Keys are the operator's text: escaped, so a control character cannot forge log lines.
            let key = key.escape_debug();
            self.ctx.error(
                &format!("{}.{key}", self.path),
                format!("unknown key \"{key}\"{hint} (known keys: {})", quoted_list(&known)),
            );
        }
    }
}

fn array_items<'a>(ctx: &Ctx, path: &str, v: &'a Value) -> Vec<(String, &'a Value)> {
    match v {
        Value::Array(items) => items.iter().enumerate().map(|(i, v)| (format!("{path}[{i}]"), v)).collect(),
        other => {
            ctx.error(path, format!("expected an array, found {}", type_name(other)));
            Vec::new()
        }
    }
}

fn u64_value(ctx: &Ctx, path: &str, v: &Value, min: u64, max: u64) -> Option<u64> {
    match v.as_u64() {
        Some(x) if (min..=max).contains(&x) => Some(x),
        Some(x) => {
            ctx.error(path, format!("{x} is out of range [{min}, {max}]"));
            None
        }
        None => {
            ctx.error(path, format!("expected a whole number, found {}", describe(v)));
            None
        }
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("{n}"),
        other => type_name(other).to_string(),
    }
}

fn quoted_list(items: &[&str]) -> String {
    let mut sorted: Vec<&str> = items.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
}

/// The closest candidate within a small edit distance, if any.
pub fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let limit = (word.len() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(&word.to_ascii_lowercase(), c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            if let Some(slot) = cur.get_mut(j + 1) {
                *slot = sub.min(del).min(ins);
            }
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(suggest("similarity_treshold", &["similarity_threshold", "action"]), Some("similarity_threshold"));
        assert_eq!(suggest("zzz", &["similarity_threshold", "action"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn unknown_keys_are_errors_with_paths() {
        let ctx = Ctx::default();
        let v = serde_json::json!({"max_request": 5});
        let o = Obj::new(&ctx, "$.ip_rate_limit".into(), &v).unwrap();
        assert_eq!(o.u64_in("max_requests", 1, 1, 10), 1);
        o.finish();
        let d = ctx.into_diags();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path, "$.ip_rate_limit.max_request");
        assert!(d[0].message.contains("did you mean \"max_requests\""), "{}", d[0].message);
    }
}

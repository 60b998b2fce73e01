//! Redis commands as webdis (Redis's HTTP front end, Debian's `webdis`) takes them, and its
//! answers. A command is the path (`GET /SET/key/value/NX/PX/60000`) or, for long ones, a POST
//! body in the same form; each part is percent-encoded, as webdis splits on `/` and decodes the
//! parts. The answer is JSON named by the command: `{"SET":[true,"OK"]}`, `{"EVAL":[…]}`.

/// `EVAL` of `script` on `keys` with `args`, as a POST body.
pub fn eval_body<K: AsRef<str>, A: AsRef<str>>(script: &str, keys: &[K], args: &[A]) -> String {
    let mut parts = vec![String::from("EVAL"), encode(script), keys.len().to_string()];
    parts.extend(keys.iter().map(|k| encode(k.as_ref())));
    parts.extend(args.iter().map(|a| encode(a.as_ref())));
    parts.join("/")
}

/// The array an `EVAL` answered; anything else is no answer.
pub fn eval_array(body: &[u8]) -> Option<Vec<serde_json::Value>> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("EVAL")?.as_array().cloned()
}

/// `SET key 1 NX PX ttl_ms` as a path: sets `key` only if it is not there (one round trip to
/// spend a one-time value).
pub fn set_nx_path(key: &str, ttl_ms: u64) -> String {
    format!("/SET/{}/1/NX/PX/{}", encode(key), ttl_ms.max(1))
}

/// What a `SET … NX` answered: `Some(true)` set (it was not there), `Some(false)` already there,
/// `None` no answer (an error, a reply of another shape).
pub fn set_nx_answer(body: &[u8]) -> Option<bool> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    match v.get("SET")? {
        serde_json::Value::Null => Some(false),
        serde_json::Value::Array(a) if a.first() == Some(&serde_json::Value::Bool(true)) => Some(true),
        _ => None,
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_nx_is_one_path_and_its_answers_are_told_apart() {
        assert_eq!(set_nx_path("botgate:n:ab", 1500), "/SET/botgate%3An%3Aab/1/NX/PX/1500");
        assert_eq!(set_nx_answer(br#"{"SET":[true,"OK"]}"#), Some(true));
        assert_eq!(set_nx_answer(br#"{"SET":null}"#), Some(false));
        for bad in [&br#"{"SET":[false,"ERR"]}"#[..], b"{}", b"<html>", br#"{"GET":null}"#] {
            assert_eq!(set_nx_answer(bad), None);
        }
    }

    #[test]
    fn an_eval_body_encodes_every_part() {
        assert_eq!(eval_body("return 1", &["a:b"], &["x/y"]), "EVAL/return%201/1/a%3Ab/x%2Fy");
        assert_eq!(eval_array(br#"{"EVAL":[1,"2"]}"#).map(|a| a.len()), Some(2));
        assert_eq!(eval_array(br#"{"EVAL":null}"#), None);
    }
}

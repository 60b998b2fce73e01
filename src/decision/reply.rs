//! The local reply: what a client is answered when its request does not go upstream (a block,
//! a rate limit, a challenge as JSON or as a page, botgate's own answers).

use super::evidence::{push_json_list, push_json_str};
use super::record::{ChallengeReply, Decision, Issued, Reply, Verdict};
use crate::policy::answers::Refusal;
use crate::policy::ChallengeType;
use std::fmt::Write as _;

impl Decision {
    /// The local reply, when the request does not go upstream.
    pub fn reply(&self, request_id: &str) -> Option<Reply> {
        if let Some(a) = &self.answer {
            return Some(Reply::clone(a));
        }
        match self.delivered().map(|g| g.how) {
            Some(Refusal::Decoy) => return Some(decoy(request_id, self.graded.is_some_and(|g| g.html))),
            // Forwarded once its delay is over (the shell holds it).
            Some(Refusal::Throttle) => return None,
            _ => {}
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
        // An agent that signs, refused unsigned (or not proven): honest signers retry signed.
        if self.bot.as_ref().is_some_and(|b| b.signs && b.verified != "signature") {
            headers.push(("accept-signature", crate::formats::signature::accept_signature(None)));
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
            Issued::ProofOfWork { challenge, difficulty, .. } => crate::challenge::pages::interstitial(
                challenge,
                *difficulty,
                c.back.as_deref(),
                request_id,
                c.beacon.as_deref(),
            ),
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
}

/// What a decoy answers: a 200 that looks like the site's, with nothing in it of value, and
/// nothing that says botgate (no `x-botgate-*`, no reasons): a scraper files it away and goes on.
/// The access log says it was a decoy.
fn decoy(request_id: &str, html: bool) -> Reply {
    // Varied per request, and telling nothing of the client (a client's own fingerprint would).
    let seed = crate::base::fasthash::hash(&[b"decoy", request_id.as_bytes()]);
    const WORDS: [&str; 12] = [
        "classic",
        "essential",
        "everyday",
        "premium",
        "compact",
        "original",
        "natural",
        "modern",
        "deluxe",
        "signature",
        "seasonal",
        "limited",
    ];
    let word = |i: u64| WORDS.get(((seed >> (i * 4)) % WORDS.len() as u64) as usize).copied().unwrap_or("classic");
    let (content_type, body) = if html {
        let items: String = (0..6)
            .map(|i| {
                format!(
                    "<li><a href=\"#\">{} {} item</a> <span>currently unavailable</span></li>",
                    word(i),
                    word(i + 6)
                )
            })
            .collect();
        (
            "text/html; charset=utf-8",
            format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Catalogue</title>\
                 <meta name=\"robots\" content=\"noindex\"></head><body><main><h1>Catalogue</h1><ul>{items}</ul>\
                 <p>No further results.</p></main></body></html>\n"
            ),
        )
    } else {
        ("application/json", "{\"items\":[],\"total\":0,\"next\":null}\n".to_string())
    };
    Reply {
        status: 200,
        headers: vec![("content-type", content_type.to_string()), ("cache-control", "no-store".to_string())],
        body,
    }
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

//! What botgate shows people: the proof-of-work interstitial, the WebAuthn step-up page, and
//! their assets, served under `/.well-known/botgate/`.
//!
//! Pages are self-contained: no external asset, one stylesheet and one script each from
//! botgate's own path, and a Content-Security-Policy that allows nothing else (no inline script,
//! no third-party origin). Each page says in plain words, also to browsers without JavaScript,
//! what is happening. There is no CAPTCHA, on any path.

use crate::challenge::gate::PREFIX;

/// Served with every page: only botgate's own scripts, worker, stylesheet and endpoints.
pub const CSP: &str = "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; \
                       connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// An asset: content type and body.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static str,
}

const ASSETS: &[(&str, Asset)] = &[
    (
        "challenge.js",
        Asset { content_type: "text/javascript; charset=utf-8", body: include_str!("assets/challenge.js") },
    ),
    ("worker.js", Asset { content_type: "text/javascript; charset=utf-8", body: include_str!("assets/worker.js") }),
    ("stepup.js", Asset { content_type: "text/javascript; charset=utf-8", body: include_str!("assets/stepup.js") }),
    // The silent challenge's script, the same one added inline to the site's pages: here loaded
    // from botgate's path, as the page's CSP allows no inline script.
    ("beacon.js", Asset { content_type: "text/javascript; charset=utf-8", body: include_str!("assets/beacon.js") }),
    ("style.css", Asset { content_type: "text/css; charset=utf-8", body: include_str!("assets/style.css") }),
];

/// The asset at `/.well-known/botgate/<name>`.
pub fn asset(name: &[u8]) -> Option<&'static Asset> {
    ASSETS.iter().find(|(n, _)| n.as_bytes() == name).map(|(_, a)| a)
}

fn page(title: &str, main: &str, script: Option<&str>) -> String {
    page_with(title, main, script.map(|s| format!("<script src=\"{PREFIX}{s}\"></script>\n")).unwrap_or_default())
}

fn page_with(title: &str, main: &str, script: String) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title}</title>\n\
         <link rel=\"stylesheet\" href=\"{PREFIX}style.css\">\n</head>\n<body>\n{main}\n{script}</body>\n</html>\n"
    )
}

const NO_SCRIPT: &str = "<noscript><p class=\"error\">This check needs JavaScript, which is turned off or \
    unavailable in this browser. It is not a puzzle for you to solve: your browser does a few seconds of \
    arithmetic to show it is not an automated client. Turn JavaScript on for this site and reload, or \
    contact the site's owner.</p></noscript>";

/// The endpoint (under [`PREFIX`]) a person posts to when a challenge stopped them wrongly.
pub const REPORT: &[u8] = b"report";

/// The challenge pages' way to say "this was wrong": a same-origin form (a button, no script),
/// naming the request so the operator can find its decision in the access log.
fn report_form(request_id: &str) -> String {
    format!(
        "<form class=\"small\" method=\"post\" action=\"{PREFIX}report?id={id}\">         <button class=\"link\" type=\"submit\">Not a bot and stopped wrongly? Tell the site</button></form>",
        id = percent_encode(request_id),
    )
}

/// The answer to a report (the same whether it was counted or not).
pub fn reported(request_id: &str) -> String {
    page(
        "Thank you",
        &format!(
            "<main id=\"botgate\">\n<h1>Thank you</h1>\n<p>The site's operators will see your report \
             (request id <code>{}</code>). Go back to continue.</p>\n</main>",
            escape(request_id)
        ),
        None,
    )
}

/// The proof-of-work interstitial. `back` is where to continue (a GET's own path and query);
/// without it (the request was a form post or another method) the page says to resubmit.
/// `beacon`: the silent challenge's token for this page, when the session can be told apart
/// ([`crate::challenge::beacon`]): a scripted browser that solves the puzzle still reports itself.
pub fn interstitial(
    challenge: &str,
    difficulty: u8,
    back: Option<&str>,
    request_id: &str,
    beacon: Option<&str>,
) -> String {
    let then = if back.is_some() {
        "When it is done you will continue to the page you asked for."
    } else {
        "When it is done, go back and send your request again: it will go through."
    };
    let main = format!(
        "<main id=\"botgate\" data-challenge=\"{c}\" data-difficulty=\"{difficulty}\" data-back=\"{b}\">\n\
         <h1>Checking your browser…</h1>\n\
         <p id=\"status\">Your browser is doing a short calculation to show this site it is not a bot. \
         It usually takes a few seconds and needs nothing from you. {then}</p>\n\
         <progress id=\"progress\" max=\"100\" value=\"0\"></progress>\n{NO_SCRIPT}\n\
         <p class=\"small\">Protected by botgate. Request id: <code>{id}</code></p>\n{report}\n</main>",
        c = escape(challenge),
        b = escape(back.unwrap_or("")),
        id = escape(request_id),
        report = report_form(request_id),
    );
    let beacon = beacon
        .map(|t| format!("<script src=\"{PREFIX}beacon.js\" data-t=\"{}\"></script>\n", escape(t)))
        .unwrap_or_default();
    page_with("Checking your browser…", &main, format!("{beacon}<script src=\"{PREFIX}challenge.js\"></script>\n"))
}

/// The WebAuthn step-up page: a button that runs the backend's passkey ceremony, and the
/// fallback (a proof of work) if the passkey cannot be used.
pub fn step_up(options_url: &str, verify_url: &str, back: Option<&str>, request_id: &str) -> String {
    let fallback = format!("{PREFIX}pow?return={}", percent_encode(back.unwrap_or("/")));
    let main = format!(
        "<main id=\"botgate\" data-options=\"{o}\" data-verify=\"{v}\" data-back=\"{b}\">\n\
         <h1>Confirm it is you</h1>\n\
         <p id=\"status\">This action needs a quick confirmation with your passkey or security key.</p>\n\
         <p><button id=\"go\" type=\"button\">Use my passkey</button></p>\n\
         <p id=\"fallback\" hidden><a class=\"button secondary\" href=\"{f}\">Use a browser check instead</a></p>\n\
         {NO_SCRIPT}\n<p class=\"small\">Protected by botgate. Request id: <code>{id}</code></p>\n{report}\n</main>",
        o = escape(options_url),
        v = escape(verify_url),
        b = escape(back.unwrap_or("")),
        f = escape(&fallback),
        id = escape(request_id),
        report = report_form(request_id),
    );
    page("Confirm it is you", &main, Some("stepup.js"))
}

/// After a passed check for a request that cannot be replayed by a redirect.
pub fn verified() -> String {
    page(
        "Check passed",
        "<main id=\"botgate\">\n<h1>Check passed</h1>\n<p>Thank you. Go back and send your request again: \
         it will go through.</p>\n</main>",
        None,
    )
}

/// HTML attribute and text escaping.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        escape_char(c, &mut out);
    }
    out
}

/// One character, escaped for HTML attributes and text.
pub fn escape_char(c: char, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        c => out.push(c),
    }
}

/// Percent-encoding for a query value (everything but unreserved characters and `/`).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
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
    fn pages_are_self_contained() {
        let html = interstitial("v1.n.4.1.b.sig", 4, Some("/a?b=<c>"), "r1", None);
        assert!(html.contains("data-back=\"/a?b=&lt;c&gt;\""));
        assert!(html.contains("<noscript>"));
        for page in [html, step_up("/wa/options", "/wa/verify", None, "r2"), verified()] {
            assert!(!page.contains("http://") && !page.contains("https://"), "no external asset");
            assert!(!page.contains("<script>") && !page.contains("style=\""), "nothing inline for the CSP to refuse");
            assert!(!page.to_ascii_lowercase().contains("captcha"));
        }
        assert!(asset(b"worker.js").is_some_and(|a| a.body.contains("crypto.subtle.digest")));
        assert!(asset(b"../etc/passwd").is_none());
    }

    #[test]
    fn fallback_link_keeps_the_return_path() {
        assert!(step_up("/o", "/v", Some("/cart?x=1&y=2"), "r").contains("pow?return=/cart%3Fx%3D1%26y%3D2"));
    }
}

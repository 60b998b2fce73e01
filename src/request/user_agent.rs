//! What a user agent says about its client: a known automation (crawlers, link checkers, feed
//! readers, uptime monitors, archivers, link previewers, HTTP tools), or a browser by its shape.
//!
//! The automation list is not written by hand: `ua/automation.txt` is generated from maintained
//! public lists (crawler-user-agents and isbot, versions pinned in its header) by
//! `tools/update_ua_patterns.py`, which turns their regexes into lower-case literals so that a
//! request costs one pass over its user agent and the module carries no regex engine. The tests
//! hold it to every crawler instance those lists ship and to hundreds of real browsers.

use std::sync::OnceLock;

/// The generated rules: `lit` (anywhere), `^lit` (at the start), `lit$` (at the end).
const RULES: &str = include_str!("automation.txt");

/// The rules, indexed for one pass: literals found anywhere are looked up by their first four
/// bytes (three for the few shorter ones). A bit per hashed key rejects almost every position of
/// a browser's user agent at once; the few left compare the literals of their hash's bucket.
/// The anchored rules are compared directly.
struct Automation {
    /// Sorted by bucket: bucket `b` is `anywhere[starts[b]..starts[b + 1]]`.
    anywhere: Vec<(u32, &'static [u8])>,
    starts: Vec<usize>,
    keys4: Box<[u64; 1024]>,
    keys3: Box<[u64; 1024]>,
    /// The last bytes of the three-byte literals: most bytes skip their lookup.
    ends3: [bool; 256],
    prefixes: Vec<&'static [u8]>,
    suffixes: Vec<&'static [u8]>,
    exact: Vec<&'static [u8]>,
}

/// The key of a literal: its first four bytes, or three.
fn key(s: &[u8], len: usize) -> Option<u32> {
    let head = s.get(..len)?;
    Some(head.iter().fold(0u32, |k, b| k << 8 | u32::from(*b)))
}

/// A key's 16-bit hash.
#[inline(always)]
fn hash(key: u32) -> usize {
    (key.wrapping_mul(0x9e37_79b1) >> 16) as usize
}

const BUCKET_SHIFT: usize = 4;

#[inline(always)]
fn has(bits: &[u64; 1024], h: usize) -> bool {
    bits.get(h >> 6).is_some_and(|w| w & (1 << (h & 63)) != 0)
}

impl Automation {
    fn parse(text: &'static str) -> Automation {
        let mut a = Automation {
            anywhere: Vec::new(),
            starts: Vec::new(),
            keys4: Box::new([0; 1024]),
            keys3: Box::new([0; 1024]),
            ends3: [false; 256],
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            exact: Vec::new(),
        };
        for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (start, rest) = match line.strip_prefix('^') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let (end, lit) = match rest.strip_suffix('$') {
                Some(lit) => (true, lit.as_bytes()),
                None => (false, rest.as_bytes()),
            };
            match (start, end) {
                (true, true) => a.exact.push(lit),
                (true, false) => a.prefixes.push(lit),
                (false, true) => a.suffixes.push(lit),
                // Fewer than three bytes would match nearly everything; the generator writes none.
                (false, false) => {
                    let bits = if let [_, _, last] = lit {
                        if let Some(e) = a.ends3.get_mut(usize::from(*last)) {
                            *e = true;
                        }
                        &mut a.keys3
                    } else {
                        &mut a.keys4
                    };
                    if let Some(k) = key(lit, lit.len().min(4)).filter(|_| lit.len() >= 3) {
                        let h = hash(k);
                        if let Some(w) = bits.get_mut(h >> 6) {
                            *w |= 1 << (h & 63);
                        }
                        a.anywhere.push((k, lit));
                    }
                }
            }
        }
        a.anywhere.sort_unstable_by_key(|(k, l)| (hash(*k) >> BUCKET_SHIFT, *l));
        let buckets = (1 << 16) >> BUCKET_SHIFT;
        a.starts = (0..=buckets).map(|b| a.anywhere.partition_point(|(k, _)| hash(*k) >> BUCKET_SHIFT < b)).collect();
        // A prefix that starts with another adds nothing, and would break `prefixed`'s search.
        a.prefixes.sort_unstable();
        a.prefixes.dedup_by(|later, earlier| later.starts_with(earlier));
        a
    }

    fn rules(&self) -> usize {
        self.anywhere.len() + self.prefixes.len() + self.suffixes.len() + self.exact.len()
    }

    fn matches(&self, ua: &[u8]) -> bool {
        self.exact.contains(&ua) || self.prefixed(ua) || self.suffixes.iter().any(|l| ua.ends_with(l)) || self.scan(ua)
    }

    /// At most one prefix can start `ua` (none starts another, see [`Automation::parse`]): the
    /// greatest not above it.
    fn prefixed(&self, ua: &[u8]) -> bool {
        let n = self.prefixes.partition_point(|p| *p <= ua);
        n.checked_sub(1).and_then(|i| self.prefixes.get(i)).is_some_and(|p| ua.starts_with(p))
    }

    /// One pass, keeping the last four bytes as a key: at each byte, the literals whose first
    /// four (or three) bytes end there. The bit tests stay in this loop; only the rare
    /// positions they let through leave it.
    fn scan(&self, ua: &[u8]) -> bool {
        let mut k = 0u32;
        for (i, b) in ua.iter().enumerate() {
            k = k << 8 | u32::from(*b);
            let h4 = hash(k);
            if i >= 3 && has(&self.keys4, h4) && self.found(h4, k, ua.get(i - 3..)) {
                return true;
            }
            if i >= 2 && self.ends3.get(usize::from(*b)) == Some(&true) {
                let k3 = k & 0x00ff_ffff;
                let h3 = hash(k3);
                if has(&self.keys3, h3) && self.found(h3, k3, ua.get(i - 2..)) {
                    return true;
                }
            }
        }
        false
    }

    /// Whether a literal with `key` (whose hash is `h`) starts `rest`.
    #[cold]
    fn found(&self, h: usize, key: u32, rest: Option<&[u8]>) -> bool {
        let b = h >> BUCKET_SHIFT;
        let (Some(&from), Some(&to)) = (self.starts.get(b), self.starts.get(b + 1)) else {
            return false;
        };
        let rest = rest.unwrap_or(b"");
        self.anywhere.get(from..to).unwrap_or(&[]).iter().any(|(k, l)| *k == key && rest.starts_with(l))
    }
}

fn automation() -> &'static Automation {
    static LIST: OnceLock<Automation> = OnceLock::new();
    LIST.get_or_init(|| Automation::parse(RULES))
}

/// Whether a lower-case user agent names a known automation. The list is built on first use
/// (once per VM, well under a millisecond).
pub fn is_automation(ua: &[u8]) -> bool {
    automation().matches(ua)
}

/// Whether a lower-case user agent declares itself a robot in the words robots use, whether or
/// not the lists name it: a contact URL (`+https://…`, the crawler convention), or a word ending
/// in `bot` (`AcmeBot/1.0`; not the Cubot phone brand) or naming a crawler or spider. The lists
/// keep only literals; this is the one generic rule of isbot's that holds against the browser
/// fixture.
pub fn declares_itself(ua: &[u8]) -> bool {
    if contains(ua, b"+http") {
        return true;
    }
    ua.split(|b| !b.is_ascii_alphanumeric()).any(|word| {
        (word.len() > 3 && word.ends_with(b"bot") && word != b"cubot")
            || contains(word, b"crawler")
            || contains(word, b"spider")
    })
}

/// What the scoring asks of a lower-case user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// A known automation, or one that declares itself ([`is_automation`], [`declares_itself`]).
    pub bot: bool,
    /// [`browser_shaped`].
    pub browser_shaped: bool,
}

/// [`Verdict`] for a lower-case user agent (the scoring keeps the answers per worker, see
/// [`crate::score::headers`]).
pub fn verdict(ua: &[u8]) -> Verdict {
    Verdict { bot: is_automation(ua) || declares_itself(ua), browser_shaped: browser_shaped(ua) }
}

/// How many rules the list holds.
pub fn automation_rules() -> usize {
    automation().rules()
}

/// Tokens after a browser's platform comment that name its layout engine, or the browser
/// itself (real browsers send both; a client naming only the browser is given the benefit of
/// the doubt: this signal is for clients that do not try to look like one).
const ENGINES: &[&[u8]] =
    &[b"applewebkit/", b"gecko/", b"like gecko", b"khtml", b"presto/", b"goanna/", b"chrome/", b"firefox/", b"safari/"];

/// Whether a lower-case user agent has a browser's shape:
/// - `Mozilla/N.N (platform) engine…`, the form every browser has sent since the 2000s, with an
///   engine token after the platform comment (WebKit, Blink, Gecko, KHTML, Presto, Goanna) or
///   a browser's (`Chrome/`, `Firefox/`, `Safari/`);
/// - `Mozilla/N.N (compatible; MSIE …)` and Trident in the comment: Internet Explorer up to 11;
/// - `Opera/N.N (…)`: Presto-era Opera and Opera Mini;
/// - `…Profile/MIDP-…` and `UCWEB/`: feature-phone browsers.
///
/// Crawlers and tools that borrow the first form without an engine (`Mozilla/5.0 (compatible;
/// SomeBot/1.0; +https://…)`) are not browser-shaped; those that copy a browser's whole user
/// agent are, and are left to the automation list and the other signals.
pub fn browser_shaped(ua: &[u8]) -> bool {
    if let Some(rest) = ua.strip_prefix(b"mozilla/") {
        return mozilla_shaped(rest);
    }
    if let Some(rest) = ua.strip_prefix(b"opera/") {
        return contains(rest, b" (");
    }
    ua.starts_with(b"ucweb/") || contains(ua, b"profile/midp-")
}

/// `N.N (comment) tail` after `mozilla/`: an engine in the tail, or IE's comment.
fn mozilla_shaped(rest: &[u8]) -> bool {
    let Some(open) = rest.iter().position(|b| *b == b'(') else {
        return false;
    };
    let (version, after) = rest.split_at(open);
    let version_ok = version.strip_suffix(b" ").is_some_and(|v| {
        !v.is_empty() && v.iter().all(|b| b.is_ascii_digit() || *b == b'.') && v.first().is_some_and(u8::is_ascii_digit)
    });
    if !version_ok {
        return false;
    }
    let (comment, tail) = split_comment(after);
    ENGINES.iter().any(|e| contains(tail, e)) || contains(comment, b"msie ") || contains(comment, b"trident/")
}

/// `(comment) tail` split after the parenthesis that closes the first (nesting counted); an
/// unclosed comment has no tail.
fn split_comment(s: &[u8]) -> (&[u8], &[u8]) {
    let mut depth = 0usize;
    for (i, b) in s.iter().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return s.split_at_checked(i + 1).unwrap_or((s, b""));
                }
            }
            _ => {}
        }
    }
    (s, b"")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(s: &str) -> Vec<u8> {
        s.to_ascii_lowercase().into_bytes()
    }

    #[test]
    fn every_generated_rule_is_loaded() {
        let lines = RULES.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count();
        assert_eq!(automation_rules(), lines);
        assert!(lines > 1000, "{lines}");
    }

    #[test]
    fn the_issues_examples_are_known_automation() {
        for ua in [
            "Uptime-Kuma/1.23.16",
            "larbin_2.6.2 (larbin@correa.org)",
            "W3C-checklink/4.81 libwww-perl/6.72",
            "WhatsApp/2.12.15/i",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36",
        ] {
            assert!(is_automation(&lower(ua)), "{ua}");
        }
    }

    #[test]
    fn anchored_rules_hold_only_at_their_end() {
        let a = Automation::parse("^wget\nssl labs$\n^exact$\nzgrab\n^wge\n^python\n^php\n");
        assert!(a.matches(b"wget/1.21") && a.matches(b"wgex") && !a.matches(b"x wget/1.21"));
        assert!(a.matches(b"php/8") && a.matches(b"python") && !a.matches(b"ph") && !a.matches(b"pz"));
        assert!(a.matches(b"qualys ssl labs") && !a.matches(b"ssl labs scanner"));
        assert!(a.matches(b"exact") && !a.matches(b"exactly"));
        assert!(a.matches(b"mozilla/5.0 zgrab/0.x") && a.matches(b"zgrab"));
        assert!(!a.matches(b"") && !a.matches(b"z") && !a.matches(b"zgra"));
        let short = Automation::parse("y!j\nds9\n");
        assert!(short.matches(b"y!j-asr/0.1") && short.matches(b"x ds9") && !short.matches(b"ds"));
    }

    #[test]
    fn browsers_of_every_era_are_browser_shaped() {
        for ua in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko",
            "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)",
            "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
            "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54",
            "Mozilla/5.0 (compatible; Konqueror/4.5; Linux) KHTML/4.5.5 (like Gecko)",
            "Nokia6300/2.0 (07.21) Profile/MIDP-2.0 Configuration/CLDC-1.1",
        ] {
            assert!(browser_shaped(&lower(ua)), "{ua}");
        }
    }

    #[test]
    fn tools_and_borrowed_prefixes_are_not_browser_shaped() {
        for ua in [
            "Uptime-Kuma/1.23.16",
            "Mozilla/5.0 (compatible; SomeBot/1.0; +https://example.com/bot)",
            "Mozilla/5.0",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
            "Mozilla/x (Windows) AppleWebKit/537.36",
            "Dalvik/2.1.0 (Linux; U; Android 11; Pixel 5 Build/RQ3A.210805.001.A1)",
            "Opera",
            "",
        ] {
            assert!(!browser_shaped(&lower(ua)), "{ua}");
        }
    }
}

//! robots.txt (RFC 9309, the Robots Exclusion Protocol): which paths of the origin a verified
//! crawler may fetch, and how long it should wait between fetches.
//!
//! botgate lets proven crawlers past its checks, but only as far as the origin itself allows
//! them: a Googlebot that is welcome on `/` is still not welcome on a path the site disallows,
//! nor faster than its `crawl-delay`. The shell fetches `/robots.txt` through the origin's
//! cluster and caches the [`Fetched`] value; this module only reads it and answers.
//!
//! The reading follows RFC 9309: groups of `user-agent` lines and the rules after them (a list
//! of `user-agent` lines ends at any other field, as Google reads it), groups for the same
//! crawler merged, the `*` group only for a crawler no group names, the longest matching
//! pattern deciding (allow on a tie), `*` and a final `$` in patterns, and paths and patterns
//! compared with the same percent-encoding. A crawler is named by its product token
//! compared whole, without case (`Googlebot/2.1` in a file names `googlebot`; `googlebot-news`
//! is another crawler, not a prefix match). `crawl-delay` is not in the RFC; Bing, Yandex and
//! others obey it, so it is read from the same group, in seconds.
//!
//! A file is the origin's, not an attacker's, but it can be huge or odd: reading never panics,
//! looks at the first 500 KiB only (the least RFC 9309 §2.5 asks), keeps a bounded number of
//! rules and names, and matching costs time linear in the path and pattern lengths (no
//! backtracking), with the path cut at [`MAX_PATH`] bytes.

/// The bytes of a file that are read (RFC 9309 §2.5: at least 500 kibibytes).
pub const MAX_BODY: usize = 500 * 1024;
/// Allow and disallow rules kept, over all groups; later ones are ignored.
pub const MAX_RULES: usize = 4096;
/// `user-agent` lines read; a group started after them is ignored with its rules.
pub const MAX_AGENTS: usize = 1024;
/// A pattern longer than this (once normalised) is ignored: no real path is that long.
pub const MAX_PATTERN: usize = 1024;
/// The bytes of a request path (with its query) that are matched.
pub const MAX_PATH: usize = 2048;
/// The longest crawl delay believed: a day.
pub const MAX_DELAY_MS: u64 = 86_400_000;
/// A product token longer than this names no crawler botgate knows.
const MAX_TOKEN: usize = 64;

/// A parsed robots.txt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Robots {
    groups: Vec<Group>,
}

/// One group as written: its `user-agent` lines, then its rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Group {
    /// A `user-agent: *` line is among its names.
    any: bool,
    /// Product tokens, as written (compared without case).
    names: Vec<String>,
    rules: Vec<Rule>,
    delay_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    /// Normalised (see [`normalise`]), `*` kept as the wildcard, without the final `$`.
    pattern: String,
    /// The pattern ended in `$`: it must match the whole path.
    anchored: bool,
}

impl Rule {
    /// How specific the rule is: the octets of its pattern (RFC 9309 §2.2.2), `$` included.
    fn len(&self) -> usize {
        self.pattern.len() + usize::from(self.anchored)
    }

    /// Whether the pattern matches `path` from its start.
    fn matches(&self, path: &Target) -> bool {
        // A `$` after a `*` anchors nothing: `/a*$` is `/a`.
        if !self.anchored || self.pattern.ends_with('*') {
            return match_head(&self.pattern, &path.text).is_some();
        }
        // A cut path has no end to anchor to.
        if path.cut {
            return false;
        }
        match self.pattern.rsplit_once('*') {
            None => self.pattern == path.text,
            Some((head, last)) => match_head(head, &path.text).is_some_and(|rest| rest.ends_with(last)),
        }
    }
}

/// Matches `pattern` (literal pieces between `*`) at the start of `path` and gives what is left
/// of the path after the leftmost match of each piece. Leftmost is always right for `*` (it
/// leaves the most path for what follows), so no backtracking, and `str::find` is linear.
fn match_head<'p>(pattern: &str, path: &'p str) -> Option<&'p str> {
    let mut pieces = pattern.split('*');
    let mut rest = path.strip_prefix(pieces.next()?)?;
    for piece in pieces {
        let at = rest.find(piece)?;
        rest = rest.get(at + piece.len()..)?;
    }
    Some(rest)
}

/// The fields botgate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    UserAgent,
    Allow,
    Disallow,
    CrawlDelay,
    /// `sitemap`, `host`, typos...: ignored, but they end a list of `user-agent` lines.
    Other,
}

impl Robots {
    /// Reads a robots.txt body; whatever the bytes, the result is some set of groups (none for
    /// a body that is not a robots.txt, which allows everything).
    pub fn parse(body: &[u8]) -> Robots {
        let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
        let mut groups: Vec<Group> = Vec::new();
        // The group rules go to (`None` before the first `user-agent`, or past the cap), and
        // whether it still takes `user-agent` lines: until any other field, as Google reads
        // it, so `user-agent: *` + `crawl-delay: 5` is not merged with the group after it.
        // Blank lines and comments do not end it.
        let mut current: Option<usize> = None;
        let mut open = false;
        let (mut agents, mut rules) = (0, 0);
        for line in within_cap(body).split(|b| matches!(b, b'\n' | b'\r')) {
            let Some((field, value)) = field(line) else { continue };
            if field != Field::UserAgent {
                open = false;
            }
            match field {
                Field::UserAgent => {
                    agents += 1;
                    if !open {
                        current = (agents <= MAX_AGENTS).then(|| {
                            groups.push(Group::default());
                            groups.len() - 1
                        });
                        open = true;
                    }
                    match current.and_then(|i| groups.get_mut(i)) {
                        Some(g) if agents <= MAX_AGENTS => g.name(value),
                        _ => {}
                    }
                }
                Field::Allow | Field::Disallow => {
                    let Some(g) = current.and_then(|i| groups.get_mut(i)) else { continue };
                    if rules < MAX_RULES {
                        if let Some(rule) = rule(field == Field::Allow, value) {
                            g.rules.push(rule);
                            rules += 1;
                        }
                    }
                }
                Field::CrawlDelay => {
                    if let (Some(g), Some(ms)) = (current.and_then(|i| groups.get_mut(i)), delay_ms(value)) {
                        g.delay_ms = g.delay_ms.max(Some(ms));
                    }
                }
                Field::Other => {}
            }
        }
        Robots { groups }
    }

    /// The rules crawler `token` obeys: every group naming it, merged (RFC 9309 §2.2.1), or the
    /// `*` groups when none does. A token like `Googlebot/2.1` is read as `Googlebot`.
    pub fn rules_for(&self, token: &str) -> Rules<'_> {
        let token = product(token.trim().as_bytes());
        let named = |g: &&Group| !token.is_empty() && g.names.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(token));
        let mut groups: Vec<&Group> = self.groups.iter().filter(named).collect();
        if groups.is_empty() {
            groups = self.groups.iter().filter(|g| g.any).collect();
        }
        Rules { groups }
    }

    /// Whether crawler `token` may fetch `path_and_query` (the request's `:path`).
    pub fn allows(&self, token: &str, path_and_query: &str) -> bool {
        self.rules_for(token).allows(path_and_query)
    }

    /// Whether a group names `token` (not just `*`).
    pub fn names(&self, token: &str) -> bool {
        let token = product(token.trim().as_bytes());
        !token.is_empty()
            && self.groups.iter().any(|g| g.names.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(token)))
    }

    /// The crawl delay for crawler `token`, in milliseconds.
    pub fn crawl_delay_ms(&self, token: &str) -> Option<u64> {
        self.rules_for(token).crawl_delay_ms()
    }
}

/// The first [`MAX_BODY`] bytes, cut at a line end when more follow (half a line could be a
/// shorter, broader pattern than the one written).
fn within_cap(body: &[u8]) -> &[u8] {
    match body.get(..MAX_BODY) {
        Some(kept) if body.len() > MAX_BODY => {
            let end = kept.iter().rposition(|b| matches!(b, b'\n' | b'\r')).unwrap_or(0);
            kept.get(..end).unwrap_or_default()
        }
        _ => body,
    }
}

/// The field and trimmed value of a line; `None` for a blank line, a comment or a line
/// without a colon.
fn field(line: &[u8]) -> Option<(Field, &[u8])> {
    let line = line.split(|b| *b == b'#').next()?;
    let colon = line.iter().position(|b| *b == b':')?;
    let key = line.get(..colon)?.trim_ascii();
    if key.is_empty() {
        return None;
    }
    let value = line.get(colon + 1..)?.trim_ascii();
    let field = [
        (&b"user-agent"[..], Field::UserAgent),
        (b"allow", Field::Allow),
        (b"disallow", Field::Disallow),
        (b"crawl-delay", Field::CrawlDelay),
    ]
    .into_iter()
    .find(|(name, _)| key.eq_ignore_ascii_case(name))
    .map_or(Field::Other, |(_, f)| f);
    Some((field, value))
}

impl Group {
    /// Adds the crawler a `user-agent` value names: `*` (with anything after a space, as Google
    /// reads it), or the product token it starts with.
    fn name(&mut self, value: &[u8]) {
        if value.first() == Some(&b'*') && value.get(1).is_none_or(|b| b.is_ascii_whitespace()) {
            self.any = true;
            return;
        }
        let token = product(value);
        if !token.is_empty() && token.len() <= MAX_TOKEN {
            self.names.push(token.iter().map(|b| char::from(*b)).collect());
        }
    }
}

/// The product token a user-agent string starts with (RFC 9309 §2.2.1: letters, `-`, `_`).
fn product(ua: &[u8]) -> &[u8] {
    let end = ua.iter().position(|b| !(b.is_ascii_alphabetic() || matches!(b, b'-' | b'_'))).unwrap_or(ua.len());
    ua.get(..end).unwrap_or_default()
}

/// An allow or disallow rule; `None` for an empty value (it allows nothing and disallows
/// nothing) or a pattern too long to keep.
fn rule(allow: bool, value: &[u8]) -> Option<Rule> {
    if value.is_empty() {
        return None;
    }
    let (body, anchored) = match value.strip_suffix(b"$") {
        Some(body) => (body, true),
        None => (value, false),
    };
    let pattern = normalise(body, true);
    (pattern.len() <= MAX_PATTERN).then_some(Rule { allow, pattern, anchored })
}

/// A `crawl-delay` value in milliseconds: non-negative seconds, perhaps with a fraction, at
/// most a day; `None` for anything else.
fn delay_ms(value: &[u8]) -> Option<u64> {
    let secs: f64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    // `as` saturates; the clamp keeps the meaning.
    Some(((secs * 1000.0).round() as u64).min(MAX_DELAY_MS))
}

/// The rules one crawler obeys: the groups that name it, or the `*` groups.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    groups: Vec<&'a Group>,
}

impl Rules<'_> {
    /// Whether `path_and_query` may be fetched: the longest matching rule decides, allow
    /// winning a tie; no matching rule allows. `/robots.txt` is always allowed (§2.2.2).
    pub fn allows(&self, path_and_query: &str) -> bool {
        let path = Target::new(path_and_query);
        if path.robots_txt {
            return true;
        }
        let mut best: Option<&Rule> = None;
        for rule in self.groups.iter().flat_map(|g| &g.rules) {
            // A rule that could not beat the best so far is not matched at all.
            if best.is_some_and(|b| (b.len(), b.allow) >= (rule.len(), rule.allow)) {
                continue;
            }
            if rule.matches(&path) {
                best = Some(rule);
            }
        }
        best.is_none_or(|r| r.allow)
    }

    /// The longest crawl delay of the groups, in milliseconds.
    pub fn crawl_delay_ms(&self) -> Option<u64> {
        self.groups.iter().filter_map(|g| g.delay_ms).max()
    }
}

/// A request path as rules see it.
struct Target {
    /// Normalised, at most [`MAX_PATH`] bytes of the original.
    text: String,
    /// Longer than [`MAX_PATH`]: the end was cut off.
    cut: bool,
    robots_txt: bool,
}

impl Target {
    fn new(path_and_query: &str) -> Target {
        let raw = path_and_query.split('#').next().unwrap_or_default();
        // `:path` starts with `/`; anything else is read as if it did.
        let owned;
        let raw = if raw.starts_with('/') {
            raw
        } else {
            owned = format!("/{raw}");
            &owned
        };
        let robots_txt = raw.split('?').next() == Some("/robots.txt");
        let bytes = raw.as_bytes();
        let kept = bytes.get(..MAX_PATH).unwrap_or(bytes);
        Target { text: normalise(kept, false), cut: kept.len() < bytes.len(), robots_txt }
    }
}

/// One spelling for paths and patterns (RFC 9309 §2.2.2): `%XX` of an unreserved character
/// decoded (`%7E` is `~`), any other `%XX` in upper case (`%2f` is `%2F`, still not `/`), and
/// bytes a URI cannot carry bare (non-ASCII, controls, space, `"<>\^`{|}`...) encoded. `*` and
/// `$` are encoded too, so a pattern's `%2A` and `%24` match them literally (§2.2.3); in a
/// pattern, `*` stays the wildcard. The result is ASCII.
fn normalise(s: &[u8], pattern: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let escaped = match (b, s.get(i + 1).and_then(|h| hex(*h)), s.get(i + 2).and_then(|l| hex(*l))) {
            (b'%', Some(h), Some(l)) => Some((h << 4) | l),
            _ => None,
        };
        match escaped {
            Some(c) if unreserved(c) => out.push(char::from(c)),
            Some(c) => push_escaped(&mut out, c),
            None if b == b'*' && pattern => out.push('*'),
            None if bare(b) => out.push(char::from(b)),
            None => push_escaped(&mut out, b),
        }
        i += if escaped.is_some() { 3 } else { 1 };
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn push_escaped(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    for nibble in [b >> 4, b & 0x0f] {
        out.push(HEX.get(usize::from(nibble)).map_or('0', |h| char::from(*h)));
    }
}

/// RFC 3986 unreserved characters: the same whether encoded or not.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters kept as they are: unreserved, and the reserved ones a path or query carries bare
/// (meaning differs from their `%XX`), except `*` and `$`.
fn bare(b: u8) -> bool {
    unreserved(b)
        || matches!(b, b'/' | b'?' | b':' | b'@' | b'!' | b'&' | b'\'' | b'(' | b')' | b'+' | b',' | b';' | b'=')
}

/// What fetching robots.txt gave (RFC 9309 §2.3.1), as the shell caches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Body(Robots),
    /// No usable file: every path is allowed, no crawl delay.
    AllowAll,
    /// The origin could not say: nothing but `/robots.txt` is allowed.
    DisallowAll,
}

impl Fetched {
    /// The meaning of the origin's answer to `GET /robots.txt` (`status` `None`: no answer,
    /// the call failed or was reset):
    /// - 2xx: the body is the file.
    /// - 3xx: the shell does not follow redirects, and RFC 9309 §2.3.1.2 lets a crawler that
    ///   cannot reach the file through them treat it as unavailable, so allow all. (A 304 is
    ///   the shell's to handle: it keeps its cached copy.)
    /// - 4xx: unavailable, allow all (§2.3.1.3) — except 429, which asks for less traffic:
    ///   Google reads it as a server error and so does botgate.
    /// - 5xx, anything else, no answer: unreachable, disallow all (§2.3.1.4). Google starts
    ///   treating a file unreachable for 30 days as absent; that is the cache's policy, not this
    ///   mapping's.
    pub fn from_reply(status: Option<u32>, body: &[u8]) -> Fetched {
        match status {
            Some(200..=299) => Fetched::Body(Robots::parse(body)),
            Some(429) => Fetched::DisallowAll,
            Some(300..=499) => Fetched::AllowAll,
            _ => Fetched::DisallowAll,
        }
    }

    /// Whether crawler `token` may fetch `path_and_query`.
    pub fn allows(&self, token: &str, path_and_query: &str) -> bool {
        match self {
            Fetched::Body(robots) => robots.allows(token, path_and_query),
            Fetched::AllowAll => true,
            Fetched::DisallowAll => Target::new(path_and_query).robots_txt,
        }
    }

    /// The first of `tokens` a group names, else the last (a crawler's own token, then the
    /// family's: Googlebot-Image obeys `Googlebot-Image`, else `Googlebot`, as Google documents).
    pub fn pick<'a>(&self, tokens: &[&'a str]) -> &'a str {
        let named = |t: &&&str| matches!(self, Fetched::Body(r) if r.names(t));
        tokens.iter().find(named).or(tokens.last()).copied().unwrap_or("")
    }

    /// The crawl delay for crawler `token`, in milliseconds.
    pub fn crawl_delay_ms(&self, token: &str) -> Option<u64> {
        match self {
            Fetched::Body(robots) => robots.crawl_delay_ms(token),
            Fetched::AllowAll | Fetched::DisallowAll => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn robots(text: &str) -> Robots {
        Robots::parse(text.as_bytes())
    }

    /// Whether `path` is allowed by a `user-agent: *` group of `rules`.
    fn allowed(rules: &str, path: &str) -> bool {
        robots(&format!("user-agent: *\n{rules}")).allows("anybot", path)
    }

    /// RFC 9309 §5.1, verbatim.
    const RFC_SIMPLE: &str = "User-Agent: *\nDisallow: *.gif$\nDisallow: /example/\nAllow: /publications/\n\n\
        User-Agent: foobot\nDisallow:/\nAllow:/example/page.html\nAllow:/example/allowed.gif\n\n\
        User-Agent: barbot\nUser-Agent: bazbot\nDisallow: /example/page.html\n\nUser-Agent: quxbot\n\nEOF\n";

    #[test]
    fn the_rfc_simple_example_reads_as_the_rfc_says() {
        let r = robots(RFC_SIMPLE);
        // Any other crawler: the `*` group.
        assert!(!r.allows("otherbot", "/cat.gif"));
        assert!(r.allows("otherbot", "/cat.gif?size=2"), "$ ends the path");
        assert!(!r.allows("otherbot", "/example/x.html"));
        assert!(r.allows("otherbot", "/publications/a.gif"), "longer than *.gif$");
        assert!(r.allows("otherbot", "/other"));
        // foobot: its own group only.
        assert!(r.allows("foobot", "/example/page.html"));
        assert!(r.allows("foobot", "/example/allowed.gif"));
        assert!(!r.allows("foobot", "/"));
        assert!(!r.allows("foobot", "/publications/x.html"));
        // barbot and bazbot share a group.
        for bot in ["barbot", "bazbot"] {
            assert!(!r.allows(bot, "/example/page.html"));
            assert!(r.allows(bot, "/example/other.html"), "the * group is not theirs");
            assert!(r.allows(bot, "/cat.gif"));
        }
        // quxbot: a group with no rules allows everything.
        assert!(r.allows("quxbot", "/example/page.html"));
        assert!(r.allows("quxbot", "/cat.gif"));
    }

    #[test]
    fn the_rfc_longest_match_example_reads_as_the_rfc_says() {
        let r = robots("User-Agent: foobot\nAllow: /example/page/\nDisallow: /example/page/disallowed.gif\n");
        assert!(r.allows("foobot", "/example/page/"));
        assert!(r.allows("foobot", "/example/page/other.gif"));
        assert!(!r.allows("foobot", "/example/page/disallowed.gif"));
    }

    #[test]
    fn the_longest_matching_rule_wins() {
        // Google's precedence examples.
        assert!(allowed("allow: /p\ndisallow: /", "/page"));
        assert!(!allowed("allow: /page\ndisallow: /*.htm", "/page.htm"), "/*.htm is longer");
        assert!(allowed("allow: /$\ndisallow: /", "/"));
        assert!(!allowed("allow: /$\ndisallow: /", "/page.htm"));
        // Order in the file does not matter.
        assert!(allowed("disallow: /\nallow: /p", "/page"));
    }

    #[test]
    fn allow_wins_a_tie() {
        assert!(allowed("allow: /folder\ndisallow: /folder", "/folder/page"));
        assert!(allowed("disallow: /folder\nallow: /folder", "/folder/page"));
        assert!(allowed("allow: /page\ndisallow: /*.ph", "/page.php5"), "both five octets");
    }

    #[test]
    fn wildcards_and_the_end_anchor_match_as_google_documents() {
        let fish = "disallow: /fish";
        for (path, ok) in [("/fish", false), ("/fish.html", false), ("/fish/salmon.html", false), ("/fishheads", false)]
            .into_iter()
            .chain([("/Fish.asp", true), ("/catfish", true), ("/?id=fish", true)])
        {
            assert_eq!(allowed(fish, path), ok, "{fish} {path}");
            assert_eq!(allowed("disallow: /fish*", path), ok, "/fish* {path}");
        }
        let dir = "disallow: /fish/";
        assert!(!allowed(dir, "/fish/salmon.htm") && !allowed(dir, "/fish/?id=anything"));
        assert!(allowed(dir, "/fish") && allowed(dir, "/fish.html") && allowed(dir, "/Fish/Salmon.asp"));
        let php = "disallow: /*.php";
        assert!(!allowed(php, "/index.php") && !allowed(php, "/folder/filename.php?parameters"));
        assert!(!allowed(php, "/folder/any.php.file.html") && !allowed(php, "/filename.php/"));
        assert!(allowed(php, "/") && allowed(php, "/windows.PHP"));
        let end = "disallow: /*.php$";
        assert!(!allowed(end, "/filename.php") && !allowed(end, "/folder/filename.php"));
        assert!(allowed(end, "/filename.php?parameters") && allowed(end, "/filename.php/"));
        assert!(allowed(end, "/filename.php5") && allowed(end, "/windows.PHP"));
        let mid = "disallow: /fish*.php";
        assert!(!allowed(mid, "/fish.php") && !allowed(mid, "/fishheads/catfish.php?parameters"));
        assert!(allowed(mid, "/Fish.PHP"));
        assert!(!allowed("disallow: /a*$", "/abc"), "a $ after * anchors nothing");
    }

    #[test]
    fn groups_for_the_same_crawler_are_merged() {
        let r = robots("user-agent: googlebot\ndisallow: /a\n\nuser-agent: other\ndisallow: /b\n\nuser-agent: Googlebot\ndisallow: /c\n");
        assert!(!r.allows("googlebot", "/a/x") && !r.allows("googlebot", "/c/x"));
        assert!(r.allows("googlebot", "/b/x"));
        assert!(!r.allows("other", "/b") && r.allows("other", "/a"));
    }

    #[test]
    fn the_star_group_is_only_for_crawlers_no_group_names() {
        let r = robots("user-agent: *\ndisallow: /\n\nuser-agent: googlebot\ndisallow: /private\n");
        assert!(r.allows("Googlebot", "/public"), "googlebot's own group replaces *");
        assert!(!r.allows("Googlebot", "/private"));
        assert!(!r.allows("bingbot", "/public"));
        // An empty disallow in a named group still keeps the * group away.
        let r = robots("user-agent: *\ndisallow: /\nuser-agent: bingbot\ndisallow:\n");
        assert!(r.allows("bingbot", "/anything"));
        assert!(robots("user-agent: googlebot\ndisallow: /\n").allows("bingbot", "/x"), "no group, no rules");
    }

    #[test]
    fn crawlers_are_named_by_their_whole_product_token() {
        let r = robots(
            "user-agent: Googlebot/2.1 (+http://www.google.com/bot.html)\ndisallow: /a\n\
                        user-agent: googlebot-news\ndisallow: /b\nuser-agent: * bots\ndisallow: /c\n",
        );
        assert!(!r.allows("GOOGLEBOT", "/a"), "the line's token, without case");
        assert!(!r.allows("Googlebot/2.1", "/a"), "the crawler's token, read the same way");
        assert!(r.allows("googlebot", "/b"), "googlebot-news is another crawler");
        assert!(!r.allows("googlebot-news", "/b") && r.allows("googlebot-news", "/a"));
        assert!(r.allows("googlebo", "/a") && !r.allows("googlebo", "/c"), "no prefix matching; '* bots' is *");
        assert!(!r.allows("", "/c"), "an empty token gets the * group");
    }

    #[test]
    fn user_agent_lines_gather_until_another_field() {
        // Blank lines and comments do not end the list of agents.
        let r = robots("user-agent: a\n\n# note\nno colon\nuser-agent: b\ncrawl-delay: 3\ndisallow: /x\n");
        assert!(!r.allows("a", "/x") && !r.allows("b", "/x"));
        assert_eq!(r.crawl_delay_ms("a"), Some(3000));
        // A crawl delay or a sitemap does: the * group here is not the bad bot's.
        for other in ["crawl-delay: 10", "sitemap: https://example.com/s.xml", "host: example.com"] {
            let r = robots(&format!("user-agent: *\n{other}\n\nuser-agent: badbot\ndisallow: /\n"));
            assert!(r.allows("goodbot", "/x") && !r.allows("badbot", "/x"), "{other}");
        }
        // A user-agent after a rule starts a new group.
        let r = robots("user-agent: a\ndisallow: /x\nuser-agent: b\ndisallow: /y\n");
        assert!(r.allows("a", "/y") && r.allows("b", "/x"));
        // Rules before any user-agent belong to nobody.
        assert!(robots("disallow: /\nuser-agent: *\ndisallow: /x\n").allows("a", "/y"));
    }

    #[test]
    fn crawl_delay_is_read_in_seconds_with_fractions() {
        let delay = |v: &str| robots(&format!("user-agent: *\ncrawl-delay: {v}\n")).crawl_delay_ms("bot");
        assert_eq!(delay("10"), Some(10_000));
        assert_eq!(delay("0.5"), Some(500));
        assert_eq!(delay(" 2.25 # slow down"), Some(2250));
        assert_eq!(delay("0"), Some(0));
        assert_eq!(delay("1e9"), Some(MAX_DELAY_MS), "clamped to a day");
        for bad in ["", "-1", "ten", "5s", "NaN", "inf", "1,5"] {
            assert_eq!(delay(bad), None, "{bad:?}");
        }
        let r = robots(
            "user-agent: bingbot\ncrawl-delay: 5\ndisallow: /x\nuser-agent: *\ncrawl-delay: 1\n\
                        user-agent: bingbot\ncrawl-delay: 2\ncrawl-delay: 0.5\n",
        );
        assert_eq!(r.crawl_delay_ms("bingbot"), Some(5000), "merged groups: the longest delay");
        assert_eq!(r.crawl_delay_ms("yandex"), Some(1000));
        assert_eq!(robots("user-agent: *\ndisallow: /\n").crawl_delay_ms("bot"), None);
    }

    #[test]
    fn field_names_comments_and_whitespace_are_forgiven() {
        let r = robots("  USER-AGENT :\tFooBot  # the bot\n\tDisAllow  :   /x   # no\nAllow:/x/y\nfoo\nhost: a\n");
        assert!(!r.allows("foobot", "/x/z") && r.allows("foobot", "/x/y"));
        assert!(allowed("disallow: #/x", "/x"), "a comment is not a pattern");
        assert!(allowed("disallow /x", "/x"), "no colon, no rule");
    }

    #[test]
    fn any_line_ending_and_a_bom_are_read() {
        for eol in ["\n", "\r\n", "\r"] {
            let text = ["user-agent: bot", "disallow: /x", "", "user-agent: other", "disallow: /y"].join(eol);
            for body in [text.clone().into_bytes(), [&b"\xef\xbb\xbf"[..], text.as_bytes()].concat()] {
                let r = Robots::parse(&body);
                assert!(!r.allows("bot", "/x") && r.allows("bot", "/y"), "{eol:?}");
                assert!(!r.allows("other", "/y"), "{eol:?}");
            }
        }
    }

    #[test]
    fn paths_and_patterns_are_compared_with_one_encoding() {
        // RFC 9309 §2.2.2's table.
        assert!(!allowed("disallow: /foo/bar?baz=quz", "/foo/bar?baz=quz"));
        assert!(!allowed("disallow: /foo/bar/ツ", "/foo/bar/%E3%83%84"));
        assert!(!allowed("disallow: /foo/bar/%E3%83%84", "/foo/bar/%e3%83%84"));
        assert!(!allowed("disallow: /foo/bar/%62%61%7A", "/foo/bar/baz"));
        assert!(!allowed("disallow: /foo/bar/baz", "/foo/bar/%62%61%7a"));
        // §2.2.3: * and $ matched literally when encoded.
        assert!(!allowed("disallow: /path/file-with-a-%2A.html", "/path/file-with-a-*.html"));
        assert!(allowed("disallow: /path/file-with-a-%2A.html", "/path/file-with-a-x.html"));
        assert!(!allowed("disallow: /path/foo-%24", "/path/foo-$"));
        assert!(!allowed("disallow: /a$b", "/a$b/c"), "$ inside a pattern is literal");
        // A reserved character is not its encoding.
        assert!(allowed("disallow: /a/b", "/a%2Fb"));
        assert!(!allowed("disallow: /a%2fb", "/a%2Fb"));
        assert!(!allowed("disallow: /a b", "/a%20b"));
        assert!(!allowed("disallow: /100%", "/100%25"), "a lone % is a literal %");
    }

    #[test]
    fn robots_txt_itself_is_always_allowed() {
        let r = robots("user-agent: *\ndisallow: /\n");
        assert!(r.allows("bot", "/robots.txt") && r.allows("bot", "/robots.txt?x=1"));
        assert!(!r.allows("bot", "/robots.txt.bak") && !r.allows("bot", "/"));
        assert!(Fetched::DisallowAll.allows("bot", "/robots.txt"));
        assert!(!Fetched::DisallowAll.allows("bot", "/"));
    }

    #[test]
    fn an_empty_or_missing_path_is_the_root() {
        assert!(!allowed("disallow: /$", ""));
        assert!(!allowed("disallow: /$", "#top"));
        assert!(!allowed("disallow: /$", "/#top/x"));
        assert!(!allowed("disallow: /?", "?q=1"), "read as /?q=1");
    }

    #[test]
    fn status_codes_map_as_rfc_9309_says() {
        let body = b"user-agent: *\ndisallow: /x\n";
        assert!(matches!(Fetched::from_reply(Some(200), body), Fetched::Body(_)));
        assert!(!Fetched::from_reply(Some(200), body).allows("bot", "/x"));
        assert!(Fetched::from_reply(Some(200), b"<html>soft 404</html>").allows("bot", "/x"));
        for s in [301, 302, 307, 308, 400, 401, 403, 404, 410] {
            assert_eq!(Fetched::from_reply(Some(s), body), Fetched::AllowAll, "{s}");
        }
        for s in [Some(429), Some(500), Some(503), Some(504), Some(100), Some(600), None] {
            assert_eq!(Fetched::from_reply(s, body), Fetched::DisallowAll, "{s:?}");
        }
        assert!(Fetched::AllowAll.allows("bot", "/x") && Fetched::AllowAll.crawl_delay_ms("bot").is_none());
    }

    #[test]
    fn only_the_first_500_kib_of_a_1_mib_file_is_read() {
        let mut text = String::from("user-agent: *\ndisallow: /early\n");
        while text.len() < MAX_BODY - 20 {
            text.push_str("# padding padding padding padding padding padding\n");
        }
        text.push_str("disallow: /late/and/long/enough/to/straddle\n");
        while text.len() < 1024 * 1024 {
            text.push_str("disallow: /later\n");
        }
        let start = Instant::now();
        let r = robots(&text);
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(!r.allows("bot", "/early"));
        assert!(r.allows("bot", "/later"), "past the cap");
        assert!(r.allows("bot", "/late"), "the straddling line is dropped, not cut short");
    }

    #[test]
    fn rules_and_names_are_capped() {
        let mut text = String::from("user-agent: *\n");
        for i in 0..MAX_RULES + 10 {
            text.push_str(&format!("disallow: /r{i}/\n"));
        }
        let r = robots(&text);
        assert!(!r.allows("bot", &format!("/r{}/", MAX_RULES - 1)));
        assert!(r.allows("bot", &format!("/r{}/", MAX_RULES)));
        let mut text = String::new();
        for i in 0..MAX_AGENTS + 1 {
            text.push_str(&format!("user-agent: bot{}\ndisallow: /\n", "x".repeat(i % 3 + 1)));
        }
        text.push_str("user-agent: late\ndisallow: /\n");
        assert!(robots(&text).allows("late", "/x"), "a group past the cap is ignored");
        let mut text = "user-agent: a\n".repeat(MAX_AGENTS);
        text.push_str("user-agent: late\ndisallow: /\n");
        let r = robots(&text);
        assert!(!r.allows("a", "/x") && r.allows("late", "/x"), "so is a name past the cap");
        let long = format!("user-agent: *\ndisallow: /{}\n", "a".repeat(MAX_PATTERN));
        assert!(robots(&long).allows("bot", &format!("/{}", "a".repeat(MAX_PATTERN))));
    }

    #[test]
    fn pathological_wildcards_match_in_linear_time() {
        let path = format!("/{}", "a".repeat(MAX_PATH * 4));
        let start = Instant::now();
        assert!(allowed("disallow: /*a*a*a*a*a*a*a*a*a*b", &path));
        assert!(!allowed("disallow: /*a*a*a*a*a*a*a*a*a*a", &path));
        // The worst case for a naive substring search: a long piece that almost matches
        // everywhere, in as many rules as the cap allows.
        let mut text = String::from("user-agent: *\n");
        for i in 0..MAX_RULES {
            text.push_str(&format!("disallow: /*{}b{}$\n", "a".repeat(200), i % 10));
        }
        let r = robots(&text);
        assert!(r.allows("bot", &path));
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    }

    #[test]
    fn a_cut_path_matches_no_anchored_pattern() {
        let long = format!("/{}.php", "a".repeat(MAX_PATH));
        assert!(allowed("disallow: /*.php$", &long), "its end is not seen");
        assert!(!allowed("disallow: /aaa", &long));
        assert!(!allowed("disallow: /aa*$", &long), "* before $: not anchored");
    }

    #[test]
    fn truncations_and_garbage_never_panic() {
        let sample = format!(
            "\u{feff}{RFC_SIMPLE}user-agent: bingbot\r\ncrawl-delay: 1.5\r\nallow: /%e3*$\r\ndisallow: /ü%zz%4\n"
        );
        let bytes = sample.as_bytes();
        for cut in 0..=bytes.len() {
            let r = Robots::parse(&bytes[..cut]);
            let _ = (r.allows("bingbot", "/%e3%81"), r.crawl_delay_ms("foobot"), r.allows("x", "/a%"));
        }
        let alphabet = b"uUsSeErR-aAgGnNtTdDiIlLoOwW:*$%/?#\r\n \t0123456789abcfABCF.\xff\xc3\xbc\xef\xbb";
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..5_000 {
            let len = next() % 200;
            let body: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let path: String = (0..next() % 30).map(|_| char::from(alphabet[(next() % 36) as usize])).collect();
            let r = Robots::parse(&body);
            let _ = (r.allows("user", &path), r.allows("*", &path), r.crawl_delay_ms("agent"));
            let _ = Fetched::from_reply(Some(200), &body).allows("bot", &path);
        }
    }
}

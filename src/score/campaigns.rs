//! The campaign view: what one client shape does across sessions and addresses, the view that
//! sees a rotating credential-stuffing campaign and a scraper rotating residential addresses.

use super::signal::Signal;
use crate::base::lru::Lru;
pub use crate::request::fetch::Landing;
use crate::request::head::Head;

/// What is known about one client *shape* (user agent, language, header names in order, TLS
/// fingerprint), whatever the address, in sixteenths, decayed together.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    logins: u32,
    failures: u32,
    /// When the failure counts were last halved (s).
    decayed_s: u32,
    /// Sessions that opened, by [`Landing`] (other, direct, outside, in-site).
    landings: [u32; 4],
    /// The networks they came from, one bit per network (hashed with a key of the engine's, so
    /// no one can choose addresses that share bits), this half-life and the one before.
    networks: u128,
    networks_before: u128,
    /// When the landing counts were last halved (s).
    landed_s: u32,
}

impl Tally {
    fn new(now_s: u32) -> Self {
        Tally { decayed_s: now_s, landed_s: now_s, ..Tally::default() }
    }

    /// Halves the failure counts once per [`Campaigns::HALF_LIFE_S`] since they last were.
    fn decay(&mut self, now_s: u32) {
        let halvings = now_s.saturating_sub(self.decayed_s) / Campaigns::HALF_LIFE_S;
        if halvings > 0 {
            self.logins = self.logins.checked_shr(halvings).unwrap_or(0);
            self.failures = self.failures.checked_shr(halvings).unwrap_or(0);
            self.decayed_s = self.decayed_s.saturating_add(halvings.saturating_mul(Campaigns::HALF_LIFE_S));
        }
    }

    /// Halves the landing counts once per [`Campaigns::LANDING_HALF_LIFE_S`] since they last were.
    fn decay_landings(&mut self, now_s: u32) {
        let halvings = now_s.saturating_sub(self.landed_s) / Campaigns::LANDING_HALF_LIFE_S;
        if halvings > 0 {
            halve(&mut self.landings, halvings);
            self.networks_before = if halvings == 1 { self.networks } else { 0 };
            self.networks = 0;
            self.landed_s = self.landed_s.saturating_add(halvings.saturating_mul(Campaigns::LANDING_HALF_LIFE_S));
        }
    }
}

fn halve(counts: &mut [u32; 4], times: u32) {
    for c in counts {
        *c = c.checked_shr(times).unwrap_or(0);
    }
}

fn total(counts: &[u32; 4]) -> u32 {
    counts.iter().fold(0u32, |a, c| a.saturating_add(*c))
}

/// The campaign view: what one client shape does across sessions and addresses.
///
/// - **Failures on critical endpoints**: a credential-stuffing campaign rotating through
///   hundreds of addresses still sends one shape, and nearly all its logins fail.
/// - **How its sessions open** ([`Landing`]): a scraper rotating residential addresses opens a
///   new session with each one, and every one opens the same way: on a deep page with no
///   referer (a script's `goto`, an HTTP client's get), with the same copied search-engine
///   referer, or with a copied link click's in-site referer. People
///   of the same shape open theirs the way the site's people do, spread over the home page,
///   bookmarks and other sites' links. A shape whose sessions open one way far more often than
///   everyone else's, from many networks, is a campaign ([`Campaigns::is_campaign`]), named
///   in the evidence by its shape.
///
/// Anyone can send a popular browser's exact shape, so neither view is turned against the
/// people who share it without their own part in it: counts decay (a campaign that stops is
/// forgotten), `campaign_failures` only corroborates what something else flags, and
/// `campaign_landings` only reaches sessions that opened the campaign's way (decided at their
/// landing, by their own request), adds nothing to the score (a session must pass a
/// challenge, so it never makes a block) and a passed challenge clears the person who shares
/// the shape.
pub struct Campaigns {
    table: Lru<u64, Tally>,
    /// Landings of every shape by [`Landing`], in sixteenths, and when they were last halved (s).
    all: ([u32; 4], u32),
}

impl Campaigns {
    pub const HALF_LIFE_S: u32 = 15 * 60;
    /// Landings are remembered longer: a slow scraper opens a session every few minutes.
    pub const LANDING_HALF_LIFE_S: u32 = 60 * 60;
    const ONE: u32 = 16;
    /// Sessions a shape must have opened the campaign's way (about, within a half-life).
    pub const MIN_LANDINGS: u32 = 6;
    /// Networks ([`crate::identity::session::network`]) its sessions must come from: one office
    /// or carrier NAT full of people with the same browser is not a campaign.
    pub const MIN_NETWORKS: u32 = 6;
    /// The share of a shape's landings that must have opened that way: people's never come
    /// near it.
    pub const MIN_SHARE: f64 = 0.85;
    /// How far (in standard deviations) above everyone else's share it must be.
    pub const MIN_Z: f64 = 4.0;
    /// The most of the rest of the traffic counted as opening that way: a flood of landings
    /// under made-up shapes cannot raise the bar a campaign is measured against beyond it.
    const MAX_BASELINE: f64 = 0.75;

    pub fn new(cap: usize) -> Self {
        Campaigns { table: Lru::new(cap), all: ([0; 4], 0) }
    }

    pub fn record(&mut self, shape: u64, failed: bool, now_ms: u64) {
        let now_s = (now_ms / 1000) as u32;
        let e = self.table.get_or_insert_with(shape, || Tally::new(now_s));
        e.decay(now_s);
        if e.logins >= 1000 * Self::ONE {
            e.logins /= 2;
            e.failures /= 2;
        }
        e.logins += Self::ONE;
        e.failures += if failed { Self::ONE } else { 0 };
    }

    /// A session of `shape` opened as `landing`, from `network` (keyed hash; `None`: no address).
    pub fn land(&mut self, shape: u64, landing: Landing, network: Option<u64>, now_ms: u64) {
        let now_s = (now_ms / 1000) as u32;
        self.decay_all(now_s);
        let e = self.table.get_or_insert_with(shape, || Tally::new(now_s));
        e.decay_landings(now_s);
        if total(&e.landings) >= 10_000 * Self::ONE {
            halve(&mut e.landings, 1);
        }
        if total(&self.all.0) >= 1_000_000 * Self::ONE {
            halve(&mut self.all.0, 1);
        }
        let class = landing as usize;
        for counts in [&mut e.landings, &mut self.all.0] {
            if let Some(c) = counts.get_mut(class) {
                *c = c.saturating_add(Self::ONE);
            }
        }
        if let Some(n) = network {
            e.networks |= 1 << (n % 128);
        }
    }

    fn decay_all(&mut self, now_s: u32) {
        let (counts, at) = &mut self.all;
        if *at == 0 {
            *at = now_s;
        }
        let halvings = now_s.saturating_sub(*at) / Self::LANDING_HALF_LIFE_S;
        if halvings > 0 {
            halve(counts, halvings);
            *at = at.saturating_add(halvings.saturating_mul(Self::LANDING_HALF_LIFE_S));
        }
    }

    /// Whether sessions of `shape` that opened as `landing` are a campaign's. They are when at least [`Self::MIN_LANDINGS`] of the
    /// shape's sessions opened that way, from at least [`Self::MIN_NETWORKS`] networks, making
    /// at least [`Self::MIN_SHARE`] of its landings and at least [`Self::MIN_Z`] standard
    /// deviations more than the rest of the traffic's share (capped at
    /// [`Self::MAX_BASELINE`]) would give. Opening on the home page or by an in-site link never
    /// does: that is not a campaign's way in.
    pub fn is_campaign(&mut self, shape: u64, landing: Landing, now_ms: u64) -> bool {
        if landing == Landing::Other {
            return false;
        }
        let now_s = (now_ms / 1000) as u32;
        self.decay_all(now_s);
        let all = self.all.0;
        let Some(e) = self.table.get_mut(&shape) else { return false };
        e.decay_landings(now_s);
        let class = landing as usize;
        let one = f64::from(Self::ONE);
        let count = |counts: &[u32; 4]| f64::from(counts.get(class).copied().unwrap_or(0)) / one;
        let (ours, landings) = (count(&e.landings), f64::from(total(&e.landings)) / one);
        if ours < f64::from(Self::MIN_LANDINGS)
            || (e.networks | e.networks_before).count_ones() < Self::MIN_NETWORKS
            || ours < Self::MIN_SHARE * landings
        {
            return false;
        }
        let rest_ours = count(&all) - ours;
        let rest = f64::from(total(&all)) / one - landings;
        // Everyone else's share, pulled towards a third while there is little to go on.
        let p = ((rest_ours.max(0.0) + 3.0) / (rest.max(0.0) + 9.0)).min(Self::MAX_BASELINE);
        let z = (ours - landings * p) / (landings * p * (1.0 - p)).sqrt();
        z >= Self::MIN_Z
    }

    /// The score the other signals must reach before `campaign_failures` joins them: a trace of
    /// `velocity` (a page with many assets) is not corroboration.
    pub const CORROBORATION: f64 = 0.1;

    /// `campaign_failures` for a request of `shape`, when the other signals (`others`: their
    /// combined score) already flag it.
    pub fn signal(&mut self, shape: u64, now_ms: u64, others: f64, out: &mut Vec<Signal>) {
        if others < Self::CORROBORATION {
            return;
        }
        let now_s = (now_ms / 1000) as u32;
        let Some(e) = self.table.get_mut(&shape) else { return };
        e.decay(now_s);
        let (n, f) = (e.logins / Self::ONE, e.failures / Self::ONE);
        if n >= 20 {
            let ratio = f64::from(f) / f64::from(n);
            let strength = (ratio - 0.5) / 0.3;
            if strength > 0.0 {
                out.push(Signal { name: "campaign_failures", strength: strength.min(1.0) });
            }
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// What the table holds: each shape's tally, its key and the table's own links.
    pub fn heap_bytes(&self) -> usize {
        self.table.len() * (std::mem::size_of::<Tally>() + std::mem::size_of::<u64>() + 32)
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// The headers whose presence makes a client's shape: the ones a client sends with every
/// request, whatever it fetches, and cannot leave out without looking like something else.
/// Those that vary with the request (`referer`, fetch metadata, `content-type`, cookies) would
/// split one browser into several shapes; optional ones (`dnt`, `sec-gpc`) and their order
/// would let a scraper mint a new shape per session for free.
const SHAPE_HEADERS: &[&[u8]] =
    &[b"accept", b"accept-encoding", b"accept-language", b"sec-ch-ua", b"sec-ch-ua-mobile", b"sec-ch-ua-platform"];

/// The client's shape: its user agent (trimmed), its languages (the tags only, without weights
/// or spaces, which cost nothing to vary), which of [`SHAPE_HEADERS`] it sends, and its TLS
/// fingerprint (`tls`: the value of the header Envoy writes it into, empty when not configured).
pub fn shape(head: &Head, tls: &[u8]) -> u64 {
    let mut sent = 0u8;
    for (name, _) in head.iter() {
        if let Some(i) = SHAPE_HEADERS.iter().position(|h| *h == name) {
            sent |= 1 << i;
        }
    }
    let mut languages = [0u8; 64];
    let mut n = 0;
    for tag in head.first("accept-language").unwrap_or(b"").split(|b| *b == b',') {
        let tag = tag.split(|b| *b == b';').next().unwrap_or(b"").trim_ascii();
        for &b in tag.iter().chain(b",") {
            if let Some(slot) = languages.get_mut(n) {
                *slot = b.to_ascii_lowercase();
                n += 1;
            }
        }
    }
    crate::base::fasthash::hash(&[
        head.first("user-agent").unwrap_or(b"").trim_ascii(),
        languages.get(..n).unwrap_or(b""),
        &[sent],
        tls,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(extra: &[(&str, &str)]) -> Head {
        let mut pairs = vec![(":method", "GET"), (":path", "/products/1"), ("user-agent", "Mozilla/5.0 Chrome/126")];
        pairs.extend_from_slice(extra);
        pairs.push(("accept-language", "en-GB"));
        Head::from_pairs(pairs)
    }

    #[test]
    fn a_bookmark_and_a_link_from_one_browser_are_one_shape() {
        let bookmark = head(&[("sec-fetch-site", "none")]);
        let link = head(&[
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-mode", "navigate"),
            ("referer", "https://shop.test/"),
        ]);
        assert_eq!(shape(&bookmark, b""), shape(&link, b""));
        assert_eq!(Landing::of(&bookmark, b"/products/1"), Landing::Direct);
        assert_eq!(Landing::of(&link, b"/products/1"), Landing::InSite);
    }

    #[test]
    fn the_headers_sent_and_the_tls_fingerprint_tell_shapes_apart() {
        let a = head(&[("accept", "text/html"), ("accept-encoding", "gzip")]);
        let b = head(&[("accept", "text/html")]);
        assert_ne!(shape(&a, b""), shape(&b, b""));
        assert_ne!(shape(&a, b"t13d1516h2_8daaf6152771_02713d6af862"), shape(&a, b""));
    }

    #[test]
    fn what_costs_nothing_to_vary_does_not_make_a_new_shape() {
        let base = head(&[("accept", "text/html"), ("accept-encoding", "gzip")]);
        let varied = Head::from_pairs([
            (":method", "GET"),
            (":path", "/products/1"),
            ("accept-encoding", "br"),
            ("dnt", "1"),
            ("user-agent", "  Mozilla/5.0 Chrome/126 "),
            ("accept", "*/*"),
            ("sec-gpc", "1"),
            ("accept-language", "EN-GB ; q=0.137"),
        ]);
        assert_eq!(shape(&base, b""), shape(&varied, b""));
    }

    #[test]
    fn the_home_page_and_a_search_result_are_not_direct_landings() {
        let home = head(&[("sec-fetch-site", "none")]);
        assert_eq!(Landing::of(&home, b"/"), Landing::Other);
        let search = head(&[
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "navigate"),
            ("referer", "https://www.google.com/"),
        ]);
        assert_eq!(Landing::of(&search, b"/products/1"), Landing::Outside);
    }
}

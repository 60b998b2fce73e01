//! Web Bot Auth: the HTTP Message Signature (RFC 9421) a self-declared agent puts on its request,
//! as profiled by draft-meunier-webbotauth-httpsig-protocol (formerly
//! draft-meunier-web-bot-auth-architecture): Ed25519 only, `tag="web-bot-auth"`, `created` and
//! `expires` required, `@authority` (or `@target-uri`) and the `Signature-Agent` member covered,
//! `keyid` the RFC 7638 thumbprint of a key in the agent's directory.
//!
//! A user agent string is a claim anyone can type; a signature is the one claim only the key
//! holder can make. So the only way out of here as an allow is [`Verdict::Valid`], and every
//! doubt is an [`Verdict::Invalid`]: a forged or tampered signature (the base is rebuilt from
//! the request actually received, so a signature lifted onto another host, or an edited
//! `Signature-Agent`, fails), an expired or future-dated one, one valid for longer than policy
//! allows (a long-lived signature is a bearer token), an unknown key or an algorithm we do not
//! implement. Replay within the window is the caller's job: [`Candidate::nonce`] and the
//! expiry are handed over for it.
//!
//! Everything is read from hostile input: fields are bounded ([`MAX_FIELD_BYTES`],
//! [`MAX_SIGNATURES`], [`MAX_COMPONENTS`]), the structured-field parser is a loop over bytes
//! (no recursion: RFC 8941 nests one level), and nothing here panics, allocates without bound,
//! does I/O or reads a clock (time comes in as unix seconds).
//!
//! The flow is two steps so that keys can be fetched in between: [`select`] picks the
//! `web-bot-auth` signature, checks its profile and window, builds the signature base and tells
//! where the keys are ([`Candidate::agent`]); once the caller has the agent's directory
//! ([`KeySet::from_directory`]), [`Candidate::verify`] checks the Ed25519 signature. An expired
//! or malformed signature is refused before any directory is fetched.

use base64::alphabet;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// The `tag` a Web Bot Auth signature carries.
pub const TAG: &str = "web-bot-auth";
/// Where a `Signature-Agent` origin publishes its keys.
pub const DIRECTORY_PATH: &str = "/.well-known/http-message-signatures-directory";
/// The media type of that directory (the `Accept` to send when fetching it).
pub const DIRECTORY_MEDIA_TYPE: &str = "application/http-message-signatures-directory+json";
/// The largest `Signature-Input`, `Signature`, `Signature-Agent` or covered field value read.
pub const MAX_FIELD_BYTES: usize = 4096;
/// The most signatures (`Signature-Input` members) looked at.
pub const MAX_SIGNATURES: usize = 8;
/// The most components one signature may cover.
pub const MAX_COMPONENTS: usize = 16;
/// The largest directory body parsed, and the most keys it may list.
pub const MAX_DIRECTORY_BYTES: usize = 64 * 1024;
pub const MAX_DIRECTORY_KEYS: usize = 32;
/// Parameters on one item, and members of a covered dictionary field.
const MAX_PARAMS: usize = 16;
const MAX_MEMBERS: usize = 16;
/// The RFC 9421 test key (Appendix B.1.4): public, so a directory that lists it vouches for
/// nothing (the draft says verifiers SHOULD reject it).
const RFC9421_TEST_KEY_THUMBPRINT: &str = "poqkLGiymh_W0uP6PZFw-dvez3QJT5SolqXBCW38r0U";

/// RFC 8941 byte sequences: padding is optional on input, written on output.
const SF_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_encode_padding(true).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a signature is not accepted; [`Why::as_str`] is the stable label for metrics and evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Why {
    /// A field absent, too large or not parseable, a required parameter missing or mistyped.
    Malformed,
    /// Signatures, but none tagged `web-bot-auth`.
    NoWebBotAuthTag,
    /// `@authority`/`@target-uri`, the `Signature-Agent` member, or a covered field is missing.
    MissingComponent,
    /// A component or component parameter this verifier does not rebuild (`;sf`, `;bs`, `;req`,
    /// `;tr`, `@query-param`, `@request-target`, `@status`).
    UnsupportedComponent,
    Expired,
    NotYetValid,
    /// `expires - created` beyond [`Policy::max_validity`].
    TooLong,
    /// `alg` present and not `ed25519`.
    UnsupportedAlg,
    /// The `Signature-Agent` member is not an https origin, or names a discovery type we do not
    /// resolve.
    BadAgent,
    /// No key with that `keyid` in the keys given (or the key is outside its `nbf`/`exp`).
    UnknownKey,
    /// The signature is not 64 bytes or does not verify over the rebuilt base.
    BadSignature,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Malformed => "malformed",
            Why::NoWebBotAuthTag => "no_web_bot_auth_tag",
            Why::MissingComponent => "missing_component",
            Why::UnsupportedComponent => "unsupported_component",
            Why::Expired => "expired",
            Why::NotYetValid => "not_yet_valid",
            Why::TooLong => "too_long",
            Why::UnsupportedAlg => "unsupported_alg",
            Why::BadAgent => "bad_agent",
            Why::UnknownKey => "unknown_key",
            Why::BadSignature => "bad_signature",
        }
    }

    /// The draft's "unverified" outcome: we could not decide (key unknown, something we do not
    /// implement), as opposed to evidence of forgery or misuse. Still never an allow.
    pub fn is_unverified(self) -> bool {
        matches!(self, Why::UnknownKey | Why::UnsupportedAlg | Why::UnsupportedComponent | Why::BadAgent)
    }
}

/// The outcome of verifying one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid {
        /// The `Signature-Agent` origin the key was looked up for (`None`: the request named no
        /// agent and the key came from the caller's own set).
        agent: Option<String>,
        keyid: String,
        /// For replay detection by the caller, until `expires`.
        nonce: Option<String>,
        created: u64,
        expires: u64,
        label: String,
    },
    Invalid(Why),
}

/// What the verifier tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The longest `expires - created` accepted, seconds (the draft recommends at most a day).
    pub max_validity: u64,
    /// Clock skew allowed on both ends of the window, seconds.
    pub skew: u64,
    /// Accept `http://`, IP-literal and `localhost` agents (tests only: their directories would
    /// be fetched in the clear, or from inside the network).
    pub allow_insecure_agent: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { max_validity: 86_400, skew: 60, allow_insecure_agent: false }
    }
}

/// Field values by lower-case name, every field line in order.
pub trait Headers {
    fn values(&self, name: &str) -> Vec<&str>;
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn values(&self, name: &str) -> Vec<&str> {
        self.iter().filter(|(k, _)| k.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref()).collect()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn values(&self, name: &str) -> Vec<&str> {
        self.as_slice().values(name)
    }
}

/// The request as received, which the signature base is rebuilt from.
#[derive(Clone, Copy)]
pub struct Request<'a, H: Headers + ?Sized> {
    pub method: &'a str,
    /// `https` or `http` (`:scheme`).
    pub scheme: &'a str,
    /// `:authority` (or `Host`).
    pub authority: &'a str,
    /// The request target as sent (`:path`): path and query.
    pub target: &'a str,
    pub headers: &'a H,
}

/// Where an agent's keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// The normalized origin (lower-case, default port dropped): the agent's identity.
    pub origin: String,
    /// The directory to fetch: the origin and [`DIRECTORY_PATH`].
    pub directory: String,
}

impl Agent {
    /// Validates a `Signature-Agent` URL: https (http only when `insecure`), a host name, no
    /// userinfo, query or fragment, and no path (the draft's `directory` type is an origin).
    pub fn parse(url: &str, insecure: bool) -> Option<Agent> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => "443",
            "http" if insecure => "80",
            _ => return None,
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        // Userinfo, path, query and fragment are all refused outright.
        if authority.is_empty() || authority.bytes().any(|b| matches!(b, b'@' | b'/' | b'?' | b'#' | b'%' | b'\\')) {
            return None;
        }
        let (host, port) = split_host_port(authority)?;
        let host = host.to_ascii_lowercase();
        if !valid_host(&host, insecure) {
            return None;
        }
        let origin = match port {
            Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        };
        Some(Agent { directory: format!("{origin}{DIRECTORY_PATH}"), origin })
    }
}

/// `host[:port]`, the port all digits and at most 65535; an IPv6 literal keeps its brackets.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, tail) = authority.split_at_checked(close.checked_add(1)?)?;
        (host, if tail.is_empty() { None } else { Some(tail.strip_prefix(':')?) })
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u32>().ok()? > 65_535 {
            return None;
        }
    }
    Some((host, port))
}

/// A DNS name (letters, digits, hyphens; non-empty labels). IP literals and `localhost` only
/// when insecure: a directory fetched from them is inside someone's network.
fn valid_host(host: &str, insecure: bool) -> bool {
    if host.starts_with('[') {
        return insecure && host.len() > 2 && host.bytes().all(|b| b.is_ascii_hexdigit() || b"[]:.".contains(&b));
    }
    let labels_ok = host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let ip_or_local = host == "localhost"
        || host.ends_with(".localhost")
        || host.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && (insecure || !ip_or_local)
}

/// A `web-bot-auth` signature that passed every check but the cryptographic one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    label: String,
    keyid: String,
    nonce: Option<String>,
    created: u64,
    expires: u64,
    agent: Option<Agent>,
    base: String,
    signature: [u8; 64],
    now: u64,
}

impl Candidate {
    /// Whose directory holds the key (`None`: the request sent no `Signature-Agent`).
    pub fn agent(&self) -> Option<&Agent> {
        self.agent.as_ref()
    }
    pub fn keyid(&self) -> &str {
        &self.keyid
    }
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }
    pub fn label(&self) -> &str {
        &self.label
    }
    pub fn created(&self) -> u64 {
        self.created
    }
    pub fn expires(&self) -> u64 {
        self.expires
    }
    /// The rebuilt signature base (evidence, debugging).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Checks the signature with the key `keyid` names in `keys`, which must be the keys of
    /// [`Candidate::agent`]'s directory: a key is trusted for the URL it was fetched from only.
    pub fn verify(&self, keys: &KeySet) -> Verdict {
        let Some(key) = keys.get(&self.keyid).filter(|k| k.usable_at(self.now)) else {
            return Verdict::Invalid(Why::UnknownKey);
        };
        if !key.verify(self.base.as_bytes(), &self.signature) {
            return Verdict::Invalid(Why::BadSignature);
        }
        Verdict::Valid {
            agent: self.agent.as_ref().map(|a| a.origin.clone()),
            keyid: self.keyid.clone(),
            nonce: self.nonce.clone(),
            created: self.created,
            expires: self.expires,
            label: self.label.clone(),
        }
    }
}

/// [`select`] then [`Candidate::verify`], for when the keys are already at hand.
pub fn verify<H: Headers + ?Sized>(req: &Request<'_, H>, policy: &Policy, now: u64, keys: &KeySet) -> Verdict {
    match select(req, policy, now) {
        Ok(c) => c.verify(keys),
        Err(why) => Verdict::Invalid(why),
    }
}

/// Whether the request carries a signature at all (a `Signature-Input` field).
pub fn is_signed<H: Headers + ?Sized>(headers: &H) -> bool {
    !headers.values("signature-input").is_empty()
}

/// Takes the first `web-bot-auth` signature, checks that it meets the profile and is inside
/// its window, and prepares it for [`Candidate::verify`].
pub fn select<H: Headers + ?Sized>(req: &Request<'_, H>, policy: &Policy, now: u64) -> Result<Candidate, Why> {
    let inputs = parse_dictionary(&field(req.headers, "signature-input")?.ok_or(Why::Malformed)?, MAX_SIGNATURES)
        .ok_or(Why::Malformed)?;
    let signatures = parse_dictionary(&field(req.headers, "signature")?.ok_or(Why::Malformed)?, MAX_SIGNATURES)
        .ok_or(Why::Malformed)?;
    // The first tagged signature is the one judged: trying the others would let one request
    // make the verifier rebuild a base per label.
    for (label, member) in &inputs {
        let Member::Inner(items, params) = member else { continue };
        if str_param(params, "tag") == Some(TAG) {
            return candidate(req, policy, now, label, items, params, &signatures);
        }
    }
    Err(Why::NoWebBotAuthTag)
}

/// The signature base of the signature `label`, whatever its profile (RFC 9421 §2.5).
pub fn signature_base<H: Headers + ?Sized>(req: &Request<'_, H>, label: &str) -> Result<String, Why> {
    let inputs = parse_dictionary(&field(req.headers, "signature-input")?.ok_or(Why::Malformed)?, MAX_SIGNATURES)
        .ok_or(Why::Malformed)?;
    match inputs.iter().find(|(l, _)| l == label) {
        Some((_, Member::Inner(items, params))) => base(req, &components(items)?, items, params),
        _ => Err(Why::Malformed),
    }
}

fn candidate<H: Headers + ?Sized>(
    req: &Request<'_, H>,
    policy: &Policy,
    now: u64,
    label: &str,
    items: &[Item],
    params: &Params,
    signatures: &Dict,
) -> Result<Candidate, Why> {
    let keyid = str_param(params, "keyid").ok_or(Why::Malformed)?.to_string();
    let created = time_param(params, "created")?;
    let expires = time_param(params, "expires")?;
    let nonce = match param(params, "nonce") {
        None => None,
        Some(Bare::Str(n)) => Some(n.clone()),
        Some(_) => return Err(Why::Malformed),
    };
    match param(params, "alg") {
        None => {}
        Some(Bare::Str(a)) if a == "ed25519" => {}
        Some(Bare::Str(_)) => return Err(Why::UnsupportedAlg),
        Some(_) => return Err(Why::Malformed),
    }
    check_window(policy, now, created, expires)?;

    let comps = components(items)?;
    if !comps.iter().any(|c| matches!(c, Component::Authority | Component::TargetUri)) {
        return Err(Why::MissingComponent);
    }
    let agent_comp = agent_component(&comps, label);
    let agent_sent = !req.headers.values("signature-agent").is_empty();
    if agent_sent && agent_comp.is_none() {
        return Err(Why::MissingComponent);
    }
    let signature = signature_bytes(signatures, label)?;
    // The agent before the base: a signature whose agent cannot be used costs no base.
    let agent = match agent_comp {
        Some(key) => Some(agent(req, label, key, policy.allow_insecure_agent)?),
        None => None,
    };
    let base = base(req, &comps, items, params)?;
    Ok(Candidate { label: label.to_string(), keyid, nonce, created, expires, agent, base, signature, now })
}

fn time_param(params: &Params, name: &str) -> Result<u64, Why> {
    match param(params, name) {
        Some(Bare::Int(n)) => u64::try_from(*n).map_err(|_| Why::Malformed),
        _ => Err(Why::Malformed),
    }
}

/// Order matters for the label: a window that could never be right is malformed before it is
/// too long, and too long before it is early or late.
fn check_window(policy: &Policy, now: u64, created: u64, expires: u64) -> Result<(), Why> {
    if expires <= created {
        return Err(Why::Malformed);
    }
    if expires - created > policy.max_validity {
        return Err(Why::TooLong);
    }
    if created > now.saturating_add(policy.skew) {
        return Err(Why::NotYetValid);
    }
    if now > expires.saturating_add(policy.skew) {
        return Err(Why::Expired);
    }
    Ok(())
}

/// The 64 bytes under `label` in `Signature`.
fn signature_bytes(signatures: &Dict, label: &str) -> Result<[u8; 64], Why> {
    match signatures.iter().find(|(l, _)| l == label) {
        Some((_, Member::Item(Item { bare: Bare::Bytes(b), .. }))) => {
            <[u8; 64]>::try_from(b.as_slice()).map_err(|_| Why::BadSignature)
        }
        _ => Err(Why::Malformed),
    }
}

/// A covered component, as far as this verifier rebuilds them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Component {
    Method,
    Authority,
    Scheme,
    Path,
    Query,
    TargetUri,
    /// A field by lower-case name; with `;key`, one member of a Dictionary field.
    Field {
        name: String,
        key: Option<String>,
    },
}

fn components(items: &[Item]) -> Result<Vec<Component>, Why> {
    let comps = items.iter().map(component).collect::<Result<Vec<_>, _>>()?;
    // RFC 9421 §2.5: a component listed twice makes the base ambiguous.
    let dup = comps.iter().enumerate().any(|(i, c)| comps.iter().skip(i + 1).any(|d| d == c));
    if dup {
        return Err(Why::Malformed);
    }
    Ok(comps)
}

fn component(item: &Item) -> Result<Component, Why> {
    let Bare::Str(name) = &item.bare else { return Err(Why::Malformed) };
    if let Some(derived) = name.strip_prefix('@') {
        if !item.params.is_empty() {
            return Err(Why::UnsupportedComponent);
        }
        return match derived {
            "method" => Ok(Component::Method),
            "authority" => Ok(Component::Authority),
            "scheme" => Ok(Component::Scheme),
            "path" => Ok(Component::Path),
            "query" => Ok(Component::Query),
            "target-uri" => Ok(Component::TargetUri),
            "signature-params" => Err(Why::Malformed),
            _ => Err(Why::UnsupportedComponent),
        };
    }
    if name.is_empty() || !name.bytes().all(is_field_name_byte) {
        return Err(Why::Malformed);
    }
    let key = match item.params.as_slice() {
        [] => None,
        [(k, Bare::Str(member))] if k == "key" => Some(member.clone()),
        _ => return Err(Why::UnsupportedComponent),
    };
    Ok(Component::Field { name: name.clone(), key })
}

/// A field name as a component names it: lower-case token characters.
fn is_field_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Which `Signature-Agent` member the signature covers: the one keyed by its own label, else
/// the first covered; `Some(None)` for the whole field (the legacy sf-string form).
fn agent_component<'c>(comps: &'c [Component], label: &str) -> Option<Option<&'c str>> {
    let mut agents = comps.iter().filter_map(|c| match c {
        Component::Field { name, key } if name == "signature-agent" => Some(key.as_deref()),
        _ => None,
    });
    let first = agents.next()?;
    Some(agents.find(|k| *k == Some(label)).unwrap_or(first))
}

/// The agent a signature names: a String member (of type `directory`) holding an origin.
fn agent<H: Headers + ?Sized>(
    req: &Request<'_, H>,
    label: &str,
    key: Option<&str>,
    insecure: bool,
) -> Result<Agent, Why> {
    let raw = field(req.headers, "signature-agent")?.ok_or(Why::MissingComponent)?;
    let item = match key {
        Some(k) => member_item(&raw, k)?,
        // Legacy: a bare sf-string; or a dictionary covered whole, read at our label (or its
        // only member).
        None => match parse_item_field(&raw) {
            Some(item) => item,
            None => {
                let dict = parse_dictionary(&raw, MAX_MEMBERS).ok_or(Why::Malformed)?;
                let only = if dict.len() == 1 { dict.first().map(|(k, _)| k.clone()) } else { None };
                member_item(&raw, only.as_deref().unwrap_or(label))?
            }
        },
    };
    let Bare::Str(url) = &item.bare else { return Err(Why::BadAgent) };
    match param(&item.params, "type") {
        None => {}
        Some(Bare::Token(t)) if t == "directory" => {}
        // `jwks_uri`, `cimd` and unknown types are not resolved here (the draft: ignore them).
        Some(_) => return Err(Why::BadAgent),
    }
    Agent::parse(url, insecure).ok_or(Why::BadAgent)
}

fn member_item(raw: &str, key: &str) -> Result<Item, Why> {
    let dict = parse_dictionary(raw, MAX_MEMBERS).ok_or(Why::Malformed)?;
    match dict.into_iter().find(|(k, _)| k == key) {
        Some((_, Member::Item(item))) => Ok(item),
        Some(_) => Err(Why::BadAgent),
        None => Err(Why::MissingComponent),
    }
}

/// RFC 9421 §2.5: one line per component, then `@signature-params`, re-serialized from the
/// parsed inner list (§2.3; the same bytes as the field when the signer serialized canonically).
fn base<H: Headers + ?Sized>(
    req: &Request<'_, H>,
    comps: &[Component],
    items: &[Item],
    params: &Params,
) -> Result<String, Why> {
    let mut out = String::new();
    for (comp, item) in comps.iter().zip(items) {
        let value = component_value(req, comp)?;
        // A line break or control byte in a value could forge further lines of the base.
        if value.len() > MAX_FIELD_BYTES || !value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
            return Err(Why::Malformed);
        }
        ser_item(item, &mut out);
        out.push_str(": ");
        out.push_str(&value);
        out.push('\n');
    }
    out.push_str("\"@signature-params\": ");
    ser_inner_list(items, params, &mut out);
    Ok(out)
}

fn component_value<H: Headers + ?Sized>(req: &Request<'_, H>, comp: &Component) -> Result<String, Why> {
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req.target, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    let scheme = req.scheme.to_ascii_lowercase();
    Ok(match comp {
        Component::Method => req.method.to_string(),
        Component::Authority => authority(req.authority, &scheme),
        Component::Scheme => scheme,
        Component::Path => path.to_string(),
        Component::Query => format!("?{}", query.unwrap_or("")),
        Component::TargetUri => {
            let q = query.map(|q| format!("?{q}")).unwrap_or_default();
            format!("{scheme}://{}{path}{q}", authority(req.authority, &scheme))
        }
        Component::Field { name, key: None } => field(req.headers, name)?.ok_or(Why::MissingComponent)?,
        Component::Field { name, key: Some(k) } => {
            let raw = field(req.headers, name)?.ok_or(Why::MissingComponent)?;
            let dict = parse_dictionary(&raw, MAX_MEMBERS).ok_or(Why::Malformed)?;
            let (_, member) = dict.iter().find(|(m, _)| m == k).ok_or(Why::MissingComponent)?;
            let mut out = String::new();
            ser_member(member, &mut out);
            out
        }
    })
}

/// RFC 9421 §2.2.3: lower case, without the scheme's default port.
fn authority(raw: &str, scheme: &str) -> String {
    let lower = raw.trim().to_ascii_lowercase();
    let default = if scheme == "http" { "80" } else { "443" };
    match lower.rsplit_once(':') {
        // The last colon of an IPv6 literal is not a port separator unless it follows the `]`.
        Some((host, port)) if port == default && !host.is_empty() && (!host.contains(':') || host.ends_with(']')) => {
            host.to_string()
        }
        _ => lower,
    }
}

/// A field's value: its lines trimmed and joined with ", " (RFC 9421 §2.1), bounded.
fn field<H: Headers + ?Sized>(headers: &H, name: &str) -> Result<Option<String>, Why> {
    let lines = headers.values(name);
    if lines.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(line.trim_matches(|c| c == ' ' || c == '\t'));
        if out.len() > MAX_FIELD_BYTES {
            return Err(Why::Malformed);
        }
    }
    Ok(Some(out))
}

/// The `Accept-Signature` value (RFC 9421 §5.1) asking an unsigned self-declared agent for a
/// signature this verifier takes: `@authority` and its `Signature-Agent` member, a window, the
/// tag and Ed25519; with a nonce when the caller wants this exact request answered.
pub fn accept_signature(nonce: Option<&str>) -> String {
    let mut out = String::from(
        "sig1=(\"@authority\" \"signature-agent\";key=\"sig1\");created;expires;tag=\"web-bot-auth\";alg=\"ed25519\"",
    );
    if let Some(n) = nonce.filter(|n| n.bytes().all(|b| (b' '..=b'~').contains(&b))) {
        out.push_str(";nonce=");
        ser_bare(&Bare::Str(n.to_string()), &mut out);
    }
    out
}

/// One Ed25519 key from a directory, named by its thumbprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    thumbprint: String,
    public: VerifyingKey,
    nbf: Option<u64>,
    exp: Option<u64>,
}

/// Why a JWK or a directory is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    Json,
    TooLarge,
    /// Not `kty` OKP with `crv` Ed25519, or `use`/`alg` for something else.
    NotEd25519,
    /// `x` not 32 bytes of unpadded base64url, or not a curve point.
    BadX,
    /// Carries `d`: a published private key signs for anyone.
    PrivateKey,
    /// No usable key in the directory.
    NoKeys,
}

impl KeyError {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyError::Json => "json",
            KeyError::TooLarge => "too_large",
            KeyError::NotEd25519 => "not_ed25519",
            KeyError::BadX => "bad_x",
            KeyError::PrivateKey => "private_key",
            KeyError::NoKeys => "no_keys",
        }
    }
}

impl Key {
    /// An Ed25519 public JWK (RFC 8037). `kid` is ignored: the key is known by the thumbprint
    /// computed here, so a directory cannot label one key with another's name.
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<Key, KeyError> {
        let text = |name: &str| jwk.get(name).and_then(|v| v.as_str());
        if text("kty") != Some("OKP") || text("crv") != Some("Ed25519") {
            return Err(KeyError::NotEd25519);
        }
        if text("use").is_some_and(|u| u != "sig") || text("alg").is_some_and(|a| a != "EdDSA" && a != "Ed25519") {
            return Err(KeyError::NotEd25519);
        }
        if jwk.get("d").is_some() {
            return Err(KeyError::PrivateKey);
        }
        let x = text("x").ok_or(KeyError::BadX)?;
        let bytes = URL_SAFE_NO_PAD.decode(x).map_err(|_| KeyError::BadX)?;
        let raw = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::BadX)?;
        let public = VerifyingKey::from_bytes(&raw).map_err(|_| KeyError::BadX)?;
        // A bound we cannot read is not no bound: such a key is not used.
        let time = |name: &str| match jwk.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or(KeyError::BadX),
        };
        Ok(Key { thumbprint: jwk_thumbprint(x), public, nbf: time("nbf")?, exp: time("exp")? })
    }

    /// A raw 32-byte Ed25519 public key (configuration, tests).
    pub fn from_raw(raw: &[u8; 32]) -> Result<Key, KeyError> {
        let public = VerifyingKey::from_bytes(raw).map_err(|_| KeyError::BadX)?;
        Ok(Key { thumbprint: jwk_thumbprint(&URL_SAFE_NO_PAD.encode(raw)), public, nbf: None, exp: None })
    }

    /// The RFC 7638 thumbprint: what `keyid` must be.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Ed25519 verification in the strict form: no small-order keys or non-canonical `R`/`S`,
    /// so one message has one valid signature under one key.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.public.verify_strict(message, &Signature::from_bytes(signature)).is_ok()
    }

    fn usable_at(&self, now: u64) -> bool {
        self.nbf.is_none_or(|nbf| now >= nbf) && self.exp.is_none_or(|exp| now <= exp)
    }
}

/// The RFC 7638 JWK thumbprint of an Ed25519 key given its `x` (RFC 8037 §A.3): SHA-256 of the
/// canonical `{"crv":"Ed25519","kty":"OKP","x":"…"}`, base64url without padding.
pub fn jwk_thumbprint(x: &str) -> String {
    let canonical = format!("{{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"{x}\"}}");
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The keys of one directory (or of the caller's configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    pub fn new(keys: Vec<Key>) -> KeySet {
        KeySet { keys }
    }

    /// A directory body (`{"keys":[JWK, …]}`): its usable Ed25519 keys. Other entries (RSA, EC,
    /// private, malformed, the RFC 9421 test key) are skipped, as a JWKS may serve other
    /// consumers; a body with none left is refused.
    pub fn from_directory(body: &[u8]) -> Result<KeySet, KeyError> {
        if body.len() > MAX_DIRECTORY_BYTES {
            return Err(KeyError::TooLarge);
        }
        let json: serde_json::Value = serde_json::from_slice(body).map_err(|_| KeyError::Json)?;
        let entries = json.get("keys").and_then(|k| k.as_array()).ok_or(KeyError::Json)?;
        if entries.len() > MAX_DIRECTORY_KEYS {
            return Err(KeyError::TooLarge);
        }
        let keys: Vec<Key> = entries
            .iter()
            .filter_map(|jwk| Key::from_jwk(jwk).ok())
            .filter(|k| k.thumbprint != RFC9421_TEST_KEY_THUMBPRINT)
            .collect();
        // The directory is the agent's word on its keys: one that lists no usable key (empty, or
        // moved to another algorithm) revokes every key it had, so none is trusted any more.
        Ok(KeySet { keys })
    }

    pub fn get(&self, keyid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.thumbprint == keyid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

// ---- RFC 8941 structured fields: the subset RFC 9421 needs, parsed and re-serialized. ----

#[derive(Debug, Clone, PartialEq)]
enum Bare {
    Int(i64),
    /// Thousandths (RFC 8941 decimals have at most three fractional digits).
    Dec(i64),
    Str(String),
    Token(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

type Params = Vec<(String, Bare)>;

#[derive(Debug, Clone, PartialEq)]
struct Item {
    bare: Bare,
    params: Params,
}

#[derive(Debug, Clone, PartialEq)]
enum Member {
    Item(Item),
    Inner(Vec<Item>, Params),
}

type Dict = Vec<(String, Member)>;

fn param<'p>(params: &'p Params, name: &str) -> Option<&'p Bare> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn str_param<'p>(params: &'p Params, name: &str) -> Option<&'p str> {
    match param(params, name) {
        Some(Bare::Str(s)) => Some(s),
        _ => None,
    }
}

/// RFC 8941: a later duplicate key overwrites the earlier value in place.
fn upsert<T>(list: &mut Vec<(String, T)>, key: String, value: T) {
    match list.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => list.push((key, value)),
    }
}

/// RFC 8941 §4.2.2, with at most `max` members.
fn parse_dictionary(input: &str, max: usize) -> Option<Dict> {
    if input.len() > MAX_FIELD_BYTES {
        return None;
    }
    let mut p = Parser { s: input.as_bytes(), i: 0 };
    p.skip_sp();
    let mut dict = Dict::new();
    while !p.done() {
        let key = p.key()?;
        let member =
            if p.eat(b'=') { p.member()? } else { Member::Item(Item { bare: Bare::Bool(true), params: p.params()? }) };
        upsert(&mut dict, key, member);
        if dict.len() > max {
            return None;
        }
        p.skip_ows();
        if p.done() {
            break;
        }
        if !p.eat(b',') {
            return None;
        }
        p.skip_ows();
        if p.done() {
            return None;
        }
    }
    Some(dict)
}

/// RFC 8941 §4.2.3 as a whole field.
fn parse_item_field(input: &str) -> Option<Item> {
    if input.len() > MAX_FIELD_BYTES {
        return None;
    }
    let mut p = Parser { s: input.as_bytes(), i: 0 };
    p.skip_sp();
    let item = p.item()?;
    p.skip_sp();
    p.done().then_some(item)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn skip_sp(&mut self) {
        while self.eat(b' ') {}
    }

    fn skip_ows(&mut self) {
        while self.eat(b' ') || self.eat(b'\t') {}
    }

    fn member(&mut self) -> Option<Member> {
        if self.peek() == Some(b'(') {
            self.inner_list()
        } else {
            self.item().map(Member::Item)
        }
    }

    fn inner_list(&mut self) -> Option<Member> {
        if !self.eat(b'(') {
            return None;
        }
        let mut items = Vec::new();
        loop {
            self.skip_sp();
            if self.eat(b')') {
                return Some(Member::Inner(items, self.params()?));
            }
            items.push(self.item()?);
            if items.len() > MAX_COMPONENTS {
                return None;
            }
            if !matches!(self.peek(), Some(b' ' | b')')) {
                return None;
            }
        }
    }

    fn item(&mut self) -> Option<Item> {
        let bare = self.bare()?;
        Some(Item { bare, params: self.params()? })
    }

    fn params(&mut self) -> Option<Params> {
        let mut params = Params::new();
        while self.eat(b';') {
            self.skip_sp();
            let key = self.key()?;
            let value = if self.eat(b'=') { self.bare()? } else { Bare::Bool(true) };
            upsert(&mut params, key, value);
            if params.len() > MAX_PARAMS {
                return None;
            }
        }
        Some(params)
    }

    fn key(&mut self) -> Option<String> {
        let start = self.i;
        match self.peek() {
            Some(c) if c.is_ascii_lowercase() || c == b'*' => {}
            _ => return None,
        }
        while matches!(self.peek(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(&c)) {
            self.i += 1;
        }
        self.text(start)
    }

    /// The ASCII consumed since `start`.
    fn text(&self, start: usize) -> Option<String> {
        self.s.get(start..self.i).and_then(|b| std::str::from_utf8(b).ok()).map(str::to_string)
    }

    fn bare(&mut self) -> Option<Bare> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string(),
            b':' => self.bytes(),
            b'?' => self.boolean(),
            c if c.is_ascii_alphabetic() || c == b'*' => self.token(),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Bare> {
        let negative = self.eat(b'-');
        let int = self.digits(15)?;
        if !self.eat(b'.') {
            let n: i64 = int.parse().ok()?;
            return Some(Bare::Int(if negative { -n } else { n }));
        }
        if int.len() > 12 {
            return None;
        }
        let frac = self.digits(3)?;
        let scaled = format!("{frac:0<3}");
        let n = int.parse::<i64>().ok()?.checked_mul(1000)?.checked_add(scaled.parse().ok()?)?;
        Some(Bare::Dec(if negative { -n } else { n }))
    }

    /// One to `max` digits.
    fn digits(&mut self, max: usize) -> Option<String> {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let len = self.i - start;
        if len == 0 || len > max {
            return None;
        }
        self.text(start)
    }

    fn string(&mut self) -> Option<Bare> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = String::new();
        loop {
            match self.bump()? {
                b'\\' => match self.bump()? {
                    c @ (b'"' | b'\\') => out.push(char::from(c)),
                    _ => return None,
                },
                b'"' => return Some(Bare::Str(out)),
                c @ b' '..=b'~' => out.push(char::from(c)),
                _ => return None,
            }
        }
    }

    fn token(&mut self) -> Option<Bare> {
        let start = self.i;
        self.bump()?;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c)) {
            self.i += 1;
        }
        self.text(start).map(Bare::Token)
    }

    fn bytes(&mut self) -> Option<Bare> {
        if !self.eat(b':') {
            return None;
        }
        let start = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || b"+/=".contains(&c)) {
            self.i += 1;
        }
        let encoded = self.s.get(start..self.i)?;
        if !self.eat(b':') {
            return None;
        }
        SF_BASE64.decode(encoded).ok().map(Bare::Bytes)
    }

    fn boolean(&mut self) -> Option<Bare> {
        if !self.eat(b'?') {
            return None;
        }
        match self.bump()? {
            b'1' => Some(Bare::Bool(true)),
            b'0' => Some(Bare::Bool(false)),
            _ => None,
        }
    }
}

fn ser_bare(bare: &Bare, out: &mut String) {
    match bare {
        Bare::Int(n) => out.push_str(&n.to_string()),
        Bare::Dec(n) => {
            let sign = if *n < 0 { "-" } else { "" };
            let (int, frac) = (n.unsigned_abs() / 1000, n.unsigned_abs() % 1000);
            let frac = format!("{frac:03}");
            let frac = frac.trim_end_matches('0');
            out.push_str(&format!("{sign}{int}.{}", if frac.is_empty() { "0" } else { frac }));
        }
        Bare::Str(s) => {
            out.push('"');
            for c in s.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        Bare::Token(t) => out.push_str(t),
        Bare::Bytes(b) => {
            out.push(':');
            out.push_str(&STANDARD.encode(b));
            out.push(':');
        }
        Bare::Bool(b) => out.push_str(if *b { "?1" } else { "?0" }),
    }
}

fn ser_params(params: &Params, out: &mut String) {
    for (key, value) in params {
        out.push(';');
        out.push_str(key);
        if *value != Bare::Bool(true) {
            out.push('=');
            ser_bare(value, out);
        }
    }
}

fn ser_item(item: &Item, out: &mut String) {
    ser_bare(&item.bare, out);
    ser_params(&item.params, out);
}

fn ser_inner_list(items: &[Item], params: &Params, out: &mut String) {
    out.push('(');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        ser_item(item, out);
    }
    out.push(')');
    ser_params(params, out);
}

fn ser_member(member: &Member, out: &mut String) {
    match member {
        Member::Item(item) => ser_item(item, out),
        Member::Inner(items, params) => ser_inner_list(items, params, out),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;

    /// RFC 9421 B.1.4 `test-key-ed25519` (public half; the draft vectors use it too).
    const RFC_X: &str = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs";
    const RFC_KEYID: &str = "poqkLGiymh_W0uP6PZFw-dvez3QJT5SolqXBCW38r0U";
    const CREATED: u64 = 1_735_689_600;

    // draft-meunier-webbotauth-httpsig-protocol, "EdDSA Using Curve edwards25519" vectors.
    const DICT_AGENT: &str = r#"agent2="https://signature-agent.test""#;
    const DICT_INPUT: &str = r#"sig2=("@authority" "signature-agent";key="agent2");created=1735689600;keyid="poqkLGiymh_W0uP6PZFw-dvez3QJT5SolqXBCW38r0U";alg="ed25519";expires=4889289600;nonce="n9p433xm+NJ3ph3upfBIGmsuwHw387YV7Q/F+6BSpGCVjYCqQw6rznNA8PVVLySrAWsv0hQtFioQb6E1YsauiA==";tag="web-bot-auth""#;
    const DICT_SIG: &str =
        "sig2=:RdNFx5Bj6au3YgAMQL/RzmUlZE8QZLIaXGRpw985hWnwPfMxT228NMk6ehRS1PSl4e8PhbNZACSanGdhEwYCCg==:";
    const LEGACY_AGENT: &str = r#""https://signature-agent.test""#;
    const LEGACY_INPUT: &str = r#"sig2=("@authority" "signature-agent");created=1735689600;keyid="poqkLGiymh_W0uP6PZFw-dvez3QJT5SolqXBCW38r0U";alg="ed25519";expires=1735693200;nonce="e8N7S2MFd/qrd6T2R3tdfAuuANngKI7LFtKYI/vowzk4lAZYadIX6wW25MwG7DCT9RUKAJ0qVkU0mEeLElW1qg==";tag="web-bot-auth""#;
    const LEGACY_SIG: &str =
        "sig2=:jdq0SqOwHdyHr9+r5jw3iYZH6aNGKijYp/EstF4RQTQdi5N5YYKrD+mCT1HA1nZDsi6nJKuHxUi/5Syp3rLWBA==:";
    // draft-meunier-web-bot-auth-architecture-01..03: no Signature-Agent at all.
    const BARE_INPUT: &str = r#"sig1=("@authority");created=1735689600;keyid="poqkLGiymh_W0uP6PZFw-dvez3QJT5SolqXBCW38r0U";alg="ed25519";expires=1735693200;nonce="mYotfW3CUjI68sbGw6oKd7kyXqPjZEtU8xFPGWFrqOAf5qC6MDe3pys3SWWCudB0MvwslHy32WXUpkR7u0lt/w==";tag="web-bot-auth""#;
    const BARE_SIG: &str =
        "sig1=:+NA/cssf4Y2bQTMTkyvTGRCaVzp9quyUevdwwMtMOWhhOOZ2T1subBj0BtvdnrpDEuwSAbiTeElXDzHL3WWKCw==:";
    // The draft's RSA-PSS vector (legacy form): same profile, another algorithm.
    const RSA_INPUT: &str = r#"sig2=("@authority" "signature-agent");created=1735689600;keyid="oD0HwocPBSfpNy5W3bpJeyFGY_IQ_YpqxSjQ3Yd-CLA";alg="rsa-pss-sha512";expires=1735693200;nonce="XSHtZVCThSIAksXsH9WBs6AtxtXC0eQGiIcUGSoJstFs8lAWakjhrfwzLhyjtme5iXMZvmFWqDEs6cT3Jf+BbQ==";tag="web-bot-auth""#;

    type Pairs = Vec<(String, String)>;

    fn pairs(list: &[(&str, &str)]) -> Pairs {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn request<'a>(authority: &'a str, headers: &'a Pairs) -> Request<'a, Pairs> {
        Request { method: "GET", scheme: "https", authority, target: "/path/to/resource", headers }
    }

    fn rfc_keys() -> KeySet {
        KeySet::new(vec![Key::from_jwk(&json!({"kty": "OKP", "crv": "Ed25519", "x": RFC_X})).unwrap()])
    }

    fn roomy() -> Policy {
        Policy { max_validity: u64::MAX, ..Policy::default() }
    }

    fn legacy() -> Pairs {
        pairs(&[("signature-agent", LEGACY_AGENT), ("signature-input", LEGACY_INPUT), ("signature", LEGACY_SIG)])
    }

    fn why(v: Verdict) -> Why {
        match v {
            Verdict::Invalid(w) => w,
            Verdict::Valid { .. } => panic!("unexpectedly valid"),
        }
    }

    /// A fixed, non-test signing key and its key set.
    fn our_key() -> (SigningKey, KeySet) {
        let sk = SigningKey::from_bytes(&[7; 32]);
        let keys = KeySet::new(vec![Key::from_raw(&sk.verifying_key().to_bytes()).unwrap()]);
        (sk, keys)
    }

    /// Headers signed over `components` with `params` (appended to the inner list) by [`our_key`].
    fn signed(components: &str, params: &str, agent: Option<&str>) -> Pairs {
        let (sk, keys) = our_key();
        let keyid = keys.keys[0].thumbprint().to_string();
        let input = format!(r#"sig1=({components});keyid="{keyid}"{params}"#);
        let mut h = pairs(&[("signature-input", &input)]);
        if let Some(a) = agent {
            h.push(("signature-agent".into(), a.into()));
        }
        let base = signature_base(&request("example.com", &h), "sig1").unwrap();
        let sig = STANDARD.encode(sk.sign(base.as_bytes()).to_bytes());
        h.push(("signature".into(), format!("sig1=:{sig}:")));
        h
    }

    const WINDOW: &str = ";created=1735689600;expires=1735689900;tag=\"web-bot-auth\"";
    const AGENT: &str = r#"sig1="https://agent.example""#;
    const COVERED: &str = r#""@authority" "signature-agent";key="sig1""#;

    #[test]
    fn the_rfc9421_b26_ed25519_vector_verifies_and_a_flipped_byte_fails() {
        let h = pairs(&[
            ("host", "example.com"),
            ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
            ("content-type", "application/json"),
            (
                "content-digest",
                "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
            ),
            ("content-length", "18"),
            (
                "signature-input",
                r#"sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#,
            ),
            (
                "signature",
                "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:",
            ),
        ]);
        let req = Request {
            method: "POST",
            scheme: "https",
            authority: "example.com",
            target: "/foo?param=Value&Pet=dog",
            headers: &h,
        };
        let base = signature_base(&req, "sig-b26").unwrap();
        let expected = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@method\": POST\n\"@path\": /foo\n\"@authority\": example.com\n\"content-type\": application/json\n\"content-length\": 18\n\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
        assert_eq!(base, expected);
        let sig: [u8; 64] = STANDARD
            .decode("wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==")
            .unwrap()
            .try_into()
            .unwrap();
        let key = &rfc_keys().keys[0];
        assert!(key.verify(base.as_bytes(), &sig));
        let mut flipped = sig;
        flipped[10] ^= 1;
        assert!(!key.verify(base.as_bytes(), &flipped));
        let mut tampered = base.into_bytes();
        tampered[3] ^= 1;
        assert!(!key.verify(&tampered, &sig));
        // Not a Web Bot Auth signature: no tag, no expiry.
        assert_eq!(select(&req, &Policy::default(), 1_618_884_473), Err(Why::NoWebBotAuthTag));
    }

    #[test]
    fn the_jwk_thumbprint_of_the_test_key_is_the_drafts_keyid() {
        assert_eq!(jwk_thumbprint(RFC_X), RFC_KEYID);
        assert_eq!(rfc_keys().keys[0].thumbprint(), RFC_KEYID);
        assert_eq!(
            Key::from_raw(&URL_SAFE_NO_PAD.decode(RFC_X).unwrap().try_into().unwrap()).unwrap().thumbprint(),
            RFC_KEYID
        );
    }

    #[test]
    fn the_drafts_dictionary_vector_verifies_inside_its_window() {
        let h = pairs(&[("signature-agent", DICT_AGENT), ("signature-input", DICT_INPUT), ("signature", DICT_SIG)]);
        let c = select(&request("example.com", &h), &roomy(), CREATED + 10).unwrap();
        assert_eq!(
            c.agent().unwrap().directory,
            "https://signature-agent.test/.well-known/http-message-signatures-directory"
        );
        assert!(c.base().contains("\n\"signature-agent\";key=\"agent2\": \"https://signature-agent.test\"\n"));
        match c.verify(&rfc_keys()) {
            Verdict::Valid { agent, keyid, nonce, expires, label, .. } => {
                assert_eq!(agent.as_deref(), Some("https://signature-agent.test"));
                assert_eq!(keyid, RFC_KEYID);
                assert!(nonce.unwrap().starts_with("n9p433xm"));
                assert_eq!(expires, 4_889_289_600);
                assert_eq!(label, "sig2");
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn a_signature_valid_for_a_century_is_too_long_under_the_default_policy() {
        let h = pairs(&[("signature-agent", DICT_AGENT), ("signature-input", DICT_INPUT), ("signature", DICT_SIG)]);
        assert_eq!(select(&request("example.com", &h), &Policy::default(), CREATED + 10), Err(Why::TooLong));
    }

    #[test]
    fn the_drafts_legacy_sf_string_vector_verifies_under_the_default_policy() {
        let h = legacy();
        let v = verify(&request("example.com", &h), &Policy::default(), CREATED + 100, &rfc_keys());
        assert!(matches!(v, Verdict::Valid { agent: Some(ref a), .. } if a == "https://signature-agent.test"), "{v:?}");
    }

    #[test]
    fn the_older_drafts_vector_without_an_agent_verifies_with_keys_at_hand() {
        let h = pairs(&[("signature-input", BARE_INPUT), ("signature", BARE_SIG)]);
        let c = select(&request("example.com", &h), &Policy::default(), CREATED).unwrap();
        assert_eq!(c.agent(), None);
        assert!(matches!(c.verify(&rfc_keys()), Verdict::Valid { agent: None, .. }));
    }

    #[test]
    fn a_signature_is_expired_only_past_its_expiry_and_the_skew() {
        let h = legacy();
        let at = |now| verify(&request("example.com", &h), &Policy::default(), now, &rfc_keys());
        assert!(matches!(at(1_735_693_200 + 60), Verdict::Valid { .. }));
        assert_eq!(why(at(1_735_693_200 + 61)), Why::Expired);
        assert_eq!(why(at(u64::MAX)), Why::Expired);
    }

    #[test]
    fn a_signature_created_in_the_future_is_not_yet_valid() {
        let h = legacy();
        let at = |now| verify(&request("example.com", &h), &Policy::default(), now, &rfc_keys());
        assert!(matches!(at(CREATED - 60), Verdict::Valid { .. }));
        assert_eq!(why(at(CREATED - 61)), Why::NotYetValid);
        assert_eq!(why(at(0)), Why::NotYetValid);
    }

    #[test]
    fn a_window_longer_than_policy_or_backwards_is_refused() {
        let (_, keys) = our_key();
        let long = signed(COVERED, ";created=1735689600;expires=1735776001;tag=\"web-bot-auth\"", Some(AGENT));
        assert_eq!(why(verify(&request("example.com", &long), &Policy::default(), CREATED, &keys)), Why::TooLong);
        let backwards = signed(COVERED, ";created=1735689600;expires=1735689600;tag=\"web-bot-auth\"", Some(AGENT));
        assert_eq!(
            why(verify(&request("example.com", &backwards), &Policy::default(), CREATED, &keys)),
            Why::Malformed
        );
        let negative = signed(COVERED, ";created=-1;expires=1735689600;tag=\"web-bot-auth\"", Some(AGENT));
        assert_eq!(why(verify(&request("example.com", &negative), &Policy::default(), CREATED, &keys)), Why::Malformed);
    }

    #[test]
    fn a_signature_we_sign_ourselves_verifies() {
        let (_, keys) = our_key();
        let h = signed(
            r#""@authority" "signature-agent";key="sig1" "@method" "@path" "@query" "@scheme" "@target-uri""#,
            WINDOW,
            Some(AGENT),
        );
        let c = select(&request("Example.COM:443", &h), &Policy::default(), CREATED).unwrap();
        assert!(c.base().contains("\"@target-uri\": https://example.com/path/to/resource\n\"@signature-params\""));
        assert!(c.base().contains("\"@query\": ?\n"));
        assert!(matches!(c.verify(&keys), Verdict::Valid { .. }));
    }

    #[test]
    fn a_signature_over_a_tampered_authority_fails() {
        let h = legacy();
        assert_eq!(
            why(verify(&request("evil.example", &h), &Policy::default(), CREATED, &rfc_keys())),
            Why::BadSignature
        );
        let (_, keys) = our_key();
        let ours = signed(COVERED, WINDOW, Some(AGENT));
        assert_eq!(
            why(verify(&request("example.com:8443", &ours), &Policy::default(), CREATED, &keys)),
            Why::BadSignature
        );
    }

    #[test]
    fn a_signature_over_a_tampered_agent_fails() {
        let mut h = legacy();
        h[0].1 = r#""https://evil.example""#.into();
        assert_eq!(
            why(verify(&request("example.com", &h), &Policy::default(), CREATED, &rfc_keys())),
            Why::BadSignature
        );
        let (_, keys) = our_key();
        let mut ours = signed(COVERED, WINDOW, Some(AGENT));
        ours[1].1 = r#"sig1="https://evil.example""#.into();
        assert_eq!(why(verify(&request("example.com", &ours), &Policy::default(), CREATED, &keys)), Why::BadSignature);
    }

    #[test]
    fn a_signature_tagged_otherwise_is_not_web_bot_auth() {
        let mut h = legacy();
        h[1].1 = LEGACY_INPUT.replace("web-bot-auth", "app-123");
        assert_eq!(select(&request("example.com", &h), &Policy::default(), CREATED), Err(Why::NoWebBotAuthTag));
        h[1].1 = LEGACY_INPUT.replace(";tag=\"web-bot-auth\"", "");
        assert_eq!(select(&request("example.com", &h), &Policy::default(), CREATED), Err(Why::NoWebBotAuthTag));
    }

    #[test]
    fn a_signature_without_the_authority_misses_a_component() {
        let (_, keys) = our_key();
        let h = signed(r#""signature-agent";key="sig1" "@path""#, WINDOW, Some(AGENT));
        assert_eq!(why(verify(&request("example.com", &h), &Policy::default(), CREATED, &keys)), Why::MissingComponent);
    }

    #[test]
    fn an_agent_the_signature_does_not_cover_misses_a_component() {
        let (_, keys) = our_key();
        let mut h = signed(r#""@authority""#, WINDOW, None);
        h.push(("signature-agent".into(), AGENT.into()));
        assert_eq!(why(verify(&request("example.com", &h), &Policy::default(), CREATED, &keys)), Why::MissingComponent);
        // Covered, but the member named is not there.
        let h = signed_unchecked(r#""@authority" "signature-agent";key="other""#);
        assert_eq!(select(&request("example.com", &h), &Policy::default(), CREATED), Err(Why::MissingComponent));
    }

    #[test]
    fn an_unknown_keyid_is_unknown_key() {
        let (_, keys) = our_key();
        let h = legacy();
        let v = why(verify(&request("example.com", &h), &Policy::default(), CREATED, &keys));
        assert_eq!(v, Why::UnknownKey);
        assert!(v.is_unverified());
        assert_eq!(
            why(verify(&request("example.com", &h), &Policy::default(), CREATED, &KeySet::default())),
            Why::UnknownKey
        );
    }

    #[test]
    fn a_key_outside_its_nbf_and_exp_is_unknown() {
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "nbf": CREATED + 3600, "exp": CREATED + 7200});
        let keys = KeySet::new(vec![Key::from_jwk(&jwk).unwrap()]);
        assert_eq!(
            why(verify(&request("example.com", &legacy()), &Policy::default(), CREATED, &keys)),
            Why::UnknownKey
        );
    }

    #[test]
    fn rsa_and_other_algorithms_are_unsupported() {
        let h = pairs(&[("signature-agent", LEGACY_AGENT), ("signature-input", RSA_INPUT), ("signature", LEGACY_SIG)]);
        assert_eq!(select(&request("example.com", &h), &Policy::default(), CREATED), Err(Why::UnsupportedAlg));
    }

    #[test]
    fn bad_base64_or_a_short_signature_is_refused() {
        let mut h = legacy();
        h[2].1 = "sig2=:!!!!:".into();
        assert_eq!(select(&request("example.com", &h), &Policy::default(), CREATED), Err(Why::Malformed));
        h[2].1 = "sig2=:AAAA:".into();
        assert_eq!(select(&request("example.com", &h), &Policy::default(), CREATED), Err(Why::BadSignature));
        h[2].1 =
            "sig1=:jdq0SqOwHdyHr9+r5jw3iYZH6aNGKijYp/EstF4RQTQdi5N5YYKrD+mCT1HA1nZDsi6nJKuHxUi/5Syp3rLWBA==:".into();
        assert_eq!(select(&request("example.com", &h), &Policy::default(), CREATED), Err(Why::Malformed));
    }

    #[test]
    fn components_we_do_not_rebuild_are_refused_not_guessed() {
        for comps in [
            r#""@authority" "signature-agent";key="sig1" "date";sf"#,
            r#""@authority";req "signature-agent";key="sig1""#,
            r#""@authority" "signature-agent";key="sig1" "@query-param";name="a""#,
            r#""@authority" "signature-agent";key="sig1" "@request-target""#,
        ] {
            let h = signed_unchecked(comps);
            assert_eq!(
                select(&request("example.com", &h), &Policy::default(), CREATED),
                Err(Why::UnsupportedComponent),
                "{comps}"
            );
        }
        let h = signed_unchecked(r#""@authority" "@authority" "signature-agent";key="sig1""#);
        assert_eq!(select(&request("example.com", &h), &Policy::default(), CREATED), Err(Why::Malformed));
    }

    /// Headers with a signature of zeros, for requests the verifier must refuse before any
    /// cryptography (so nothing can be signed over them).
    fn signed_unchecked(components: &str) -> Pairs {
        let input = format!(r#"sig1=({components});keyid="k"{WINDOW}"#);
        pairs(&[
            ("signature-input", &input),
            ("signature-agent", AGENT),
            ("signature", &format!("sig1=:{}:", STANDARD.encode([0u8; 64]))),
            ("date", "x"),
        ])
    }

    #[test]
    fn a_line_break_in_a_covered_field_cannot_forge_base_lines() {
        let mut h = signed_unchecked(r#""@authority" "signature-agent";key="sig1" "x-intent""#);
        h.push(("x-intent".into(), "a\n\"@authority\": evil.example".into()));
        assert_eq!(select(&request("example.com", &h), &Policy::default(), CREATED), Err(Why::Malformed));
    }

    #[test]
    fn multiple_field_lines_are_joined_before_parsing_and_the_tagged_signature_is_picked() {
        let (_, keys) = our_key();
        let mut h = signed(COVERED, WINDOW, Some(AGENT));
        // Another signer's signature on separate field lines, listed first.
        h.insert(0, ("signature-input".into(), r#"other=("@method");created=1;keyid="x""#.into()));
        h.insert(0, ("signature".into(), format!("other=:{}:", STANDARD.encode([1u8; 64]))));
        let c = select(&request("example.com", &h), &Policy::default(), CREATED).unwrap();
        assert_eq!(c.label(), "sig1");
        assert!(matches!(c.verify(&keys), Verdict::Valid { .. }));
    }

    #[test]
    fn garbage_headers_never_panic_and_never_verify() {
        let hostile = [
            "",
            " ",
            ",",
            "=",
            "sig1",
            "sig1=",
            "sig1=(",
            "sig1=()",
            "sig1=((\"@authority\"))",
            "sig1=(\"@authority\"",
            "sig1=(\"@authority\";tag=\"web-bot-auth\"",
            "sig1=:::",
            "sig1=:",
            "sig1=\"\\",
            "sig1=\"\\x\"",
            "sig1=?2",
            "sig1=-",
            "sig1=1.",
            "sig1=1.2345",
            "sig1=9999999999999999",
            "SIG1=1",
            "sig1=1,",
            "sig1=1,,sig2=2",
            "sig1=(\"@authority\");created=99999999999999999999;expires=1;keyid=\"k\";tag=\"web-bot-auth\"",
            "sig1=(\"@authority\");created=1.5;expires=2;keyid=\"k\";tag=\"web-bot-auth\"",
            "sig1=(\"@authority\");created=1;expires=2;keyid=k;tag=\"web-bot-auth\"",
            "sig1=(\"\u{e9}\");tag=\"web-bot-auth\"",
            "\u{0}\u{1}\u{7f}",
            "sig1=(1 2 3);tag=\"web-bot-auth\"",
        ];
        let long = format!("sig1=(\"@authority\");tag=\"web-bot-auth\";keyid=\"{}\"", "a".repeat(5000));
        let many =
            (0..20).map(|i| format!("s{i}=(\"@authority\");tag=\"web-bot-auth\"")).collect::<Vec<_>>().join(", ");
        let deep = format!("sig1=({})", "\"a\" ".repeat(40));
        let (_, keys) = our_key();
        for input in hostile.iter().map(|s| s.to_string()).chain([long, many, deep]) {
            for agent in ["", "\"", "sig1=", "sig1=(\"a\")", "sig1=\"javascript:x\"", AGENT] {
                let h = pairs(&[("signature-input", &input), ("signature", &input), ("signature-agent", agent)]);
                let v = verify(&request("example.com", &h), &Policy::default(), CREATED, &keys);
                assert!(matches!(v, Verdict::Invalid(_)), "{input:?} {agent:?}");
            }
        }
    }

    #[test]
    fn every_truncation_of_a_valid_signature_fails_without_panicking() {
        let (_, keys) = our_key();
        let h = signed(COVERED, WINDOW, Some(AGENT));
        assert!(matches!(
            verify(&request("example.com", &h), &Policy::default(), CREATED, &keys),
            Verdict::Valid { .. }
        ));
        for field in 0..h.len() {
            let value = &h[field].1;
            for cut in (0..value.len()).filter(|&c| value.is_char_boundary(c)) {
                let mut t = h.clone();
                t[field].1 = value[..cut].to_string();
                let v = verify(&request("example.com", &t), &Policy::default(), CREATED, &keys);
                assert!(matches!(v, Verdict::Invalid(_)), "{} cut at {cut}: {v:?}", h[field].0);
            }
        }
    }

    #[test]
    fn rsa_ec_x25519_private_and_misshapen_jwks_are_rejected() {
        let rsa = json!({"kty": "RSA", "e": "AQAB", "n": "r4tmm3r20Wd_PbqvP1s2-QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct-Lh1GH45x28Rw3Ry53mm-oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7OyrFAHqgDsznjPFmTOtCEcN2Z1FpWgchwuYLPL-Wokqltd11nqqzi-bJ9cvSKADYdUAAN5WUtzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw9lq4aOT9v6d-nb4bnNkQVklLQ3fVAvJm-xdDOp9LCNCN48V2pnDOkFV6-U9nV5oyc6XI2w"});
        let ec = json!({"kty": "EC", "crv": "P-256", "x": "qIVYZVLCrPZHGHjP17CTW0_-D9Lfw0EkjqF7xB4FivA", "y": "Mc0R_SPUjTq8JHSPyLlkuvRWu6V0xxe6oNxNjUmIlqs"});
        let x25519 = json!({"kty": "OKP", "crv": "X25519", "x": RFC_X});
        assert_eq!(Key::from_jwk(&rsa), Err(KeyError::NotEd25519));
        assert_eq!(Key::from_jwk(&ec), Err(KeyError::NotEd25519));
        assert_eq!(Key::from_jwk(&x25519), Err(KeyError::NotEd25519));
        let with_d =
            json!({"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "d": "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU"});
        assert_eq!(Key::from_jwk(&with_d), Err(KeyError::PrivateKey));
        for x in [
            "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0b",
            "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs=",
            "JrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs",
            "",
        ] {
            assert_eq!(Key::from_jwk(&json!({"kty": "OKP", "crv": "Ed25519", "x": x})), Err(KeyError::BadX), "{x}");
        }
        assert_eq!(
            Key::from_jwk(&json!({"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "use": "enc"})),
            Err(KeyError::NotEd25519)
        );
        // A directory of only unusable keys revokes the Ed25519 keys it no longer lists.
        let dir = json!({"keys": [rsa, ec, x25519]}).to_string();
        assert!(KeySet::from_directory(dir.as_bytes()).is_ok_and(|k| k.is_empty()));
    }

    #[test]
    fn a_directory_keeps_its_ed25519_keys_and_drops_the_rfc_test_key() {
        let (sk, _) = our_key();
        let x = URL_SAFE_NO_PAD.encode(sk.verifying_key().to_bytes());
        let dir = json!({"keys": [
            {"kty": "RSA", "e": "AQAB", "n": "AQAB"},
            {"kty": "OKP", "crv": "Ed25519", "x": RFC_X},
            {"kty": "OKP", "crv": "Ed25519", "kid": "a lie", "x": x, "use": "sig"},
        ]});
        let keys = KeySet::from_directory(dir.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys.get(&jwk_thumbprint(&x)).is_some());
        assert!(keys.get("a lie").is_none());
        assert!(keys.get(RFC_KEYID).is_none());
        assert_eq!(KeySet::from_directory(b"{\"keys\":"), Err(KeyError::Json));
        assert_eq!(KeySet::from_directory(b"[]"), Err(KeyError::Json));
        assert_eq!(KeySet::from_directory(&vec![b' '; MAX_DIRECTORY_BYTES + 1]), Err(KeyError::TooLarge));
    }

    /// Output of `python3 sign.py --authority example.com --agent https://signature-agent.test
    /// --created 1735689600 --expires 1735689900 --nonce bm9uY2UtMQ== --component @method
    /// --component @path --path '/path/to/resource?x=1'` (default seed 00..1f).
    const PY_AGENT: &str = r#"sig1="https://signature-agent.test""#;
    const PY_INPUT: &str = r#"sig1=("@authority" "signature-agent";key="sig1" "@method" "@path");created=1735689600;keyid="1IG2tMH7J2wbJZnOf8LJzQitKf7LMvoAElsuDMVM54Y";alg="ed25519";expires=1735689900;nonce="bm9uY2UtMQ==";tag="web-bot-auth""#;
    const PY_SIG: &str =
        "sig1=:KgUH02P4BusPDnkgm+rc53E6uYmtLD6C0L8EWx7qWb2HLheJ1tBMVt32dWuI8BQ38Q684Ii+jgOVnFn/9AXvBQ==:";
    const PY_DIRECTORY: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"1IG2tMH7J2wbJZnOf8LJzQitKf7LMvoAElsuDMVM54Y","x":"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg","use":"sig"}]}"#;

    #[test]
    fn a_request_signed_by_sign_py_verifies_against_its_directory() {
        let h = pairs(&[("Signature-Agent", PY_AGENT), ("Signature-Input", PY_INPUT), ("Signature", PY_SIG)]);
        let req = Request {
            method: "GET",
            scheme: "https",
            authority: "example.com",
            target: "/path/to/resource?x=1",
            headers: &h,
        };
        let c = select(&req, &Policy::default(), CREATED + 1).unwrap();
        let keys = KeySet::from_directory(PY_DIRECTORY.as_bytes()).unwrap();
        assert!(matches!(c.verify(&keys), Verdict::Valid { nonce: Some(ref n), .. } if n == "bm9uY2UtMQ=="));
        let post = Request { method: "POST", ..req };
        assert_eq!(why(verify(&post, &Policy::default(), CREATED + 1, &keys)), Why::BadSignature);
    }

    #[test]
    fn an_agent_must_be_an_https_origin() {
        let ok = Agent::parse("HTTPS://Agent.Example:443/", false).unwrap();
        assert_eq!(ok.origin, "https://agent.example");
        assert_eq!(ok.directory, "https://agent.example/.well-known/http-message-signatures-directory");
        assert_eq!(Agent::parse("https://agent.example:8443", false).unwrap().origin, "https://agent.example:8443");
        for bad in [
            "http://agent.example",
            "https://user@agent.example",
            "https://agent.example/keys",
            "https://agent.example?x",
            "https://agent.example#f",
            "https://",
            "https://:443",
            "https://agent.example:99999",
            "https://agent.example:",
            "https://127.0.0.1",
            "https://[::1]",
            "https://localhost",
            "ftp://agent.example",
            "agent.example",
            "https://agent..example",
            "https://-agent.example",
            "https://agent.example/.well-known/x",
            "https://a%2eb",
        ] {
            assert_eq!(Agent::parse(bad, false), None, "{bad}");
        }
        assert_eq!(
            Agent::parse("http://127.0.0.1:8080", true).unwrap().directory,
            "http://127.0.0.1:8080/.well-known/http-message-signatures-directory"
        );
        assert_eq!(Agent::parse("http://localhost:80", true).unwrap().origin, "http://localhost");
    }

    #[test]
    fn an_agent_of_another_type_or_scheme_is_a_bad_agent() {
        for agent in [
            r#"sig1="https://agent.example/jwks.json";type=jwks_uri"#,
            r#"sig1="http://agent.example""#,
            r#"sig1=("x")"#,
        ] {
            let h = signed_unchecked_agent(agent);
            assert_eq!(select(&request("example.com", &h), &Policy::default(), CREATED), Err(Why::BadAgent), "{agent}");
        }
        let h = signed_unchecked_agent(r#"sig1="https://agent.example";type=directory"#);
        assert_eq!(
            select(&request("example.com", &h), &Policy::default(), CREATED).unwrap().agent().unwrap().origin,
            "https://agent.example"
        );
    }

    fn signed_unchecked_agent(agent: &str) -> Pairs {
        let (_, keys) = our_key();
        let input = format!(r#"sig1=({COVERED});keyid="{}"{WINDOW}"#, keys.keys[0].thumbprint());
        pairs(&[
            ("signature-input", &input),
            ("signature-agent", agent),
            ("signature", &format!("sig1=:{}:", STANDARD.encode([0u8; 64]))),
        ])
    }

    #[test]
    fn the_agent_is_known_before_the_keys_are() {
        let h = legacy();
        let c = select(&request("example.com", &h), &Policy::default(), CREATED).unwrap();
        assert_eq!(
            c.agent().unwrap().directory,
            "https://signature-agent.test/.well-known/http-message-signatures-directory"
        );
        assert_eq!(c.keyid(), RFC_KEYID);
        assert!(c.nonce().unwrap().starts_with("e8N7S2MF"));
        assert_eq!((c.created(), c.expires()), (CREATED, 1_735_693_200));
    }

    #[test]
    fn accept_signature_asks_for_what_the_verifier_takes() {
        assert_eq!(
            accept_signature(None),
            r#"sig1=("@authority" "signature-agent";key="sig1");created;expires;tag="web-bot-auth";alg="ed25519""#
        );
        assert!(accept_signature(Some("a\"b")).ends_with(r#";nonce="a\"b""#));
        assert!(!accept_signature(Some("a\nb")).contains("nonce"));
        assert!(parse_dictionary(&accept_signature(Some("n")), MAX_SIGNATURES).is_some());
    }

    #[test]
    fn structured_fields_reserialize_canonically() {
        let input = r#"a=( "x"  "y";key="k" );p=1;q=?0;r=1.50;s=:AQ:;t=tok/en, b, c=-0.001"#;
        let dict = parse_dictionary(input, 8).unwrap();
        let mut out = String::new();
        for (i, (k, m)) in dict.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(k);
            out.push('=');
            ser_member(m, &mut out);
        }
        assert_eq!(out, r#"a=("x" "y";key="k");p=1;q=?0;r=1.5;s=:AQ==:;t=tok/en, b=?1, c=-0.001"#);
    }

    #[test]
    fn every_reason_has_a_stable_label() {
        let all = [
            Why::Malformed,
            Why::NoWebBotAuthTag,
            Why::MissingComponent,
            Why::UnsupportedComponent,
            Why::Expired,
            Why::NotYetValid,
            Why::TooLong,
            Why::UnsupportedAlg,
            Why::BadAgent,
            Why::UnknownKey,
            Why::BadSignature,
        ];
        let labels: Vec<_> = all.iter().map(|w| w.as_str()).collect();
        assert_eq!(
            labels,
            [
                "malformed",
                "no_web_bot_auth_tag",
                "missing_component",
                "unsupported_component",
                "expired",
                "not_yet_valid",
                "too_long",
                "unsupported_alg",
                "bad_agent",
                "unknown_key",
                "bad_signature"
            ]
        );
    }
}

//! A decision: what happens to a request and why. How it is shown is in [`super::reply`] (to
//! the client) and [`super::evidence`] (upstream headers and the access log).

use crate::policy::ChallengeType;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Scored and let through.
    Pass,
    /// Allowlisted: not scored.
    Allow,
    Block,
    RateLimited,
    Challenge(ChallengeType),
    /// botgate's own endpoint answered (an asset, a checked solution).
    Serve,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Allow => "allow",
            Verdict::Block => "block",
            Verdict::RateLimited => "rate_limited",
            Verdict::Challenge(_) => "challenge",
            Verdict::Serve => "serve",
        }
    }

    fn tier(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Allow => "allow",
            Verdict::Block => "block",
            Verdict::RateLimited => "rate_limit",
            Verdict::Challenge(_) | Verdict::Serve => "challenge",
        }
    }
}

/// The challenge handed to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    ProofOfWork { challenge: String, difficulty: u8, expires_in_s: u64 },
    StepUp { options_url: Option<String>, verify_url: Option<String>, session: String },
}

/// How a challenge is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeReply {
    pub issued: Issued,
    /// A browser navigation: an HTML page instead of JSON.
    pub html: bool,
    /// Where to continue afterwards (a GET's path and query).
    pub back: Option<String>,
    /// The silent challenge's token for the page ([`crate::challenge::beacon`]).
    pub beacon: Option<String>,
}

/// What the response phase needs to learn from the upstream's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowUp {
    pub session: u64,
    pub shape: u64,
    pub critical: bool,
    /// A same-origin POST to the backend's WebAuthn verify endpoint by a session with a step-up
    /// pending: a 401 or 403 answer is a failed step-up.
    pub step_up: bool,
    /// That call was to the verify URL exactly as configured (not another spelling a catch-all
    /// handler might answer): only then is a 2xx a passed step-up.
    pub verify_call: bool,
    /// When the request was made (ms).
    pub at: u64,
}

/// A graduated answer: how, and how long the request is held (0 for a decoy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Graded {
    pub how: crate::policy::answers::Refusal,
    pub delay_ms: u64,
    /// The client asked for a page (a decoy is then HTML).
    pub html: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What is done with the request.
    pub verdict: Verdict,
    /// What enforcement would have done, when warn or observe mode let the request pass.
    pub would: Option<Verdict>,
    pub score: f64,
    /// Short, stable reason codes (`fingerprint_repeat`, `rate_limit_ip`, …).
    pub reasons: Vec<&'static str>,
    pub client_ip: Option<IpAddr>,
    pub fingerprint: Option<u64>,
    pub fingerprint_count: u32,
    pub similarity: Option<f64>,
    /// The campaign the request's session was seen as part of ([`crate::score::campaigns`]).
    pub campaign: Option<u64>,
    pub retry_after_s: u64,
    /// The session's smoothed score (the decision used the higher of the two).
    pub session_score: f64,
    pub session: Option<u64>,
    pub authenticated: bool,
    /// Risk tier of the endpoint (0 critical … 3 low).
    pub endpoint_tier: u8,
    /// The allow condition or API key that let the request through, or the broken sequence rule.
    pub detail: Option<String>,
    pub follow_up: Option<FollowUp>,
    /// The challenge to show, when the verdict is a challenge.
    pub challenge: Option<Box<ChallengeReply>>,
    /// botgate's own answer (assets, redirects after a checked solution).
    pub answer: Option<Box<Reply>>,
    /// A clearance token earned by this request, set as cookie and header on the upstream's
    /// response.
    pub clearance: Option<Box<(String, String)>>,
    /// A visitor cookie (`Set-Cookie` value) for the upstream's response.
    pub visitor: Option<String>,
    /// Milliseconds from issue to an accepted solution.
    pub solve_ms: Option<u64>,
    /// Session id and client binding for the backend's step-up endpoints
    /// (`x-botgate-session`, `x-botgate-binding`): what a token it mints must carry.
    pub step_up: Option<Box<(String, String)>>,
    /// The silent challenge's token for this page, when its response is HTML botgate can add
    /// the script to ([`crate::challenge::beacon`]).
    pub beacon: Option<Box<PageBeacon>>,
    /// The bot the request claimed to be, and whether it proved it.
    pub bot: Option<Box<BotLabel>>,
    /// What the vendor sources said (or why they said nothing), when they were consulted.
    pub vendors: Vec<VendorEvidence>,
    /// A graduated answer (throttle, tarpit, decoy), enforced or what observe mode would do.
    pub graded: Option<Graded>,
    /// When the engine took the request (ms; 0: not recorded): the clock a replay runs it at.
    pub at: u64,
}

/// One vendor source's part in a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorEvidence {
    pub name: String,
    /// Its score, or why there is none.
    pub answer: Result<(f64, Vec<String>), String>,
}

/// A recognised bot: who runs it, what for, and how its claim was proven (`published_ranges`,
/// `fcrdns`, or `none` for a claim that failed or could not be checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotLabel {
    pub name: String,
    pub operator: String,
    pub purpose: &'static str,
    pub verified: &'static str,
    /// It signs its requests (Web Bot Auth): a refusal of an unsigned one asks it to.
    pub signs: bool,
}

/// A page's beacon: the session it is for, and what its token is minted from once the
/// response turns out to be a page that can take the script
/// ([`crate::engine::Engine::beacon_token`]): most navigations a filter sees answered otherwise
/// (a redirect, a 304, an API's JSON) never need one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageBeacon {
    pub session: u64,
    /// The token's `sid`, as [`crate::challenge::gate::sid`] names the session.
    pub sid: String,
    pub client: Option<IpAddr>,
    /// When the page was asked for (the token's issue time).
    pub at: u64,
}

impl Decision {
    pub fn pass(client_ip: Option<IpAddr>) -> Self {
        Decision {
            verdict: Verdict::Pass,
            would: None,
            score: 0.0,
            reasons: Vec::new(),
            client_ip,
            fingerprint: None,
            fingerprint_count: 0,
            similarity: None,
            campaign: None,
            retry_after_s: 0,
            session_score: 0.0,
            session: None,
            authenticated: false,
            endpoint_tier: 2,
            detail: None,
            follow_up: None,
            challenge: None,
            answer: None,
            clearance: None,
            visitor: None,
            solve_ms: None,
            step_up: None,
            beacon: None,
            bot: None,
            vendors: Vec::new(),
            graded: None,
            at: 0,
        }
    }

    /// How the refusal is delivered, when it is not at once ([`crate::policy::answers`]): the
    /// shell holds a throttled or tarpitted request, a decoy is answered 200. Recorded in
    /// observe mode too (what would have been done).
    pub fn delivered(&self) -> Option<Graded> {
        use crate::policy::answers::Refusal;
        // Only the answer of what refused it: an observed block rule's decoy is not how a
        // rate limit that then refused the request answers.
        self.graded.filter(|g| match g.how {
            Refusal::Throttle => self.verdict == Verdict::RateLimited,
            Refusal::Tarpit | Refusal::Decoy => self.verdict == Verdict::Block,
            Refusal::Refuse => false,
        })
    }

    /// The outcome label of `botgate_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match (self.verdict, self.would) {
            (Verdict::Pass, Some(Verdict::Challenge(_))) => "would_challenge",
            (Verdict::Pass, Some(_)) => "would_block",
            (v, _) => v.name(),
        }
    }

    /// `x-botgate-tier`: which tier decided (or would have).
    pub fn tier(&self) -> &'static str {
        self.would.unwrap_or(self.verdict).tier()
    }

    pub fn session_id(&self) -> String {
        self.session.map(|s| format!("{s:016x}")).unwrap_or_default()
    }

    /// Worth a log line of its own.
    pub fn flagged(&self) -> bool {
        !matches!(self.verdict, Verdict::Pass | Verdict::Allow | Verdict::Serve) || self.would.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u32,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

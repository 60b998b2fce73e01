//! The proxy-wasm shell: Envoy callbacks in, engine calls, host calls out. No policy here.
//!
//! Host calls are counted on the request path (each costs about a microsecond): one bulk read
//! of the request headers, the peer address (it says whether `x-forwarded-for` is believed),
//! the route only when the policy has per-route profiles, one property for the access log, the
//! verdict headers, the score histogram, and the response status. Counters are tallied in the
//! engine and flushed on the tick, so they cost nothing per request.
//!
//! Only `hostcalls` functions that return `Result` are used on request paths: the SDK's
//! trait helpers panic on a non-Ok status, and a panic takes the worker's VM down. The request
//! headers are read and client `x-botgate-*` headers removed through the raw ABI ([`abi`]).
//!
//! What it costs (BENCHMARKS.md, `bench/pairs.py`: two Envoys on one shared core, ratios of
//! the same seconds). At b063297: botgate's throughput 0.666× the empty proxy-wasm filter's
//! (median of 5 rounds, 0.651–0.766; noise check 1.005), the 429 path of the example policy
//! 0.716×; the target is 0.85×. Measured side by side against the previous build: the
//! zero-copy header read 1.011× throughput (CPU 0.990×), verdict headers added instead of
//! replaced 1.024× (CPU 0.979×). Envoy's V8 compiles with TurboFan only (`--no-liftoff`) and
//! runs a known amount of pure Wasm compute at Node's speed (bench/empty-filter `burn`), so the
//! VM is not the problem: the host calls are. The ones the spec requires (header read, evidence
//! property, three verdict headers, clock, histogram, sampled status) cost about +35 µs per
//! request here alone, against a budget of +16 µs for the whole filter.

#![allow(unsafe_code)] // `proxy_wasm::main!` exports the `#[no_mangle]` entry point.

mod abi;
mod metrics;
mod nonces;

use metrics::Metrics;
use nonces::SharedNonces;

use crate::base::telemetry::Counter;
use crate::challenge::inject;
use crate::decision::record::{Decision, FollowUp, PageBeacon};
use crate::engine::lookups::Answer;
use crate::engine::{BodyWait, Engines, Route, Step};
use crate::identity::client::parse_peer;
use crate::policy::{self, Severity};
use crate::request::head::Head;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

const TICK: Duration = Duration::from_secs(1);

/// Per-worker state shared by the root and its requests.
struct Worker {
    engines: Engines,
    metrics: Metrics,
    /// Flagged-decision log lines left this second, and how many were held back: a flood in warn
    /// mode must not turn into one synchronous log write per request.
    log_budget: u32,
    log_suppressed: u64,
}

/// Flagged decisions logged per worker per second (all of them are in the access log).
const LOG_LINES_PER_SECOND: u32 = 20;

type Shared = Rc<RefCell<Worker>>;

#[derive(Default)]
struct Root {
    worker: Option<Shared>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let text = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(t) => t.unwrap_or_default(),
            Err(e) => {
                log::error!("botgate: cannot read the plugin configuration: {e:?}");
                return false;
            }
        };
        let parsed = policy::parse(&text);
        for d in &parsed.diags {
            match d.severity {
                Severity::Error => log::error!("botgate policy {d}"),
                Severity::Warning => log::warn!("botgate policy {d}"),
            }
        }
        let Some(mut policy) = parsed.policy else {
            log::error!("botgate: policy refused ({} errors); see above", parsed.errors().count());
            return false;
        };
        // Shared data is read (and the key made) only for a policy that needs it.
        if let Some((key, created)) = policy.lacks_clearance_key().then(generated_key).flatten() {
            if policy.ensure_clearance_key(&key) && created {
                log::warn!(
                    "botgate: no clearance keys configured: generated a random key for this Envoy (shared by its \
                     workers); clearance tokens end with the process"
                );
            }
        }
        let mut engines = Engines::new(policy);
        SharedNonces::prepare();
        for engine in engines.iter_mut() {
            engine.set_nonce_store(Box::new(SharedNonces));
        }
        match &self.worker {
            // A reconfiguration keeps the metric ids and starts the windows afresh.
            Some(w) => w.borrow_mut().engines = engines,
            None => {
                let worker =
                    Worker { engines, metrics: Metrics::define(), log_budget: LOG_LINES_PER_SECOND, log_suppressed: 0 };
                self.worker = Some(Rc::new(RefCell::new(worker)));
            }
        }
        let _ = hostcalls::set_tick_period(TICK);
        log::info!("botgate {}: policy loaded", env!("CARGO_PKG_VERSION"));
        true
    }

    fn on_tick(&mut self) {
        let Some(w) = &self.worker else { return };
        let mut w = w.borrow_mut();
        let Worker { engines, metrics, log_budget, log_suppressed } = &mut *w;
        if *log_suppressed > 0 {
            log::warn!("botgate: {log_suppressed} more flagged decisions this second (see the access log)");
            *log_suppressed = 0;
        }
        *log_budget = LOG_LINES_PER_SECOND;
        let footprint = engines.tick(now_ms());
        for engine in engines.iter_mut() {
            metrics.flush(&mut engine.tally);
        }
        metrics.set_gauges(footprint);
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request { worker: self.worker.clone(), engine: 0, head: Head::default(), flow: Flow::Done }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    /// `None` only if no policy was ever loaded; such requests pass untouched.
    worker: Option<Shared>,
    /// Which engine (base policy or profile) serves this request.
    engine: usize,
    head: Head,
    flow: Flow,
}

/// Where a request is in botgate: one state, not loose options.
enum Flow {
    /// Nothing to do (not begun, botgate off on the route, answered locally, or finished).
    Done,
    /// Paused for the body, with what the head stages found.
    WaitingBody(BodyWait),
    /// Decided: what the response (the upstream's, or a local reply) carries and feeds back.
    Response(Box<ForResponse>),
    /// An HTML page the beacon's script is being added to, looking for where it goes.
    Injecting(Box<Injecting>),
}

struct Injecting {
    element: String,
    session: u64,
    /// Bytes searched so far, and how many may be.
    scanned: usize,
    limit: usize,
}

struct ForResponse {
    /// The response status feeds the session.
    follow_up: Option<FollowUp>,
    /// A clearance earned by this request: (Set-Cookie value, token).
    clearance: Option<Box<(String, String)>>,
    /// A visitor cookie handed out with the response.
    visitor: Option<String>,
    /// The page's beacon token, added if the response is HTML that can take it.
    beacon: Option<Box<PageBeacon>>,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let Some(worker) = self.worker.clone() else { return Action::Continue };
        let mut w = worker.borrow_mut();
        let route = if w.engines.per_route() { route(&w.engines) } else { Route::Engine(0) };
        self.head = Head::from_serialized(abi::request_headers());
        // Even where botgate is off, upstreams must not take a client's word for its verdict.
        for name in self.head.spoofed_botgate_headers() {
            abi::remove_request_header(name);
        }
        match route {
            Route::Disabled => return Action::Continue,
            Route::Engine(i) => self.engine = i,
        }
        let Some(engine) = w.engines.get(self.engine) else { return Action::Continue };
        // The peer says whether `x-forwarded-for` is believed (only from trusted proxies).
        self.head.peer = hostcalls::get_property(vec!["source", "address"]).ok().flatten().and_then(|a| parse_peer(&a));
        let step = engine.begin(&self.head, !end_of_stream, now_ms());
        drop(w);
        self.take(&worker, step)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let (Some(worker), Flow::WaitingBody(_)) = (self.worker.clone(), &self.flow) else { return Action::Continue };
        let limit = worker.borrow().engines.limits_of(self.engine).max_body_bytes;
        if !end_of_stream && body_size < limit {
            return Action::Pause; // keep buffering
        }
        self.decide_with_body(&worker, body_size.min(limit), body_size > limit)
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> Action {
        let (Some(worker), Flow::WaitingBody(_)) = (self.worker.clone(), &self.flow) else { return Action::Continue };
        let limit = worker.borrow().engines.limits_of(self.engine).max_body_bytes;
        self.decide_with_body(&worker, limit, false)
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let Flow::Response(out) = std::mem::replace(&mut self.flow, Flow::Done) else { return Action::Continue };
        let ForResponse { follow_up, clearance, visitor, beacon } = *out;
        if let (Some(b), false, Some(worker)) = (beacon, end_of_stream, self.worker.clone()) {
            self.prepare_injection(&worker, *b);
        }
        if let Some(c) = clearance {
            let (cookie, token) = *c;
            let _ = hostcalls::add_map_value(MapType::HttpResponseHeaders, "set-cookie", &cookie);
            let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, "x-botgate-clearance", Some(&token));
        }
        if let Some(cookie) = visitor {
            let _ = hostcalls::add_map_value(MapType::HttpResponseHeaders, "set-cookie", &cookie);
        }
        let (Some(worker), Some(follow_up)) = (self.worker.clone(), follow_up) else { return Action::Continue };
        let status = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| std::str::from_utf8(&s).ok().and_then(|s| s.parse::<u32>().ok()));
        if let (Some(status), Some(engine)) = (status, worker.borrow_mut().engines.get(self.engine)) {
            engine.on_response(follow_up, status);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Flow::Injecting(inj) = &mut self.flow else { return Action::Continue };
        let chunk =
            hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size).ok().flatten().unwrap_or_default();
        let sent = match inject::spot(&chunk) {
            inject::Spot::At(at) => {
                let page = inject::insert(&chunk, at, &inj.element);
                hostcalls::set_buffer(BufferType::HttpResponseBody, 0, body_size, &page).is_ok()
            }
            inject::Spot::MetaCsp => false,
            inject::Spot::NotYet => {
                inj.scanned += body_size;
                if inj.scanned < inj.limit && !end_of_stream {
                    return Action::Continue;
                }
                false
            }
        };
        let session = inj.session;
        self.flow = Flow::Done;
        if let Some(worker) = self.worker.clone() {
            if let Some(engine) = worker.borrow_mut().engines.get(self.engine) {
                if sent {
                    engine.beacon_sent(session, now_ms());
                } else {
                    engine.tally.bump(Counter::BeaconSkipped);
                }
            }
        }
        Action::Continue
    }
}

impl Request {
    /// A page's beacon: added to a 200 of plain HTML whose CSP lets the script run (one read
    /// of the response headers); the length is then the codec's to write.
    fn prepare_injection(&mut self, worker: &Shared, b: PageBeacon) {
        let headers = hostcalls::get_map_bytes(MapType::HttpResponseHeaders).unwrap_or_default();
        let first = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice());
        let csp: Vec<&[u8]> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("content-security-policy"))
            .map(|(_, v)| v.as_slice())
            .collect();
        let mut w = worker.borrow_mut();
        let Some(engine) = w.engines.get(self.engine) else { return };
        let limit = engine.policy().beacon.scan_bytes;
        let response = inject::Response {
            content_type: first("content-type"),
            content_encoding: first("content-encoding"),
            cache_control: first("cache-control"),
            content_disposition: first("content-disposition"),
        };
        let ok = first(":status") == Some(b"200") && inject::is_plain_html(response);
        let admit = if ok { inject::csp_admits(&csp, engine.beacon_hash()) } else { inject::Admit::Refused };
        if admit == inject::Admit::Refused {
            engine.tally.bump(Counter::BeaconSkipped);
            return;
        }
        let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, "content-length", None);
        let element = inject::element(&b.token, &admit);
        self.flow = Flow::Injecting(Box::new(Injecting { element, session: b.session, scanned: 0, limit }));
    }

    /// Carries out the engine's step: a decision, or a wait.
    fn take(&mut self, worker: &Shared, mut step: Step) -> Action {
        loop {
            step = match step {
                Step::Decided(d) => return self.carry_out(worker, d),
                Step::NeedBody(w) => {
                    self.flow = Flow::WaitingBody(w);
                    return Action::Pause;
                }
                // No lookup has a callout yet (the crawler and vendor issues add them; no asker
                // is registered until then): answered as failed, decided without it.
                Step::NeedLookup(w) => {
                    let mut guard = worker.borrow_mut();
                    let Some(engine) = guard.engines.get_or_base(self.engine) else { return Action::Continue };
                    engine.resume_lookup(w, &self.head, Answer::Failed, now_ms())
                }
            };
        }
    }

    fn decide_with_body(&mut self, worker: &Shared, len: usize, truncated: bool) -> Action {
        let Flow::WaitingBody(w) = std::mem::replace(&mut self.flow, Flow::Done) else { return Action::Continue };
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, len).ok().flatten().unwrap_or_default();
        let mut guard = worker.borrow_mut();
        let Some(engine) = guard.engines.get_or_base(self.engine) else { return Action::Continue };
        if truncated {
            engine.tally.bump(Counter::BodyTruncated);
        }
        let d = engine.resume_body(w, &self.head, &body, now_ms());
        drop(guard);
        self.carry_out(worker, d)
    }

    /// Records the evidence, then answers locally or lets the request go on with the verdict
    /// headers.
    fn carry_out(&mut self, worker: &Shared, mut d: Decision) -> Action {
        let out = ForResponse {
            follow_up: d.follow_up,
            clearance: d.clearance.take(),
            visitor: d.visitor.take(),
            beacon: d.beacon.take(),
        };
        if out.follow_up.is_some() || out.clearance.is_some() || out.visitor.is_some() || out.beacon.is_some() {
            self.flow = Flow::Response(Box::new(out));
        }
        let request_id = self.head.request_id();
        {
            let mut w = worker.borrow_mut();
            let evidence = d.evidence_of(request_id, w.engines.profile_name(self.engine));
            if let Err(e) = hostcalls::set_property(vec!["botgate"], Some(evidence.as_bytes())) {
                log::debug!("botgate: cannot set filter state: {e:?}");
            }
            if d.flagged() {
                if w.log_budget > 0 {
                    w.log_budget -= 1;
                    log::warn!("botgate decision {evidence}");
                } else {
                    w.log_suppressed += 1;
                }
            }
            if let Some(id) = w.metrics.score {
                let _ = hostcalls::record_metric(id, (d.score * 1000.0).round() as u64);
            }
            if let (Some(id), Some(ms)) = (w.metrics.solve_ms, d.solve_ms) {
                let _ = hostcalls::record_metric(id, ms);
            }
        }
        if let Some(reply) = d.reply(request_id) {
            let headers: Vec<(&str, &str)> = reply.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            if let Err(e) = hostcalls::send_http_response(reply.status, headers, Some(reply.body.as_bytes())) {
                log::error!("botgate: local reply failed: {e:?}");
                return Action::Continue;
            }
            return Action::Pause;
        }
        // Added, not replaced: the client's own `x-botgate-*` headers were removed on the way in,
        // and Envoy's add skips replace's lookup of an existing value (≈ 2 % of the CPU per
        // request for the three headers, measured side by side).
        for (name, value) in d.upstream_header_buf().pairs() {
            let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, name, value);
        }
        Action::Continue
    }
}

/// Reads the route's name and botgate metadata (`filter_metadata.botgate.{profile,disabled}`).
fn route(engines: &Engines) -> Route {
    let prop = |path: Vec<&str>| hostcalls::get_property(path).ok().flatten();
    let name = prop(vec!["xds", "route_name"]);
    let profile = prop(vec!["xds", "route_metadata", "filter_metadata", "botgate", "profile"]);
    // Booleans come back as one byte; a string or number (`"false"`, `0`) is not a boolean and
    // disables nothing.
    let disabled = prop(vec!["xds", "route_metadata", "filter_metadata", "botgate", "disabled"])
        .is_some_and(|v| v.as_slice() == [1]);
    engines.route(name.as_deref(), profile.as_deref(), disabled)
}

/// The clearance key for policies that configure none: 32 random bytes made by the first root
/// context of this Envoy (the main thread's, configured before the workers) and kept in shared
/// data, so every worker signs and checks with it. True when this call made it.
fn generated_key() -> Option<(crate::challenge::token::Key, bool)> {
    const KEY: &str = "botgate/v1/generated-clearance-key";
    let stored = || match hostcalls::get_shared_data(KEY) {
        Ok((Some(v), _)) if v.len() == 32 => Some(v),
        _ => None,
    };
    if let Some(v) = stored() {
        return Some((crate::challenge::token::Key::generated_from(v), false));
    }
    hostcalls::set_shared_data(KEY, Some(&crate::base::mac::random::<32>()), None).ok()?;
    // Read back what is stored: of two roots racing here, both use the one that stayed.
    stored().map(|v| (crate::challenge::token::Key::generated_from(v), true))
}

fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

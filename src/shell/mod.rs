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
mod callouts;
mod delays;
mod feeds;
mod fleet;
mod metrics;
mod nonces;
mod spends;
mod vendors;

use metrics::Metrics;
use nonces::SharedNonces;

use crate::base::telemetry::Counter;
use crate::challenge::inject;
use crate::decision::record::{Decision, FollowUp, PageBeacon, Reply};
use crate::engine::{BodyWait, Engines, LookupWait, Route, Step};
use crate::identity::client::parse_peer;
use crate::policy::{self, Severity};
use crate::request::head::Head;
use callouts::{Asked, Callouts, Finished};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(Root { id, worker: None, next_full_tick: 0 }) });
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
    /// Lookups on their way, the requests waiting for them, and the state of requests a lookup
    /// has resumed until their own context picks it up ([`Request::adopt`]).
    calls: Callouts,
    /// Vendor sources' rounds on their way.
    vendor_calls: vendors::VendorCalls,
    /// Throttled and tarpitted requests waiting out their delay.
    delays: delays::Delays,
    /// The fleet's count syncs and failure rounds on their way.
    fleet: fleet::FleetCalls,
    /// Solutions being spent in the fleet's Redis.
    spends: spends::Spends,
    /// Lists kept fresh from the policy's feeds.
    feeds: feeds::Feeds,
    parked: HashMap<u32, Parked>,
    settled: HashMap<u32, Stream>,
}

/// A request waiting for a lookup: where it is, and how much of its body has arrived meanwhile.
struct Parked {
    stream: Stream,
    wait: LookupWait,
    body: BodyProgress,
}

#[derive(Default, Clone, Copy)]
struct BodyProgress {
    size: usize,
    /// All of it (or as much as the policy reads) is buffered.
    complete: bool,
}

/// Flagged decisions logged per worker per second (all of them are in the access log).
const LOG_LINES_PER_SECOND: u32 = 20;

type Shared = Rc<RefCell<Worker>>;

struct Root {
    id: u32,
    worker: Option<Shared>,
    /// When the once-a-second work (sweeps, feeds, metrics) is next due (ms).
    next_full_tick: u64,
}

impl Context for Root {
    /// The VM's policy goes with it: its `botgate_policy_info` 1 too, or the drift alert would
    /// keep seeing a policy no longer loaded.
    fn on_done(&mut self) -> bool {
        if let Some(w) = &self.worker {
            w.borrow_mut().metrics.drop_policy_info();
        }
        true
    }

    /// A feed's list (feeds are fetched by the root, on the tick).
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _trailers: usize) {
        let Some(shared) = &self.worker else { return };
        let (status, body) = call_response(headers, body_size, policy::feeds::MAX_BODY + 1);
        let mut w = shared.borrow_mut();
        let Worker { engines, feeds, fleet, .. } = &mut *w;
        if !fleet.on_response(token, status, &body, engines, now_ms()) {
            feeds.on_response(token, status, &body, engines, now_ms());
        }
    }
}

/// A callout's status and (up to `max` bytes of) body.
fn call_response(headers: usize, body_size: usize, max: usize) -> (Option<u32>, Vec<u8>) {
    let status = (headers > 0)
        .then(|| hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status").ok().flatten())
        .flatten()
        .and_then(|s| std::str::from_utf8(&s).ok().and_then(|s| s.parse::<u32>().ok()));
    let body = match body_size {
        0 => Vec::new(),
        n => hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, n.min(max)).ok().flatten().unwrap_or_default(),
    };
    (status, body)
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        // Keys of a policy being replaced leave memory (the new one's are cached again on use).
        crate::base::mac::forget_keys();
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
        let feeds = feeds::Feeds::new(&mut engines, now_ms());
        match &self.worker {
            // A reconfiguration keeps the metric ids and starts the windows afresh.
            Some(w) => {
                let mut w = w.borrow_mut();
                w.engines = engines;
                w.feeds = feeds;
            }
            None => {
                let worker = Worker {
                    engines,
                    metrics: Metrics::define(),
                    log_budget: LOG_LINES_PER_SECOND,
                    log_suppressed: 0,
                    calls: Callouts::default(),
                    vendor_calls: vendors::VendorCalls::default(),
                    feeds,
                    parked: HashMap::new(),
                    delays: delays::Delays::default(),
                    fleet: fleet::FleetCalls::default(),
                    spends: spends::Spends::default(),
                    settled: HashMap::new(),
                };
                self.worker = Some(Rc::new(RefCell::new(worker)));
            }
        }
        let hash = policy::hash(&text).unwrap_or_default();
        if let Some(w) = &self.worker {
            w.borrow_mut().metrics.policy_info(&hash);
        }
        let _ = hostcalls::set_tick_period(TICK);
        log::info!("botgate {}: policy {hash} loaded", env!("CARGO_PKG_VERSION"));
        true
    }

    fn on_tick(&mut self) {
        let Some(shared) = self.worker.clone() else { return };
        let now = now_ms();
        release_held(&shared, now);
        abi::set_effective_context(self.id);
        let fast = !shared.borrow().delays.is_empty();
        let _ = hostcalls::set_tick_period(if fast { delays::FAST_TICK } else { TICK });
        if now < self.next_full_tick {
            return;
        }
        self.next_full_tick = now + TICK.as_millis() as u64 - delays::FAST_TICK.as_millis() as u64 / 2;
        let shared = &shared;
        let expired: Vec<Finished> = {
            let mut w = shared.borrow_mut();
            let mut late: Vec<Finished> = w.calls.expired(now_ms()).into_iter().map(|(_, f)| f).collect();
            late.extend(w.vendor_calls.expired(now_ms()));
            late.extend(w.spends.expired(now_ms()));
            late
        };
        if !expired.is_empty() {
            for f in expired {
                settle(shared, f);
            }
            abi::set_effective_context(self.id);
        }
        let mut w = shared.borrow_mut();
        let Worker { engines, metrics, log_budget, log_suppressed, feeds, vendor_calls, fleet, .. } = &mut *w;
        feeds.tick(engines, now_ms());
        fleet.sync(engines, now_ms());
        vendor_calls.report_ages(engines.get(0).and_then(|e| e.policy().vendors.as_ref()), now_ms());
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

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request { worker: self.worker.clone(), id: context_id, s: Stream::default() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    /// `None` only if no policy was ever loaded; such requests pass untouched.
    worker: Option<Shared>,
    /// The host's id of this request's context (lookups resume it by its id).
    id: u32,
    s: Stream,
}

/// A request's own state: what a lookup's answer resumes (in the worker while it waits).
#[derive(Default)]
struct Stream {
    /// Which engine (base policy or profile) serves this request.
    engine: usize,
    head: Head,
    flow: Flow,
    /// The headers went upstream before the decision (the body decides, and the host does not
    /// let a filter hold headers while it reads the body): no verdict headers can follow them.
    headers_sent: bool,
    /// The host's id of the request's context (a held request is released by it).
    id: u32,
    /// When the engine took the request (ms): recorded in the evidence for replays.
    started: u64,
}

/// Where a request is in botgate: one state, not loose options.
#[derive(Default)]
enum Flow {
    /// Nothing to do (not begun, botgate off on the route, answered locally, or finished).
    #[default]
    Done,
    /// Waiting for a lookup: the stream is parked in the worker ([`Parked`]).
    Parked,
    /// Paused for the body, with what the head stages found.
    WaitingBody(BodyWait),
    /// Held for a graduated answer's delay ([`delays`]).
    Held,
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

impl Context for Request {
    /// A DNS-over-HTTPS answer for a lookup this request sent (on its own behalf and for every
    /// request that joined it).
    fn on_http_call_response(&mut self, token: u32, headers: usize, body_size: usize, _trailers: usize) {
        let Some(worker) = self.worker.clone() else { return };
        let (status, body) = call_response(headers, body_size, MAX_DNS_REPLY);
        let finished = {
            let mut w = worker.borrow_mut();
            let now = now_ms();
            w.vendor_calls
                .on_response(token, status, &body, now)
                .or_else(|| w.spends.on_response(token, status, &body, now))
                .or_else(|| w.calls.on_response(token, status, &body, now).map(|(_, f)| f))
        };
        if let Some(f) = finished {
            settle(&worker, f);
            abi::set_effective_context(self.id);
        }
        self.adopt();
    }
}

/// Larger callout answers are not read: a verification needs a few records, a vendor's answer
/// a few decisions (CrowdSec lists every decision on an address: room for hundreds).
const MAX_DNS_REPLY: usize = 256 * 1024;

impl Drop for Request {
    /// A request whose client left while it waited stops waiting.
    fn drop(&mut self) {
        if matches!(self.s.flow, Flow::Held) {
            if let Some(Ok(mut w)) = self.worker.as_ref().map(|w| w.try_borrow_mut()) {
                w.delays.forget(self.id);
            }
            return;
        }
        if !matches!(self.s.flow, Flow::Parked) {
            return;
        }
        if let Some(Ok(mut w)) = self.worker.as_ref().map(|w| w.try_borrow_mut()) {
            w.parked.remove(&self.id);
            w.settled.remove(&self.id);
            w.calls.forget(self.id);
            w.vendor_calls.forget(self.id, now_ms());
            w.spends.forget(self.id);
        }
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let Some(worker) = self.worker.clone() else { return Action::Continue };
        let mut w = worker.borrow_mut();
        let route = if w.engines.per_route() { route(&w.engines) } else { Route::Engine(0) };
        self.s.head = Head::from_serialized(abi::request_headers());
        self.s.id = self.id;
        // Even where botgate is off, upstreams must not take a client's word for its verdict.
        for name in self.s.head.spoofed_botgate_headers() {
            abi::remove_request_header(name);
        }
        match route {
            Route::Disabled => return Action::Continue,
            Route::Engine(i) => self.s.engine = i,
        }
        let Some(engine) = w.engines.get(self.s.engine) else { return Action::Continue };
        // The peer says whether `x-forwarded-for` is believed (only from trusted proxies).
        self.s.head.peer =
            hostcalls::get_property(vec!["source", "address"]).ok().flatten().and_then(|a| parse_peer(&a));
        self.s.started = now_ms();
        let step = engine.begin(&self.s.head, !end_of_stream, self.s.started);
        drop(w);
        self.drive(&worker, step)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.adopt();
        let Some(worker) = self.worker.clone() else { return Action::Continue };
        let limit = worker.borrow().engines.limits_of(self.s.engine).max_body_bytes;
        if let Flow::Parked = self.s.flow {
            // Buffered until the lookup answers; the decision then reads it.
            if let Some(p) = worker.borrow_mut().parked.get_mut(&self.id) {
                p.body = BodyProgress { size: body_size, complete: end_of_stream || body_size >= limit };
            }
            return Action::Pause;
        }
        if matches!(self.s.flow, Flow::Held) {
            if worker.borrow().delays.holds(self.id) {
                return Action::Pause; // buffered until the delay is over
            }
            self.s.flow = Flow::Done; // released: the rest of the body follows
            return Action::Continue;
        }
        if !matches!(self.s.flow, Flow::WaitingBody(_)) {
            return Action::Continue;
        }
        if !end_of_stream && body_size < limit {
            return Action::Pause; // keep buffering
        }
        self.s.decide_with_body(&worker, body_size.min(limit), body_size > limit)
    }

    fn on_http_request_trailers(&mut self, _trailers: usize) -> Action {
        self.adopt();
        let Some(worker) = self.worker.clone() else { return Action::Continue };
        let limit = worker.borrow().engines.limits_of(self.s.engine).max_body_bytes;
        match self.s.flow {
            Flow::Parked => {
                if let Some(p) = worker.borrow_mut().parked.get_mut(&self.id) {
                    p.body.complete = true;
                }
                Action::Pause
            }
            Flow::WaitingBody(_) => self.s.decide_with_body(&worker, limit, false),
            Flow::Held if worker.borrow().delays.holds(self.id) => Action::Pause,
            _ => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        self.adopt();
        let Flow::Response(out) = std::mem::replace(&mut self.s.flow, Flow::Done) else { return Action::Continue };
        let ForResponse { follow_up, clearance, visitor, beacon } = *out;
        if let (Some(b), false, Some(worker)) = (beacon, end_of_stream, self.worker.clone()) {
            self.s.prepare_injection(&worker, *b);
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
        if let (Some(status), Some(engine)) = (status, worker.borrow_mut().engines.get(self.s.engine)) {
            engine.on_response(follow_up, status);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Flow::Injecting(inj) = &mut self.s.flow else { return Action::Continue };
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
        self.s.flow = Flow::Done;
        if let Some(worker) = self.worker.clone() {
            if let Some(engine) = worker.borrow_mut().engines.get(self.s.engine) {
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
    /// Carries out the engine's steps; a lookup is answered from shared data, joined, sent, or
    /// (when none can be sent) answered as failed. A request that waits is parked in the worker.
    fn drive(&mut self, worker: &Shared, step: Step) -> Action {
        match self.s.advance(worker, step, BodyProgress::default(), self.id) {
            Resumed::Done(action) => action,
            Resumed::Waiting(wait) => {
                let stream = std::mem::replace(&mut self.s, Stream { flow: Flow::Parked, ..Stream::default() });
                self.s.engine = stream.engine;
                let parked = Parked { stream, wait: *wait, body: BodyProgress::default() };
                worker.borrow_mut().parked.insert(self.id, parked);
                Action::Pause
            }
        }
    }

    /// Takes back the state a lookup's answer left in the worker for this request.
    fn adopt(&mut self) {
        if !matches!(self.s.flow, Flow::Parked) {
            return;
        }
        if let Some(s) = self.worker.as_ref().and_then(|w| w.borrow_mut().settled.remove(&self.id)) {
            self.s = s;
        }
    }
}

/// Asks the lookup `wait` needs through the engine's policy (only reverse DNS has a callout).
fn ask(worker: &Shared, engine: usize, wait: &LookupWait, context: u32, now: u64) -> Asked {
    let mut guard = worker.borrow_mut();
    let Worker { engines, calls, vendor_calls, spends, .. } = &mut *guard;
    let q = wait.question();
    if q.service == crate::engine::spends::FLEET_SPEND {
        return match engines.get_or_base(engine).and_then(|e| e.policy().fleet.as_ref()) {
            Some(f) => spends.ask(q, f, context, now),
            None => Asked::Failed("no_callout"),
        };
    }
    if q.service == crate::engine::vendors::VENDORS {
        return match engines.get_or_base(engine).and_then(|e| e.policy().vendors.as_ref()) {
            Some(v) => vendor_calls.ask(&q.key, v, context, now),
            None => Asked::Failed("no_callout"),
        };
    }
    let crawlers = engines.get_or_base(engine).and_then(|e| e.policy().crawlers.as_ref());
    match crawlers.and_then(|c| c.doh.as_ref().map(|d| (d, c.suffixes()))) {
        Some((doh, suffixes)) if q.service == crate::engine::FCRDNS => calls.ask(&q.key, doh, &suffixes, context, now),
        _ => Asked::Failed("no_callout"),
    }
}

/// Resumes every request waiting for a finished lookup, each in its own context.
/// Ends the delays that are due: a tarpitted request gets its refusal, a throttled one goes on.
fn release_held(worker: &Shared, now: u64) {
    let due = worker.borrow_mut().delays.due(now);
    for held in due {
        if !abi::set_effective_context(held.id) {
            continue; // its client left
        }
        match held.reply {
            Some(reply) => {
                let headers: Vec<(&str, &str)> = reply.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                if let Err(e) = hostcalls::send_http_response(reply.status, headers, Some(reply.body.as_bytes())) {
                    log::error!("botgate: delayed reply failed: {e:?}");
                }
            }
            None => {
                abi::resume_request();
            }
        }
    }
}

fn settle(worker: &Shared, f: Finished) {
    count_callout(worker, f.service, f.failure, Some(f.elapsed_ms));
    let now = now_ms();
    for id in f.waiters {
        let Some(parked) = worker.borrow_mut().parked.remove(&id) else { continue };
        if !abi::set_effective_context(id) {
            continue;
        }
        let Parked { mut stream, wait, body } = parked;
        let step = {
            let mut guard = worker.borrow_mut();
            let Some(engine) = guard.engines.get_or_base(stream.engine) else { continue };
            engine.resume_lookup(wait, &stream.head, f.answer.clone(), now)
        };
        match stream.advance(worker, step, body, id) {
            Resumed::Done(action) => {
                if action == Action::Continue {
                    abi::resume_request();
                }
                worker.borrow_mut().settled.insert(id, stream);
            }
            // Its next lookup was sent from here, in its own context: it waits again.
            Resumed::Waiting(wait) => {
                worker.borrow_mut().parked.insert(id, Parked { stream, wait: *wait, body });
            }
        }
    }
}

/// What a request resumed by a lookup's answer came to.
enum Resumed {
    Done(Action),
    /// It needs another lookup, which was sent: parked again.
    Waiting(Box<LookupWait>),
}

/// The metric label of a lookup's service.
fn service_label(q: &crate::engine::lookups::Lookup) -> &'static str {
    match q.service {
        crate::engine::vendors::VENDORS => "vendors",
        crate::engine::spends::FLEET_SPEND => "fleet",
        _ => "dns",
    }
}

/// The callout metrics: answered or failed (and why), and how long the lookup took.
fn count_callout(worker: &Shared, service: &'static str, failure: Option<&'static str>, elapsed_ms: Option<u64>) {
    if service != "dns" {
        return; // the vendor sources count their own answers, per source
    }
    let mut w = worker.borrow_mut();
    if let (Some(id), Some(ms)) = (w.metrics.callout_ms, elapsed_ms) {
        let _ = hostcalls::record_metric(id, ms);
    }
    let Some(engine) = w.engines.get_or_base(0) else { return };
    match failure {
        None => engine.tally.bump(Counter::CalloutDnsAnswered),
        Some(why) => {
            engine.tally.bump(Counter::CalloutDnsFailed);
            engine.tally.bump_named(&format!("botgate_callout_failures_total.service.dns.reason.{why}"));
        }
    }
}

impl Stream {
    /// Carries out the engine's steps until one needs a lookup (`Err`). `body`: what has arrived
    /// of the body while the request waited (nothing on the first pass).
    fn take(&mut self, worker: &Shared, step: Step, body: BodyProgress) -> Result<Action, Box<LookupWait>> {
        match step {
            Step::Decided(d) => Ok(self.carry_out(worker, d)),
            Step::NeedBody(w) => {
                self.flow = Flow::WaitingBody(w);
                let limits = worker.borrow().engines.limits_of(self.engine);
                if !body.complete {
                    if !limits.hold_headers {
                        // Held headers would stall the request for good (Envoy stops the body
                        // too): they go on, and the body is held instead.
                        self.headers_sent = true;
                        return Ok(Action::Continue);
                    }
                    return Ok(Action::Pause);
                }
                let limit = limits.max_body_bytes;
                Ok(self.decide_with_body(worker, body.size.min(limit), body.size > limit))
            }
            Step::NeedLookup(w) => Err(Box::new(w)),
        }
    }

    /// Carries out the engine's steps for the request `id` (the host's effective context is its
    /// own), asking each lookup it needs: answered at once (shared data, a failure), or sent, and
    /// then the request waits. The same on the first pass and in a callback that resumed it, so
    /// one answer cannot leave the next question unasked (a vendor source skipped, a spend not
    /// judged).
    fn advance(&mut self, worker: &Shared, mut step: Step, body: BodyProgress, id: u32) -> Resumed {
        loop {
            let wait = match self.take(worker, step, body) {
                Ok(action) => return Resumed::Done(action),
                Err(w) => w,
            };
            let now = now_ms();
            let answer = match ask(worker, self.engine, &wait, id, now) {
                Asked::Waiting => return Resumed::Waiting(wait),
                Asked::Known(a) => Some(a),
                Asked::Failed(why) => {
                    count_callout(worker, service_label(wait.question()), Some(why), None);
                    None
                }
            };
            let mut guard = worker.borrow_mut();
            let Some(engine) = guard.engines.get_or_base(self.engine) else { return Resumed::Done(Action::Continue) };
            step = match answer {
                Some(a) => engine.resume_lookup(*wait, &self.head, a, now),
                None => engine.resume_unasked(*wait, &self.head, now),
            };
        }
    }

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
        let Some(token) = engine.beacon_token(&b, &self.head) else { return };
        let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, "content-length", None);
        let element = inject::element(&token, &admit);
        self.flow = Flow::Injecting(Box::new(Injecting { element, session: b.session, scanned: 0, limit }));
    }

    /// Holds the request for `delay_ms` (a throttled one with its verdict headers added, a
    /// tarpitted one with its refusal ready). With the worker's slots all taken it is answered
    /// at once (`None`), throttled ones refused: a flood cannot hold Envoy through botgate.
    fn hold(&mut self, worker: &Shared, d: &mut Decision, delay_ms: u64, reply: Option<Reply>) -> Option<Action> {
        let mut w = worker.borrow_mut();
        let max = w.engines.get_or_base(self.engine).map_or(0, |e| e.policy().answers.max_delayed);
        let held = delays::Held { id: self.id, due: now_ms() + delay_ms, reply: reply.clone() };
        if !w.delays.hold(held, max) {
            if let Some(e) = w.engines.get_or_base(self.engine) {
                e.tally.bump(Counter::AnswersDelayFull);
            }
            d.graded = None; // refused at once, as without graduated answers
            return None;
        }
        drop(w);
        if reply.is_none() && !self.headers_sent {
            for (name, value) in d.upstream_header_buf().pairs() {
                let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, name, value);
            }
        }
        let _ = hostcalls::set_tick_period(delays::FAST_TICK);
        self.flow = Flow::Held;
        Some(Action::Pause)
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
            d.at = self.started;
            let cookies = self.head.all("cookie");
            let evidence = d.evidence_with(request_id, w.engines.profile_name(self.engine), cookies);
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
        if let Some(g) = d.delivered().filter(|g| g.delay_ms > 0) {
            let reply = d.reply(self.head.request_id());
            if let Some(action) = self.hold(worker, &mut d, g.delay_ms, reply) {
                return action;
            }
        }
        let request_id = self.head.request_id();
        if let Some(reply) = d.reply(request_id) {
            let headers: Vec<(&str, &str)> = reply.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            if let Err(e) = hostcalls::send_http_response(reply.status, headers, Some(reply.body.as_bytes())) {
                log::error!("botgate: local reply failed: {e:?}");
                return Action::Continue;
            }
            return Action::Pause;
        }
        if self.headers_sent {
            return Action::Continue; // the evidence is in the access log
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

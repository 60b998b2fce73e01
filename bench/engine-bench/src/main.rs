//! Native micro-benchmark of botgate's engine: nanoseconds per request, no Envoy, no Wasm.
//!
//! Each case runs `RUNS` timed runs of about 100 ms each, after a warm-up that fills the tables
//! to their steady state; it reports the median run (and the fastest and slowest), in ns per
//! request. Requests come from bench/traffic.lua's 10,000 clients, paths and cookies, and the clock
//! advances as at 10,000 requests per second, so windows roll and tables sweep as in Envoy.
//!
//!     cargo run --release --manifest-path bench/engine-bench/Cargo.toml [-- CASE-SUBSTRING]
//!
//! Built for wasm32-wasip1 and run under Node (bench/engine-bench/run-wasm.mjs), the same code
//! runs in V8, the engine Envoy runs botgate in: the gap between the two is the Wasm penalty
//! (no SHA extensions or SIMD, 32-bit linear memory, bounds checks).

use botgate::checks::similarity::{BodyIndex, Sketch};
use botgate::engine::{drive, Engine};
use botgate::request::head::Head;
use std::hint::black_box;
use std::time::Instant;

const POOL: usize = 10_000;
/// Warm-up requests: fill the tables (every client and prompt seen at least twice).
const WARMUP: usize = 20_000;
/// Rough length of one timed run.
const RUN_MS: f64 = 100.0;
const RUNS: usize = 7;
const START_MS: u64 = 1_700_000_000_000;

fn main() {
    // Compiled in, so the wasm build needs no file access.
    let bench_policy = include_bytes!("../../policy.bench.json");
    let example_policy = include_bytes!("../../../envoy/policy.example.json");

    let gets: Vec<Head> = (0..POOL).map(get_head).collect();
    let bodies: Vec<Vec<u8>> = (0..POOL).map(json_body).collect();
    let posts: Vec<Head> = (0..POOL).map(|i| post_head(&client(i), bodies[i].len())).collect();

    let build = if cfg!(target_arch = "wasm32") { "wasm32-wasip1 under Node's V8" } else { "native" };
    println!("Engine micro-benchmark ({build}, no Envoy), ns per request: median of {RUNS} runs (fastest–slowest)");
    println!();
    println!("| case | ns/request |");
    println!("|---|---|");

    let mut engine = engine(bench_policy);
    report(
        "GET, bench policy: `begin`, the whole decision (client, allow-list, limits, session, detector, score)",
        |i, now| {
            tick(&mut engine, i, now);
            black_box(drive::decide(&mut engine, &gets[i % POOL], None, now).score);
        },
    );

    let mut engine = self::engine(bench_policy);
    report("GET, bench policy: all the engine work of a request in Envoy (`begin`, spoofed-header scan, evidence JSON, verdict headers, `on_response`)", |i, now| {
        tick(&mut engine, i, now);
        let head = &gets[i % POOL];
        black_box(head.spoofed_botgate_headers());
        let d = drive::exchange(&mut engine, head, None, now, 200);
        black_box(d.evidence("5f0c6a8e-2d4b-4c1e-9a7f-3b2d1e0f9a8c"));
        black_box(d.upstream_headers());
    });

    // The same work split by what the request carries: cookies mean a signed-in session to look
    // up (and its cookie names in the evidence).
    for (cookies, label) in [(false, "GET without cookies"), (true, "GET carrying a session cookie")] {
        let mut engine = self::engine(bench_policy);
        let picked: Vec<Head> = (0..POOL).map(|i| with_cookie(i, cookies)).collect();
        report(&format!("{label}, bench policy: all the engine work of a request in Envoy"), |i, now| {
            tick(&mut engine, i, now);
            let head = &picked[i % POOL];
            black_box(head.spoofed_botgate_headers());
            let d = drive::exchange(&mut engine, head, None, now, 200);
            black_box(d.evidence("5f0c6a8e-2d4b-4c1e-9a7f-3b2d1e0f9a8c"));
            black_box(d.upstream_headers());
        });
    }

    let mut engine = self::engine(example_policy);
    report("GET, example policy (40/min per IP, 500/min global: mostly rate-limited, 429 reply built)", |i, now| {
        tick(&mut engine, i, now);
        black_box(drive::decide(&mut engine, &gets[i % POOL], None, now).reply("5f0c6a8e-2d4b-4c1e-9a7f-3b2d1e0f9a8c"));
    });

    let mut engine = self::engine(bench_policy);
    report(
        "POST 1 KB JSON to /v1/, bench policy: `begin` + `finish` (adds sketch, near-duplicate lookup, JSON `model`)",
        |i, now| {
            tick(&mut engine, i, now);
            let head = &posts[i % POOL];
            black_box(drive::decide(&mut engine, head, Some(&bodies[i % POOL]), now).score);
        },
    );

    report("`Sketch::of` a 1 KB JSON body alone", |i, _| {
        black_box(Sketch::of(&bodies[i % POOL]));
    });

    // The example policy's index: 0.9 threshold, 60 s window, 10,000 bodies.
    let sketches: Vec<Sketch> = bodies.iter().filter_map(|b| Sketch::of(b)).collect();
    let mut index = BodyIndex::new(0.9, 60_000, 10_000);
    report("`BodyIndex::observe` alone (near-duplicate lookup and insert, sketch given)", |i, now| {
        black_box(index.observe(sketches[i % POOL].clone(), now));
    });

    report("`Sketch::similarity` of two near-duplicate bodies (one candidate comparison)", |i, _| {
        black_box(sketches[i % POOL].similarity(&sketches[(i + 50) % POOL]));
    });

    let serialized: Vec<Vec<u8>> = (0..POOL).map(get_pairs).map(|p| Head::serialize(&p)).collect();
    report(
        "`Head` from the host's serialized header map (the shell's per-request read: the buffer kept, one index)",
        |i, _| {
            black_box(Head::from_serialized(serialized[i % POOL].clone()));
        },
    );

    memory_per_client(bench_policy);
}

/// The engine's tracked state per client address, as its own accounting counts it
/// (`Footprint::state_bytes`: windows, sessions, sketches), after 50,000 browsers' first pages.
fn memory_per_client(policy: &[u8]) {
    if std::env::args().nth(1).is_some() {
        return;
    }
    let mut engine = engine(policy);
    let clients = 50_000;
    for i in 0..clients {
        let head = get_head(i + POOL);
        black_box(drive::exchange(&mut engine, &head, None, START_MS + i as u64, 200));
    }
    let f = engine.footprint();
    println!();
    println!(
        "Memory per tracked client: {} bytes ({} clients, {} sessions tracked; {} bytes of state in all)",
        f.state_bytes / f.clients.max(1),
        f.clients,
        f.sessions,
        f.state_bytes
    );
}

/// The shell's 1 s tick (sweeps expired state), as at 10,000 requests per second.
fn tick(engine: &mut Engine, i: usize, now: u64) {
    if i.is_multiple_of(10_000) {
        black_box(engine.tick(now));
    }
}

fn engine(policy: &[u8]) -> Engine {
    let parsed = botgate::policy::parse(policy);
    let Some(policy) = parsed.policy else {
        let errors: Vec<String> = parsed.errors().map(ToString::to_string).collect();
        eprintln!("policy refused: {}", errors.join("; "));
        std::process::exit(1);
    };
    Engine::new(policy)
}

/// Times `step(i, now_ms)`: a warm-up pass that also sizes the runs to about `RUN_MS` each,
/// then `RUNS` timed passes; prints a table row with the median, fastest and slowest run.
fn report(name: &str, mut step: impl FnMut(usize, u64)) {
    // An argument runs only the cases whose name contains it (for profiling one case).
    if std::env::args().nth(1).is_some_and(|only| !name.contains(&only)) {
        return;
    }
    let mut i = 0usize;
    let mut pass = |iters: usize, step: &mut dyn FnMut(usize, u64)| {
        let t = Instant::now();
        for _ in 0..iters {
            step(i, START_MS + (i / 10) as u64); // 10 requests per millisecond
            i += 1;
        }
        t.elapsed().as_nanos() as f64 / iters as f64
    };
    let warm = pass(WARMUP, &mut step);
    let iters = ((RUN_MS * 1e6 / warm) as usize).clamp(1_000, 1_000_000);
    let mut runs: Vec<f64> = (0..RUNS).map(|_| pass(iters, &mut step)).collect();
    runs.sort_by(f64::total_cmp);
    println!("| {name} | {:.0} ({:.0}–{:.0}) |", runs[RUNS / 2], runs[0], runs[RUNS - 1]);
}

/// Client `i`'s address, as bench/traffic.lua writes it.
fn client(i: usize) -> String {
    format!("45.{}.{}.9", 10 + i / 256, i % 256)
}

/// The headers Envoy hands botgate for bench/traffic.lua's request from client `i`.
fn get_head(i: usize) -> Head {
    let pairs = get_pairs(i);
    head(&pairs.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>())
}

/// Client `i`'s GET with a session cookie, or with none (the traffic's own mix is half and half).
fn with_cookie(i: usize, cookie: bool) -> Head {
    let mut pairs = get_pairs(i);
    pairs.retain(|(k, _)| *k != "cookie");
    if cookie {
        pairs.push(("cookie", format!("session_id=s{:08x}; theme=dark", (i as u64 * 2_654_435_761) % (1 << 32))));
    }
    head(&pairs.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>())
}

fn get_pairs(i: usize) -> Vec<(&'static str, String)> {
    const PATHS: [&str; 6] =
        ["/", "/api/products?page=2", "/v1/search?q=shoes", "/account/orders", "/cart", "/static/app.js"];
    let ip = client(i);
    let cookie = format!("session_id=s{:08x}; theme=dark", (i as u64 * 2_654_435_761) % (1 << 32));
    let mut pairs = vec![
        (":authority", "127.0.0.1:20080".to_string()),
        (":path", PATHS[i % PATHS.len()].to_string()),
        (":method", "GET".to_string()),
        (":scheme", "http".to_string()),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
                .to_string(),
        ),
        ("accept", "text/html".to_string()),
        ("accept-language", "en".to_string()),
        ("x-forwarded-for", ip),
        ("x-forwarded-proto", "http".to_string()),
        ("x-request-id", "5f0c6a8e-2d4b-4c1e-9a7f-3b2d1e0f9a8c".to_string()),
    ];
    if i.is_multiple_of(2) {
        pairs.push(("cookie", cookie));
    }
    pairs
}

fn post_head(ip: &str, len: usize) -> Head {
    let len = len.to_string();
    head(&[
        (":authority", "127.0.0.1:20080"),
        (":path", "/v1/chat/completions"),
        (":method", "POST"),
        (":scheme", "http"),
        ("user-agent", "python-requests/2.32.3"),
        ("content-type", "application/json"),
        ("content-length", &len),
        ("authorization", "Bearer sk-test-0123456789abcdef"),
        ("x-forwarded-for", ip),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "5f0c6a8e-2d4b-4c1e-9a7f-3b2d1e0f9a8c"),
    ])
}

fn head(pairs: &[(&str, &str)]) -> Head {
    // As the shell builds it: from the host's serialized map, and the peer (a trusted proxy).
    Head::from_serialized(Head::serialize(pairs)).with_peer("127.0.0.1".parse().ok())
}

/// A ~1 KB chat-completion body: one of 50 prompts of 130 words drawn from 3,000 made-up words
/// (so prompts share few words), with one word changed per request, so the index sees both
/// near-duplicates (same prompt) and unrelated bodies (other prompts).
fn json_body(i: usize) -> Vec<u8> {
    const SYLLABLES: &[&str] = &["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "go", "hu", "ze", "fi"];
    let prompt = i % 50;
    let mut seed = (prompt as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut words: Vec<String> = (0..130)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let w = (seed % 3000) as usize;
            [w % 14, (w / 14) % 14, w / 196].iter().map(|&s| SYLLABLES[s % 14]).collect()
        })
        .collect();
    words[(i / 50) % 130] = format!("x{}", i / 50); // the per-request change
    format!(
        r#"{{"model":"gpt-4o-mini","temperature":0.2,"messages":[{{"role":"system","content":"You are a helpful assistant."}},{{"role":"user","content":"{}"}}]}}"#,
        words.join(" ")
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn bodies_are_about_1_kb_and_near_duplicates_within_a_prompt_only() {
        use botgate::checks::similarity::Sketch;
        let len = super::json_body(0).len();
        assert!((900..1300).contains(&len), "{len}");
        let s = |i| Sketch::of(&super::json_body(i)).unwrap();
        assert!(s(0).similarity(&s(50)) >= 0.9);
        assert!(s(0).similarity(&s(1)) < 0.3);
    }
}

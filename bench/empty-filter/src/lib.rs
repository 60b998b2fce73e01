//! The empty filter: an HTTP context that lets every request through untouched.
//!
//! The SDK exports every callback, so Envoy makes the same per-request calls into the VM as it
//! does for botgate (context create, headers, done, delete); only the work inside them is missing.
//!
//! Built with `--features hostcalls` it instead makes the host calls botgate makes for a request
//! that passes (read the headers, read the clock, set the filter state, record the score
//! histogram, add three verdict headers, read the response status) with fixed values and no
//! engine work: the bench's "hostcalls-only" configuration, which splits botgate's cost into
//! host calls and its own work. Features `headers`, `clock`, `property`, `metric`,
//! `verdict-headers` and `response-status` make one group each.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    #[cfg_attr(not(feature = "metric"), allow(dead_code))]
    histogram: Option<u32>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        #[cfg(feature = "metric")]
        {
            use proxy_wasm::{hostcalls, types::MetricType};
            self.histogram = hostcalls::define_metric(MetricType::Histogram, "bench_score").ok();
        }
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Pass { histogram: self.histogram }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Pass {
    #[cfg_attr(not(feature = "metric"), allow(dead_code))]
    histogram: Option<u32>,
}

impl Context for Pass {}

impl HttpContext for Pass {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.botgate_host_calls(); // nothing at all without features
        #[cfg(feature = "burn")]
        std::hint::black_box(bench_burn(std::hint::black_box(BURN_ITERS)));
        #[cfg(feature = "burn-memory")]
        std::hint::black_box(bench_burn_memory(std::hint::black_box(BURN_ITERS)));
        Action::Continue
    }

    #[cfg(feature = "response-status")]
    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.botgate_response_calls();
        Action::Continue
    }
}

impl Pass {
    /// The host calls of botgate's src/filter.rs for a passing GET, in the same order. Each
    /// group has its own feature so its cost can be measured alone (see BENCHMARKS.md).
    fn botgate_host_calls(&self) {
        #[cfg(any(feature = "headers", feature = "verdict-headers"))]
        use proxy_wasm::types::MapType;
        #[cfg(feature = "headers")]
        std::hint::black_box(proxy_wasm::hostcalls::get_map_bytes(MapType::HttpRequestHeaders).ok());
        #[cfg(feature = "clock")]
        let _ = proxy_wasm::hostcalls::get_current_time();
        #[cfg(feature = "property")]
        let _ = proxy_wasm::hostcalls::set_property(vec!["botgate"], Some(EVIDENCE.as_bytes()));
        #[cfg(feature = "metric")]
        if let Some(id) = self.histogram {
            let _ = proxy_wasm::hostcalls::record_metric(id, 0);
        }
        #[cfg(feature = "verdict-headers")]
        for (name, value) in [("x-botgate-score", "0.00"), ("x-botgate-tier", "pass"), ("x-botgate-reasons", "")] {
            let _ = proxy_wasm::hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
        }
    }
}

impl Pass {
    /// botgate reads the response status of requests that went upstream (it feeds the session).
    #[cfg(feature = "response-status")]
    fn botgate_response_calls(&self) {
        use proxy_wasm::types::MapType;
        let status = proxy_wasm::hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status");
        std::hint::black_box(status.ok());
    }
}

/// A typical access-log evidence object, as botgate sets it.
#[cfg(feature = "property")]
const EVIDENCE: &str = r#"{"action":"pass","outcome":"pass","tier":"pass","score":0.00,"reasons":[],"client_ip":"198.18.12.34","fingerprint":"0123456789abcdef","fingerprint_count":1,"request_id":"5f0c6a8e-2d4b-4c1e-9a7f-3b2d1e0f9a8c"}"#;

/// Iterations of [`bench_burn`] per request with feature `burn` (compile time: `BURN_ITERS`).
#[cfg(any(feature = "burn", feature = "burn-memory"))]
const BURN_ITERS: u32 = match option_env!("BURN_ITERS") {
    Some(s) => {
        let b = s.as_bytes();
        let mut i = 0;
        let mut n = 0u32;
        while i < b.len() {
            n = n * 10 + (b[i] - b'0') as u32;
            i += 1;
        }
        n
    }
    None => 8000,
};

/// Pure compute of a known cost (a dependent multiply-xorshift chain, no memory): run per
/// request inside Envoy with feature `burn`, and alone in Node (exported), it compares how fast
/// the same machine code runs in Envoy's V8 and in Node's.
#[no_mangle]
pub extern "C" fn bench_burn(n: u32) -> u64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..n {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        x ^= x >> 29;
    }
    x
}

/// Like [`bench_burn`] but loading and storing in linear memory (a 16 KiB table, so it stays in
/// L1): a runtime that bounds-checks every access explicitly shows it here and not there.
#[no_mangle]
pub extern "C" fn bench_burn_memory(n: u32) -> u64 {
    let mut table = [0u32; 4096];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..n {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let i = (x >> 40) as usize & 4095;
        let j = (x >> 20) as usize & 4095;
        table[i] = table[i].wrapping_add(table[j] ^ x as u32);
    }
    std::hint::black_box(&table);
    x ^ table[(x & 4095) as usize] as u64
}

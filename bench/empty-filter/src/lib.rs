//! The empty filter: an HTTP context that lets every request through untouched.
//!
//! The SDK exports every callback, so Envoy makes the same per-request calls into the VM as it
//! does for botgate (context create, headers, done, delete); only the work inside them is missing.
//!
//! Built with `--features hostcalls` it instead makes the host calls botgate makes for a request
//! that passes (read the headers, read the clock, set the filter state, record the score
//! histogram, add three verdict headers) with fixed values and no engine work: the bench's
//! "hostcalls-only" configuration, which splits botgate's cost into host calls and its own work.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    #[cfg_attr(not(feature = "hostcalls"), allow(dead_code))]
    histogram: Option<u32>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        #[cfg(feature = "hostcalls")]
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
    #[cfg_attr(not(feature = "hostcalls"), allow(dead_code))]
    histogram: Option<u32>,
}

impl Context for Pass {}

impl HttpContext for Pass {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        #[cfg(feature = "hostcalls")]
        self.botgate_host_calls();
        Action::Continue
    }
}

#[cfg(feature = "hostcalls")]
impl Pass {
    /// The host calls of botgate's src/filter.rs for a passing GET, in the same order.
    fn botgate_host_calls(&self) {
        use proxy_wasm::hostcalls;
        use proxy_wasm::types::MapType;
        const EVIDENCE: &str = r#"{"action":"pass","outcome":"pass","tier":"pass","score":0.00,"reasons":[],"client_ip":"198.18.12.34","fingerprint":"0123456789abcdef","fingerprint_count":1,"request_id":"5f0c6a8e-2d4b-4c1e-9a7f-3b2d1e0f9a8c"}"#;
        let headers = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        std::hint::black_box(&headers);
        let _ = hostcalls::get_current_time();
        let _ = hostcalls::set_property(vec!["botgate"], Some(EVIDENCE.as_bytes()));
        if let Some(id) = self.histogram {
            let _ = hostcalls::record_metric(id, 0);
        }
        for (name, value) in [("x-botgate-score", "0.00"), ("x-botgate-tier", "pass"), ("x-botgate-reasons", "")] {
            let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
        }
    }
}

//! The host calls the shell makes through the raw ABI instead of the SDK (whose wrappers panic
//! on a status they do not expect).
//!
//! The SDK's `get_map_bytes` turns the host's serialized header map into a `String` and a `Vec`
//! per header (about 25 allocations for a browser GET, ≈ 5 % of botgate's CPU per request in
//! Envoy) and panics on a non-Ok status; here the host's buffer is kept whole and indexed in
//! place ([`Head::from_serialized`]). Removing a header by its raw name keeps a non-UTF-8
//! `x-botgate-*` name removable too.

use proxy_wasm::types::MapType;

// The SDK declares the same imports with its enum types; the ABI passes plain `u32`s.
#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, return_data: *mut *mut u8, return_size: *mut usize) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
}

const OK: u32 = 0;

/// The request headers as the host serialized them (empty when unavailable).
pub fn request_headers() -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer and a size to the two locals. On Ok the pointer, if
    // not null, is a `size`-byte block the host obtained from this module's
    // `proxy_on_memory_allocate` (the SDK's: a boxed `[u8]` of exactly `size` bytes, all
    // written by the host), now owned by us: rebuilding it as a `Vec` with length and
    // capacity `size` hands it to the same allocator on drop, as the SDK's own
    // `get_map_bytes` does.
    unsafe {
        let status = proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, &mut data, &mut size);
        if status != OK || data.is_null() {
            return Vec::new();
        }
        Vec::from_raw_parts(data, size, size)
    }
}

pub fn remove_request_header(name: &[u8]) {
    // SAFETY: the host only reads `name.len()` bytes from `name`, which outlives the call.
    let _ = unsafe { proxy_remove_header_map_value(MapType::HttpRequestHeaders as u32, name.as_ptr(), name.len()) };
}

/// Makes `context_id` the context later host calls act on; false when it is gone (its client
/// left while it waited).
pub fn set_effective_context(context_id: u32) -> bool {
    // SAFETY: plain integers in, a status out.
    unsafe { proxy_set_effective_context(context_id) == OK }
}

/// Lets the effective context's paused request go on.
pub fn resume_request() -> bool {
    // SAFETY: plain integers in, a status out (0: the request stream).
    unsafe { proxy_continue_stream(0) == OK }
}

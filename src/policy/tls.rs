//! `tls_fingerprint`: the JA4 fingerprints of automation clients, as validated settings. The
//! signal they feed is [`crate::score::tls`]'s.

/// The `b_c` part of a JA4: two 12-hex-digit hashes and the underscore between them.
pub const BC_LEN: usize = 25;

/// An automation client's fingerprint, from the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// `b_c` of its JA4.
    pub bc: [u8; BC_LEN],
    /// Who it is, for the operator (e.g. "Python requests 2.34, OpenSSL 3.0").
    pub label: String,
}

/// `tls_fingerprint` in the policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprints {
    /// The request header the JA4 arrives in (lower case); empty when not configured.
    pub header: String,
    pub automation: Vec<Client>,
}

impl Fingerprints {
    pub fn enabled(&self) -> bool {
        !self.header.is_empty() && !self.automation.is_empty()
    }
}

/// The `b_c` part of a well-formed JA4 (`a_b_c`, `a` ten characters), else `None` (Envoy writes
/// `-` when the connection is not TLS).
pub fn bc_of(ja4: &[u8]) -> Option<[u8; BC_LEN]> {
    let ja4 = ja4.trim_ascii();
    if ja4.len() != 10 + 1 + BC_LEN || ja4.get(10) != Some(&b'_') {
        return None;
    }
    let a = ja4.get(..10)?;
    let bc = ja4.get(11..)?;
    let a_ok = matches!(a.first(), Some(b't' | b'q' | b'd')) && a.iter().all(u8::is_ascii_alphanumeric);
    let hex = |s: &[u8]| s.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    let bc_ok = bc.get(12) == Some(&b'_') && hex(bc.get(..12)?) && hex(bc.get(13..)?);
    if !(a_ok && bc_ok) {
        return None;
    }
    bc.try_into().ok()
}

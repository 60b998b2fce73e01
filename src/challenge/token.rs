//! Clearance tokens: HS256 JWTs (RFC 7519 over RFC 7515 compact serialization).
//!
//! A token says "this session cleared a challenge": `sid` (the session id), `bnd` (a coarse
//! client binding), `scope` ("session"), `amr` (how it was earned: "pow" or "webauthn"), `iat`
//! and `exp`. Verification accepts only `alg: HS256` (no `none`, no asymmetric algorithms that
//! could be confused with a shared key), compares the signature in constant time against every
//! configured key (or the one named by `kid`), then checks expiry with a small skew, scope,
//! session and binding. A backend that ran its own step-up (WebAuthn) mints the same token with
//! the shared key (`botgate token mint`).

use crate::base::mac;
pub use crate::base::mac::Key;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Longest token considered (a cookie or header value is attacker-sized).
pub const MAX_TOKEN_LEN: usize = 4096;
/// Clock skew tolerated on `exp` and `iat`, in seconds.
pub const SKEW_S: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iat: u64,
    pub exp: u64,
    pub scope: String,
    pub sid: String,
    pub amr: String,
    pub bnd: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    Algorithm,
    Signature,
    Expired,
    NotYetValid,
    Scope,
    Session,
    Binding,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
}

/// Signs `claims` with `key` (its id goes in `kid`, so verification tries that key first).
pub fn mint(key: &Key, claims: &Claims) -> String {
    let header = Header { alg: "HS256".into(), typ: Some("JWT".into()), kid: Some(key.id.clone()) };
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let input = format!("{h}.{p}");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac::sign(&key.secret, input.as_bytes())))
}

/// Checks the form, the algorithm and the signature; returns the payload bytes.
fn verify_signature(token: &str, keys: &[Key]) -> Result<Vec<u8>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let header: Header =
        URL_SAFE_NO_PAD.decode(h).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or(TokenError::Malformed)?;
    if header.alg != "HS256" {
        return Err(TokenError::Algorithm);
    }
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| TokenError::Malformed)?;
    let input_len = h.len() + 1 + p.len();
    let input = token.get(..input_len).ok_or(TokenError::Malformed)?.as_bytes();
    let candidates = keys.iter().filter(|k| header.kid.as_deref().is_none_or(|kid| kid == k.id));
    if !mac::verify_any(candidates.map(|k| k.secret.as_slice()), input, &sig) {
        return Err(TokenError::Signature);
    }
    URL_SAFE_NO_PAD.decode(p).map_err(|_| TokenError::Malformed)
}

/// What the request must match.
pub struct Expect<'a> {
    pub now: u64,
    pub sid: &'a str,
    pub bnd: &'a str,
}

/// Verifies a clearance token for this session and client.
pub fn verify(token: &str, keys: &[Key], expect: &Expect<'_>) -> Result<Claims, TokenError> {
    let payload = verify_signature(token, keys)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    if claims.exp + SKEW_S <= expect.now {
        return Err(TokenError::Expired);
    }
    if claims.iat > expect.now + SKEW_S {
        return Err(TokenError::NotYetValid);
    }
    if claims.scope != "session" {
        return Err(TokenError::Scope);
    }
    if !mac::constant_time_eq(claims.sid.as_bytes(), expect.sid.as_bytes()) {
        return Err(TokenError::Session);
    }
    if !mac::constant_time_eq(claims.bnd.as_bytes(), expect.bnd.as_bytes()) {
        return Err(TokenError::Binding);
    }
    Ok(claims)
}

/// The coarse client binding: the first 16 hex digits of SHA-256 over the client's network
/// (/16 for IPv4, /32 for IPv6, in CIDR form such as `203.0.0.0/16`), a `|`, and the user agent.
/// A phone moving between cells of one carrier usually stays inside one such network; a token
/// copied to another network or browser does not verify. Backends need not compute it: botgate
/// sends it to the step-up endpoints as `x-botgate-binding`.
pub fn client_binding(user_agent: &[u8], ip: Option<IpAddr>) -> String {
    use sha2::{Digest, Sha256};
    use std::io::Write as _;
    // The network as ipnet writes it (`203.0.0.0/16`, `2001:db8::/32`), into a stack buffer.
    let mut buf = [0u8; 64];
    let mut w = std::io::Cursor::new(&mut buf[..]);
    let _ = match ip.map(crate::base::iptable::canonical) {
        Some(IpAddr::V4(a)) => {
            let [x, y, _, _] = a.octets();
            write!(w, "{x}.{y}.0.0/16")
        }
        Some(IpAddr::V6(a)) => {
            let s = a.segments();
            let (x, y) = (s.first().copied().unwrap_or(0), s.get(1).copied().unwrap_or(0));
            write!(w, "{}/32", std::net::Ipv6Addr::new(x, y, 0, 0, 0, 0, 0, 0))
        }
        None => Ok(()),
    };
    let len = w.position() as usize;
    let network = buf.get(..len).unwrap_or(&[]);
    let digest = Sha256::new().chain_update(network).chain_update(b"|").chain_update(user_agent).finalize();
    mac::hex(digest.get(..8).unwrap_or(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_binding_hashes_the_network_as_ipnet_writes_it() {
        use sha2::{Digest, Sha256};
        let by_ipnet = |net: String, ua: &[u8]| {
            let d = Sha256::new().chain_update(net.as_bytes()).chain_update(b"|").chain_update(ua).finalize();
            mac::hex(&d[..8])
        };
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        let v6: IpAddr = "2001:db8:1:2::9".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.51.100.3".parse().unwrap();
        let net4 = ipnet::Ipv4Net::new("203.0.113.7".parse().unwrap(), 16).unwrap().trunc().to_string();
        let net6 = ipnet::Ipv6Net::new("2001:db8:1:2::9".parse().unwrap(), 32).unwrap().trunc().to_string();
        let netm = ipnet::Ipv4Net::new("198.51.100.3".parse().unwrap(), 16).unwrap().trunc().to_string();
        assert_eq!(client_binding(b"ua", Some(v4)), by_ipnet(net4, b"ua"));
        assert_eq!(client_binding(b"ua", Some(v6)), by_ipnet(net6, b"ua"));
        assert_eq!(client_binding(b"ua", Some(mapped)), by_ipnet(netm, b"ua"));
        assert_eq!(client_binding(b"ua", None), by_ipnet(String::new(), b"ua"));
        let v6b: IpAddr = "fe80::1".parse().unwrap();
        let n = ipnet::Ipv6Net::new("fe80::1".parse().unwrap(), 32).unwrap().trunc().to_string();
        assert_eq!(client_binding(b"x", Some(v6b)), by_ipnet(n, b"x"));
    }

    fn key(id: &str) -> Key {
        Key { id: id.into(), secret: format!("secret-of-{id}-0123456789abcdef").into_bytes() }
    }

    fn claims(now: u64) -> Claims {
        Claims {
            iat: now,
            exp: now + 1800,
            scope: "session".into(),
            sid: "s1".into(),
            amr: "pow".into(),
            bnd: "b1".into(),
        }
    }

    const NOW: u64 = 1_795_305_600;

    fn expect() -> Expect<'static> {
        Expect { now: NOW + 60, sid: "s1", bnd: "b1" }
    }

    #[test]
    fn rfc7515_appendix_a1_hs256() {
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
            .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
            .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let k = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let keys = [Key { id: "a1".into(), secret: k }];
        let payload = verify_signature(token, &keys).unwrap();
        assert!(String::from_utf8(payload).unwrap().contains("\"iss\":\"joe\""));
        let tampered = token.replace("eyJpc3MiOiJqb2UiLA0K", "eyJpc3MiOiJqb2XiLA0K");
        assert_eq!(verify_signature(&tampered, &keys), Err(TokenError::Signature));
    }

    #[test]
    fn mint_then_verify_with_rotation() {
        let t = mint(&key("old"), &claims(NOW));
        assert_eq!(verify(&t, &[key("new"), key("old")], &expect()).unwrap().amr, "pow");
        assert_eq!(verify(&t, &[key("new")], &expect()), Err(TokenError::Signature));
    }

    #[test]
    fn refuses_none_forged_expired_rescoped_and_rebound() {
        let good = mint(&key("k"), &claims(NOW));
        let keys = [key("k")];
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let parts: Vec<&str> = good.split('.').collect();
        assert_eq!(verify(&format!("{none_header}.{}.", parts[1]), &keys, &expect()), Err(TokenError::Algorithm));
        let rs = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        assert_eq!(verify(&format!("{rs}.{}.{}", parts[1], parts[2]), &keys, &expect()), Err(TokenError::Algorithm));
        assert_eq!(verify(&good, &[key("other")], &expect()), Err(TokenError::Signature));
        let late = Expect { now: NOW + 1800 + SKEW_S, ..expect() };
        assert_eq!(verify(&good, &keys, &late), Err(TokenError::Expired));
        let mut c = claims(NOW);
        c.scope = "global".into();
        assert_eq!(verify(&mint(&key("k"), &c), &keys, &expect()), Err(TokenError::Scope));
        assert_eq!(verify(&good, &keys, &Expect { sid: "s2", ..expect() }), Err(TokenError::Session));
        assert_eq!(verify(&good, &keys, &Expect { bnd: "b2", ..expect() }), Err(TokenError::Binding));
        for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!", &"x".repeat(MAX_TOKEN_LEN + 1)] {
            assert_eq!(verify(junk, &keys, &expect()), Err(TokenError::Malformed), "{junk:.20}");
        }
    }

    #[test]
    fn binding_survives_a_move_inside_the_network_only() {
        let ua = b"Mozilla/5.0";
        let a = client_binding(ua, "203.0.113.7".parse().ok());
        assert_eq!(a, client_binding(ua, "203.0.200.9".parse().ok()));
        assert_ne!(a, client_binding(ua, "198.51.100.7".parse().ok()));
        assert_ne!(a, client_binding(b"curl/8", "203.0.113.7".parse().ok()));
        // The documented algorithm, as a backend would compute it.
        let d = <sha2::Sha256 as sha2::Digest>::digest(b"203.0.0.0/16|Mozilla/5.0");
        assert_eq!(a, crate::base::mac::hex(&d[..8]));
    }
}

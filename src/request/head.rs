//! The request head as the host hands it over, read from bytes.
//!
//! Everything is read from bytes: header values may be any octets, duplicated, or huge.

use std::net::IpAddr;

/// The request head as the host hands it over: lower-case names, raw values, in order.
///
/// One owned buffer and the place of each name and value in it, not a `String` and a `Vec` per
/// header: in the Wasm VM every allocation costs (the shell hands over the host's serialized
/// header map as is, see [`Head::from_serialized`]), and lookups only compare bytes.
#[derive(Debug, Default, Clone)]
pub struct Head {
    /// The bytes the spans point into: the host's serialized map, plus anything pushed later.
    buf: Vec<u8>,
    spans: Vec<Span>,
    /// The connection's peer (`source.address`), when known.
    pub peer: Option<IpAddr>,
}

/// Where one header's name and value are in [`Head::buf`] (start, end).
#[derive(Debug, Clone, Copy)]
struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

impl Head {
    /// A head from name/value pairs (tests, the simulator, benchmarks).
    pub fn from_pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: impl IntoIterator<Item = (K, V)>) -> Head {
        let mut head = Head::default();
        for (k, v) in pairs {
            head.push(k.as_ref(), v.as_ref());
        }
        head
    }

    /// A head over a header map serialized as the proxy-wasm ABI hands it over
    /// (`proxy_get_header_map_pairs`): a little-endian `u32` count, then a `u32` name length and
    /// a `u32` value length per header, then each name and value followed by a NUL byte. The
    /// buffer is kept as is; a truncated or inconsistent tail ends the map there.
    pub fn from_serialized(buf: Vec<u8>) -> Head {
        let u32_at = |at: usize| -> Option<usize> {
            let b = buf.get(at..at.checked_add(4)?)?;
            Some(u32::from_le_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?]) as usize)
        };
        let count = u32_at(0).unwrap_or(0);
        // Each header takes at least 10 bytes (two lengths, two NULs): a count the buffer cannot
        // hold is not believed.
        let mut spans = Vec::with_capacity(count.min(buf.len() / 10));
        let mut p = count.checked_mul(8).and_then(|n| n.checked_add(4)).unwrap_or(usize::MAX);
        for n in 0..count {
            let (Some(name_len), Some(value_len)) = (u32_at(4 + 8 * n), u32_at(8 + 8 * n)) else { break };
            let name_end = p.saturating_add(name_len);
            let value_start = name_end.saturating_add(1);
            let value_end = value_start.saturating_add(value_len);
            if value_end >= buf.len() || value_end > u32::MAX as usize {
                break;
            }
            spans.push(Span { name: (p as u32, name_end as u32), value: (value_start as u32, value_end as u32) });
            p = value_end + 1;
        }
        Head { buf, spans, peer: None }
    }

    /// Serializes pairs the way the host does (the inverse of [`Head::from_serialized`]).
    pub fn serialize<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (k, v) in pairs {
            out.extend((k.as_ref().len() as u32).to_le_bytes());
            out.extend((v.as_ref().len() as u32).to_le_bytes());
        }
        for (k, v) in pairs {
            out.extend(k.as_ref().iter().chain(b"\0").chain(v.as_ref()).chain(b"\0"));
        }
        out
    }

    /// The same head with the connection's peer address.
    pub fn with_peer(self, peer: Option<IpAddr>) -> Head {
        Head { peer, ..self }
    }

    /// Appends a header.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        let name = self.append(name);
        let value = self.append(value);
        self.spans.push(Span { name, value });
    }

    /// Replaces the value of the `index`-th header (no-op past the end).
    pub fn set_value(&mut self, index: usize, value: &[u8]) {
        if index < self.spans.len() {
            let value = self.append(value);
            if let Some(span) = self.spans.get_mut(index) {
                span.value = value;
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) -> (u32, u32) {
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(bytes);
        (start, self.buf.len() as u32)
    }

    fn slice(&self, (start, end): (u32, u32)) -> &[u8] {
        self.buf.get(start as usize..end as usize).unwrap_or(b"")
    }

    /// Every header as (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans.iter().map(|s| (self.slice(s.name), self.slice(s.value)))
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The first value of `name`.
    pub fn first(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(k, _)| *k == name.as_bytes()).map(|(_, v)| v)
    }

    /// The client's or an earlier proxy's `x-request-id` (empty when absent or not UTF-8).
    pub fn request_id(&self) -> &str {
        self.first("x-request-id").and_then(|v| std::str::from_utf8(v).ok()).unwrap_or("")
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter().filter(move |(k, _)| *k == name.as_bytes()).map(|(_, v)| v)
    }

    pub fn method(&self) -> &[u8] {
        self.first(":method").unwrap_or(b"GET")
    }

    /// The path without its query.
    pub fn path(&self) -> &[u8] {
        let full = self.first(":path").unwrap_or(b"/");
        full.split(|b| *b == b'?').next().unwrap_or(full)
    }

    pub fn query(&self) -> &[u8] {
        let full = self.first(":path").unwrap_or(b"");
        match full.iter().position(|b| *b == b'?') {
            Some(i) => full.get(i + 1..).unwrap_or(b""),
            None => b"",
        }
    }

    /// Client-sent `x-botgate-*` headers: removed before botgate adds its own. No allocation
    /// when there are none (the usual case).
    pub fn spoofed_botgate_headers(&self) -> Vec<&[u8]> {
        let mut names: Vec<&[u8]> = self.iter().map(|(k, _)| k).filter(|k| k.starts_with(b"x-botgate-")).collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// `b` without surrounding ASCII whitespace.
pub fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or(b"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(pairs: &[(&str, &[u8])], peer: &str) -> Head {
        Head { peer: peer.parse().ok(), ..Head::from_pairs(pairs.iter().copied()) }
    }

    #[test]
    fn path_query_and_spoofed_headers() {
        let h = head(&[(":path", b"/a/b?x=1"), ("x-botgate-score", b"0"), ("x-botgate-score", b"0")], "10.0.0.1");
        assert_eq!(h.path(), b"/a/b");
        assert_eq!(h.query(), b"x=1");
        assert_eq!(h.spoofed_botgate_headers(), vec![b"x-botgate-score".as_slice()]);
    }

    #[test]
    fn serialized_map_reads_back_in_order_with_duplicates_and_any_bytes() {
        let pairs: Vec<(&[u8], &[u8])> =
            vec![(b":path", b"/a?b"), (b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", b"\xff\x00"), (b"e", b"")];
        let h = Head::from_serialized(Head::serialize(&pairs));
        assert_eq!(h.iter().collect::<Vec<_>>(), pairs);
        assert_eq!(h.all("x-forwarded-for").collect::<Vec<_>>(), vec![b"1.1.1.1".as_slice(), b"\xff\x00"]);
        assert_eq!(h.first("e"), Some(b"".as_slice()));
        assert_eq!(h.path(), b"/a");
        assert!(Head::from_serialized(Vec::new()).is_empty());
        assert!(Head::from_serialized(Head::serialize::<&[u8], &[u8]>(&[])).is_empty());
    }

    #[test]
    fn truncated_or_lying_serialized_maps_keep_what_is_whole() {
        let full = Head::serialize(&[("a", "1"), ("bb", "22")]);
        for cut in 0..full.len() {
            let h = Head::from_serialized(full.get(..cut).unwrap_or_default().to_vec());
            assert!(h.len() <= 1, "cut at {cut}");
        }
        assert_eq!(Head::from_serialized(full.clone()).len(), 2);
        // A count far beyond the buffer, and lengths pointing past its end.
        let mut lying = full.clone();
        lying.splice(0..4, u32::MAX.to_le_bytes());
        assert!(Head::from_serialized(lying).len() <= 2);
        let mut lying = full;
        lying.splice(4..8, u32::MAX.to_le_bytes());
        assert!(Head::from_serialized(lying).is_empty());
    }
}

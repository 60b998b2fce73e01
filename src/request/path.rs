//! Paths as the upstream will see them.
//!
//! Endpoint tiers, `endpoint_in`, sequence rules and the detector's `applies_to` are only as
//! good as the path they compare: `/login/`, `//login`, `/./login`, `/%6cogin` and `/login;x`
//! all reach a typical upstream's login handler, so a byte comparison lets each of them escape
//! a rule written for `/login`. Envoy can normalise paths itself (`normalize_path`,
//! `merge_slashes`, shipped on in botgate's configs), but botgate may run under configs that do
//! not, so the engine normalises on its own, once per request, and the policy's own paths once
//! at load:
//!
//! 1. path parameters (`;…` in each segment) are dropped (to Tomcat, `/..;/` is `/../`);
//! 2. escapes of unreserved characters (ALPHA DIGIT `-` `.` `_` `~`) are decoded; every other
//!    escape stays, with upper-case hex (`%2f` → `%2F`: an encoded slash is not a separator),
//!    and a `%` that starts no escape becomes `%25`, so normalising twice changes nothing;
//! 3. empty segments are merged (`//` → `/`) and dot segments removed (RFC 3986 §5.2.4; `..`
//!    never climbs above the root);
//! 4. for case-insensitive upstreams (`paths.case_insensitive`), ASCII letters are lower-cased.
//!
//! A path that is already normal comes back borrowed: the usual request costs one scan and no
//! allocation. Matching is by segments ([`covers`]): `/checkout` covers `/checkout` and
//! `/checkout/…`, not `/checkouts`.

use std::borrow::Cow;

/// The normal form of `path` (without its query), borrowed when it is already normal.
pub fn normalise(path: &[u8], fold_case: bool) -> Cow<'_, [u8]> {
    if is_normal(path, fold_case) {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(rebuild(path, fold_case))
    }
}

/// The normal form of `path` only when it differs from `path` (`None`: already normal).
pub fn normalised(path: &[u8], fold_case: bool) -> Option<Vec<u8>> {
    match normalise(path, fold_case) {
        Cow::Borrowed(_) => None,
        Cow::Owned(p) => Some(p),
    }
}

/// A policy's path in normal form (the policy is UTF-8, and normalising keeps it so).
pub fn normalise_str(path: &str, fold_case: bool) -> String {
    match normalise(path.as_bytes(), fold_case) {
        Cow::Borrowed(_) => path.to_string(),
        Cow::Owned(p) => String::from_utf8(p).unwrap_or_else(|_| path.to_string()),
    }
}

/// Whether the normalised `path` is `base` or lies under it, segment by segment: `/checkout`
/// (or `/checkout/`) covers `/checkout`, `/checkout/` and `/checkout/confirm`, not
/// `/checkouts`; `/` covers everything.
pub fn covers(base: &[u8], path: &[u8]) -> bool {
    let base = base.strip_suffix(b"/").unwrap_or(base);
    path.strip_prefix(base).is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"))
}

/// Whether `path` is its own normal form: one scan, no allocation.
fn is_normal(path: &[u8], fold_case: bool) -> bool {
    let Some(rest) = path.strip_prefix(b"/") else { return false };
    // The current segment's length, how many of its bytes are dots, and escape bytes to skip.
    let (mut len, mut dots, mut skip) = (0usize, 0usize, 0u8);
    let dot_segment = |len: usize, dots: usize| dots == len && (1..=2).contains(&len);
    for (i, &b) in rest.iter().enumerate() {
        if skip > 0 {
            skip -= 1;
        } else {
            match b {
                b'/' if len == 0 || dot_segment(len, dots) => return false,
                b'/' => {
                    (len, dots) = (0, 0);
                    continue;
                }
                b'.' => dots += 1,
                b';' => return false,
                b'%' => match escape(rest, i) {
                    Some(x) if !unreserved(x) && is_upper_hex(rest.get(i + 1..i + 3)) => skip = 2,
                    _ => return false,
                },
                b'A'..=b'Z' if fold_case => return false,
                _ => {}
            }
        }
        len += 1;
    }
    !dot_segment(len, dots)
}

/// The normal form, built segment by segment.
fn rebuild(path: &[u8], fold_case: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() + 1);
    // Whether the result ends with a slash: after an empty, `.` or `..` last segment.
    let mut dir = true;
    for seg in path.split(|b| *b == b'/') {
        let seg = seg.split(|b| *b == b';').next().unwrap_or_default();
        if seg.is_empty() {
            dir = true;
            continue;
        }
        let start = out.len();
        out.push(b'/');
        decode_into(seg, fold_case, &mut out);
        match out.get(start + 1..) {
            Some(b".") => {
                out.truncate(start);
                dir = true;
            }
            Some(b"..") => {
                out.truncate(start);
                let parent = out.iter().rposition(|b| *b == b'/').unwrap_or(0);
                out.truncate(parent);
                dir = true;
            }
            _ => dir = false,
        }
    }
    if dir {
        out.push(b'/');
    }
    out
}

/// Appends `seg` with unreserved escapes decoded, other escapes in upper-case hex, stray `%`
/// escaped, and letters folded when asked.
fn decode_into(seg: &[u8], fold_case: bool, out: &mut Vec<u8>) {
    let fold = |b: u8| if fold_case { b.to_ascii_lowercase() } else { b };
    let mut i = 0;
    while let Some(&b) = seg.get(i) {
        if b != b'%' {
            out.push(fold(b));
            i += 1;
            continue;
        }
        match escape(seg, i) {
            Some(x) if unreserved(x) => out.push(fold(x)),
            Some(x) => out.extend_from_slice(&[b'%', hex_digit(x >> 4), hex_digit(x & 0xf)]),
            None => {
                out.extend_from_slice(b"%25");
                i += 1;
                continue;
            }
        }
        i += 3;
    }
}

/// The byte `%XY` at `at` stands for, when `X` and `Y` are hex digits.
fn escape(seg: &[u8], at: usize) -> Option<u8> {
    let hi = hex_value(*seg.get(at + 1)?)?;
    let lo = hex_value(*seg.get(at + 2)?)?;
    Some(hi << 4 | lo)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn is_upper_hex(digits: Option<&[u8]>) -> bool {
    digits.is_some_and(|d| d.iter().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)))
}

fn hex_digit(n: u8) -> u8 {
    if n < 10 {
        b'0' + n
    } else {
        b'A' + n - 10
    }
}

/// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn norm(p: &str) -> String {
        String::from_utf8_lossy(&normalise(p.as_bytes(), false)).into_owned()
    }

    fn folded(p: &str) -> String {
        String::from_utf8_lossy(&normalise(p.as_bytes(), true)).into_owned()
    }

    #[test]
    fn every_spelling_of_login_is_login() {
        for p in ["/login", "/login/", "//login", "/./login", "/%6cogin", "/%6Cogin", "/login;x", "/login;jsessionid=1"]
        {
            assert!(covers(b"/login", &normalise(p.as_bytes(), false)), "{p} → {}", norm(p));
        }
        assert_eq!(norm("/%6cogin"), "/login");
        assert_eq!(norm("/login;x"), "/login");
        assert_eq!(norm("///login//"), "/login/");
        assert_eq!(norm("/static/../login"), "/login");
        assert_eq!(norm("/static/..;/login"), "/login", "Tomcat's ..; is a dot segment");
        assert_eq!(norm("/%2e%2E/login"), "/login", "encoded dots are dots");
        assert_eq!(norm("/a;x/b;y=1/c"), "/a/b/c");
    }

    #[test]
    fn letters_are_folded_only_for_case_insensitive_upstreams() {
        assert_eq!(norm("/Login"), "/Login");
        assert_eq!(folded("/Login"), "/login");
        assert_eq!(folded("/LOGIN/%4C%2f"), "/login/l%2F", "escapes keep upper-case hex");
        assert!(matches!(normalise(b"/login/a%2Fb", true), Cow::Borrowed(_)));
    }

    #[test]
    fn checkout_covers_its_own_segments_not_checkouts() {
        assert!(covers(b"/checkout", b"/checkout"));
        assert!(covers(b"/checkout", b"/checkout/"));
        assert!(covers(b"/checkout", b"/checkout/confirm"));
        assert!(covers(b"/checkout/", b"/checkout"));
        assert!(!covers(b"/checkout", b"/checkouts"));
        assert!(!covers(b"/checkout", b"/check"));
        assert!(covers(b"/", b"/anything"));
    }

    #[test]
    fn encoded_slashes_stay_encoded_in_upper_case() {
        assert_eq!(norm("/a%2fb"), "/a%2Fb");
        assert_eq!(norm("/a%2Fb/..%2f/c"), "/a%2Fb/..%2F/c", "..%2F is not a dot segment");
        assert!(!covers(b"/a", &normalise(b"/a%2fb", false)));
        assert_eq!(norm("/%7e%41%3b"), "/~A%3B", "unreserved decoded, reserved kept");
    }

    #[test]
    fn dot_segments_never_climb_above_the_root() {
        assert_eq!(norm("/.."), "/");
        assert_eq!(norm("/../../login"), "/login");
        assert_eq!(norm("/a/b/.."), "/a/");
        assert_eq!(norm("/a/."), "/a/");
        assert_eq!(norm("/a/./b/../../../c"), "/c");
        assert_eq!(norm("/..."), "/...", "three dots are a name");
    }

    #[test]
    fn empty_and_relative_paths_become_rooted() {
        assert_eq!(norm(""), "/");
        assert_eq!(norm("/"), "/");
        assert_eq!(norm("login"), "/login");
        assert_eq!(norm("*"), "/*");
        assert_eq!(norm(";x"), "/");
    }

    #[test]
    fn the_query_is_not_part_of_the_path() {
        let head = crate::request::head::Head::from_pairs([(":path", "/login?next=/../admin;x")]);
        assert_eq!(normalise(head.path(), false).as_ref(), b"/login");
    }

    #[test]
    fn bytes_that_are_not_utf8_or_not_escapes_survive() {
        assert_eq!(normalise(b"/\xff\xfe/a", true).as_ref(), b"/\xff\xfe/a");
        assert_eq!(norm("/100%"), "/100%25");
        assert_eq!(norm("/%zz%4"), "/%25zz%254");
        assert_eq!(norm("/%%34%31"), "/%2541", "a stray % cannot pair with decoded digits");
    }

    #[test]
    fn normal_paths_are_borrowed_not_copied() {
        for p in ["/", "/login", "/a/b/", "/a%2Fb", "/%C3%A9", "/a.b/~c_d-e", "/é"] {
            assert!(matches!(normalise(p.as_bytes(), false), Cow::Borrowed(_)), "{p}");
        }
        assert_eq!(normalised(b"/login", false), None);
        assert_eq!(normalised(b"/login/.", false), Some(b"/login/".to_vec()));
    }

    #[test]
    fn huge_paths_are_handled_in_one_pass() {
        let deep = "/a/..".repeat(200_000) + "/login";
        assert_eq!(norm(&deep), "/login");
        let long = "/".repeat(1_000_000) + "x";
        assert_eq!(norm(&long), "/x");
        let wide = "/%41".repeat(100_000);
        assert_eq!(normalise(wide.as_bytes(), true).len(), 200_000);
    }

    #[test]
    fn policy_paths_are_normalised_too() {
        assert_eq!(normalise_str("/Account/./Settings", true), "/account/settings");
        assert_eq!(normalise_str("/v1/", false), "/v1/");
    }

    proptest! {
        #[test]
        fn normalising_is_idempotent_and_never_panics(raw in proptest::collection::vec(
            prop_oneof![Just(b'/'), Just(b'.'), Just(b'%'), Just(b';'), Just(b'a'), Just(b'B'), Just(b'2'),
                        Just(b'e'), Just(b'F'), Just(b'f'), Just(b'4'), any::<u8>()], 0..40),
            fold in any::<bool>()) {
            let once = normalise(&raw, fold).into_owned();
            prop_assert!(once.starts_with(b"/"));
            let twice = normalise(&once, fold);
            prop_assert!(matches!(twice, Cow::Borrowed(_)), "{:?} → {:?} is not normal", raw, once);
            if is_normal(&raw, fold) {
                prop_assert_eq!(&once, &raw);
            }
        }
    }
}

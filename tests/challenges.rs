//! The challenge tier through the engine, as the seed's expected behaviours describe it: the
//! scripted bot fails its challenge and is blocked; the real user clears it once and is left
//! alone for the token's lifetime; signed-in users step up with WebAuthn; nothing is a CAPTCHA.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

mod common;

use botgate::base::telemetry::Counter;
use botgate::challenge::pow;
use botgate::challenge::token::{self, Claims, Key};
use botgate::decision::record::Verdict;
use botgate::policy::{self, ChallengeType};
use common::{engine, pow_of, send, Req, CLEARANCE_KEY, T0};

fn policy() -> String {
    common::keyed_example()
}

/// Anonymous, and ambiguous: a browser behind a proxy that strips accept and accept-language.
fn ambiguous(method: &str, path: &str, ip: &str) -> Req {
    Req::new(method, path, ip).header("user-agent", common::CHROME)
}

fn with_solution(r: Req, challenge: &str, solution: &str) -> Req {
    r.header("x-botgate-pow-challenge", challenge).header("x-botgate-pow-solution", solution)
}

#[test]
fn the_scripted_bot_is_challenged_fails_and_its_session_is_blocked() {
    let mut e = engine(&policy());
    let bot = || ambiguous("POST", "/login", "203.0.113.70");
    let first = send(&mut e, &bot(), T0, 200);
    assert_eq!(first.verdict, Verdict::Challenge(ChallengeType::ProofOfWork), "{first:?}");
    assert!((0.2..0.75).contains(&first.score), "ambiguous: {}", first.score);
    let (mut challenge, difficulty) = pow_of(&first);
    assert_eq!(difficulty, 4, "base difficulty on a first attempt");
    let reply = first.reply("r1").unwrap();
    assert_eq!(reply.status, 401);
    assert!(reply.body.contains("\"difficulty\":4") && reply.body.contains("x-botgate-pow-solution"));

    // The bot cannot do the work and sends junk: counted, re-challenged harder, then blocked.
    let mut last = first;
    for i in 1..=3u64 {
        last = send(&mut e, &with_solution(bot(), &challenge, "12345"), T0 + i * 1_000, 200);
        if i < 3 {
            assert!(last.reasons.contains(&"pow_unsolved") || last.reasons.contains(&"pow_malformed"), "{last:?}");
            let (c, d) = pow_of(&last);
            assert!(d > 4, "harder after a failure");
            challenge = c;
        }
    }
    assert_eq!(last.verdict, Verdict::Block, "{last:?}");
    assert!(last.reasons.contains(&"challenge_failed"));
    assert_eq!(last.reply("r2").unwrap().status, 403);
    // Blocked for the rest of its session, whatever it asks for.
    let later = send(&mut e, &ambiguous("GET", "/products", "203.0.113.70"), T0 + 60_000, 200);
    assert_eq!(later.verdict, Verdict::Block);
    assert_eq!(e.tally.get(Counter::ChallengesPowFailed), 3);
}

#[test]
fn the_real_user_clears_once_and_is_not_asked_again_for_the_tokens_lifetime() {
    let mut e = engine(&policy());
    let user = || ambiguous("POST", "/login", "203.0.113.71");
    let first = send(&mut e, &user(), T0, 200);
    let (challenge, difficulty) = pow_of(&first);
    let solution = pow::solve(&challenge, difficulty).unwrap();
    let solved = send(&mut e, &with_solution(user(), &challenge, &solution), T0 + 2_500, 200);
    assert_eq!(solved.verdict, Verdict::Pass, "{solved:?}");
    assert!(solved.reasons.contains(&"pow_passed"));
    assert_eq!(solved.solve_ms, Some(2_500));
    let (cookie, token) = *solved.clearance.clone().unwrap();
    assert!(cookie.starts_with("botgate_clearance=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));

    // The same worker remembers the pass; another worker (a fresh engine) trusts the cookie.
    for t in [T0 + 60_000, T0 + 29 * 60_000] {
        let again = send(&mut e, &user(), t, 200);
        assert_eq!(again.verdict, Verdict::Pass, "{again:?}");
        assert!(again.reasons.contains(&"cleared"));
    }
    let mut other_worker = engine(&policy());
    let with_cookie = || user().header("cookie", &format!("botgate_clearance={token}"));
    let d = send(&mut other_worker, &with_cookie(), T0 + 10 * 60_000, 200);
    assert_eq!(d.verdict, Verdict::Pass, "{d:?}");
    assert_eq!(other_worker.tally.get(Counter::ClearanceAccepted), 1);
    // After the token's 30 minutes the challenge comes back.
    let expired = send(&mut engine(&policy()), &with_cookie(), T0 + 31 * 60_000, 200);
    assert_eq!(expired.verdict, Verdict::Challenge(ChallengeType::ProofOfWork));

    // The solved puzzle is spent: sent again by the session that solved it, it earns nothing new
    // (and costs nothing: a reload is not an attack); from any other session it is refused.
    let replay = send(&mut e, &with_solution(user(), &challenge, &solution), T0 + 3_000, 200);
    assert!(replay.reasons.contains(&"pow_already_passed") && !replay.reasons.contains(&"pow_passed"), "{replay:?}");
    let elsewhere = ambiguous("POST", "/login", "203.0.113.72");
    let stolen = send(&mut e, &with_solution(elsewhere, &challenge, &solution), T0 + 3_000, 200);
    assert!(stolen.reasons.contains(&"pow_wrong_client"), "{stolen:?}");
}

#[test]
fn block_rules_still_apply_to_a_cleared_session() {
    let text = policy().replace(r#""cidrs": ["198.18.0.0/15""#, r#""cidrs": ["203.0.113.72/32", "198.18.0.0/15""#);
    let mut e = engine(&text);
    let bnd = token::client_binding(common::CHROME.as_bytes(), "203.0.113.72".parse().ok());
    let t = mint("anon", &bnd, T0 / 1000, "pow");
    let d = send(&mut e, &ambiguous("POST", "/login", "203.0.113.72").header("x-botgate-clearance", &t), T0, 200);
    assert_eq!(d.verdict, Verdict::Block);
    assert!(d.reasons.contains(&"ip_in_threat_intel_blocklist"));
}

fn mint(sid: &str, bnd: &str, iat: u64, amr: &str) -> String {
    let claims =
        Claims { iat, exp: iat + 1800, scope: "session".into(), sid: sid.into(), amr: amr.into(), bnd: bnd.into() };
    token::mint(&Key { id: "current".into(), secret: CLEARANCE_KEY.as_bytes().to_vec() }, &claims)
}

#[test]
fn forged_expired_rescoped_and_rebound_tokens_do_not_clear() {
    let ip = "203.0.113.73";
    let bnd = token::client_binding(common::CHROME.as_bytes(), ip.parse().ok());
    let now_s = T0 / 1000;
    // The anonymous session's own name (keyed: only botgate can work it out).
    let sid =
        format!("a{:016x}", send(&mut engine(&policy()), &ambiguous("POST", "/login", ip), T0, 200).session.unwrap());
    let good = mint(&sid, &bnd, now_s, "pow");
    let forged = {
        let claims = Claims {
            iat: now_s,
            exp: now_s + 1800,
            scope: "session".into(),
            sid: sid.clone(),
            amr: "pow".into(),
            bnd: bnd.clone(),
        };
        token::mint(&Key { id: "current".into(), secret: b"not-the-key-but-long-enough-0123456789".to_vec() }, &claims)
    };
    let expired = mint(&sid, &bnd, now_s - 3600, "pow");
    let rebound = mint(&sid, "0000000000000000", now_s, "pow");
    let other_session = mint("0123456789abcdef", &bnd, now_s, "pow");
    let any_anonymous = mint("anon", &bnd, now_s, "pow");
    let cases = [(good, Verdict::Pass), (forged, Verdict::Challenge(ChallengeType::ProofOfWork))];
    let refused = [expired, rebound, other_session, any_anonymous];
    for (t, want) in
        cases.into_iter().chain(refused.into_iter().map(|t| (t, Verdict::Challenge(ChallengeType::ProofOfWork))))
    {
        let mut e = engine(&policy());
        let d = send(&mut e, &ambiguous("POST", "/login", ip).header("x-botgate-clearance", &t), T0, 200);
        assert_eq!(d.verdict, want, "{t:.30}: {d:?}");
    }
}

#[test]
fn signed_in_users_step_up_with_webauthn_minted_by_the_backend() {
    let mut e = engine(&policy());
    let ip = "203.0.113.74";
    let alice = |m, p| ambiguous(m, p, ip).header("cookie", "session_id=alice");
    let d = send(&mut e, &alice("POST", "/login"), T0, 200);
    assert_eq!(d.verdict, Verdict::Challenge(ChallengeType::WebauthnStepUp), "{d:?}");
    let reply = d.reply("r").unwrap();
    assert_eq!(reply.status, 401);
    assert!(reply.headers.contains(&("x-botgate-challenge", "webauthn_step_up".to_string())));
    assert!(reply.body.contains("\"verify_url\":\"/auth/webauthn/verify\""), "{}", reply.body);
    // The step-up page's calls reach the backend with what its token must carry.
    let call =
        send(&mut e, &alice("POST", "/auth/webauthn/verify").header("sec-fetch-site", "same-origin"), T0 + 5_000, 200);
    assert_eq!(call.verdict, Verdict::Pass, "the step-up's own calls are never challenged: {call:?}");
    let (sid, bnd) = *call.step_up.clone().expect("session and binding for the backend");
    let headers = call.upstream_headers();
    assert!(
        headers.contains(&("x-botgate-session", sid.clone())) && headers.contains(&("x-botgate-binding", bnd.clone()))
    );
    // The backend verified the assertion and minted the token (as `botgate token mint` does).
    let t = mint(&sid, &bnd, T0 / 1000 + 5, "webauthn");
    let after =
        send(&mut e, &alice("POST", "/login").header("cookie", &format!("botgate_clearance={t}")), T0 + 6_000, 200);
    assert_eq!(after.verdict, Verdict::Pass, "{after:?}");
    assert_eq!(e.tally.get(Counter::ChallengesWebauthnPassed), 1);

    // A backend that refuses the assertion three times fails the session's step-up for good.
    let mut e = engine(&policy());
    let mallory = |m, p| ambiguous(m, p, "203.0.113.75").header("cookie", "session_id=mallory");
    send(&mut e, &mallory("POST", "/login"), T0, 200);
    for i in 1..=3 {
        let assertion = mallory("POST", "/auth/webauthn/verify").header("sec-fetch-site", "same-origin");
        send(&mut e, &assertion, T0 + i * 1_000, 401);
    }
    assert_eq!(e.tally.get(Counter::ChallengesWebauthnFailed), 3);
    assert_eq!(send(&mut e, &mallory("GET", "/"), T0 + 9_000, 200).verdict, Verdict::Block);
}

#[test]
fn browsers_get_the_interstitial_and_continue_to_their_page() {
    let mut e = engine(&policy());
    let ip = "203.0.113.76";
    let nav = |p: &str| Req::new("GET", p, ip).header("user-agent", common::CHROME).header("accept", "text/html");
    // /login is listed from 0.20; the missing accept-language makes the score ambiguous.
    let d = send(&mut e, &nav("/login?next=%2Forders&page=2"), T0, 200);
    assert_eq!(d.verdict, Verdict::Challenge(ChallengeType::ProofOfWork), "{d:?}");
    let page = d.reply("req-1").unwrap();
    assert_eq!(page.status, 401);
    assert!(page.headers.iter().any(|(k, v)| *k == "content-type" && v.starts_with("text/html")));
    assert!(page.headers.iter().any(|(k, v)| *k == "content-security-policy" && v.contains("script-src 'self'")));
    assert!(page.body.contains("data-back=\"/login?next=%2Forders&amp;page=2\""), "{}", page.body);
    let (challenge, difficulty) = pow_of(&d);
    let solution = pow::solve(&challenge, difficulty).unwrap();

    let verify = format!(
        "/.well-known/botgate/verify?challenge={challenge}&solution={solution}&return=%2Flogin%3Fnext%3D%252Forders%26page%3D2"
    );
    let v = send(&mut e, &nav(&verify).header("sec-fetch-site", "same-origin"), T0 + 3_000, 200);
    let answer = v.reply("req-2").unwrap();
    assert_eq!(answer.status, 303, "{v:?}");
    assert!(answer.headers.contains(&("location", "/login?next=%2Forders&page=2".to_string())));
    let cookies: Vec<String> = answer
        .headers
        .iter()
        .filter(|(k, _)| *k == "set-cookie")
        .map(|(_, v)| v.split(';').next().unwrap().to_string())
        .collect();
    assert!(cookies.iter().any(|c| c.starts_with("botgate_clearance=")), "{cookies:?}");
    assert!(cookies.iter().any(|c| c.starts_with("botgate_visitor=")), "the pass names its visitor: {cookies:?}");
    let jar = cookies.join("; ");
    let next = send(&mut e, &nav("/login").header("cookie", &jar), T0 + 4_000, 200);
    assert_eq!(next.verdict, Verdict::Pass, "the next navigation is not challenged");
    // The token is bound to that visitor: without its cookie, the same network and browser is
    // not cleared by someone else's solve.
    let token = cookies.iter().find(|c| c.starts_with("botgate_clearance=")).unwrap();
    let neighbour =
        Req::new("GET", "/login", "203.0.113.77").header("user-agent", common::CHROME).header("accept", "text/html");
    let other = send(&mut e, &neighbour.header("cookie", token), T0 + 4_000, 200);
    assert_ne!(other.verdict, Verdict::Pass, "{other:?}");

    // Assets are botgate's own; anything else under the prefix is 404, and returns stay on site.
    let js = send(&mut e, &nav("/.well-known/botgate/worker.js"), T0, 200).reply("").unwrap();
    assert_eq!(js.status, 200);
    assert_eq!(send(&mut e, &nav("/.well-known/botgate/nope"), T0, 200).reply("").unwrap().status, 404);
}

#[test]
fn a_client_that_reloads_instead_of_solving_runs_out_of_puzzles() {
    let mut e = engine(&policy().replace(r#""max_attempts": 10"#, r#""max_attempts": 4"#));
    let mut now = T0;
    let mut last = None;
    for i in 0..6u64 {
        let d = send(&mut e, &ambiguous("POST", "/login", "203.0.113.77"), now, 200);
        if i < 4 {
            assert_eq!(d.verdict, Verdict::Challenge(ChallengeType::ProofOfWork), "puzzle {i}: {d:?}");
        }
        now += 20_000 + (i * 7_919) % 30_000;
        last = Some(d);
    }
    let last = last.unwrap();
    assert_eq!(last.verdict, Verdict::Block, "{last:?}");
    assert!(last.reasons.contains(&"challenge_failed"));
}

#[test]
fn no_challenge_or_fallback_can_be_a_captcha() {
    for t in policy::tiers::CHALLENGE_TYPES {
        assert!(!t.to_ascii_lowercase().contains("captcha"));
    }
    for key in ["default_type", "fallback_type"] {
        for bad in ["captcha", "image_captcha", "recaptcha", "hcaptcha", "audio"] {
            let text = policy().replace(
                &format!(r#""{key}": "{}""#, if key == "default_type" { "webauthn_step_up" } else { "proof_of_work" }),
                &format!(r#""{key}": "{bad}""#),
            );
            assert!(policy::parse(text.as_bytes()).policy.is_none(), "{key}: {bad} accepted");
        }
    }
    // The session helper the tokens depend on reads cookies as bytes.
    let head = Req::new("GET", "/", "192.0.2.1").header("cookie", "a=1; botgate_clearance=t").head;
    assert_eq!(head.cookie("botgate_clearance"), Some(&b"t"[..]));
}

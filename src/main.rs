//! `botgate`: the command-line companion of the filter.
//!
//! `botgate lint POLICY.json` validates a policy exactly as the filter's `on_configure` does
//! (plus the clock's warnings: expired allowlist entries, an overdue threshold review);
//! `botgate lint --audit POLICY.json` also lists allowlist entries nobody owns, justifies or
//! dates ([`botgate::policy::audit`]).

use std::process::ExitCode;

const USAGE: &str = "usage:
  botgate lint POLICY.json                 validate a policy (exit 0 when valid, 1 when not)
  botgate lint --audit POLICY.json         validate, then list allowlist entries without owner,
                                           justification or expires, expired or expiring within
                                           14 days, and a missing or overdue threshold_review
                                           (exit 1 when invalid, anything expired or the review
                                           overdue; 0 when only owners, reasons or dates lack)
  botgate policy hash POLICY.json          the hash botgate_policy_info{hash} exports for it
  botgate replay POLICY.json LOG [--decisions] [--compare OTHER.json]
                                           recorded traffic (the shipped access log, or JSONL of
                                           {t, ip, method, path, headers, body}; - for
                                           stdin) through the policy at its recorded times: counts
                                           by outcome and reason, the most flagged clients and
                                           sessions (JSON); --decisions: one line per request;
                                           --compare: the requests OTHER.json answers differently
  botgate report POLICY.json LOG > report.html
                                           the same replay as one self-contained HTML page (no
                                           script, nothing fetched): scores and outcomes over time,
                                           heatmaps and a table of the 30 most suspicious clients,
                                           campaigns across addresses and what the first challenge
                                           or block did to them
  botgate simulate POLICY.json [HUMANS [CAMPAIGNS_PER_KIND [SEED]]]
                                           labelled human and bot traffic through the engine:
                                           share of humans challenged, of bot campaigns undetected
  botgate ci sign SECRET METHOD PATH [UNIX_SECONDS]
                                           the x-ci-signature / x-ci-timestamp pair for a CI call
  botgate token mint --session SID --binding BND [--key-env VAR | --key SECRET] [--kid ID]
                     [--ttl-minutes 30] [--amr webauthn]
                                           an HS256 clearance token, for a backend that ran its own
                                           step-up (the key comes from VAR, BOTGATE_CLEARANCE_KEY
                                           by default)
  botgate pow solve CHALLENGE              a solution for a proof-of-work challenge (its difficulty
                                           is read from the challenge)
  botgate beacon-hash                      the beacon script's CSP source ('sha256-...')
  botgate token binding USER_AGENT CLIENT_IP
                                           the client binding botgate expects in a token";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["lint", file] => lint(file, false),
        ["lint", "--audit", file] => lint(file, true),
        ["replay", policy, log, rest @ ..] => replay(policy, log, rest),
        ["policy", "hash", file] => match std::fs::read(file).ok().and_then(|t| botgate::policy::hash(&t)) {
            Some(hash) => {
                println!("{hash}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("{file}: cannot read, or not JSON");
                ExitCode::from(1)
            }
        },
        ["report", policy, log] => report(policy, log),
        ["simulate", file, rest @ ..] => simulate(file, rest),
        ["ci", "sign", secret, method, path, rest @ ..] => ci_sign(secret, method, path, rest),
        ["token", "mint", rest @ ..] => token_mint(rest),
        ["pow", "solve", challenge] => pow_solve(challenge),
        ["token", "binding", ua, ip] => {
            println!("{}", botgate::challenge::token::client_binding(ua.as_bytes(), ip.parse().ok()));
            ExitCode::SUCCESS
        }
        ["beacon-hash"] => {
            println!("{}", botgate::challenge::beacon::csp_hash());
            ExitCode::SUCCESS
        }
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn lint(file: &str, audit: bool) -> ExitCode {
    let text = match std::fs::read(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{file}: cannot read: {e}");
            return ExitCode::from(1);
        }
    };
    let parsed = botgate::policy::parse(&text);
    // The parser has no clock: what today's date makes of the policy is found here.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let findings = parsed.policy.as_ref().map(|p| botgate::policy::audit::audit(p, now)).unwrap_or_default();
    let clock = botgate::policy::audit::warnings(&findings);
    for d in parsed.diags.iter().chain(&clock) {
        println!("{file}: {d}");
    }
    if parsed.policy.is_some() {
        let warnings = parsed.diags.len() + clock.len();
        let hash = botgate::policy::hash(&text).unwrap_or_default();
        println!("{file}: ok ({warnings} warning{}), hash {hash}", if warnings == 1 { "" } else { "s" });
        if audit {
            return audit_report(file, &findings);
        }
        ExitCode::SUCCESS
    } else {
        let errors = parsed.errors().count();
        println!("{file}: invalid ({errors} error{})", if errors == 1 { "" } else { "s" });
        ExitCode::from(1)
    }
}

/// `lint --audit`: one line per finding; exit 1 when anything expired or the review is overdue.
fn audit_report(file: &str, findings: &[botgate::policy::audit::Finding]) -> ExitCode {
    for f in findings {
        println!("{file}: audit: {f}");
    }
    let failing = findings.iter().filter(|f| f.fails()).count();
    let n = findings.len();
    println!("{file}: audit done ({n} finding{}, {failing} expired or overdue)", if n == 1 { "" } else { "s" });
    if failing > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// A policy file for `replay` and `report` (its errors on stderr).
fn load_policy(file: &str) -> Option<botgate::policy::Policy> {
    let text = std::fs::read(file).map_err(|e| eprintln!("{file}: cannot read: {e}")).ok()?;
    let parsed = botgate::policy::parse(&text);
    for d in parsed.errors() {
        eprintln!("{file}: {d}");
    }
    parsed.policy
}

/// The log to replay (`-`: stdin).
fn open_log(log: &str) -> Option<Box<dyn std::io::BufRead>> {
    if log == "-" {
        return Some(Box::new(std::io::stdin().lock()));
    }
    match std::fs::File::open(log) {
        Ok(f) => Some(Box::new(std::io::BufReader::new(f))),
        Err(e) => {
            eprintln!("{log}: cannot read: {e}");
            None
        }
    }
}

fn replay(policy: &str, log: &str, rest: &[&str]) -> ExitCode {
    let mut options = botgate::lab::replay::Options::default();
    let mut args = rest.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "--decisions" => options.decisions = true,
            "--compare" => match args.next().map(|f| load_policy(f)) {
                Some(Some(p)) => options.compare = Some(p),
                _ => return ExitCode::from(2),
            },
            other => {
                eprintln!("unknown option {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(p) = load_policy(policy) else { return ExitCode::from(1) };
    let Some(input) = open_log(log) else { return ExitCode::from(1) };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    match botgate::lab::replay::replay(p, input, options, &mut out, &mut err) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(skipped) => {
            eprintln!("{log}: {skipped} line(s) skipped");
            ExitCode::SUCCESS
        }
        // A reader that stopped early (`| head`) is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{log}: {e}");
            ExitCode::from(1)
        }
    }
}

/// `botgate report`: the replay as an HTML page on stdout.
fn report(policy: &str, log: &str) -> ExitCode {
    let Some(p) = load_policy(policy) else { return ExitCode::from(1) };
    let Some(input) = open_log(log) else { return ExitCode::from(1) };
    let about = botgate::lab::report::About { log: log.into(), policy: policy.into(), ..Default::default() };
    let mut err = std::io::stderr().lock();
    match botgate::lab::report::report(p, input, about, &mut err) {
        Ok(page) => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(page.as_bytes()).and_then(|()| out.flush()) {
                eprintln!("cannot write the report: {e}");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{log}: {e}");
            ExitCode::from(1)
        }
    }
}

fn simulate(file: &str, rest: &[&str]) -> ExitCode {
    let num = |i: usize, default: u64| rest.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let Ok(text) = std::fs::read(file) else {
        eprintln!("{file}: cannot read");
        return ExitCode::from(1);
    };
    let Some(policy) = botgate::policy::parse(&text).policy else {
        eprintln!("{file}: invalid policy (run botgate lint)");
        return ExitCode::from(1);
    };
    let (humans, per_kind, seed) = (num(0, 10_000), num(1, 100), num(2, 7));
    println!("== {file} as written");
    print!("{}", botgate::lab::simulate::run(&policy, humans, per_kind, seed).render());
    println!("== promoted from warn-first to enforce (mode enforce, bot_detector action block)");
    if std::env::var_os("BOTGATE_SIMULATE_DEBUG").is_some() {
        eprintln!("== promoted");
    }
    print!(
        "{}",
        botgate::lab::simulate::run(&botgate::lab::simulate::promoted(&policy), humans, per_kind, seed).render()
    );
    ExitCode::SUCCESS
}

fn ci_sign(secret: &str, method: &str, path: &str, rest: &[&str]) -> ExitCode {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let ts = rest.first().and_then(|s| s.parse().ok()).unwrap_or(now);
    println!("x-ci-timestamp: {ts}");
    println!("x-ci-signature: {}", botgate::checks::allow::ci_sign(secret.as_bytes(), method, path, ts));
    ExitCode::SUCCESS
}

fn token_mint(args: &[&str]) -> ExitCode {
    let opt = |name: &str| args.iter().position(|a| *a == name).and_then(|i| args.get(i + 1)).copied();
    let (Some(sid), Some(bnd)) = (opt("--session"), opt("--binding")) else {
        eprintln!("token mint needs --session SID and --binding BND (see botgate token binding)\n{USAGE}");
        return ExitCode::from(2);
    };
    let secret = match opt("--key") {
        Some(k) => k.to_string(),
        None => {
            let var = opt("--key-env").unwrap_or("BOTGATE_CLEARANCE_KEY");
            match std::env::var(var) {
                Ok(v) if v.len() >= 16 => v,
                _ => {
                    eprintln!("{var} is not set or shorter than 16 bytes");
                    return ExitCode::from(1);
                }
            }
        }
    };
    let ttl: u64 = opt("--ttl-minutes").and_then(|t| t.parse().ok()).unwrap_or(30);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let claims = botgate::challenge::token::Claims {
        iat: now,
        exp: now + ttl * 60,
        scope: "session".into(),
        sid: sid.into(),
        amr: opt("--amr").unwrap_or("webauthn").into(),
        bnd: bnd.into(),
    };
    let key =
        botgate::challenge::token::Key { id: opt("--kid").unwrap_or("current").into(), secret: secret.into_bytes() };
    println!("{}", botgate::challenge::token::mint(&key, &claims));
    ExitCode::SUCCESS
}

fn pow_solve(challenge: &str) -> ExitCode {
    let difficulty = challenge.split('.').nth(2).and_then(|d| d.parse::<u8>().ok());
    match difficulty.filter(|d| (1..=8).contains(d)).and_then(|d| botgate::challenge::pow::solve(challenge, d)) {
        Some(solution) => {
            println!("{solution}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("not a botgate proof-of-work challenge (v1.<nonce>.<difficulty>.<expiry>.<binding>.<mac>)");
            ExitCode::from(1)
        }
    }
}

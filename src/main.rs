//! `botgate`: the command-line companion of the filter.
//!
//! `botgate lint POLICY.json` validates a policy exactly as the filter's `on_configure` does.

use std::process::ExitCode;

const USAGE: &str = "usage:
  botgate lint POLICY.json     validate a policy (exit 0 when valid, 1 when not)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["lint", file] => lint(file),
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

fn lint(file: &str) -> ExitCode {
    let text = match std::fs::read(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{file}: cannot read: {e}");
            return ExitCode::from(1);
        }
    };
    let parsed = botgate::policy::parse(&text);
    for d in &parsed.diags {
        println!("{file}: {d}");
    }
    if parsed.policy.is_some() {
        let warnings = parsed.diags.len();
        println!("{file}: ok ({warnings} warning{})", if warnings == 1 { "" } else { "s" });
        ExitCode::SUCCESS
    } else {
        let errors = parsed.errors().count();
        println!("{file}: invalid ({errors} error{})", if errors == 1 { "" } else { "s" });
        ExitCode::from(1)
    }
}

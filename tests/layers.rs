//! The crate's lower layers never import its higher ones, so the import circle (the policy
//! importing the stages that import the policy) cannot come back. Read from the sources: a
//! module's `crate::…` paths outside comments and its test module.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

use std::collections::BTreeSet;
use std::path::Path;

/// Small building blocks: hashing, MACs and keys, CIDR sets, paths, tables, windows, the
/// user-agent list, counters, puzzles. They import only each other.
const BUILDING_BLOCKS: &[&str] =
    &["fasthash", "mac", "iptable", "paths", "lru", "window", "ua", "telemetry", "pow", "similarity"];

/// The crate modules a source file names (`crate::x`), outside comments and `#[cfg(test)]`.
fn imports(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap();
    let mut out = BTreeSet::new();
    for line in code.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            out.insert(name);
        }
        // `use super::…` inside policy/ stays inside the policy.
    }
    out
}

fn module_file(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(format!("{name}.rs"))
}

#[test]
fn building_blocks_import_only_building_blocks() {
    for block in BUILDING_BLOCKS {
        for used in imports(&module_file(block)) {
            assert!(BUILDING_BLOCKS.contains(&used.as_str()), "{block} imports crate::{used}, a higher layer");
        }
    }
}

#[test]
fn the_request_view_imports_only_building_blocks() {
    for used in imports(&module_file("signals")) {
        assert!(
            BUILDING_BLOCKS.contains(&used.as_str()),
            "signals imports crate::{used}: the request view is below the stages"
        );
    }
}

#[test]
fn the_policy_is_settings_at_the_bottom_and_imports_no_stage() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/policy");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        for used in imports(&file) {
            let allowed = used == "policy" || BUILDING_BLOCKS.contains(&used.as_str());
            assert!(allowed, "{} imports crate::{used}: the policy must not depend on a stage", file.display());
        }
    }
}

#[test]
fn the_layering_check_sees_an_import_that_breaks_it() {
    let dir = std::env::temp_dir().join(format!("botgate-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("x.rs");
    std::fs::write(
        &file,
        "// crate::engine in a comment is fine\nuse crate::challenge::COOKIE;\n#[cfg(test)]\nuse crate::engine;\n",
    )
    .unwrap();
    assert_eq!(imports(&file), BTreeSet::from(["challenge".to_string()]));
    std::fs::remove_dir_all(&dir).unwrap();
}

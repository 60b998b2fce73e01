//! The crate's folders are layers, and a lower layer never imports a higher one: the import
//! circle (the policy importing the stages that import the policy) cannot come back. Read from
//! the sources: a file's `crate::…` paths outside comments and its test module.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each folder of `src/` and the folders its files may import, lowest layer first. The request
/// view imports nothing of the crate; the policy is settings over building blocks and the request
/// view; the stages of the decision path import the policy and lower layers, never each other
/// sideways; the engine runs the stages; the shell and the lab drive the engine.
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &[]),
    ("request", &[]),
    ("policy", &["base", "request"]),
    ("identity", &["base", "request", "policy"]),
    ("checks", &["base", "request", "policy", "identity"]),
    ("score", &["base", "request", "policy", "identity"]),
    ("challenge", &["base", "request", "policy", "identity"]),
    ("decision", &["base", "request", "policy", "challenge"]),
    ("engine", &["base", "request", "policy", "identity", "checks", "score", "challenge", "decision"]),
    ("shell", &["base", "request", "policy", "identity", "challenge", "decision", "engine"]),
    ("lab", &["base", "request", "policy", "challenge", "decision", "engine"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level crate modules a source file names (`crate::x`), outside comments and
/// `#[cfg(test)]`.
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
        assert!(!line.contains("super::super"), "{}: reaches out of its folder with super::super", file.display());
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "rs")).collect()
}

#[test]
fn every_folder_of_src_is_a_layer_in_the_table() {
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !rust_files(&path).is_empty() {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            assert!(LAYERS.iter().any(|(l, _)| *l == name), "src/{name} is in no layer: add it to LAYERS");
        }
    }
}

#[test]
fn no_layer_imports_a_higher_or_sideways_one() {
    for (layer, allowed) in LAYERS {
        let files = rust_files(&src().join(layer));
        assert!(!files.is_empty(), "src/{layer} has no files");
        for file in files {
            for used in imports(&file) {
                let fine = used == *layer || allowed.contains(&used.as_str());
                assert!(fine, "{} imports crate::{used}: {layer} may import only {allowed:?}", file.display());
            }
        }
    }
}

#[test]
fn the_crate_root_holds_only_the_map() {
    let top: Vec<_> =
        rust_files(&src()).into_iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
    assert_eq!(top, ["lib.rs", "main.rs"], "a file in src/ belongs in the folder of its stage");
}

#[test]
fn the_layering_check_sees_an_import_that_breaks_it() {
    let dir = std::env::temp_dir().join(format!("botgate-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("x.rs");
    std::fs::write(
        &file,
        "// crate::engine in a comment is fine\nuse crate::challenge::gate::COOKIE;\n#[cfg(test)]\nuse crate::engine;\n",
    )
    .unwrap();
    assert_eq!(imports(&file), BTreeSet::from(["challenge".to_string()]));
    std::fs::remove_dir_all(&dir).unwrap();
}

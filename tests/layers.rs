//! The crate's folders are layers, and a lower layer never imports a higher one: the import
//! circle (the policy importing the stages that import the policy) cannot come back. Read from
//! the sources: a file's `crate::…` paths outside comments and its test module.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // test code

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each folder of `src/` and the folders its files may import, lowest layer first. The request
/// view and the outside formats import nothing of the crate; the policy is settings over building blocks and the request
/// view; the stages of the decision path import the policy and lower layers, never each other
/// sideways; the engine runs the stages; the shell and the lab drive the engine.
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &[]),
    ("formats", &[]),
    ("request", &[]),
    ("policy", &["base", "formats", "request"]),
    ("identity", &["base", "request", "policy"]),
    ("checks", &["base", "formats", "request", "policy", "identity"]),
    ("score", &["base", "request", "policy", "identity"]),
    ("challenge", &["base", "request", "policy", "identity"]),
    ("decision", &["base", "formats", "request", "policy", "challenge"]),
    ("engine", &["base", "formats", "request", "policy", "identity", "checks", "score", "challenge", "decision"]),
    // The shell drives the DNS steps of crawler verification (`checks/fcrdns`) between callouts.
    ("shell", &["base", "formats", "request", "policy", "identity", "checks", "challenge", "decision", "engine"]),
    ("lab", &["base", "request", "policy", "challenge", "decision", "score", "engine"]),
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

/// The files a source file imports: `crate::a::b` is `a/b.rs` when that file exists (else the
/// folder's `mod.rs`), `super::x` a sibling `x.rs`. Folder hubs (`mod.rs`, which declare their
/// files and hold the types those files implement) are left out: a circle among the other files
/// is a real one.
fn file_imports(file: &Path) -> BTreeSet<PathBuf> {
    let text = std::fs::read_to_string(file).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap();
    let folder = file.parent().unwrap();
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect() };
    for line in code.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            let a = ident(rest);
            let b = rest.get(a.len() + 2..).map(ident).unwrap_or_default();
            out.insert(src().join(&a).join(format!("{b}.rs")));
        }
        for (i, _) in line.match_indices("super::") {
            out.insert(folder.join(format!("{}.rs", ident(&line[i + "super::".len()..]))));
        }
    }
    out.into_iter().filter(|f| f.is_file() && f.as_path() != file).collect()
}

#[test]
fn no_file_imports_itself_back_through_others() {
    let mut graph = std::collections::BTreeMap::new();
    for (layer, _) in LAYERS {
        for file in rust_files(&src().join(layer)).into_iter().filter(|f| !f.ends_with("mod.rs")) {
            graph.insert(file.clone(), file_imports(&file));
        }
    }
    // Depth-first search; a file met again while still on the path closes a circle.
    fn visit(
        f: &Path,
        graph: &std::collections::BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        path: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
    ) {
        if done.contains(f) {
            return;
        }
        if let Some(at) = path.iter().position(|p| p == f) {
            let circle: Vec<_> =
                path[at..].iter().map(|p| p.strip_prefix(src()).unwrap().display().to_string()).collect();
            panic!("an import circle: {}", circle.join(" -> "));
        }
        path.push(f.to_path_buf());
        for next in graph.get(f).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(f.to_path_buf());
    }
    let mut done = BTreeSet::new();
    for f in graph.keys() {
        visit(f, &graph, &mut Vec::new(), &mut done);
    }
    assert!(done.len() > 40, "{} files read", done.len());
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

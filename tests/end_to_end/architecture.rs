//! Keeps ARCHITECTURE.md's rules true: crate dependencies point one way, and every source file
//! opens with a `//!` line saying what it holds.

use crate::support::workspace_root;
use std::collections::BTreeSet;
use std::path::Path;

/// The botflow crates each crate may depend on (normal dependencies), as ARCHITECTURE.md states.
const ALLOWED: &[(&str, &[&str])] = &[
    ("flow", &[]),
    ("messenger", &[]),
    ("storage", &["flow", "messenger"]),
    ("runtime", &["flow", "storage", "messenger"]),
    ("server", &["flow", "storage", "messenger", "runtime", "ui"]),
    (
        "cli",
        &["flow", "storage", "messenger", "runtime", "server", "ui"],
    ),
    ("ui", &[]),
];

/// Names of the botflow crates listed in the `[dependencies]` table of a crate manifest.
fn botflow_dependencies(manifest: &str) -> BTreeSet<String> {
    let mut in_dependencies = false;
    let mut found = BTreeSet::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if let Some(rest) = line.strip_prefix("botflow-").filter(|_| in_dependencies) {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            found.insert(name);
        }
    }
    found
}

#[test]
fn crate_dependencies_point_one_way() {
    let root = workspace_root();
    let mut crates_on_disk: Vec<String> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    crates_on_disk.sort();
    let mut documented: Vec<String> = ALLOWED.iter().map(|(name, _)| (*name).to_owned()).collect();
    documented.sort();
    assert_eq!(
        crates_on_disk, documented,
        "a crate was added or removed: update ARCHITECTURE.md and this test"
    );

    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    for (name, allowed) in ALLOWED {
        assert!(
            architecture.contains(&format!("crates/{name}")),
            "ARCHITECTURE.md does not describe crates/{name}"
        );
        let manifest =
            std::fs::read_to_string(root.join("crates").join(name).join("Cargo.toml")).unwrap();
        let allowed: BTreeSet<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        let extra: Vec<_> = botflow_dependencies(&manifest)
            .difference(&allowed)
            .cloned()
            .collect();
        assert!(
            extra.is_empty(),
            "crates/{name} depends on {extra:?}, which ARCHITECTURE.md does not allow"
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n == "node_modules")
            {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_says_what_it_holds() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    assert!(files.len() > 20, "found only {} Rust files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .map(|path| {
            path.strip_prefix(&root)
                .unwrap_or(path)
                .display()
                .to_string()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` opening line: {missing:?}"
    );
}

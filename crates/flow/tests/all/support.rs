//! Helpers shared by the suites: paths and the "rewrite when UPDATE_EXPECT=1" comparison.

use std::path::{Path, PathBuf};

/// The crate's `test_data` folder.
pub(crate) fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data")
}

/// The workspace root (for `flows/` and `schemas/`).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// The `*.json` files of a folder, sorted.
pub(crate) fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

/// Compares `actual` with the file at `path`; with `env_var=1` set, rewrites the file instead.
/// Returns a description of the mismatch, if any.
pub(crate) fn compare_with_file(path: &Path, actual: &str, env_var: &str) -> Option<String> {
    let update = std::env::var(env_var).is_ok_and(|v| v == "1");
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    if update {
        std::fs::write(path, actual).unwrap();
        return None;
    }
    Some(format!(
        "{} is stale (run with {env_var}=1 to rewrite it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    ))
}

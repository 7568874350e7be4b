//! Helpers shared by the end-to-end suites: locating and running the real binary.

use std::path::PathBuf;

/// Path of the `botflow` binary that `cargo test --workspace` builds next to this test binary.
pub(crate) fn botflow_bin() -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("botflow{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not built: run `cargo test --workspace` or `cargo build -p botflow-cli`",
        bin.display()
    );
    bin
}

/// Root of the workspace (for `flows/` and `tests/conversations/`).
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

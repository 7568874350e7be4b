//! Smoke test of the built binary; its presence also makes `cargo test --workspace`
//! build `botflow` before the end-to-end suites in `tests/` run it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

#[test]
fn help_lists_every_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_botflow"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for command in ["validate", "schema"] {
        assert!(
            text.contains(command),
            "`{command}` missing from help:\n{text}"
        );
    }
}

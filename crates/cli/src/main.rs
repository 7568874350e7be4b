//! The `botflow` command-line tool.
fn main() {}

//! Smoke tests of the built binary; their presence also makes `cargo test --workspace`
//! build `botflow` before the end-to-end suites in `tests/` run it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

fn botflow(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_botflow"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_lists_every_command() {
    let out = botflow(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for command in [
        "validate", "schema", "openapi", "simulate", "serve", "push", "topics", "flows", "notify",
        "migrate",
    ] {
        assert!(
            text.contains(command),
            "`{command}` missing from help:\n{text}"
        );
    }
}

#[test]
fn schema_is_json_schema_2020_12() {
    let out = botflow(&["schema"]);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["title"], "botflow flow, format 1");
}

#[test]
fn unknown_subcommands_and_missing_paths_are_usage_errors() {
    assert_eq!(botflow(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(botflow(&["validate"]).status.code(), Some(2));
}

fn migrate(env: &[(&str, &str)]) -> (std::process::Output, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_botflow"))
        .arg("migrate")
        .env_remove("BOTFLOW_DATABASE_URL")
        .env_remove("BOTFLOW_DATABASE_CA_FILE")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

#[test]
fn migrate_applies_the_schema_once_and_says_what_it_did() {
    let database = botflow_storage::pg_test::TestDatabase::new();
    let url = [("BOTFLOW_DATABASE_URL", database.url())];
    let (out, stdout, stderr) = migrate(&url);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("applied migration 0001_init"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "schema is at version {}",
            botflow_storage::PgStore::schema_version()
        )),
        "{stdout}"
    );
    let (out, stdout, _) = migrate(&url);
    assert!(out.status.success());
    assert!(stdout.contains("up to date"), "{stdout}");

    let (out, _, stderr) = migrate(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("BOTFLOW_DATABASE_URL"), "{stderr}");
    let (out, _, stderr) = migrate(&[("BOTFLOW_DATABASE_URL", "mysql://db/botflow")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("not a postgres:// URL"), "{stderr}");
}

#[test]
fn migrate_reads_the_database_ca_file_and_explains_tls_failures() {
    let database = botflow_storage::pg_test::TestDatabase::new();
    // a CA file that cannot be read stops it before it connects, naming the file
    let missing =
        std::env::temp_dir().join(format!("botflow-no-such-ca-{}.pem", std::process::id()));
    let missing_text = missing.display().to_string();
    let (out, _, stderr) = migrate(&[
        ("BOTFLOW_DATABASE_URL", database.url()),
        ("BOTFLOW_DATABASE_CA_FILE", &missing_text),
    ]);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("BOTFLOW_DATABASE_CA_FILE") && stderr.contains(&missing_text),
        "{stderr}"
    );
    // the tests' server has no TLS: sslmode=require is refused with what to change
    let url = format!("{}?sslmode=require", database.url());
    let (out, _, stderr) = migrate(&[("BOTFLOW_DATABASE_URL", &url)]);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("does not accept TLS") && stderr.contains("sslmode"),
        "{stderr}"
    );
}

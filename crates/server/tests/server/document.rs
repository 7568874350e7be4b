//! `schemas/openapi.json` is the generated OpenAPI document, committed for the UI's TypeScript
//! type generation; this test keeps it current (rewrite it with `UPDATE_SCHEMA=1`).

use std::path::Path;

#[test]
fn stored_openapi_document_equals_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/openapi.json");
    let generated = botflow_server::openapi_text();
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    if stored == generated {
        return;
    }
    if std::env::var("UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    panic!(
        "{} is stale: run `UPDATE_SCHEMA=1 cargo test -p botflow-server` to rewrite it \
         (or `botflow openapi > schemas/openapi.json`)",
        path.display()
    );
}

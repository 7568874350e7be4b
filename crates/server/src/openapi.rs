//! The OpenAPI 3.1 document of the HTTP interface, written by hand in `openapi.json` and served
//! as is at `/api/openapi.json`.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

/// The OpenAPI 3.1 document (JSON text).
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// `GET /api/openapi.json`: the document, without authentication so tools can fetch it.
pub(crate) async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::ROUTES;
    use serde_json::Value;

    #[test]
    fn document_is_openapi_3_1_and_lists_every_route() {
        let document: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        for (method, path) in ROUTES {
            let operation = &document["paths"][*path][method.as_str().to_lowercase()];
            assert!(
                operation.is_object(),
                "{method} {path} is served but missing from openapi.json"
            );
            assert!(
                operation["responses"].is_object(),
                "{method} {path} has no responses in openapi.json"
            );
        }
    }

    #[test]
    fn every_documented_operation_is_served() {
        let document: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        let paths = document["paths"].as_object().unwrap();
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                if method == "parameters" {
                    continue;
                }
                assert!(
                    ROUTES
                        .iter()
                        .any(|(m, p)| p == path && m.as_str().eq_ignore_ascii_case(method)),
                    "{method} {path} is documented but not in router::ROUTES"
                );
            }
        }
    }

    #[test]
    fn every_path_parameter_is_declared_by_each_operation() {
        let document: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        for (path, item) in document["paths"].as_object().unwrap() {
            let names: Vec<&str> = path
                .split('/')
                .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            for (method, operation) in item.as_object().unwrap() {
                let declared: Vec<&str> = operation["parameters"]
                    .as_array()
                    .map(|params| {
                        params
                            .iter()
                            .filter(|p| p["in"] == "path")
                            .filter_map(|p| p["name"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(declared, names, "{method} {path}: path parameters");
                assert!(
                    operation["operationId"].is_string(),
                    "{method} {path}: operationId"
                );
            }
        }
    }

    #[test]
    fn every_schema_reference_resolves() {
        let document: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        let mut refs = Vec::new();
        collect_refs(&document, &mut refs);
        assert!(!refs.is_empty());
        for reference in refs {
            let pointer = reference.trim_start_matches('#');
            assert!(
                document.pointer(pointer).is_some(),
                "dangling $ref {reference}"
            );
        }
    }

    fn collect_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    match (key.as_str(), child) {
                        ("$ref", Value::String(reference)) => out.push(reference.clone()),
                        _ => collect_refs(child, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
            _ => {}
        }
    }
}

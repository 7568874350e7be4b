//! The OpenAPI 3.1 document of the HTTP interface, generated from the handlers' `#[utoipa::path]`
//! annotations and the types they really take and answer, and served at `/api/openapi.json`.
//!
//! Types of the crates below the server (the flow document, diagnostics, flow summaries,
//! sessions) derive `schemars::JsonSchema`; they enter the document through the marker types of
//! [`schemars_components!`], so the flow format has one schema, the one in `schemas/`.

use crate::router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::{Map, Value};
use std::sync::LazyLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, Schema};
use utoipa::{Modify, OpenApi};

/// The document's fixed parts: info, the bearer scheme; the paths come from [`router`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "botflow admin and webhook API",
        description = "Admin API used by the builder UI (bearer token) and the Messenger webhook \
                       (signed). Every error is `{\"error\": {\"code\", \"message\"}}`; request \
                       bodies with fields the API does not know are refused (422), except the \
                       flow document, whose unknown fields are kept and warned about \
                       (`unknown-field`), as `botflow validate` does."
    ),
    servers((url = "http://127.0.0.1:8080")),
    modifiers(&BearerScheme)
)]
pub(crate) struct ApiDoc;

/// Name of the security scheme of the admin API.
pub(crate) const BEARER: &str = "bearer";

/// Adds the bearer security scheme (the admin token) to the components.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut Document) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The admin token (`BOTFLOW_ADMIN_TOKEN`)."))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// Declares, for each `Marker = Type` pair, a marker type usable in `#[schema(value_type = …)]`
/// and `body = …` whose component is `Type`'s schemars schema, and [`schemars_definitions`],
/// which generates those schemas (and the ones they refer to) for `components/schemas`.
macro_rules! schemars_components {
    ($($(#[$doc:meta])* $marker:ident = $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            pub(crate) struct $marker;

            impl utoipa::PartialSchema for $marker {
                fn schema() -> RefOr<Schema> {
                    // Replaced by the schemars schema in `finish`.
                    RefOr::T(Schema::default())
                }
            }

            impl utoipa::ToSchema for $marker {
                fn name() -> std::borrow::Cow<'static, str> {
                    <$ty as schemars::JsonSchema>::schema_name()
                }
            }
        )*

        /// The schemars schemas of the marker types and of every type they refer to, by name,
        /// with references pointing into `#/components/schemas`.
        fn schemars_definitions() -> Map<String, Value> {
            let mut generator = schemars::generate::SchemaSettings::draft2020_12()
                .with(|settings| {
                    settings.definitions_path = "/components/schemas".into();
                    settings.meta_schema = None;
                })
                .into_generator();
            $( generator.subschema_for::<$ty>(); )*
            generator.take_definitions(true)
        }
    };
}

schemars_components! {
    /// A flow document, format 1 (`schemas/flow.schema.json`).
    FlowDocumentSchema = botflow_flow::FlowDocument,
    /// A validation diagnostic.
    DiagnosticSchema = botflow_flow::Diagnostic,
    /// One line of a Page's flow list.
    FlowSummarySchema = botflow_storage::FlowSummary,
    /// A subscriber's stored session.
    SessionSchema = botflow_storage::Session,
}

/// The OpenAPI document of every route [`router`] serves.
pub fn openapi() -> Value {
    finish(router::documented_routes().into_openapi())
}

/// [`openapi`] as pretty-printed JSON with a final newline, as stored in `schemas/openapi.json`
/// and printed by `botflow openapi`.
pub fn openapi_text() -> String {
    let mut text = serde_json::to_string_pretty(&openapi()).unwrap_or_default();
    text.push('\n');
    text
}

/// The document, built once per process.
static DOCUMENT: LazyLock<String> = LazyLock::new(openapi_text);

/// `GET /api/openapi.json`: this document, without authentication so tools can fetch it.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi",
    tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object))
)]
pub(crate) async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

/// Serialises the generated document and puts the schemars schemas in place of the markers.
fn finish(document: Document) -> Value {
    let mut document = serde_json::to_value(document).unwrap_or_default();
    if let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.extend(schemars_definitions());
        schemas.sort_keys();
    }
    camel_case_links(&mut document);
    document
}

/// utoipa 5 writes the fields of a Link Object in snake case (`operation_id`); OpenAPI spells
/// them `operationId`, `operationRef` and `requestBody`.
fn camel_case_links(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let responses = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let Some(links) = response.get_mut("links").and_then(Value::as_object_mut) else {
            continue;
        };
        for link in links.values_mut().filter_map(Value::as_object_mut) {
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.shift_remove(snake) {
                    link.insert(camel.to_owned(), value);
                }
            }
        }
    }
}

/// Marks every operation of an admin router as needing the bearer token and answering 401
/// without it: the token check is a layer, so the handlers do not list it themselves.
pub(crate) fn document_bearer_auth(document: &mut Document) {
    let unauthorized = utoipa::openapi::ResponseBuilder::new()
        .description("Missing or wrong bearer token.")
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("Error")))
                .build(),
        )
        .build();
    let requirement = utoipa::openapi::security::SecurityRequirement::new::<_, _, &str>(BEARER, []);
    for item in document.paths.paths.values_mut() {
        for operation in path_operations(item) {
            operation.security = Some(vec![requirement.clone()]);
            operation
                .responses
                .responses
                .entry("401".to_owned())
                .or_insert_with(|| RefOr::T(unauthorized.clone()));
        }
    }
}

/// Every operation of a path item.
fn path_operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn document_is_openapi_3_1_with_the_bearer_scheme() {
        let document = openapi();
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(
            document["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        let admin = &document["paths"]["/api/pages/{page}/topics"]["get"];
        assert_eq!(admin["security"], json!([{BEARER: []}]));
        assert!(admin["responses"]["401"].is_object());
        let public = &document["paths"]["/healthz"]["get"];
        assert!(public.get("security").is_none(), "{public}");
    }

    #[test]
    fn every_schema_reference_resolves() {
        let document = openapi();
        let mut refs = Vec::new();
        collect_refs(&document, &mut refs);
        assert!(refs.len() > 10, "{refs:?}");
        for reference in refs {
            let pointer = reference.trim_start_matches('#');
            assert!(
                document.pointer(pointer).is_some(),
                "dangling $ref {reference}"
            );
        }
    }

    #[test]
    fn the_flow_document_schema_is_the_one_of_the_flow_format() {
        let document = openapi();
        let flow = &document["components"]["schemas"]["FlowDocument"];
        let mut expected = botflow_flow::flow_schema();
        let expected = expected.as_object_mut().unwrap();
        for generated_only in ["$schema", "$defs"] {
            expected.remove(generated_only);
        }
        let mut text = Value::Object(expected.clone()).to_string();
        text = text.replace("#/$defs/", "#/components/schemas/");
        assert_eq!(flow, &serde_json::from_str::<Value>(&text).unwrap());
    }

    #[test]
    fn schemars_names_do_not_collide_with_the_servers_schemas() {
        let generated = serde_json::to_value(router::documented_routes().into_openapi()).unwrap();
        let servers = generated["components"]["schemas"].as_object().unwrap();
        for name in schemars_definitions().keys() {
            if let Some(schema) = servers.get(name) {
                assert_eq!(
                    schema,
                    &serde_json::to_value(Schema::default()).unwrap(),
                    "`{name}` is both a server schema and a schemars schema"
                );
            }
        }
    }

    #[test]
    fn every_operation_has_an_id_and_its_path_parameters() {
        let document = openapi();
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
    fn every_link_names_an_operation_of_the_document() {
        let document = openapi();
        let mut ids = Vec::new();
        let mut links = Vec::new();
        for item in document["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                ids.push(operation["operationId"].as_str().unwrap().to_owned());
                for response in operation["responses"].as_object().unwrap().values() {
                    if let Some(found) = response.get("links").and_then(Value::as_object) {
                        links.extend(found.values().cloned());
                    }
                }
            }
        }
        assert!(links.len() >= 6, "{links:?}");
        for link in links {
            let target = link["operationId"].as_str().unwrap();
            assert!(ids.iter().any(|id| id == target), "link to {target}");
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

//! Text templates with `{{field}}` and `{{field|fallback}}` placeholders, parsed once when the flow is read.

use crate::ids::FieldName;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Text copied as it is.
    Literal(String),
    /// A `{{field}}` or `{{field|fallback}}` placeholder, replaced by the subscriber's field
    /// value; when that is unset or empty, by the fallback (or nothing without one).
    Field {
        /// The field read.
        name: FieldName,
        /// Text rendered when the field is unset or empty (never empty itself).
        fallback: Option<String>,
    },
}

/// Why a template could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{{` without its closing `}}`.
    #[error("placeholder opened at byte {offset} is not closed with `}}}}`")]
    Unclosed {
        /// Byte offset of the `{{`.
        offset: usize,
    },
    /// A placeholder whose name is empty or holds characters other than letters, digits, `_` and `.`.
    #[error(
        "placeholder {{{{{name}}}}} at byte {offset} is not a field name (use letters, digits, `_` and `.`)"
    )]
    BadName {
        /// The text between the braces.
        name: String,
        /// Byte offset of the `{{`.
        offset: usize,
    },
    /// A `{{field|fallback}}` whose fallback is empty or holds `{{` or `|`.
    #[error(
        "placeholder {{{{{name}|{fallback}}}}} at byte {offset} has a bad fallback (write text after `|`, without `{{{{` or `|`, e.g. {{{{first_name|there}}}})"
    )]
    BadFallback {
        /// The field name before the `|`.
        name: String,
        /// The text after the `|`.
        fallback: String,
        /// Byte offset of the `{{`.
        offset: usize,
    },
}

/// A text with `{{field}}` placeholders. Always deserializes; a malformed template keeps its
/// source and reports its problem through [`Template::error`], so validation can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parsed: Result<Vec<TemplatePart>, TemplateError>,
}

impl Template {
    /// Parses `source` into literal parts and placeholders.
    pub fn new(source: impl Into<String>) -> Self {
        let source = source.into();
        let parsed = parse_parts(&source);
        Self { source, parsed }
    }

    /// The text as written by the author.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The parse error, if the template is malformed.
    pub fn error(&self) -> Option<&TemplateError> {
        self.parsed.as_ref().err()
    }

    /// The parsed parts (empty for a malformed template).
    pub fn parts(&self) -> &[TemplatePart] {
        self.parsed.as_deref().unwrap_or(&[])
    }

    /// Field names this template reads.
    pub fn fields(&self) -> impl Iterator<Item = &FieldName> {
        self.parts().iter().filter_map(|part| match part {
            TemplatePart::Field { name, .. } => Some(name),
            TemplatePart::Literal(_) => None,
        })
    }

    /// Length in characters of the longest text this template can produce when every field
    /// is at most `field_max_chars` long (or renders its fallback, when that is longer); used for
    /// Messenger's text limits.
    pub fn max_rendered_chars(&self, field_max_chars: usize) -> usize {
        match &self.parsed {
            Ok(parts) => parts
                .iter()
                .map(|part| match part {
                    TemplatePart::Literal(text) => text.chars().count(),
                    TemplatePart::Field { fallback, .. } => fallback
                        .as_deref()
                        .map_or(0, |text| text.chars().count())
                        .max(field_max_chars),
                })
                .sum(),
            Err(_) => self.source.chars().count(),
        }
    }

    /// Renders the template, looking each field up with `lookup`; a missing or empty field renders
    /// its fallback, or nothing when it has none.
    /// A malformed template renders its source unchanged.
    pub fn render<'a>(&self, lookup: impl Fn(&FieldName) -> Option<&'a str>) -> String {
        match &self.parsed {
            Ok(parts) => {
                let mut out = String::with_capacity(self.source.len());
                for part in parts {
                    match part {
                        TemplatePart::Literal(text) => out.push_str(text),
                        TemplatePart::Field { name, fallback } => {
                            let value = lookup(name).filter(|value| !value.is_empty());
                            out.push_str(value.or(fallback.as_deref()).unwrap_or(""));
                        }
                    }
                }
                out
            }
            Err(_) => self.source.clone(),
        }
    }
}

fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn parse_parts(source: &str) -> Result<Vec<TemplatePart>, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = source;
    let mut consumed = 0;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(TemplatePart::Literal(rest[..open].to_owned()));
        }
        let offset = consumed + open;
        let after_open = &rest[open + 2..];
        let close = after_open
            .find("}}")
            .ok_or(TemplateError::Unclosed { offset })?;
        let inner = &after_open[..close];
        let (name, fallback) = match inner.split_once('|') {
            Some((name, fallback)) => (name.trim(), Some(fallback.trim())),
            None => (inner.trim(), None),
        };
        if name.is_empty() || !name.chars().all(is_field_char) {
            return Err(TemplateError::BadName {
                name: name.to_owned(),
                offset,
            });
        }
        if let Some(text) = fallback {
            if text.is_empty() || text.contains("{{") || text.contains('|') {
                return Err(TemplateError::BadFallback {
                    name: name.to_owned(),
                    fallback: text.to_owned(),
                    offset,
                });
            }
        }
        parts.push(TemplatePart::Field {
            name: FieldName(name.to_owned()),
            fallback: fallback.map(str::to_owned),
        });
        let advance = open + 2 + close + 2;
        consumed += advance;
        rest = &rest[advance..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Literal(rest.to_owned()));
    }
    Ok(parts)
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::new(String::deserialize(deserializer)?))
    }
}

impl JsonSchema for Template {
    fn schema_name() -> Cow<'static, str> {
        "Template".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "Text in which `{{field}}` is replaced by the subscriber's field value (empty when unset), and `{{field|fallback}}` by the value or, when it is unset or empty, by the fallback text, e.g. \"Hi {{first_name|there}}!\"."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_and_literals() {
        let t = Template::new("Hi {{ first_name }}, code {{code}}!");
        assert_eq!(t.error(), None);
        let fields: Vec<_> = t.fields().map(FieldName::as_str).collect();
        assert_eq!(fields, ["first_name", "code"]);
        let out = t.render(|f| (f.as_str() == "first_name").then_some("Ada"));
        assert_eq!(out, "Hi Ada, code !");
    }

    #[test]
    fn reports_unclosed_and_bad_names() {
        assert_eq!(
            Template::new("a {{b").error(),
            Some(&TemplateError::Unclosed { offset: 2 })
        );
        assert!(matches!(
            Template::new("{{ }}").error(),
            Some(TemplateError::BadName { .. })
        ));
        assert!(matches!(
            Template::new("{{a b}}").error(),
            Some(TemplateError::BadName { .. })
        ));
    }

    #[test]
    fn max_rendered_length_counts_fields() {
        assert_eq!(Template::new("ab{{x}}c").max_rendered_chars(10), 13);
        assert_eq!(Template::new("ab{{x|fallback}}c").max_rendered_chars(3), 11);
        assert_eq!(Template::new("ab{{x|fb}}c").max_rendered_chars(10), 13);
    }

    #[test]
    fn fallback_renders_when_field_is_unset_or_empty() {
        let t = Template::new("Hi {{ first_name | there }}!");
        assert_eq!(t.error(), None);
        let fields: Vec<_> = t.fields().map(FieldName::as_str).collect();
        assert_eq!(fields, ["first_name"]);
        assert_eq!(t.render(|_| None), "Hi there!");
        assert_eq!(t.render(|_| Some("")), "Hi there!");
        assert_eq!(t.render(|_| Some("Ada")), "Hi Ada!");
    }

    #[test]
    fn reports_bad_fallbacks() {
        for source in ["{{a|}}", "{{a| }}", "{{a|b|c}}", "{{a|b{{c}}"] {
            assert!(
                matches!(
                    Template::new(source).error(),
                    Some(TemplateError::BadFallback { .. })
                ),
                "{source}"
            );
        }
        assert!(matches!(
            Template::new("{{|there}}").error(),
            Some(TemplateError::BadName { .. })
        ));
    }
}

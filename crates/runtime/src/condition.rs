//! Evaluation of a `condition` block's branches against the subscriber's fields and tags.

use botflow_flow::{BlockId, Branch, Condition, FieldOp, Predicate, PredicateMatch};
use botflow_storage::Session;

/// The block a condition continues with: the first branch that holds, else `else`, else `next`.
pub fn choose<'a>(
    condition: &'a Condition,
    next: Option<&'a BlockId>,
    session: &Session,
) -> Option<&'a BlockId> {
    condition
        .branches
        .iter()
        .find(|branch| branch_holds(branch, session))
        .map(|branch| &branch.next)
        .or(condition.else_next.as_ref())
        .or(next)
}

fn branch_holds(branch: &Branch, session: &Session) -> bool {
    let mut results = branch.when.iter().map(|p| predicate_holds(p, session));
    match branch.match_mode {
        PredicateMatch::All => results.all(|r| r),
        PredicateMatch::Any => results.any(|r| r),
    }
}

/// Whether one predicate holds for the session.
pub fn predicate_holds(predicate: &Predicate, session: &Session) -> bool {
    match predicate {
        Predicate::Tag { tag, present } => session.tags.contains(tag) == *present,
        Predicate::Field { field, op, value } => {
            let actual = session
                .fields
                .get(field.as_str())
                .map(|v| v.trim())
                .filter(|v| !v.is_empty());
            let expected = value.as_deref().unwrap_or("").trim();
            match op {
                FieldOp::IsSet => actual.is_some(),
                FieldOp::IsNotSet => actual.is_none(),
                FieldOp::Equals => {
                    actual.is_some_and(|a| a.to_lowercase() == expected.to_lowercase())
                }
                FieldOp::NotEquals => {
                    actual.is_none_or(|a| a.to_lowercase() != expected.to_lowercase())
                }
                FieldOp::Contains => {
                    actual.is_some_and(|a| a.to_lowercase().contains(&expected.to_lowercase()))
                }
                FieldOp::GreaterThan => compare(actual, expected).is_some_and(|(a, b)| a > b),
                FieldOp::LessThan => compare(actual, expected).is_some_and(|(a, b)| a < b),
            }
        }
    }
}

fn compare(actual: Option<&str>, expected: &str) -> Option<(f64, f64)> {
    Some((actual?.parse().ok()?, expected.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use botflow_flow::FieldName;

    fn field(name: &str, op: FieldOp, value: Option<&str>) -> Predicate {
        Predicate::Field {
            field: FieldName(name.into()),
            op,
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn field_comparisons() {
        let mut session = Session::default();
        session.fields.insert("size".into(), " 42 ".into());
        session.fields.insert("colour".into(), "Red".into());
        session.fields.insert("empty".into(), "".into());
        session.tags.insert("vip".into());
        let cases = [
            (field("size", FieldOp::IsSet, None), true),
            (field("empty", FieldOp::IsSet, None), false),
            (field("missing", FieldOp::IsNotSet, None), true),
            (field("colour", FieldOp::Equals, Some("red ")), true),
            (field("colour", FieldOp::NotEquals, Some("red")), false),
            (field("missing", FieldOp::NotEquals, Some("red")), true),
            (field("colour", FieldOp::Contains, Some("E")), true),
            (field("size", FieldOp::GreaterThan, Some("41.5")), true),
            (field("size", FieldOp::LessThan, Some("42")), false),
            (field("colour", FieldOp::LessThan, Some("42")), false),
            (
                Predicate::Tag {
                    tag: "vip".into(),
                    present: true,
                },
                true,
            ),
            (
                Predicate::Tag {
                    tag: "vip".into(),
                    present: false,
                },
                false,
            ),
        ];
        for (predicate, expected) in cases {
            assert_eq!(
                predicate_holds(&predicate, &session),
                expected,
                "{predicate:?}"
            );
        }
    }
}

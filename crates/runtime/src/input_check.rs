//! Type checks of replies to `wait_input` blocks.

use botflow_flow::InputKind;

/// Whether `reply` (already trimmed) is an acceptable answer of this kind.
pub fn accepts(kind: InputKind, reply: &str) -> bool {
    if reply.is_empty() {
        return false;
    }
    match kind {
        InputKind::Text => true,
        InputKind::Number => is_number(reply),
        InputKind::Email => is_email(reply),
        InputKind::Phone => is_phone(reply),
    }
}

fn is_number(reply: &str) -> bool {
    reply.parse::<f64>().is_ok_and(f64::is_finite)
        && reply
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'))
}

fn is_email(reply: &str) -> bool {
    let Some((local, domain)) = reply.split_once('@') else {
        return false;
    };
    let labels_ok = domain
        .split('.')
        .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    !local.is_empty()
        && !reply.chars().any(char::is_whitespace)
        && !domain.contains('@')
        && domain.contains('.')
        && labels_ok
}

fn is_phone(reply: &str) -> bool {
    let digits = reply.chars().filter(char::is_ascii_digit).count();
    reply
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')'))
        && (6..=15).contains(&digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_each_kind() {
        let cases = [
            (InputKind::Text, "anything", true),
            (InputKind::Text, "", false),
            (InputKind::Number, "42", true),
            (InputKind::Number, "-3.5", true),
            (InputKind::Number, "4O", false),
            (InputKind::Number, "inf", false),
            (InputKind::Email, "ada@example.com", true),
            (InputKind::Email, "ada@example", false),
            (InputKind::Email, "ada example@x.com", false),
            (InputKind::Email, "@example.com", false),
            (InputKind::Email, "a@b@c.com", false),
            (InputKind::Phone, "+33 (1) 23-45-67-89", true),
            (InputKind::Phone, "12345", false),
            (InputKind::Phone, "call me", false),
            (InputKind::Phone, "1234567890123456", false),
        ];
        for (kind, reply, ok) in cases {
            assert_eq!(accepts(kind, reply), ok, "{kind:?} {reply:?}");
        }
    }
}

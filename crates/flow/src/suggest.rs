//! "Did you mean" suggestions: the closest known name to a misspelt one.

/// The candidate closest to `input` (ignoring case, `_` and `-`), when it is close enough to be
/// a plausible typo: equal after normalising, or within an edit distance of a third of its length.
pub(crate) fn closest<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let wanted = normalise(input);
    if wanted.is_empty() || wanted.len() > 64 {
        return None;
    }
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let known = normalise(candidate);
        if known.len() > 64 {
            continue;
        }
        let distance = edit_distance(&wanted, &known);
        let limit = (known.len().max(wanted.len()) / 3).max(1);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

fn normalise(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| *c != '_' && *c != '-' && *c != ' ')
        .flat_map(char::to_lowercase)
        .collect()
}

fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let types = ["send_message", "wait_input", "condition"];
        assert_eq!(closest("sendMessage", types), Some("send_message"));
        assert_eq!(closest("send_mesage", types), Some("send_message"));
        assert_eq!(closest("conditon", types), Some("condition"));
        assert_eq!(closest("webhook", types), None);
        assert_eq!(closest("", types), None);
    }
}

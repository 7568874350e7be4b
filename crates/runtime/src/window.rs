//! Messenger's 24-hour standard messaging window, as the dispatcher and the simulator apply it.

/// Length of the standard messaging window after the subscriber's last interaction
/// (messenger's [`botflow_messenger::limits::MESSAGING_WINDOW`], in milliseconds).
pub const WINDOW_MS: u64 = botflow_messenger::limits::MESSAGING_WINDOW.as_millis() as u64;

/// Whether a normal (non-token) message may be sent at `now_ms` to a subscriber whose last
/// interaction was at `last_interaction_ms` (never: no window).
pub fn within_window(last_interaction_ms: Option<u64>, now_ms: u64) -> bool {
    last_interaction_ms.is_some_and(|last| now_ms.saturating_sub(last) <= WINDOW_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_closes_after_24_hours() {
        assert!(within_window(Some(1_000), 1_000 + WINDOW_MS));
        assert!(!within_window(Some(1_000), 1_001 + WINDOW_MS));
        assert!(
            within_window(Some(5_000), 4_000),
            "clock skew is not outside the window"
        );
        assert!(!within_window(None, 0));
    }
}

//! The flow crate validates with its own copies of Messenger's limits (it may depend on no
//! botflow crate); they must equal messenger's, the one definition the runtime and the fake use.

use botflow_messenger::limits;
use botflow_runtime::{TOKEN_LIFETIME_MS, window::WINDOW_MS};

#[test]
fn validation_uses_the_same_limits_as_the_send_api_and_the_fake() {
    assert_eq!(botflow_flow::MAX_TEXT_CHARS, limits::MAX_TEXT_CHARS);
    assert_eq!(
        botflow_flow::MAX_BUTTON_TEXT_CHARS,
        limits::MAX_BUTTON_TEXT_CHARS
    );
    assert_eq!(botflow_flow::MAX_BUTTONS, limits::MAX_BUTTONS);
    assert_eq!(
        botflow_flow::MAX_TITLE_CHARS,
        limits::MAX_BUTTON_TITLE_CHARS
    );
    assert_eq!(botflow_flow::MAX_QUICK_REPLIES, limits::MAX_QUICK_REPLIES);
    assert_eq!(
        botflow_flow::MAX_OTN_TITLE_CHARS,
        limits::MAX_NOTIFICATION_TITLE_CHARS
    );
    assert_eq!(
        botflow_flow::WINDOW_SECS,
        limits::MESSAGING_WINDOW.as_secs()
    );
    assert_eq!(u128::from(WINDOW_MS), limits::MESSAGING_WINDOW.as_millis());
    assert_eq!(
        u128::from(TOKEN_LIFETIME_MS),
        limits::OTN_TOKEN_LIFETIME.as_millis()
    );
}

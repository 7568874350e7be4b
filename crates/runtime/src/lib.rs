//! The botflow runtime: runs published flows per subscriber when Messenger events arrive.
//!
//! The heart is a pure function, [`step`]: `(StepContext, Session, InboundEvent, now) → StepOutcome`
//! (new session, Send API requests to queue, effects such as a token to store). It does no I/O
//! and reads no clock, so conversations replay exactly; [`simulate`] plays scripted
//! conversations through it (`botflow simulate`).
//!
//! # Routing
//! An event goes, in this order, to:
//! 1. **the block it names**: button and quick-reply payloads (`bf1:t:<flow>:<version>:<block>:<port>`)
//!    and OTN opt-in payloads (`bf1:o:<page>:<flow>:<version>:<block>:<message>:<topic>`, see
//!    [`payload`]) carry the flow *version*, so a tap on an old message continues in the version
//!    that sent it even after the flow was republished;
//! 2. **the block the subscriber waits on**: a text or attachment goes to a waiting `wait_input`;
//!    a text equal to a button or quick-reply title of the waiting `send_message` counts as that tap;
//! 3. **a trigger** of an active flow: keyword (text), get started, referral (in flow id order);
//! 4. **the Page's default flow** (a flow with the `default` trigger), for texts and attachments;
//! 5. otherwise the event is ignored (an [`Effect::Ignored`]); the session keeps its position.
//!
//! Starting a flow, a tap or an opt-in with a continuation *moves* the subscriber: their previous
//! wait and pending timers are dropped. A subscriber keeps the version it started until the run
//! ends. **Retired versions**: when an event needs a version that is no longer available (the
//! caller did not put it in [`PublishedFlows`]), the run is left with a
//! [`StepError::VersionRetired`] recorded in `last_error`, and the event is routed as if the
//! subscriber waited on nothing (a tap is then treated as a text equal to its title); a token
//! from an opt-in on a retired version is still stored.
//!
//! # Block semantics (format 1)
//! - `send_message`: sends its messages in order (`{{field}}` filled in from the session, missing
//!   fields empty). Text with buttons becomes a button template, quick replies are attached,
//!   image/file go by URL, an `otn_request` becomes the one-time-notification template. Then it
//!   continues with `next`; without `next`, if a message has a postback button or quick reply the
//!   subscriber waits for a tap, else if it has an OTN request they wait for the opt-in, else the
//!   flow ends. A tap continues at the button's `next`, else at the block's `next`, else ends.
//! - `wait_input`: sends `prompt` (if any) and waits. A reply of the right kind (text, number,
//!   email, phone) is stored in `field` and the flow continues with `next`. A wrong reply sends
//!   `reprompt` (or the prompt again); after `max_attempts` wrong replies it continues with
//!   `on_invalid` (or ends). With `timeout`, a timer continues with `on_timeout` (or ends).
//! - `condition`: continues with the first branch whose predicates hold (`all` or `any`), else
//!   `else`, else `next`.
//! - `action`: applies set/clear field and add/remove tag in order; `goto_flow` starts the active
//!   version of another flow at its start block (later steps and `next` are skipped).
//! - `delay`: sets a persisted timer; when it fires (through the same path as any event, after
//!   restarts too) the flow continues with `next`. A delay without `next` ends the flow.
//! - `otn_send`: queues its message paid for by one usable token of the topic and continues with
//!   `next`; without a token it continues with `on_no_token` (or ends).
//! - Every run counts blocks; past [`StepContext::step_budget`] blocks for one event the run stops
//!   with [`StepError::BudgetExceeded`] (messages queued so far are kept, the subscriber leaves the flow).
//!
//! OTN opt-ins store the token (effect [`Effect::TokenStored`], one-year expiry) and continue
//! with the request's `on_optin`. A topic notification ([`InboundEvent::Notify`]) either sends
//! one text paid by a token, or runs a flow whose `otn_send` blocks spend tokens; a notification
//! flow that ends without waiting leaves the subscriber's conversation position untouched.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod clock;
pub mod condition;
pub mod context;
pub mod describe;
pub mod dispatcher;
pub mod effect;
pub mod event;
mod flow_cache;
pub mod inbound;
pub mod input_check;
pub mod metrics;
pub mod outbound;
pub mod payload;
mod process;
pub mod runtime;
mod scheduler;
pub mod simulate;
pub mod step;
pub mod window;

pub use clock::{Clock, ManualClock, SystemClock};
pub use context::{DEFAULT_STEP_BUDGET, PublishedFlows, StepContext};
pub use dispatcher::{OUTSIDE_WINDOW_REASON, PageClients};
pub use effect::{Effect, StartReason, StepError};
pub use event::{GET_STARTED_PAYLOAD, InboundEvent, NotifyContent};
pub use metrics::{LatencyHook, RuntimeMetrics};
pub use runtime::{NotifyCounts, Runtime, RuntimeConfig, RuntimeError};
pub use step::{StepOutcome, TOKEN_LIFETIME_MS, step, topic_id, versions_needed};

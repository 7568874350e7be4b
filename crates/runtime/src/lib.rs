//! The botflow runtime: runs published flows per subscriber when Messenger events arrive.
//!
//! The heart is a pure function, [`step()`]: `(StepContext, Session, InboundEvent, now) → StepOutcome`
//! (new session, Send API requests to queue, effects such as a token to store). It does no I/O
//! and reads no clock, so conversations replay exactly; [`simulate`] plays scripted
//! conversations through it (`botflow simulate`). Around it, [`Runtime`] drives real traffic:
//! a scheduler that feeds each subscriber's journaled events, timers and notifications through
//! `step` and commits the outcome to the store, and a dispatcher that sends the queued messages
//! with the messenger crate's `SendClient`.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn botflow_storage::Store>, client: botflow_messenger::SendClient,
//! #               entries: Vec<botflow_storage::JournalEntry>) -> Result<(), botflow_runtime::RuntimeError> {
//! use botflow_runtime::{NotifyContent, Runtime, RuntimeConfig};
//! let runtime = Runtime::start(store, client, RuntimeConfig::default()).await?; // resumes the journal
//! runtime.submit(entries).await?; // events the server journaled durably before answering 200
//! let page = botflow_storage::PageId::from("1234");
//! let topic = botflow_flow::TopicId::from("topic-id");
//! let now = runtime.clock().now_ms();
//! let counts = runtime.notify_topic(&page, &topic, NotifyContent::Text("Back in stock!".into()), now).await?;
//! println!("{} queued, {} without a token, {} expired", counts.queued, counts.no_token, counts.expired);
//! runtime.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # Ordering guarantee
//! Work for a subscriber (Page, PSID) — journaled events, fired timers, notification runs — is
//! routed by a hash of the subscriber to one of [`RuntimeConfig::workers`] shards. A shard is a
//! FIFO queue drained by one task, in order (a batch at a time, committed together), so a
//! subscriber's events are processed strictly in the order they were submitted (the server submits
//! in journal order; at start-up the unprocessed journal is queued in arrival order before `start`
//! returns), with at most one in flight; different subscribers run concurrently on other shards.
//! Queues are bounded ([`RuntimeConfig::queue_capacity`]): a full queue makes [`Runtime::submit`]
//! wait. The outbox keeps order too: the store only offers the head of each subscriber's queue, so
//! a message is sent (or finally recorded as failed or refused) before the next one of that
//! subscriber starts, across retries and restarts. One exception: an event whose commit keeps
//! failing in the store (after retries) is left unprocessed in the journal and replayed at the next
//! start, after the subscriber's later events.
//!
//! # Durability guarantee
//! An event is safe once the server journaled it durably (before answering 200): the journal is
//! the log. A step's commit (session, processed mark, new tokens, queued messages, spent tokens)
//! is one atomic store transaction; the scheduler does not wait for the disk, because a commit
//! lost in a crash is simply replayed from the journal, deterministically (a step runs at the
//! time its webhook arrived). The dispatcher flushes the store after reading the due messages and
//! before sending any of them, so no message leaves before the commit that queued it — and spent
//! its OTN token — is on disk: a token is assigned to a message once and never to another.
//! Outcomes are recorded in batches (one store transaction for the outcomes of concurrent
//! sends). Every outcome of a token send — including the "send started" mark written before its
//! request leaves — is on disk before the dispatcher goes on; outcomes of normal messages are
//! committed without waiting for the disk and reach it with the next flush, at most 200 ms later.
//! After a process crash: unprocessed events are replayed, pending messages are sent again
//! (normal messages are at-least-once: one may be sent twice if the crash fell between the send
//! and the flush of its record), a token send in progress is retried with the same token and, if
//! Messenger then says the token is used, recorded as delivered-unconfirmed (never as a failure,
//! never re-sent with a second token); timers live in
//! the session and fire after restarts. "On disk" means what the storage crate's durability
//! contract says (sled's flush survives a process crash, not necessarily a power loss).
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
//! # Messages Messenger would refuse
//! Messages are messenger's typed `SendRequest`s ([`outbound`]), checked against the platform's
//! limits once rendered. One Messenger would refuse (a text empty once its fields are filled in,
//! over 2,000 characters, over 640 with buttons, ...) is not queued: [`StepError::MessageRefused`]
//! is recorded in `last_error` and the run goes on as after any failed send (`next`, or a wait
//! on the block's other messages); an `otn_send` spends no token for it. The dispatcher checks
//! again before sending and records what fails there as failed, unsent.
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
//! - `otn_send`: queues its message paid for by one usable OTN token of the topic, else by the
//!   subscriber's recurring token of the topic when it may pay now
//!   ([`StepContext::recurring_ready`], once per step; effect [`Effect::RecurringPaid`]), and
//!   continues with `next`; when neither can pay it continues with `on_no_token` (or ends).
//! - Every run counts blocks; past [`StepContext::step_budget`] blocks for one event the run stops
//!   with [`StepError::BudgetExceeded`] (messages queued so far are kept, the subscriber leaves the flow).
//!
//! OTN opt-ins store the token (effect [`Effect::TokenStored`], one-year expiry) and continue
//! with the request's `on_optin`. A topic notification ([`InboundEvent::Notify`]) either sends
//! one text paid by a token, or runs a flow whose `otn_send` blocks pay with tokens; a notification
//! flow that ends without waiting leaves the subscriber's conversation position untouched.
//!
//! Recurring opt-ins, stops and resumes become [`Effect::Recurring`], applied to the store before
//! the step commits, and a recurring opt-in continues with its request's `on_optin`. A text
//! notification also reaches the holders of recurring tokens the one-time tokens did not reach
//! (one message per subscriber), at most once per period of the token's frequency and never
//! more often than Messenger's 48-hour cap; a flow notification runs for those holders too and
//! their `otn_send` blocks pay with the recurring token (the store re-checks it at the commit and
//! refuses the step with `StoreError::TokenGone` when it stopped or paid since the read).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod clock;
pub mod condition;
pub mod context;
pub mod describe;
mod dispatch_outcomes;
pub mod dispatcher;
pub mod effect;
pub mod event;
mod flow_cache;
pub mod inbound;
pub mod input_check;
pub mod metrics;
mod notify_run;
pub mod outbound;
pub mod ownership;
pub mod payload;
mod process;
pub mod profile;
pub mod retention;
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
pub use metrics::{Counter, Gauge, LatencyHook, RuntimeMetrics};
pub use profile::{PROFILE_FIELDS, ProfileSettings, apply_profile};
pub use retention::{RetentionMetrics, RetentionSettings, RetentionSweeper};
pub use runtime::{NotificationProgress, NotifyCounts, Runtime, RuntimeConfig, RuntimeError};
pub use step::{StepOutcome, TOKEN_LIFETIME_MS, step, topic_id, versions_needed};

//! The pure step function: (published flows, session, event, now) → (session, messages, effects).
//!
//! No I/O, no clock, no randomness: the same inputs always give the same outcome, so a
//! conversation can be replayed exactly (`botflow simulate`, golden tests, crash recovery).

use crate::condition;
use crate::context::StepContext;
use crate::effect::{Effect, StartReason, StepError};
use crate::event::{GET_STARTED_PAYLOAD, InboundEvent, NotifyContent};
use crate::input_check;
use crate::outbound::{ButtonSpec, MessageSpec, Purpose, request_body};
use crate::payload::{OptinPayload, Payload, Port, TapPayload, encode_tap};
use botflow_flow::{
    ActionStep, Block, BlockId, BlockKind, FlowId, Message, OtnSend, TopicId, TopicRef, Trigger,
    ValidFlow, WaitInput,
};
use botflow_storage::{
    FlowPosition, NewOutbound, OutboundKind, Session, Timer, TimerKind, WaitKind, Waiting,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How long an OTN token stays usable after the opt-in (Messenger: within one year).
pub const TOKEN_LIFETIME_MS: u64 = 365 * 24 * 3_600 * 1_000;

/// The result of one step: the new session, the messages to queue and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The session after the event.
    pub session: Session,
    /// Messages to queue, in send order.
    pub outbound: Vec<NewOutbound>,
    /// What happened, in order.
    pub effects: Vec<Effect>,
}

/// Runs one event for one subscriber. Pure: see the crate docs for the routing rules and the
/// semantics of every block kind.
pub fn step(
    ctx: &StepContext,
    session: &Session,
    event: &InboundEvent,
    now_ms: u64,
) -> StepOutcome {
    let mut run = Run {
        ctx,
        session: session.clone(),
        outbound: Vec::new(),
        effects: Vec::new(),
        tokens: None,
        blocks_run: 0,
        now_ms,
        purpose: if event.is_user_interaction() {
            Purpose::Response
        } else {
            Purpose::Update
        },
    };
    run.handle(event);
    StepOutcome {
        session: run.session,
        outbound: run.outbound,
        effects: run.effects,
    }
}

/// The topic id a flow's topic reference stands for. Published flows always refer by id; a
/// reference by name (an unpublished file in `botflow simulate`) maps to `name:<lowercased name>`.
pub fn topic_id(topic: &TopicRef) -> TopicId {
    match topic {
        TopicRef::Id(by_id) => by_id.id.clone(),
        TopicRef::Name(by_name) => TopicId(format!("name:{}", by_name.name.trim().to_lowercase())),
    }
}

/// The flow versions a step for this session and event may need besides the active ones:
/// the caller loads them into [`crate::PublishedFlows`] before calling [`step`].
pub fn versions_needed(session: &Session, event: &InboundEvent) -> Vec<(FlowId, u32)> {
    let mut out: Vec<(FlowId, u32)> = Vec::new();
    let mut push = |flow: &FlowId, version: u32| {
        if !out.iter().any(|(f, v)| f == flow && *v == version) {
            out.push((flow.clone(), version));
        }
    };
    if let Some(pos) = &session.flow {
        push(&pos.flow, pos.version);
    }
    if let Some(w) = &session.waiting {
        push(&w.flow, w.version);
    }
    for t in &session.timers {
        push(&t.flow, t.version);
    }
    let payload = match event {
        InboundEvent::QuickReply { payload, .. }
        | InboundEvent::Postback { payload, .. }
        | InboundEvent::Optin { payload, .. } => Payload::decode(payload),
        _ => None,
    };
    match payload {
        Some(Payload::Tap(tap)) => push(&tap.flow, tap.version),
        Some(Payload::Optin(optin)) => push(&optin.flow, optin.version),
        None => {}
    }
    out
}

enum Reply<'a> {
    Text(&'a str),
    Attachment(&'a str),
}

struct Run<'c> {
    ctx: &'c StepContext,
    session: Session,
    outbound: Vec<NewOutbound>,
    effects: Vec<Effect>,
    /// Copy-on-write view of the usable token counts (tokens stored or spent in this step).
    tokens: Option<BTreeMap<TopicId, u32>>,
    blocks_run: u32,
    now_ms: u64,
    purpose: Purpose,
}

impl Run<'_> {
    fn handle(&mut self, event: &InboundEvent) {
        if event.is_user_interaction() {
            self.session.last_interaction_ms = Some(self.now_ms);
        }
        match event {
            InboundEvent::Text { text } => self.on_text(text),
            InboundEvent::Attachment { url } => self.on_attachment(url),
            InboundEvent::QuickReply { payload, text } => match Payload::decode(payload) {
                Some(Payload::Tap(tap)) => self.on_tap(&tap, text),
                _ => self.on_text(text),
            },
            InboundEvent::Postback { payload, title } => match Payload::decode(payload) {
                Some(Payload::Tap(tap)) => self.on_tap(&tap, title),
                Some(Payload::Optin(_)) => self.error(StepError::UnknownPayload {
                    payload: payload.clone(),
                }),
                None if payload == GET_STARTED_PAYLOAD => self.on_get_started(None),
                None => self.on_text(title),
            },
            InboundEvent::Optin { payload, token } => self.on_optin(payload, token),
            InboundEvent::Referral { ref_param } => self.on_referral(ref_param),
            InboundEvent::GetStarted { ref_param } => self.on_get_started(ref_param.as_deref()),
            InboundEvent::TimerFired { timer_id } => self.on_timer(*timer_id),
            InboundEvent::Notify { topic, content } => self.on_notify(topic, content),
        }
    }

    // ---- routing -------------------------------------------------------------------------

    fn on_text(&mut self, text: &str) {
        if let Some(waiting) = self.current_waiting() {
            match waiting.kind {
                WaitKind::Input => return self.on_input(&waiting, Reply::Text(text)),
                WaitKind::Tap => {
                    if let Some(tap) = self.tap_by_title(&waiting, text) {
                        return self.on_tap(&tap, text);
                    }
                }
                WaitKind::Optin => {}
            }
        }
        if let Some((version, flow)) = self.ctx.flows.keyword_flow(text) {
            let flow = Arc::clone(flow);
            return self.start_flow(&flow, version, StartReason::Keyword);
        }
        self.start_default_or_ignore("no waiting block, keyword or default flow took the message");
    }

    fn on_attachment(&mut self, url: &str) {
        if let Some(waiting) = self.current_waiting() {
            if waiting.kind == WaitKind::Input {
                return self.on_input(&waiting, Reply::Attachment(url));
            }
        }
        self.start_default_or_ignore("no waiting block or default flow took the attachment");
    }

    fn start_default_or_ignore(&mut self, reason: &str) {
        let default = self
            .ctx
            .flows
            .find_trigger(|t| matches!(t, Trigger::Default))
            .map(|(v, f)| (v, Arc::clone(f)));
        match default {
            Some((version, flow)) => self.start_flow(&flow, version, StartReason::Default),
            None => self.effects.push(Effect::Ignored {
                reason: reason.to_owned(),
            }),
        }
    }

    fn on_referral(&mut self, ref_param: &str) {
        let found = self
            .ctx
            .flows
            .find_trigger(|t| matches!(t, Trigger::Referral { ref_param: r } if r == ref_param))
            .map(|(v, f)| (v, Arc::clone(f)));
        match found {
            Some((version, flow)) => self.start_flow(&flow, version, StartReason::Referral),
            None => self.effects.push(Effect::Ignored {
                reason: format!("no flow has a referral trigger for ref {ref_param:?}"),
            }),
        }
    }

    fn on_get_started(&mut self, ref_param: Option<&str>) {
        let flows = &self.ctx.flows;
        let by_ref = ref_param.and_then(|r| {
            flows
                .find_trigger(|t| matches!(t, Trigger::Referral { ref_param } if ref_param == r))
                .map(|(v, f)| (v, Arc::clone(f), StartReason::Referral))
        });
        let found = by_ref.or_else(|| {
            flows
                .find_trigger(|t| matches!(t, Trigger::GetStarted))
                .map(|(v, f)| (v, Arc::clone(f), StartReason::GetStarted))
        });
        match found {
            Some((version, flow, reason)) => self.start_flow(&flow, version, reason),
            None => self.start_default_or_ignore("no get-started, referral or default flow"),
        }
    }

    /// The waiting block, if its flow version is still available; a wait on a retired version
    /// is dropped with an error.
    fn current_waiting(&mut self) -> Option<Waiting> {
        let waiting = self.session.waiting.clone()?;
        if self.ctx.flows.contains(&waiting.flow, waiting.version) {
            return Some(waiting);
        }
        self.retire(&waiting.flow, waiting.version);
        None
    }

    fn retire(&mut self, flow: &FlowId, version: u32) {
        self.clear_position();
        self.error(StepError::VersionRetired {
            flow: flow.clone(),
            version,
        });
    }

    fn tap_by_title(&self, waiting: &Waiting, text: &str) -> Option<TapPayload> {
        let flow = self.ctx.flows.version(&waiting.flow, waiting.version)?;
        let block = flow.block(&waiting.block)?;
        let BlockKind::SendMessage { messages } = &block.kind else {
            return None;
        };
        let wanted = text.trim().to_lowercase();
        for (m, message) in messages.iter().enumerate() {
            let Message::Text(t) = message else { continue };
            let port = t
                .buttons
                .iter()
                .position(|b| b.url.is_none() && b.title.trim().to_lowercase() == wanted)
                .map(|button| Port::Button { message: m, button })
                .or_else(|| {
                    t.quick_replies
                        .iter()
                        .position(|q| q.title.trim().to_lowercase() == wanted)
                        .map(|reply| Port::QuickReply { message: m, reply })
                });
            if let Some(port) = port {
                return Some(TapPayload {
                    flow: waiting.flow.clone(),
                    version: waiting.version,
                    block: waiting.block.clone(),
                    port,
                });
            }
        }
        None
    }

    fn on_tap(&mut self, tap: &TapPayload, title: &str) {
        let Some(flow) = self
            .ctx
            .flows
            .version(&tap.flow, tap.version)
            .map(Arc::clone)
        else {
            // The message came from a retired version: record it, then treat the title as text.
            self.error(StepError::VersionRetired {
                flow: tap.flow.clone(),
                version: tap.version,
            });
            return self.on_text(title);
        };
        let Some(block) = flow.block(&tap.block) else {
            return self.error(StepError::BlockNotFound {
                flow: tap.flow.clone(),
                version: tap.version,
                block: tap.block.clone(),
            });
        };
        let Some(target) = tap_target(block, tap.port) else {
            return self.error(StepError::UnknownPayload {
                payload: tap.encode().unwrap_or_default(),
            });
        };
        let waits_here = self.session.waiting.as_ref().is_some_and(|w| {
            w.flow == tap.flow && w.version == tap.version && w.block == tap.block
        });
        match target {
            Some(next) => {
                self.clear_position();
                self.session.flow = Some(FlowPosition {
                    flow: tap.flow.clone(),
                    version: tap.version,
                });
                self.run_from(flow, tap.version, next.clone());
            }
            None if waits_here => {
                self.clear_position();
                self.effects.push(Effect::FlowEnded {
                    flow: tap.flow.clone(),
                    version: tap.version,
                });
            }
            None => self.effects.push(Effect::Ignored {
                reason: format!("the tapped button of block `{}` leads nowhere", tap.block),
            }),
        }
    }

    fn on_optin(&mut self, payload: &str, token: &str) {
        let Some(Payload::Optin(optin)) = Payload::decode(payload) else {
            return self.error(StepError::UnknownPayload {
                payload: payload.to_owned(),
            });
        };
        if optin.page != self.ctx.page {
            return self.error(StepError::WrongPage {
                page: optin.page.to_string(),
            });
        }
        self.effects.push(Effect::TokenStored {
            topic: optin.topic.clone(),
            token: token.to_owned(),
            expires_ms: self.now_ms.saturating_add(TOKEN_LIFETIME_MS),
        });
        *self.tokens_mut().entry(optin.topic.clone()).or_default() += 1;
        self.continue_after_optin(&optin);
    }

    fn continue_after_optin(&mut self, optin: &OptinPayload) {
        let Some(flow) = self
            .ctx
            .flows
            .version(&optin.flow, optin.version)
            .map(Arc::clone)
        else {
            // The token is kept; only the continuation is lost with the retired version.
            return self.error(StepError::VersionRetired {
                flow: optin.flow.clone(),
                version: optin.version,
            });
        };
        let on_optin = flow
            .block(&optin.block)
            .and_then(|block| match &block.kind {
                BlockKind::SendMessage { messages } => match messages.get(optin.message) {
                    Some(Message::OtnRequest(request)) => Some(request.on_optin.clone()),
                    _ => None,
                },
                _ => None,
            });
        let Some(on_optin) = on_optin else {
            return self.error(StepError::BlockNotFound {
                flow: optin.flow.clone(),
                version: optin.version,
                block: optin.block.clone(),
            });
        };
        let waits_here = self.session.waiting.as_ref().is_some_and(|w| {
            w.flow == optin.flow && w.version == optin.version && w.block == optin.block
        });
        match on_optin {
            Some(next) => {
                self.clear_position();
                self.session.flow = Some(FlowPosition {
                    flow: optin.flow.clone(),
                    version: optin.version,
                });
                self.run_from(flow, optin.version, next);
            }
            None if waits_here => {
                self.clear_position();
                self.effects.push(Effect::FlowEnded {
                    flow: optin.flow.clone(),
                    version: optin.version,
                });
            }
            None => {}
        }
    }

    fn on_input(&mut self, waiting: &Waiting, reply: Reply<'_>) {
        let flow = self
            .ctx
            .flows
            .version(&waiting.flow, waiting.version)
            .map(Arc::clone);
        // `flow` is a local Arc, so the block spec is borrowed from it, not from `self`.
        let block = flow.as_ref().and_then(|f| f.block(&waiting.block));
        let (
            Some(flow),
            Some(Block {
                kind: BlockKind::WaitInput(spec),
                next,
                ..
            }),
        ) = (flow.as_ref(), block)
        else {
            self.clear_position();
            return self.error(StepError::BlockNotFound {
                flow: waiting.flow.clone(),
                version: waiting.version,
                block: waiting.block.clone(),
            });
        };
        let value = match reply {
            Reply::Text(text) => text.trim(),
            Reply::Attachment(url) => url.trim(),
        };
        if input_check::accepts(spec.input, value) {
            self.end_wait(waiting);
            self.session
                .fields
                .insert(spec.field.as_str().to_owned(), value.to_owned());
            self.effects.push(Effect::FieldSet {
                field: spec.field.as_str().to_owned(),
                value: value.to_owned(),
            });
            return self.continue_with(Arc::clone(flow), waiting.version, next.clone());
        }
        let attempts = waiting.attempts.saturating_add(1);
        self.effects.push(Effect::InputRejected {
            block: waiting.block.clone(),
            attempts,
        });
        if attempts >= spec.max_attempts.max(1) {
            self.end_wait(waiting);
            return self.continue_with(Arc::clone(flow), waiting.version, spec.on_invalid.clone());
        }
        if let Some(w) = &mut self.session.waiting {
            w.attempts = attempts;
        }
        if let Some(text) = spec.reprompt.as_ref().or(spec.prompt.as_ref()) {
            let text = self.render(text);
            self.send(MessageSpec::Text {
                text,
                buttons: Vec::new(),
                quick_replies: Vec::new(),
            });
        }
    }

    /// Ends a wait (and its timeout timer) without leaving the flow.
    fn end_wait(&mut self, waiting: &Waiting) {
        self.session.waiting = None;
        let before = self.session.timers.len();
        self.session.timers.retain(|t| {
            !(t.kind == TimerKind::InputTimeout
                && t.flow == waiting.flow
                && t.version == waiting.version
                && t.block == waiting.block)
        });
        let cancelled = before - self.session.timers.len();
        if cancelled > 0 {
            self.effects
                .push(Effect::TimersCancelled { count: cancelled });
        }
    }

    fn on_timer(&mut self, timer_id: u64) {
        let Some(index) = self.session.timers.iter().position(|t| t.id == timer_id) else {
            return self.effects.push(Effect::Ignored {
                reason: format!("timer {timer_id} is no longer pending"),
            });
        };
        let timer = self.session.timers.remove(index);
        let Some(flow) = self
            .ctx
            .flows
            .version(&timer.flow, timer.version)
            .map(Arc::clone)
        else {
            return self.retire(&timer.flow, timer.version);
        };
        let Some(block) = flow.block(&timer.block) else {
            self.clear_position();
            return self.error(StepError::BlockNotFound {
                flow: timer.flow.clone(),
                version: timer.version,
                block: timer.block.clone(),
            });
        };
        match (&timer.kind, &block.kind) {
            (TimerKind::Delay, _) => {
                let next = block.next.clone();
                self.continue_with(flow, timer.version, next);
            }
            (TimerKind::InputTimeout, BlockKind::WaitInput(spec)) => {
                let waits_here = self.session.waiting.as_ref().is_some_and(|w| {
                    w.kind == WaitKind::Input
                        && w.flow == timer.flow
                        && w.version == timer.version
                        && w.block == timer.block
                });
                if !waits_here {
                    return self.effects.push(Effect::Ignored {
                        reason: format!(
                            "input timeout of block `{}` after the wait ended",
                            timer.block
                        ),
                    });
                }
                self.session.waiting = None;
                let next = spec.on_timeout.clone();
                self.continue_with(flow, timer.version, next);
            }
            (TimerKind::InputTimeout, _) => {
                self.clear_position();
                self.error(StepError::BlockNotFound {
                    flow: timer.flow.clone(),
                    version: timer.version,
                    block: timer.block.clone(),
                });
            }
        }
    }

    fn on_notify(&mut self, topic: &TopicId, content: &NotifyContent) {
        match content {
            NotifyContent::Text(text) => {
                let message = MessageSpec::Text {
                    text: text.clone(),
                    buttons: Vec::new(),
                    quick_replies: Vec::new(),
                };
                self.send_with_token(topic, message);
            }
            NotifyContent::Flow(flow_id) => {
                let Some((version, flow)) = self
                    .ctx
                    .flows
                    .active(flow_id)
                    .map(|(v, f)| (v, Arc::clone(f)))
                else {
                    return self.error(StepError::FlowNotFound {
                        flow: flow_id.clone(),
                    });
                };
                // A notification flow that ends without waiting leaves the subscriber where they were.
                let before = (
                    self.session.flow.clone(),
                    self.session.waiting.clone(),
                    self.session.timers.clone(),
                );
                self.start_flow(&flow, version, StartReason::Notification);
                if self.session.waiting.is_none() && self.session.timers.is_empty() {
                    (self.session.flow, self.session.waiting, self.session.timers) = before;
                }
            }
        }
    }

    // ---- running blocks ------------------------------------------------------------------

    fn start_flow(&mut self, flow: &Arc<ValidFlow>, version: u32, reason: StartReason) {
        self.clear_position();
        let id = flow.document().id.clone();
        self.effects.push(Effect::FlowStarted {
            flow: id.clone(),
            version,
            reason,
        });
        self.session.flow = Some(FlowPosition { flow: id, version });
        let start = flow.document().start.clone();
        self.run_from(Arc::clone(flow), version, start);
    }

    fn continue_with(&mut self, flow: Arc<ValidFlow>, version: u32, next: Option<BlockId>) {
        match next {
            Some(next) => self.run_from(flow, version, next),
            None => self.end_flow(),
        }
    }

    /// Leaves the current position: no waiting block, no pending timers, no running flow.
    fn clear_position(&mut self) {
        self.session.waiting = None;
        self.session.flow = None;
        if !self.session.timers.is_empty() {
            let count = self.session.timers.len();
            self.session.timers.clear();
            self.effects.push(Effect::TimersCancelled { count });
        }
    }

    fn end_flow(&mut self) {
        if self.session.waiting.is_some() || !self.session.timers.is_empty() {
            return;
        }
        if let Some(pos) = self.session.flow.take() {
            self.effects.push(Effect::FlowEnded {
                flow: pos.flow,
                version: pos.version,
            });
        }
    }

    fn run_from(&mut self, mut flow: Arc<ValidFlow>, mut version: u32, start: BlockId) {
        let id = &flow.document().id;
        let same = self
            .session
            .flow
            .as_ref()
            .is_some_and(|p| p.version == version && p.flow == *id);
        if !same {
            self.session.flow = Some(FlowPosition {
                flow: id.clone(),
                version,
            });
        }
        let mut current = start;
        loop {
            if self.blocks_run >= self.ctx.step_budget {
                let flow_id = flow.document().id.clone();
                self.clear_position();
                return self.error(StepError::BudgetExceeded {
                    budget: self.ctx.step_budget,
                    flow: flow_id,
                    block: current,
                });
            }
            self.blocks_run += 1;
            let Some(block) = flow.block(&current) else {
                let flow_id = flow.document().id.clone();
                self.clear_position();
                return self.error(StepError::BlockNotFound {
                    flow: flow_id,
                    version,
                    block: current,
                });
            };
            let next = match &block.kind {
                BlockKind::SendMessage { messages } => {
                    let wait = self.send_messages(&flow, version, block, messages);
                    match (&block.next, wait) {
                        (Some(next), _) => Some(next.clone()),
                        (None, Some(kind)) => return self.wait_on(&flow, version, block, kind),
                        (None, None) => None,
                    }
                }
                BlockKind::WaitInput(spec) => {
                    return self.enter_wait_input(&flow, version, block, spec);
                }
                BlockKind::Condition(c) => {
                    condition::choose(c, block.next.as_ref(), &self.session).cloned()
                }
                BlockKind::Action { actions } => match self.apply_actions(actions) {
                    Some(goto) => match self
                        .ctx
                        .flows
                        .active(&goto)
                        .map(|(v, f)| (v, Arc::clone(f)))
                    {
                        Some((v, f)) => {
                            self.effects.push(Effect::FlowStarted {
                                flow: goto.clone(),
                                version: v,
                                reason: StartReason::Goto,
                            });
                            self.session.flow = Some(FlowPosition {
                                flow: goto,
                                version: v,
                            });
                            current = f.document().start.clone();
                            flow = f;
                            version = v;
                            continue;
                        }
                        None => {
                            self.clear_position();
                            return self.error(StepError::FlowNotFound { flow: goto });
                        }
                    },
                    None => block.next.clone(),
                },
                BlockKind::Delay { duration } => match &block.next {
                    Some(_) => {
                        let due = self.now_ms.saturating_add(duration.as_millis());
                        self.set_timer(&flow, version, &block.id, due, TimerKind::Delay);
                        return;
                    }
                    None => None,
                },
                BlockKind::OtnSend(spec) => self.otn_send(block, spec),
            };
            match next {
                Some(next) => current = next,
                None => return self.end_flow(),
            }
        }
    }

    fn wait_on(&mut self, flow: &ValidFlow, version: u32, block: &Block, kind: WaitKind) {
        self.session.waiting = Some(Waiting {
            flow: flow.document().id.clone(),
            version,
            block: block.id.clone(),
            kind,
            attempts: 0,
            since_ms: self.now_ms,
        });
        self.effects.push(Effect::WaitStarted {
            block: block.id.clone(),
            kind,
        });
    }

    fn enter_wait_input(
        &mut self,
        flow: &ValidFlow,
        version: u32,
        block: &Block,
        spec: &WaitInput,
    ) {
        if let Some(prompt) = &spec.prompt {
            let text = self.render(prompt);
            self.send(MessageSpec::Text {
                text,
                buttons: Vec::new(),
                quick_replies: Vec::new(),
            });
        }
        self.wait_on(flow, version, block, WaitKind::Input);
        if let Some(timeout) = &spec.timeout {
            let due = self.now_ms.saturating_add(timeout.as_millis());
            self.set_timer(flow, version, &block.id, due, TimerKind::InputTimeout);
        }
    }

    fn set_timer(
        &mut self,
        flow: &ValidFlow,
        version: u32,
        block: &BlockId,
        due_ms: u64,
        kind: TimerKind,
    ) {
        let flow_id = flow.document().id.clone();
        let mut id = timer_id(
            &self.ctx.psid.0,
            &flow_id,
            version,
            block,
            due_ms,
            self.now_ms,
            kind,
        );
        while self.session.timers.iter().any(|t| t.id == id) {
            id = id.wrapping_add(1);
        }
        self.session.timers.push(Timer {
            id,
            due_ms,
            flow: flow_id,
            version,
            block: block.clone(),
            kind,
        });
        self.effects.push(Effect::TimerSet {
            timer_id: id,
            due_ms,
            kind,
        });
    }

    /// Applies the steps in order; returns the flow of a `goto_flow` (later steps are skipped).
    fn apply_actions(&mut self, actions: &[ActionStep]) -> Option<FlowId> {
        for action in actions {
            match action {
                ActionStep::SetField { field, value } => {
                    let value = self.render(value);
                    self.session
                        .fields
                        .insert(field.as_str().to_owned(), value.clone());
                    self.effects.push(Effect::FieldSet {
                        field: field.as_str().to_owned(),
                        value,
                    });
                }
                ActionStep::ClearField { field } => {
                    if self.session.fields.remove(field.as_str()).is_some() {
                        self.effects.push(Effect::FieldCleared {
                            field: field.as_str().to_owned(),
                        });
                    }
                }
                ActionStep::AddTag { tag } => {
                    if self.session.tags.insert(tag.clone()) {
                        self.effects.push(Effect::TagAdded { tag: tag.clone() });
                    }
                }
                ActionStep::RemoveTag { tag } => {
                    if self.session.tags.remove(tag) {
                        self.effects.push(Effect::TagRemoved { tag: tag.clone() });
                    }
                }
                ActionStep::GotoFlow { flow } => return Some(flow.clone()),
            }
        }
        None
    }

    fn otn_send(&mut self, block: &Block, spec: &OtnSend) -> Option<BlockId> {
        let topic = topic_id(&spec.topic);
        let message = match &spec.message {
            Message::Text(t) => MessageSpec::Text {
                text: self.render(&t.text),
                buttons: Vec::new(),
                quick_replies: Vec::new(),
            },
            Message::Image(a) => MessageSpec::Image { url: a.url.clone() },
            Message::File(a) => MessageSpec::File { url: a.url.clone() },
            // Validation forbids an OTN request paid by a token; send nothing.
            Message::OtnRequest(_) => return block.next.clone(),
        };
        if self.send_with_token(&topic, message) {
            block.next.clone()
        } else {
            spec.on_no_token.clone()
        }
    }

    /// Queues `message` paid for by a token of `topic`; false (and a `NoToken` effect) without one.
    fn send_with_token(&mut self, topic: &TopicId, message: MessageSpec) -> bool {
        let tokens = self.tokens_mut();
        match tokens.get_mut(topic) {
            Some(count) if *count > 0 => {
                *count -= 1;
                let body = request_body(&self.ctx.psid, Purpose::OtnToken, message);
                self.effects.push(Effect::MessageQueued {
                    index: self.outbound.len(),
                });
                self.outbound.push(NewOutbound {
                    body,
                    kind: OutboundKind::OtnToken {
                        topic: topic.clone(),
                    },
                });
                self.effects.push(Effect::TokenSpent {
                    topic: topic.clone(),
                });
                true
            }
            _ => {
                self.effects.push(Effect::NoToken {
                    topic: topic.clone(),
                });
                false
            }
        }
    }

    /// Sends the block's messages; returns what the subscriber may wait for (a tap on a button
    /// or quick reply that leads somewhere, else an opt-in), if anything.
    fn send_messages(
        &mut self,
        flow: &ValidFlow,
        version: u32,
        block: &Block,
        messages: &[Message],
    ) -> Option<WaitKind> {
        let flow_id = &flow.document().id;
        let mut wait = None;
        for (m, message) in messages.iter().enumerate() {
            let tap = |port| encode_tap(flow_id, version, &block.id, port);
            let spec = match message {
                Message::Text(t) => {
                    let mut buttons = Vec::with_capacity(t.buttons.len());
                    for (i, b) in t.buttons.iter().enumerate() {
                        match &b.url {
                            Some(url) => buttons.push(ButtonSpec::WebUrl {
                                title: b.title.clone(),
                                url: url.clone(),
                            }),
                            None => {
                                let payload = tap(Port::Button {
                                    message: m,
                                    button: i,
                                });
                                match payload {
                                    Ok(payload) => buttons.push(ButtonSpec::Postback {
                                        title: b.title.clone(),
                                        payload,
                                    }),
                                    Err(e) => {
                                        self.error(StepError::PayloadTooLong(e));
                                        continue;
                                    }
                                }
                                wait = Some(WaitKind::Tap);
                            }
                        }
                    }
                    let mut quick_replies = Vec::with_capacity(t.quick_replies.len());
                    for (i, q) in t.quick_replies.iter().enumerate() {
                        match tap(Port::QuickReply {
                            message: m,
                            reply: i,
                        }) {
                            Ok(payload) => quick_replies.push((q.title.clone(), payload)),
                            Err(e) => {
                                self.error(StepError::PayloadTooLong(e));
                                continue;
                            }
                        }
                        wait = Some(WaitKind::Tap);
                    }
                    MessageSpec::Text {
                        text: self.render(&t.text),
                        buttons,
                        quick_replies,
                    }
                }
                Message::Image(a) => MessageSpec::Image { url: a.url.clone() },
                Message::File(a) => MessageSpec::File { url: a.url.clone() },
                Message::OtnRequest(r) => {
                    let topic = r
                        .topic
                        .as_ref()
                        .map(topic_id)
                        // Validation rejects a request without a topic; it opts in to the empty topic.
                        .unwrap_or_else(|| TopicId(String::new()));
                    let payload = OptinPayload {
                        page: self.ctx.page.clone(),
                        flow: flow_id.clone(),
                        version,
                        block: block.id.clone(),
                        message: m,
                        topic,
                    }
                    .encode();
                    match payload {
                        Ok(payload) => {
                            if wait.is_none() {
                                wait = Some(WaitKind::Optin);
                            }
                            MessageSpec::OtnRequest {
                                title: r.title.clone(),
                                payload,
                            }
                        }
                        Err(e) => {
                            self.error(StepError::PayloadTooLong(e));
                            continue;
                        }
                    }
                }
            };
            self.send(spec);
        }
        wait
    }

    // ---- helpers -------------------------------------------------------------------------

    fn send(&mut self, message: MessageSpec) {
        let body = request_body(&self.ctx.psid, self.purpose, message);
        self.effects.push(Effect::MessageQueued {
            index: self.outbound.len(),
        });
        self.outbound.push(NewOutbound {
            body,
            kind: OutboundKind::Normal,
        });
    }

    fn render(&self, template: &botflow_flow::Template) -> String {
        let fields = &self.session.fields;
        template.render(|name| fields.get(name.as_str()).map(String::as_str))
    }

    fn tokens_mut(&mut self) -> &mut BTreeMap<TopicId, u32> {
        self.tokens
            .get_or_insert_with(|| self.ctx.usable_tokens.clone())
    }

    fn error(&mut self, error: StepError) {
        self.session.last_error = Some(error.to_string());
        self.effects.push(Effect::Error(error));
    }
}

/// Where a tap on `port` of `block` continues: `Some(Some(id))` a block, `Some(None)` nowhere
/// (a button without `next` in a block without `next`), `None` when the port does not exist.
fn tap_target(block: &Block, port: Port) -> Option<Option<BlockId>> {
    let BlockKind::SendMessage { messages } = &block.kind else {
        return None;
    };
    let (message, index, quick) = match port {
        Port::Button { message, button } => (message, button, false),
        Port::QuickReply { message, reply } => (message, reply, true),
    };
    let Some(Message::Text(text)) = messages.get(message) else {
        return None;
    };
    let next = if quick {
        text.quick_replies.get(index)?.next.clone()
    } else {
        let button = text.buttons.get(index)?;
        if button.url.is_some() {
            return None;
        }
        button.next.clone()
    };
    Some(next.or_else(|| block.next.clone()))
}

/// A timer id derived from what the timer is for (FNV-1a), so replays give the same ids.
fn timer_id(
    psid: &str,
    flow: &FlowId,
    version: u32,
    block: &BlockId,
    due_ms: u64,
    now_ms: u64,
    kind: TimerKind,
) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    feed(psid.as_bytes());
    feed(flow.as_str().as_bytes());
    feed(&version.to_le_bytes());
    feed(block.as_str().as_bytes());
    feed(&due_ms.to_le_bytes());
    feed(&now_ms.to_le_bytes());
    feed(&[kind as u8]);
    // Keep ids in the range JSON numbers represent exactly.
    hash & ((1 << 53) - 1)
}

//! Routing: which block an event goes to (payload, waiting block, trigger, default flow), and
//! the events that are not user messages (opt-ins, timers, notifications).

use super::*;

impl Run<'_> {
    pub(super) fn on_text(&mut self, text: &str) {
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

    pub(super) fn on_attachment(&mut self, url: &str) {
        if let Some(waiting) = self.current_waiting() {
            if waiting.kind == WaitKind::Input {
                return self.on_input(&waiting, Reply::Attachment(url));
            }
        }
        self.start_default_or_ignore("no waiting block or default flow took the attachment");
    }

    pub(super) fn start_default_or_ignore(&mut self, reason: &str) {
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

    pub(super) fn on_referral(&mut self, ref_param: &str) {
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

    pub(super) fn on_get_started(&mut self, ref_param: Option<&str>) {
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
    pub(super) fn current_waiting(&mut self) -> Option<Waiting> {
        let waiting = self.session.waiting.clone()?;
        if self.ctx.flows.contains(&waiting.flow, waiting.version) {
            return Some(waiting);
        }
        self.retire(&waiting.flow, waiting.version);
        None
    }

    pub(super) fn retire(&mut self, flow: &FlowId, version: u32) {
        self.clear_position();
        self.error(StepError::VersionRetired {
            flow: flow.clone(),
            version,
        });
    }

    pub(super) fn tap_by_title(&self, waiting: &Waiting, text: &str) -> Option<TapPayload> {
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

    pub(super) fn on_tap(&mut self, tap: &TapPayload, title: &str) {
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

    pub(super) fn on_optin(&mut self, payload: &str, token: &str) {
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

    /// A recurring opt-in: stores the token (with the request's frequency when Messenger's is
    /// absent or unknown) and continues at the request's `on_optin`.
    pub(super) fn on_recurring_optin(
        &mut self,
        payload: &str,
        token: &str,
        frequency: Option<Frequency>,
        timezone: Option<String>,
        expires_ms: Option<u64>,
    ) {
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
        let requested = self
            .ctx
            .flows
            .version(&optin.flow, optin.version)
            .and_then(|flow| match &flow.block(&optin.block)?.kind {
                BlockKind::SendMessage { messages } => match messages.get(optin.message) {
                    Some(Message::RecurringRequest(request)) => request.frequency,
                    _ => None,
                },
                _ => None,
            });
        // Messenger always sends one; a flow-less fallback keeps the strictest period.
        let frequency = frequency.or(requested).unwrap_or(Frequency::Monthly);
        self.effects
            .push(Effect::Recurring(RecurringChange::Optin(RecurringOptin {
                topic: optin.topic.clone(),
                token: token.to_owned(),
                frequency,
                timezone,
                expires_ms,
                created_ms: self.now_ms,
            })));
        self.continue_after_optin(&optin);
    }

    pub(super) fn continue_after_optin(&mut self, optin: &OptinPayload) {
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
                    Some(Message::RecurringRequest(request)) => Some(request.on_optin.clone()),
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

    pub(super) fn on_input(&mut self, waiting: &Waiting, reply: Reply<'_>) {
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
            self.send(Some(&waiting.block), OutgoingMessage::Text { text });
        }
    }

    /// Ends a wait (and its timeout timer) without leaving the flow.
    pub(super) fn end_wait(&mut self, waiting: &Waiting) {
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

    pub(super) fn on_timer(&mut self, timer_id: u64) {
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

    pub(super) fn on_notify(&mut self, topic: &TopicId, content: &NotifyContent) {
        match content {
            NotifyContent::Text(text) => {
                let message = OutgoingMessage::Text { text: text.clone() };
                if !self.refused(None, &message) {
                    self.send_with_token(topic, message);
                }
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

//! Running blocks: the semantics of every block kind, from a start block until the subscriber
//! waits, a timer is set, the flow ends or the step budget runs out.

use super::*;

impl Run<'_> {
    pub(super) fn start_flow(&mut self, flow: &Arc<ValidFlow>, version: u32, reason: StartReason) {
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

    pub(super) fn continue_with(
        &mut self,
        flow: Arc<ValidFlow>,
        version: u32,
        next: Option<BlockId>,
    ) {
        match next {
            Some(next) => self.run_from(flow, version, next),
            None => self.end_flow(),
        }
    }

    /// Leaves the current position: no waiting block, no pending timers, no running flow.
    pub(super) fn clear_position(&mut self) {
        self.session.waiting = None;
        self.session.flow = None;
        if !self.session.timers.is_empty() {
            let count = self.session.timers.len();
            self.session.timers.clear();
            self.effects.push(Effect::TimersCancelled { count });
        }
    }

    pub(super) fn end_flow(&mut self) {
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

    pub(super) fn run_from(&mut self, mut flow: Arc<ValidFlow>, mut version: u32, start: BlockId) {
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

    pub(super) fn wait_on(
        &mut self,
        flow: &ValidFlow,
        version: u32,
        block: &Block,
        kind: WaitKind,
    ) {
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

    pub(super) fn enter_wait_input(
        &mut self,
        flow: &ValidFlow,
        version: u32,
        block: &Block,
        spec: &WaitInput,
    ) {
        if let Some(prompt) = &spec.prompt {
            let text = self.render(prompt);
            self.send(Some(&block.id), OutgoingMessage::Text { text });
        }
        self.wait_on(flow, version, block, WaitKind::Input);
        if let Some(timeout) = &spec.timeout {
            let due = self.now_ms.saturating_add(timeout.as_millis());
            self.set_timer(flow, version, &block.id, due, TimerKind::InputTimeout);
        }
    }

    pub(super) fn set_timer(
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
    pub(super) fn apply_actions(&mut self, actions: &[ActionStep]) -> Option<FlowId> {
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

    pub(super) fn otn_send(&mut self, block: &Block, spec: &OtnSend) -> Option<BlockId> {
        let topic = topic_id(&spec.topic);
        let message = match &spec.message {
            Message::Text(t) => OutgoingMessage::Text {
                text: self.render(&t.text),
            },
            Message::Image(a) => OutgoingMessage::Image { url: a.url.clone() },
            Message::File(a) => OutgoingMessage::File { url: a.url.clone() },
            // Validation forbids a notification request paid by a token; send nothing.
            Message::OtnRequest(_) | Message::RecurringRequest(_) => return block.next.clone(),
        };
        // Refused as rendered: no token is spent and the run goes on to `next`.
        if self.refused(Some(&block.id), &message) {
            return block.next.clone();
        }
        if self.send_with_token(&topic, message) {
            block.next.clone()
        } else {
            spec.on_no_token.clone()
        }
    }

    /// Queues `message` paid for by a token of `topic`: a usable OTN token first, else the
    /// subscriber's recurring token of the topic when it may pay now (once per step); false (and
    /// a `NoToken` effect) when neither can. The caller has checked the message ([`Run::refused`]).
    pub(super) fn send_with_token(&mut self, topic: &TopicId, message: OutgoingMessage) -> bool {
        let one_time = match self.tokens_mut().get_mut(topic) {
            Some(count) if *count > 0 => {
                *count -= 1;
                true
            }
            _ => false,
        };
        let topic = topic.clone();
        let (kind, effect) = if one_time {
            (
                OutboundKind::OtnToken {
                    topic: topic.clone(),
                },
                Effect::TokenSpent { topic },
            )
        } else if self.ctx.recurring_ready.contains(&topic)
            && self.recurring_used.insert(topic.clone())
        {
            (
                OutboundKind::RecurringToken {
                    topic: topic.clone(),
                },
                Effect::RecurringPaid { topic },
            )
        } else {
            self.effects.push(Effect::NoToken { topic });
            return false;
        };
        let body = request_body(&self.ctx.psid, Purpose::OtnToken, message);
        self.effects.push(Effect::MessageQueued {
            index: self.outbound.len(),
        });
        self.outbound.push(NewOutbound { body, kind });
        self.effects.push(effect);
        true
    }

    /// Sends the block's messages; returns what the subscriber may wait for (a tap on a button
    /// or quick reply that leads somewhere, else an opt-in), if anything.
    pub(super) fn send_messages(
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
                            Some(url) => buttons.push(Button::WebUrl {
                                title: b.title.clone(),
                                url: url.clone(),
                            }),
                            None => {
                                let payload = tap(Port::Button {
                                    message: m,
                                    button: i,
                                });
                                match payload {
                                    Ok(payload) => buttons.push(Button::Postback {
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
                            Ok(payload) => quick_replies.push(QuickReply {
                                title: q.title.clone(),
                                payload,
                            }),
                            Err(e) => {
                                self.error(StepError::PayloadTooLong(e));
                                continue;
                            }
                        }
                        wait = Some(WaitKind::Tap);
                    }
                    text_message(self.render(&t.text), buttons, quick_replies)
                }
                Message::Image(a) => OutgoingMessage::Image { url: a.url.clone() },
                Message::File(a) => OutgoingMessage::File { url: a.url.clone() },
                Message::OtnRequest(r) => {
                    let at = (flow_id, version, &block.id, m);
                    let Some(payload) = self.optin_payload(at, r.topic.as_ref()) else {
                        continue;
                    };
                    wait = wait.or(Some(WaitKind::Optin));
                    OutgoingMessage::OtnRequest {
                        title: r.title.clone(),
                        payload,
                    }
                }
                Message::RecurringRequest(r) => {
                    let at = (flow_id, version, &block.id, m);
                    let Some(payload) = self.optin_payload(at, r.topic.as_ref()) else {
                        continue;
                    };
                    wait = wait.or(Some(WaitKind::Optin));
                    recurring_template(r, payload)
                }
            };
            self.send(Some(&block.id), spec);
        }
        wait
    }

    /// The opt-in payload of the notification request `at` = (flow, version, block, message)
    /// for `topic`, or `None` (with the error recorded) when it is too long.
    fn optin_payload(
        &mut self,
        at: (&FlowId, u32, &BlockId, usize),
        topic: Option<&TopicRef>,
    ) -> Option<String> {
        let (flow, version, block, message) = at;
        let payload = OptinPayload {
            page: self.ctx.page.clone(),
            flow: flow.clone(),
            version,
            block: block.clone(),
            message,
            // Validation rejects a request without a topic; it opts in to the empty topic.
            topic: topic.map_or_else(|| TopicId(String::new()), topic_id),
        }
        .encode();
        match payload {
            Ok(payload) => Some(payload),
            Err(e) => {
                self.error(StepError::PayloadTooLong(e));
                None
            }
        }
    }
}

/// The `notification_messages` template of a `recurring_request` message, with its opt-in payload.
fn recurring_template(r: &RecurringRequest, payload: String) -> OutgoingMessage {
    OutgoingMessage::RecurringRequest {
        title: r.title.clone(),
        payload,
        frequency: match r.frequency {
            Some(Frequency::Daily) => RecurringFrequency::Daily,
            Some(Frequency::Weekly) => RecurringFrequency::Weekly,
            // Validation requires a frequency; the longest period is the safe reading.
            Some(Frequency::Monthly) | None => RecurringFrequency::Monthly,
        },
        image_url: r.image_url.clone(),
        timezone: None,
    }
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

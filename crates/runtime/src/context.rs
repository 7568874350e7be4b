//! What the step function may read besides the session: the Page's published flows, the
//! subscriber's usable OTN tokens and the topics whose recurring token may pay now. Built by the caller; the step function does no I/O.

use botflow_flow::{BlockKind, FlowId, KeywordMatch, TopicId, Trigger, ValidFlow};
use botflow_storage::{PageId, Psid};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Default number of blocks one event may run before the run is stopped as a runaway loop.
pub const DEFAULT_STEP_BUDGET: u32 = 200;

/// The published flow versions of one Page the step function may run, and which version of
/// each flow is active (the one triggers and `goto_flow` start).
#[derive(Debug, Clone, Default)]
pub struct PublishedFlows {
    versions: HashMap<FlowId, BTreeMap<u32, Arc<ValidFlow>>>,
    active: BTreeMap<FlowId, u32>,
    /// Keyword triggers of the active versions, lowercased and trimmed once, in flow id order.
    keywords: BTreeMap<FlowId, Vec<(String, KeywordMatch)>>,
    /// The topics of the `otn_send` blocks of every version (empty: token counts are never read).
    token_topics: BTreeSet<TopicId>,
}

impl PublishedFlows {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a published version (an older one a session or payload refers to, or the active one).
    pub fn insert(&mut self, version: u32, flow: Arc<ValidFlow>) {
        for block in &flow.document().blocks {
            if let BlockKind::OtnSend(spec) = &block.kind {
                self.token_topics.insert(crate::step::topic_id(&spec.topic));
            }
        }
        let id = flow.document().id.clone();
        self.versions.entry(id).or_default().insert(version, flow);
    }

    /// Adds a version and makes it the active version of its flow.
    pub fn insert_active(&mut self, version: u32, flow: Arc<ValidFlow>) {
        let id = flow.document().id.clone();
        let words: Vec<(String, KeywordMatch)> = flow
            .document()
            .triggers
            .iter()
            .flat_map(|trigger| match trigger {
                Trigger::Keyword { words, match_mode } => words
                    .iter()
                    .map(|w| (w.trim().to_lowercase(), *match_mode))
                    .filter(|(w, _)| !w.is_empty())
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        self.insert(version, flow);
        self.active.insert(id.clone(), version);
        self.keywords.insert(id, words);
    }

    /// Removes a flow's active mark (its versions stay available to sessions and old taps).
    pub fn deactivate(&mut self, flow: &FlowId) {
        self.active.remove(flow);
        self.keywords.remove(flow);
    }

    /// Whether a step may spend tokens (some version has an `otn_send` block).
    pub fn spends_tokens(&self) -> bool {
        !self.token_topics.is_empty()
    }

    /// The topics an `otn_send` block of some version pays with.
    pub fn token_topics(&self) -> &BTreeSet<TopicId> {
        &self.token_topics
    }

    /// The given version of a flow, if available.
    pub fn version(&self, flow: &FlowId, version: u32) -> Option<&Arc<ValidFlow>> {
        self.versions.get(flow)?.get(&version)
    }

    /// Whether this version of the flow is available.
    pub fn contains(&self, flow: &FlowId, version: u32) -> bool {
        self.version(flow, version).is_some()
    }

    /// The active version of a flow and its number.
    pub fn active(&self, flow: &FlowId) -> Option<(u32, &Arc<ValidFlow>)> {
        let version = *self.active.get(flow)?;
        Some((version, self.version(flow, version)?))
    }

    /// The active flows in flow id order, with their version numbers.
    pub fn active_flows(&self) -> impl Iterator<Item = (u32, &Arc<ValidFlow>)> {
        self.active
            .iter()
            .filter_map(|(id, &v)| Some((v, self.version(id, v)?)))
    }

    /// The first active flow (in flow id order) with a trigger that `matches`.
    pub fn find_trigger(
        &self,
        matches: impl Fn(&Trigger) -> bool,
    ) -> Option<(u32, &Arc<ValidFlow>)> {
        self.active_flows()
            .find(|(_, flow)| flow.document().triggers.iter().any(&matches))
    }

    /// The active flow a text message starts through a keyword trigger (case-insensitive,
    /// trimmed; `exact` compares the whole message, `contains` looks inside it).
    pub fn keyword_flow(&self, text: &str) -> Option<(u32, &Arc<ValidFlow>)> {
        let text = text.trim().to_lowercase();
        if text.is_empty() {
            return None;
        }
        let (flow, _) = self.keywords.iter().find(|(_, words)| {
            words.iter().any(|(word, mode)| match mode {
                KeywordMatch::Exact => text == *word,
                KeywordMatch::Contains => text.contains(word.as_str()),
            })
        })?;
        self.active(flow)
    }
}

/// Everything the step function reads besides the session and the event.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The Page.
    pub page: PageId,
    /// The subscriber.
    pub psid: Psid,
    /// The Page's published flows.
    pub flows: Arc<PublishedFlows>,
    /// The subscriber's usable (unspent, unexpired) OTN tokens per topic, now.
    pub usable_tokens: BTreeMap<TopicId, u32>,
    /// The topics whose recurring token the subscriber holds may pay for a message now (active,
    /// not expired, its frequency's period and Messenger's cap passed since its last send): an
    /// `otn_send` without a usable OTN token of its topic pays with it, once per step.
    pub recurring_ready: BTreeSet<TopicId>,
    /// Blocks one event may run before the run stops with a recorded error.
    pub step_budget: u32,
}

impl StepContext {
    /// A context with no tokens and the default step budget.
    pub fn new(page: PageId, psid: Psid, flows: Arc<PublishedFlows>) -> Self {
        Self {
            page,
            psid,
            flows,
            usable_tokens: BTreeMap::new(),
            recurring_ready: BTreeSet::new(),
            step_budget: DEFAULT_STEP_BUDGET,
        }
    }
}

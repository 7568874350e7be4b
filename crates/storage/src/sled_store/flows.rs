//! Flows on sled: drafts, immutable published versions with inline topic creation, rollback.

use super::SledStore;
use super::codec::Key;
use super::topics::{insert_topic, live_topic, name_key};
use super::trees::{T, Tx, TxResult};
use crate::error::StoreError;
use crate::flows::FlowHead;
use crate::flows::{
    ActiveFlow, ActiveFlows, BrokenFlow, Draft, DraftSource, FlowSummary, FlowVersion, Published,
};
use crate::ids::PageId;
use crate::store::StoreResult;
use crate::topic::{Topic, clean_topic_name, topic_name_key};
use botflow_flow::{
    Diagnostic, FlowDocument, FlowId, TopicId, TopicRef, ValidFlow, trigger_conflicts_with_live,
    validate_with_topics, visit_topic_refs,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub(super) fn flow_key(page: &PageId, flow: &FlowId) -> Vec<u8> {
    Key::new().str(page.as_str()).str(flow.as_str()).finish()
}

pub(super) fn version_key(page: &PageId, flow: &FlowId, version: u32) -> Vec<u8> {
    Key::new()
        .str(page.as_str())
        .str(flow.as_str())
        .u64(u64::from(version))
        .finish()
}

/// Meta key of a Page's live flows (flow → active version). Every publish reads and writes it in
/// its transaction, so concurrent publishes of one Page are serialized by sled's conflict
/// detection and each checks its triggers against the others' committed live versions.
fn live_flows_key(page: &PageId) -> Vec<u8> {
    Key::new().str("live_flows").str(page.as_str()).finish()
}

/// The live flows of a Page: flow → active version.
type LiveFlows = BTreeMap<FlowId, u32>;

/// Every topic reference of a document with its JSON Pointer.
pub(super) fn topic_refs(doc: &FlowDocument) -> Vec<(TopicRef, String)> {
    let mut doc = doc.clone();
    let mut refs = Vec::new();
    visit_topic_refs(&mut doc, &mut |r, pointer| refs.push((r.clone(), pointer)));
    refs
}

/// Resolves topic names to ids inside the publish transaction, creating missing topics.
fn resolve_topics(
    tx: &Tx<'_>,
    page: &PageId,
    source: &FlowDocument,
    now_ms: u64,
) -> TxResult<(FlowDocument, Vec<Topic>)> {
    let mut resolved = source.clone();
    let mut refs: Vec<(TopicRef, String)> = Vec::new();
    visit_topic_refs(&mut resolved, &mut |r, pointer| {
        refs.push((r.clone(), pointer))
    });
    let mut ids: Vec<TopicId> = Vec::with_capacity(refs.len());
    let mut created: Vec<Topic> = Vec::new();
    let mut by_name: HashMap<String, TopicId> = HashMap::new();
    for (reference, pointer) in &refs {
        let id = match reference {
            TopicRef::Id(by_id) => {
                if live_topic(tx, page, &by_id.id)?.is_none() {
                    return Err(StoreError::UnknownTopic {
                        flow: source.id.clone(),
                        topic: by_id.id.clone(),
                        pointer: pointer.clone(),
                    }
                    .into());
                }
                by_id.id.clone()
            }
            TopicRef::Name(by_name_ref) => {
                let key = topic_name_key(&by_name_ref.name);
                if let Some(id) = by_name.get(&key) {
                    id.clone()
                } else {
                    let id = match tx.get::<TopicId>(T::TopicNames, &name_key(page, &key))? {
                        Some(id) => id,
                        None => {
                            let topic = insert_topic(tx, page, &by_name_ref.name, now_ms)?;
                            let id = topic.id.clone();
                            created.push(topic);
                            id
                        }
                    };
                    by_name.insert(key, id.clone());
                    id
                }
            }
        };
        ids.push(id);
    }
    let mut next = ids.into_iter();
    visit_topic_refs(&mut resolved, &mut |r, _| {
        if let Some(id) = next.next() {
            *r = TopicRef::by_id(id);
        }
    });
    Ok((resolved, created))
}

impl SledStore {
    /// Validates against the Page's topics (ids that do not exist are `unknown-topic` errors).
    fn validate_on_page(&self, page: &PageId, document: &FlowDocument) -> Vec<Diagnostic> {
        // A read error counts as "unknown" here; the publish transaction checks again anyway.
        let lookup = |id: &TopicId| matches!(self.topic_get(page, id), Ok(Some(_)));
        validate_with_topics(document, &lookup)
    }

    pub(super) fn draft_save(
        &self,
        page: &PageId,
        source: DraftSource,
        now_ms: u64,
    ) -> StoreResult<Draft> {
        let topic_exists = |id: &TopicId| matches!(self.topic_get(page, id), Ok(Some(_)));
        let draft = crate::flows::checked_draft(source, &topic_exists, now_ms)?;
        self.transact(|tx| tx.put(T::Drafts, &flow_key(page, &draft.document.id), &draft))?;
        self.durable()?;
        Ok(draft)
    }

    pub(super) fn flow_head(&self, page: &PageId, flow: &FlowId) -> StoreResult<Option<FlowHead>> {
        self.read(T::Heads, &flow_key(page, flow))
    }

    pub(super) fn flow_heads(&self, page: &PageId) -> StoreResult<Vec<FlowHead>> {
        self.scan(T::Heads, &Self::page_key(page))
    }

    pub(super) fn flow_version_record(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
    ) -> StoreResult<Option<FlowVersion>> {
        self.read(T::Versions, &version_key(page, flow, version))
    }

    /// Publishes `source` as the next version unless it equals the latest version's source.
    fn publish_source(
        &self,
        page: &PageId,
        source: &FlowDocument,
        republished_from: Option<u32>,
        now_ms: u64,
    ) -> StoreResult<Published> {
        let diagnostics = self.validate_on_page(page, source);
        if diagnostics.iter().any(Diagnostic::is_error) {
            return Err(StoreError::FlowInvalid {
                flow: source.id.clone(),
                diagnostics,
            });
        }
        for (reference, _) in topic_refs(source) {
            if let TopicRef::Name(by_name) = reference {
                clean_topic_name(&by_name.name)?;
            }
        }
        let warnings = diagnostics;
        let flow = source.id.clone();
        let hkey = flow_key(page, &flow);
        let live_key = live_flows_key(page);
        // A store written before the live list existed: its heads are the live flows. Read
        // here, since sled cannot scan inside a transaction; the transaction re-reads the list.
        let live_before: LiveFlows = match self.read::<LiveFlows>(T::Meta, &live_key)? {
            Some(_) => LiveFlows::new(),
            None => self
                .flow_heads(page)?
                .into_iter()
                .map(|head| (head.flow, head.active))
                .collect(),
        };
        let published = self.transact(|tx| {
            let head: Option<FlowHead> = tx.get(T::Heads, &hkey)?;
            // Compare what would run, not what was written: a name that now resolves to a new
            // topic (the old one was force-deleted) is a change, and a draft naming a topic that
            // the latest version refers to by id is not.
            let (document, created_topics) = resolve_topics(tx, page, source, now_ms)?;
            if let Some(head) = &head {
                // An unreadable latest version (a broken flow) is replaced, not compared.
                let latest: Option<FlowVersion> = tx
                    .get_encoded(T::Versions, &version_key(page, &flow, head.latest))?
                    .and_then(|bytes| super::codec::decode(T::Versions.name(), &bytes).ok());
                if created_topics.is_empty() && latest.is_some_and(|v| v.document == document) {
                    return Ok(Published {
                        flow: flow.clone(),
                        version: head.latest,
                        created_topics,
                        unchanged: true,
                        warnings: warnings.clone(),
                    });
                }
            }
            let version = head.as_ref().map_or(1, |h| h.latest + 1);
            let mut live: LiveFlows = match tx.get(T::Meta, &live_key)? {
                Some(live) => live,
                None => live_before.clone(),
            };
            let conflicts = self.conflicts_in_tx(tx, page, &live, &document)?;
            if !conflicts.is_empty() {
                return Err(StoreError::FlowInvalid {
                    flow: flow.clone(),
                    diagnostics: conflicts,
                }
                .into());
            }
            live.insert(flow.clone(), version);
            tx.put(T::Meta, &live_key, &live)?;
            tx.put(
                T::Versions,
                &version_key(page, &flow, version),
                &FlowVersion {
                    flow: flow.clone(),
                    version,
                    document,
                    source: source.clone(),
                    published_ms: now_ms,
                    republished_from,
                },
            )?;
            tx.put(
                T::Heads,
                &hkey,
                &FlowHead {
                    flow: flow.clone(),
                    name: source.name.clone(),
                    latest: version,
                    active: version,
                },
            )?;
            Ok(Published {
                flow: flow.clone(),
                version,
                created_topics,
                unchanged: false,
                warnings: warnings.clone(),
            })
        })?;
        self.durable()?;
        Ok(published)
    }

    /// Trigger conflicts of `document` with the other live flows, read inside the publish
    /// transaction. A live version that cannot be read is broken and claims nothing.
    fn conflicts_in_tx(
        &self,
        tx: &Tx<'_>,
        page: &PageId,
        live: &LiveFlows,
        document: &FlowDocument,
    ) -> TxResult<Vec<Diagnostic>> {
        let mut others: Vec<(String, FlowDocument)> = Vec::new();
        for (flow, version) in live.iter().filter(|(flow, _)| **flow != document.id) {
            let key = version_key(page, flow, *version);
            let Some(bytes) = tx.get_encoded(T::Versions, &key)? else {
                continue;
            };
            match super::codec::decode::<FlowVersion>(T::Versions.name(), &bytes) {
                Ok(stored) => others.push((format!("its live version {version}"), stored.document)),
                Err(error) => {
                    tracing::error!(%page, %flow, version, %error, "live flow version unreadable; it claims no trigger");
                }
            }
        }
        Ok(trigger_conflicts_with_live(
            document,
            others.iter().map(|(label, doc)| (label.as_str(), doc)),
        ))
    }

    /// Trigger conflicts of `document` with the Page's other live flows (for reports; publish
    /// checks again inside its transaction).
    pub(super) fn flow_trigger_conflicts(
        &self,
        page: &PageId,
        document: &FlowDocument,
    ) -> StoreResult<Vec<Diagnostic>> {
        let live = self.flow_active_all(page)?;
        Ok(trigger_conflicts_with_live(
            document,
            live.flows
                .iter()
                .map(|active| (active.label.as_str(), active.valid.document())),
        ))
    }

    pub(super) fn flow_publish(
        &self,
        page: &PageId,
        flow: &FlowId,
        now_ms: u64,
    ) -> StoreResult<Published> {
        let draft: Draft = self
            .read(T::Drafts, &flow_key(page, flow))?
            .ok_or_else(|| StoreError::FlowNotFound {
                page: page.clone(),
                flow: flow.clone(),
            })?;
        self.publish_source(page, &draft.document, None, now_ms)
    }

    pub(super) fn flow_publish_document(
        &self,
        page: &PageId,
        document: FlowDocument,
        now_ms: u64,
    ) -> StoreResult<Published> {
        let existing: Option<Draft> = self.read(T::Drafts, &flow_key(page, &document.id))?;
        if existing.as_ref().map(|d| &d.document) != Some(&document) {
            self.draft_save(page, DraftSource::Document(document.clone()), now_ms)?;
        }
        self.publish_source(page, &document, None, now_ms)
    }

    pub(super) fn flow_rollback(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
        now_ms: u64,
    ) -> StoreResult<Published> {
        let old = self
            .flow_version_record(page, flow, version)?
            .ok_or_else(|| StoreError::VersionNotFound {
                flow: flow.clone(),
                version,
            })?;
        // Republish the stored, id-resolved document: topics named inline then are reused by
        // id now, and a topic deleted since makes the rollback fail with `UnknownTopic`.
        self.publish_source(page, &old.document, Some(version), now_ms)
    }

    pub(super) fn flow_list(&self, page: &PageId) -> StoreResult<Vec<FlowSummary>> {
        let broken = self.flow_active_all(page)?.broken;
        let drafts = self.scan::<Draft>(T::Drafts, &Self::page_key(page))?;
        crate::flows::flow_summaries(self.flow_heads(page)?, drafts, &broken, &mut |id, v| {
            Ok(self.flow_version_record(page, id, v)?.map(|v| v.source))
        })
    }

    pub(super) fn flow_valid(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
    ) -> StoreResult<Option<Arc<ValidFlow>>> {
        let cache_key = (page.clone(), flow.clone(), version);
        if let Some(valid) = self.cache().get(&cache_key) {
            return Ok(Some(valid));
        }
        let Some(stored) = self.flow_version_record(page, flow, version)? else {
            return Ok(None);
        };
        // Immutable and valid when published: not checked again by this release's rules.
        let valid = Arc::new(ValidFlow::published(stored.document));
        self.cache().insert(cache_key, valid.clone());
        Ok(Some(valid))
    }

    /// The active version of every published flow; a flow whose version record cannot be read
    /// is listed as broken (and logged) while the others run.
    pub(super) fn flow_active_all(&self, page: &PageId) -> StoreResult<ActiveFlows> {
        let mut active = ActiveFlows::default();
        for head in self.flow_heads(page)? {
            match self.flow_valid(page, &head.flow, head.active) {
                Ok(Some(valid)) => active.flows.push(ActiveFlow {
                    label: format!("its live version {}", head.active),
                    flow: head.flow,
                    version: head.active,
                    valid,
                }),
                Ok(None) => active.broken.push(BrokenFlow {
                    flow: head.flow,
                    version: head.active,
                    reason: "the live version's record is missing".to_owned(),
                }),
                Err(
                    error @ (StoreError::Corrupt { .. }
                    | StoreError::UnsupportedRecordVersion { .. }),
                ) => {
                    tracing::error!(%page, flow = %head.flow, version = head.active, %error, "live flow version unreadable; the flow is broken, the Page's other flows keep running");
                    active.broken.push(BrokenFlow {
                        flow: head.flow,
                        version: head.active,
                        reason: format!("the live version cannot be read: {error}"),
                    });
                }
                Err(other) => return Err(other),
            }
        }
        Ok(active)
    }
}

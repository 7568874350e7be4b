//! Flows on PostgreSQL: drafts, immutable published versions, the head (latest and active
//! version) of each flow, publish with inline topics and live trigger conflicts checked in the
//! same transaction.

use super::PgStore;
use super::db::{Cached, Tx, TxResult, decode, encode, shard_of};
use super::topics::{insert_topic, live_topic, topic_named};
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
use postgres::GenericClient;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

/// Ready-to-run versions kept in memory at most (as many as the sled store's cache).
const VALID_FLOWS_CACHED: usize = 1_024;

fn head_from(row: &postgres::Row) -> FlowHead {
    FlowHead {
        flow: FlowId::from(row.get::<_, String>("flow_id").as_str()),
        name: row.get("name"),
        latest: u32::try_from(row.get::<_, i32>("latest")).unwrap_or(0),
        active: u32::try_from(row.get::<_, i32>("active")).unwrap_or(0),
    }
}

fn version_i32(version: u32) -> i32 {
    i32::try_from(version).unwrap_or(i32::MAX)
}

/// Every topic reference of a document with its JSON Pointer.
pub(super) fn topic_refs(doc: &FlowDocument) -> Vec<(TopicRef, String)> {
    let mut doc = doc.clone();
    let mut refs = Vec::new();
    visit_topic_refs(&mut doc, &mut |r, pointer| refs.push((r.clone(), pointer)));
    refs
}

fn version_in(
    c: &mut Cached<'_, impl GenericClient>,
    page: &PageId,
    flow: &FlowId,
    version: u32,
) -> TxResult<Option<FlowVersion>> {
    let row = c.query_opt(
        "SELECT rec FROM flow_versions WHERE page_id = $1 AND flow_id = $2 AND version = $3",
        &[&page.as_str(), &flow.as_str(), &version_i32(version)],
    )?;
    Ok(row.map(|r| decode("versions", r.get(0))).transpose()?)
}

fn heads_in(c: &mut Cached<'_, impl GenericClient>, page: &PageId) -> TxResult<Vec<FlowHead>> {
    let rows = c.query(
        "SELECT flow_id, name, latest, active FROM flow_heads WHERE page_id = $1
         ORDER BY octet_length(flow_id), flow_id",
        &[&page.as_str()],
    )?;
    Ok(rows.iter().map(head_from).collect())
}

/// Resolves topic references by name to ids (creating missing topics) inside the transaction.
fn resolve_topics(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    source: &FlowDocument,
    now_ms: u64,
) -> TxResult<(FlowDocument, Vec<Topic>)> {
    let mut resolved = source.clone();
    let refs = topic_refs(source);
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
                    let id = match topic_named(tx, page, &key)? {
                        Some(topic) => topic.id,
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

fn conflicts_in(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    document: &FlowDocument,
) -> TxResult<Vec<Diagnostic>> {
    let mut others: Vec<(String, FlowDocument)> = Vec::new();
    for head in heads_in(tx, page)? {
        if head.flow == document.id {
            continue;
        }
        match version_in(tx, page, &head.flow, head.active) {
            Ok(Some(stored)) => {
                others.push((format!("its live version {}", head.active), stored.document));
            }
            Ok(None) => {}
            Err(super::db::Fail::Store(error)) => {
                tracing::error!(%page, flow = %head.flow, version = head.active, %error, "live flow version unreadable; it claims no trigger");
            }
            Err(other) => return Err(other),
        }
    }
    Ok(trigger_conflicts_with_live(
        document,
        others.iter().map(|(label, doc)| (label.as_str(), doc)),
    ))
}

impl PgStore {
    fn validate_on_page(&self, page: &PageId, document: &FlowDocument) -> Vec<Diagnostic> {
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
        let rec = encode("drafts", &draft)?;
        self.pool.write("save_draft", true, |tx| {
            tx.execute(
                "INSERT INTO drafts (page_id, flow_id, shard, rec) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (page_id, flow_id) DO UPDATE SET rec = EXCLUDED.rec",
                &[
                    &page.as_str(),
                    &draft.document.id.as_str(),
                    &shard_of(page.as_str()),
                    &rec,
                ],
            )?;
            Ok(())
        })?;
        Ok(draft)
    }

    pub(super) fn draft_get(&self, page: &PageId, flow: &FlowId) -> StoreResult<Option<Draft>> {
        self.pool.read("draft", |c| {
            let row = c.query_opt(
                "SELECT rec FROM drafts WHERE page_id = $1 AND flow_id = $2",
                &[&page.as_str(), &flow.as_str()],
            )?;
            Ok(row.map(|r| decode("drafts", r.get(0))).transpose()?)
        })
    }

    pub(super) fn flow_head(&self, page: &PageId, flow: &FlowId) -> StoreResult<Option<FlowHead>> {
        self.pool.read("flow head", |c| {
            let row = c.query_opt(
                "SELECT flow_id, name, latest, active FROM flow_heads
                 WHERE page_id = $1 AND flow_id = $2",
                &[&page.as_str(), &flow.as_str()],
            )?;
            Ok(row.as_ref().map(head_from))
        })
    }

    pub(super) fn flow_heads(&self, page: &PageId) -> StoreResult<Vec<FlowHead>> {
        self.pool.read("flow heads", |c| heads_in(c, page))
    }

    pub(super) fn version_get(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
    ) -> StoreResult<Option<FlowVersion>> {
        self.pool
            .read("flow_version", |c| version_in(c, page, flow, version))
    }

    pub(super) fn versions_of(
        &self,
        page: &PageId,
        flow: &FlowId,
    ) -> StoreResult<Vec<FlowVersion>> {
        self.pool.read("flow_versions", |c| {
            let rows = c.query(
                "SELECT rec FROM flow_versions WHERE page_id = $1 AND flow_id = $2 ORDER BY version",
                &[&page.as_str(), &flow.as_str()],
            )?;
            Ok(rows
                .iter()
                .map(|r| decode("versions", r.get(0)))
                .collect::<Result<_, _>>()?)
        })
    }

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
        self.pool.write("publish", true, |tx| {
            let head = tx
                .query_opt(
                    "SELECT flow_id, name, latest, active FROM flow_heads
                     WHERE page_id = $1 AND flow_id = $2",
                    &[&page.as_str(), &flow.as_str()],
                )?
                .as_ref()
                .map(head_from);
            let (document, created_topics) = resolve_topics(tx, page, source, now_ms)?;
            if let Some(head) = &head {
                let latest = version_in(tx, page, &flow, head.latest).ok().flatten();
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
            let conflicts = conflicts_in(tx, page, &document)?;
            if !conflicts.is_empty() {
                return Err(StoreError::FlowInvalid {
                    flow: flow.clone(),
                    diagnostics: conflicts,
                }
                .into());
            }
            let record = FlowVersion {
                flow: flow.clone(),
                version,
                document,
                source: source.clone(),
                published_ms: now_ms,
                republished_from,
            };
            tx.execute(
                "INSERT INTO flow_versions (page_id, flow_id, version, rec) VALUES ($1, $2, $3, $4)",
                &[
                    &page.as_str(),
                    &flow.as_str(),
                    &version_i32(version),
                    &encode("versions", &record)?,
                ],
            )?;
            tx.execute(
                "INSERT INTO flow_heads (page_id, flow_id, shard, name, latest, active)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (page_id, flow_id) DO UPDATE
                   SET name = EXCLUDED.name, latest = EXCLUDED.latest, active = EXCLUDED.active",
                &[
                    &page.as_str(),
                    &flow.as_str(),
                    &shard_of(page.as_str()),
                    &source.name,
                    &version_i32(version),
                ],
            )?;
            Ok(Published {
                flow: flow.clone(),
                version,
                created_topics,
                unchanged: false,
                warnings: warnings.clone(),
            })
        })
    }

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
        let draft = self
            .draft_get(page, flow)?
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
        let existing = self.draft_get(page, &document.id)?;
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
        let old =
            self.version_get(page, flow, version)?
                .ok_or_else(|| StoreError::VersionNotFound {
                    flow: flow.clone(),
                    version,
                })?;
        self.publish_source(page, &old.document, Some(version), now_ms)
    }

    pub(super) fn flow_list(&self, page: &PageId) -> StoreResult<Vec<FlowSummary>> {
        let broken = self.flow_active_all(page)?.broken;
        let drafts: Vec<Draft> = self.pool.read("list_flows", |c| {
            let rows = c.query(
                "SELECT rec FROM drafts WHERE page_id = $1",
                &[&page.as_str()],
            )?;
            Ok(rows
                .iter()
                .map(|r| decode("drafts", r.get(0)))
                .collect::<Result<_, _>>()?)
        })?;
        crate::flows::flow_summaries(self.flow_heads(page)?, drafts, &broken, &mut |id, v| {
            Ok(self.version_get(page, id, v)?.map(|v| v.source))
        })
    }

    pub(super) fn flow_valid(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
    ) -> StoreResult<Option<Arc<ValidFlow>>> {
        let key = (page.clone(), flow.clone(), version);
        if let Some(valid) = self
            .valid_flows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(Some(valid.clone()));
        }
        let Some(stored) = self.version_get(page, flow, version)? else {
            return Ok(None);
        };
        let valid = Arc::new(ValidFlow::published(stored.document));
        let mut cache = self
            .valid_flows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= VALID_FLOWS_CACHED {
            // bounded: start over (versions are immutable, so any entry can be read again)
            cache.clear();
        }
        cache.insert(key, valid.clone());
        Ok(Some(valid))
    }

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
                Err(error @ StoreError::Corrupt { .. }) => {
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

//! Topics on sled: create, rename, list with usable token counts, delete with a token sweep.

use super::SledStore;
use super::codec::{Key, KeyReader};
use super::flows::topic_refs;
use super::tokens;
use super::trees::{T, Tx, TxResult};
use crate::error::StoreError;
use crate::ids::PageId;
use crate::store::StoreResult;
use crate::topic::{DeletedTopic, Topic, TopicSummary, clean_topic_name, topic_name_key};
use botflow_flow::{FlowId, TopicId, TopicRef};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A stored topic; `deleted_ms` marks a tombstone whose tokens are still being invalidated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct TopicRecord {
    pub(super) topic: Topic,
    #[serde(default)]
    pub(super) deleted_ms: Option<u64>,
}

pub(super) fn topic_key(page: &PageId, topic: &TopicId) -> Vec<u8> {
    Key::new().str(page.as_str()).str(topic.as_str()).finish()
}

pub(super) fn name_key(page: &PageId, name: &str) -> Vec<u8> {
    Key::new()
        .str(page.as_str())
        .str(&topic_name_key(name))
        .finish()
}

pub(super) fn count_key(page: &PageId, topic: &TopicId) -> Vec<u8> {
    topic_key(page, topic)
}

/// The live (not deleted) topic with this id, inside a transaction.
pub(super) fn live_topic(tx: &Tx<'_>, page: &PageId, topic: &TopicId) -> TxResult<Option<Topic>> {
    let record: Option<TopicRecord> = tx.get(T::Topics, &topic_key(page, topic))?;
    Ok(record.filter(|r| r.deleted_ms.is_none()).map(|r| r.topic))
}

/// Creates a topic inside a transaction, refusing a name that is taken.
pub(super) fn insert_topic(tx: &Tx<'_>, page: &PageId, name: &str, now_ms: u64) -> TxResult<Topic> {
    let clean = clean_topic_name(name)?;
    let nkey = name_key(page, &clean);
    if let Some(existing_id) = tx.get::<TopicId>(T::TopicNames, &nkey)? {
        return Err(StoreError::TopicNameTaken {
            name: name.to_owned(),
            existing_id,
        }
        .into());
    }
    let topic = Topic {
        id: TopicId(uuid::Uuid::new_v4().to_string()),
        name: clean,
        created_ms: now_ms,
    };
    tx.put(
        T::Topics,
        &topic_key(page, &topic.id),
        &TopicRecord {
            topic: topic.clone(),
            deleted_ms: None,
        },
    )?;
    tx.put(T::TopicNames, &nkey, &topic.id)?;
    Ok(topic)
}

impl SledStore {
    pub(super) fn topic_create(
        &self,
        page: &PageId,
        name: &str,
        now_ms: u64,
    ) -> StoreResult<Topic> {
        clean_topic_name(name)?;
        let topic = self.transact(|tx| insert_topic(tx, page, name, now_ms))?;
        self.durable()?;
        Ok(topic)
    }

    pub(super) fn topic_get(&self, page: &PageId, topic: &TopicId) -> StoreResult<Option<Topic>> {
        let record: Option<TopicRecord> = self.read(T::Topics, &topic_key(page, topic))?;
        Ok(record.filter(|r| r.deleted_ms.is_none()).map(|r| r.topic))
    }

    pub(super) fn topic_by_name(&self, page: &PageId, name: &str) -> StoreResult<Option<Topic>> {
        match self.read::<TopicId>(T::TopicNames, &name_key(page, name))? {
            Some(id) => self.topic_get(page, &id),
            None => Ok(None),
        }
    }

    pub(super) fn topic_list(&self, page: &PageId, now_ms: u64) -> StoreResult<Vec<TopicSummary>> {
        let prefix = Self::page_key(page);
        // Tokens past their expiry that no sweep has marked yet still sit in the counters;
        // the expiry index holds exactly those, keyed by expiry first, so they are a short scan.
        let mut expired_unswept: HashMap<String, u64> = HashMap::new();
        let end = Key::new().u64(now_ms.saturating_add(1)).finish();
        for item in self.tree(T::TokenExpiry).range(..end) {
            let (key, _) = item?;
            let mut reader = KeyReader::new(&key);
            let _expires = reader.u64()?;
            if reader.str()? == page.as_str() {
                *expired_unswept.entry(reader.str()?).or_default() += 1;
            }
        }
        let records: Vec<TopicRecord> = self.scan(T::Topics, &prefix)?;
        let mut users = self.topic_users(page)?;
        let mut summaries = Vec::with_capacity(records.len());
        for record in records.into_iter().filter(|r| r.deleted_ms.is_none()) {
            let counted: u64 = self
                .read(T::TopicCounts, &count_key(page, &record.topic.id))?
                .unwrap_or(0);
            let expired = expired_unswept
                .get(record.topic.id.as_str())
                .copied()
                .unwrap_or(0);
            summaries.push(TopicSummary {
                usable_tokens: counted.saturating_sub(expired),
                used_by: users.remove(&record.topic.id).unwrap_or_default(),
                topic: record.topic,
            });
        }
        summaries.sort_by(|a, b| {
            topic_name_key(&a.topic.name)
                .cmp(&topic_name_key(&b.topic.name))
                .then_with(|| a.topic.id.cmp(&b.topic.id))
        });
        Ok(summaries)
    }

    pub(super) fn topic_rename(
        &self,
        page: &PageId,
        topic: &TopicId,
        name: &str,
    ) -> StoreResult<Topic> {
        let clean = clean_topic_name(name)?;
        let renamed = self.transact(|tx| {
            let tkey = topic_key(page, topic);
            let Some(mut record) = tx
                .get::<TopicRecord>(T::Topics, &tkey)?
                .filter(|r| r.deleted_ms.is_none())
            else {
                return Err(StoreError::TopicNotFound {
                    page: page.clone(),
                    topic: topic.clone(),
                }
                .into());
            };
            let new_key = name_key(page, &clean);
            if let Some(existing_id) = tx.get::<TopicId>(T::TopicNames, &new_key)? {
                if &existing_id != topic {
                    return Err(StoreError::TopicNameTaken {
                        name: name.to_owned(),
                        existing_id,
                    }
                    .into());
                }
            }
            tx.del(T::TopicNames, &name_key(page, &record.topic.name))?;
            tx.put(T::TopicNames, &new_key, topic)?;
            record.topic.name = clean.clone();
            tx.put(T::Topics, &tkey, &record)?;
            Ok(record.topic)
        })?;
        self.durable()?;
        Ok(renamed)
    }

    /// The flows whose active version refers to the topic.
    fn flows_using_topic(&self, page: &PageId, topic: &TopicId) -> StoreResult<Vec<FlowId>> {
        Ok(self.topic_users(page)?.remove(topic).unwrap_or_default())
    }

    /// For every topic some active flow version refers to by id, those flows (by flow id).
    fn topic_users(&self, page: &PageId) -> StoreResult<HashMap<TopicId, Vec<FlowId>>> {
        let mut users: HashMap<TopicId, Vec<FlowId>> = HashMap::new();
        for head in self.flow_heads(page)? {
            let Some(version) = self.flow_version_record(page, &head.flow, head.active)? else {
                continue;
            };
            for (reference, _) in topic_refs(&version.document) {
                if let TopicRef::Id(by_id) = reference {
                    let flows = users.entry(by_id.id.clone()).or_default();
                    if !flows.contains(&head.flow) {
                        flows.push(head.flow.clone());
                    }
                }
            }
        }
        Ok(users)
    }

    pub(super) fn topic_delete(
        &self,
        page: &PageId,
        topic: &TopicId,
        force: bool,
        now_ms: u64,
    ) -> StoreResult<DeletedTopic> {
        if !force {
            let flows = self.flows_using_topic(page, topic)?;
            if !flows.is_empty() {
                return Err(StoreError::TopicInUse {
                    topic: topic.clone(),
                    flows,
                });
            }
        }
        let deleted = self.transact(|tx| {
            let tkey = topic_key(page, topic);
            let Some(mut record) = tx
                .get::<TopicRecord>(T::Topics, &tkey)?
                .filter(|r| r.deleted_ms.is_none())
            else {
                return Err(StoreError::TopicNotFound {
                    page: page.clone(),
                    topic: topic.clone(),
                }
                .into());
            };
            tx.del(T::TopicNames, &name_key(page, &record.topic.name))?;
            record.deleted_ms = Some(now_ms);
            tx.put(T::Topics, &tkey, &record)?;
            Ok(record)
        })?;
        // The tombstone makes every token of the topic unusable at once; the sweep below only
        // tidies the indexes and is resumed at open if the process dies half-way.
        self.durable()?;
        let invalidated = self.sweep_deleted_topic(page, topic, now_ms)?;
        Ok(DeletedTopic {
            topic: deleted.topic,
            invalidated_tokens: invalidated,
        })
    }

    /// Invalidates the unused tokens of a tombstoned topic, then removes the tombstone.
    fn sweep_deleted_topic(&self, page: &PageId, topic: &TopicId, now_ms: u64) -> StoreResult<u64> {
        let prefix = tokens::holder_prefix(page, topic);
        let mut invalidated = 0;
        loop {
            let keys: Vec<sled::IVec> = self
                .tree(T::TopicHolders)
                .scan_prefix(&prefix)
                .keys()
                .take(256)
                .collect::<Result<_, _>>()?;
            if keys.is_empty() {
                break;
            }
            let mut psids = Vec::with_capacity(keys.len());
            for key in &keys {
                let mut reader = KeyReader::new(key);
                let (_page, _topic) = (reader.str()?, reader.str()?);
                psids.push(crate::Psid(reader.str()?));
            }
            invalidated += self.transact(|tx| {
                let mut n = 0;
                for psid in &psids {
                    n += tokens::invalidate_all(tx, page, psid, topic, "topic deleted", now_ms)?;
                }
                Ok(n)
            })?;
        }
        self.transact(|tx| {
            tx.del(T::TopicCounts, &count_key(page, topic))?;
            tx.del(T::Topics, &topic_key(page, topic))
        })?;
        self.durable()?;
        Ok(invalidated)
    }

    /// Finishes the token sweep of topics deleted before a crash.
    pub(super) fn finish_topic_deletions(&self) -> StoreResult<()> {
        let records: Vec<(Vec<u8>, TopicRecord)> = self
            .tree(T::Topics)
            .iter()
            .map(|item| {
                let (key, value) = item?;
                Ok((key.to_vec(), super::codec::decode("topics", &value)?))
            })
            .collect::<StoreResult<_>>()?;
        for (key, record) in records {
            if let Some(deleted_ms) = record.deleted_ms {
                let page = PageId(KeyReader::new(&key).str()?);
                self.sweep_deleted_topic(&page, &record.topic.id, deleted_ms)?;
            }
        }
        Ok(())
    }
}

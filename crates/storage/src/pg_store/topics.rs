//! Pages and OTN topics on PostgreSQL: registration, create, rename, delete (tombstoned, its
//! usable tokens invalidated in the same transaction), lists with usable token counts.

use super::PgStore;
use super::db::{Cached, Fail, TxResult, big, shard_of, unbig};
use super::tokens;
use crate::error::StoreError;
use crate::ids::PageId;
use crate::store::StoreResult;
use crate::topic::{DeletedTopic, Topic, TopicSummary, clean_topic_name, topic_name_key};
use botflow_flow::{FlowId, TopicId};
use postgres::GenericClient;
use std::collections::HashMap;

fn topic_from(row: &postgres::Row) -> Topic {
    Topic {
        id: TopicId(row.get("topic_id")),
        name: row.get("name"),
        created_ms: unbig(row.get("created_ms")),
    }
}

/// The live (not deleted) topic, inside a transaction or not.
pub(super) fn live_topic(
    c: &mut Cached<'_, impl GenericClient>,
    page: &PageId,
    topic: &TopicId,
) -> TxResult<Option<Topic>> {
    let row = c.query_opt(
        "SELECT topic_id, name, created_ms FROM topics
         WHERE page_id = $1 AND topic_id = $2 AND deleted_ms IS NULL",
        &[&page.as_str(), &topic.as_str()],
    )?;
    Ok(row.as_ref().map(topic_from))
}

/// The live topic with this name key.
pub(super) fn topic_named(
    c: &mut Cached<'_, impl GenericClient>,
    page: &PageId,
    key: &str,
) -> TxResult<Option<Topic>> {
    let row = c.query_opt(
        "SELECT topic_id, name, created_ms FROM topics
         WHERE page_id = $1 AND name_key = $2 AND deleted_ms IS NULL",
        &[&page.as_str(), &key],
    )?;
    Ok(row.as_ref().map(topic_from))
}

/// Creates a topic (name rules and uniqueness checked) inside a transaction.
pub(super) fn insert_topic(
    c: &mut Cached<'_, impl GenericClient>,
    page: &PageId,
    name: &str,
    now_ms: u64,
) -> TxResult<Topic> {
    let clean = clean_topic_name(name)?;
    let key = topic_name_key(&clean);
    if let Some(existing) = topic_named(c, page, &key)? {
        return Err(StoreError::TopicNameTaken {
            name: name.to_owned(),
            existing_id: existing.id,
        }
        .into());
    }
    let topic = Topic {
        id: TopicId(uuid::Uuid::new_v4().to_string()),
        name: clean,
        created_ms: now_ms,
    };
    c.execute(
        "INSERT INTO topics (page_id, topic_id, shard, name, name_key, created_ms)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &page.as_str(),
            &topic.id.as_str(),
            &shard_of(page.as_str()),
            &topic.name,
            &key,
            &big(now_ms),
        ],
    )?;
    Ok(topic)
}

impl PgStore {
    pub(super) fn page_ensure(&self, page: &PageId, now_ms: u64) -> StoreResult<bool> {
        self.pool.write("ensure_page", true, |tx| {
            let n = tx.execute(
                "INSERT INTO pages (page_id, shard, created_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (page_id) DO NOTHING",
                &[&page.as_str(), &shard_of(page.as_str()), &big(now_ms)],
            )?;
            Ok(n == 1)
        })
    }

    pub(super) fn page_known(&self, page: &PageId) -> StoreResult<bool> {
        self.pool.read("page_exists", |c| {
            Ok(
                c.query_opt("SELECT 1 FROM pages WHERE page_id = $1", &[&page.as_str()])?
                    .is_some(),
            )
        })
    }

    pub(super) fn pages_list(&self) -> StoreResult<Vec<PageId>> {
        self.pool.read("list_pages", |c| {
            Ok(c.query(
                "SELECT page_id FROM pages ORDER BY octet_length(page_id), page_id",
                &[],
            )?
            .iter()
            .map(|r| PageId::from(r.get::<_, String>(0).as_str()))
            .collect())
        })
    }

    pub(super) fn topic_create(
        &self,
        page: &PageId,
        name: &str,
        now_ms: u64,
    ) -> StoreResult<Topic> {
        clean_topic_name(name)?;
        self.pool.write("create_topic", true, |tx| {
            insert_topic(tx, page, name, now_ms)
        })
    }

    pub(super) fn topic_get(&self, page: &PageId, topic: &TopicId) -> StoreResult<Option<Topic>> {
        self.pool.read("get_topic", |c| live_topic(c, page, topic))
    }

    pub(super) fn topic_by_name(&self, page: &PageId, name: &str) -> StoreResult<Option<Topic>> {
        let key = topic_name_key(name);
        self.pool
            .read("find_topic_by_name", |c| topic_named(c, page, &key))
    }

    pub(super) fn topic_list(&self, page: &PageId, now_ms: u64) -> StoreResult<Vec<TopicSummary>> {
        let rows = self.pool.read("list_topics", |c| {
            Ok(c.query(
                "SELECT t.topic_id, t.name, t.created_ms,
                   (SELECT count(*) FROM tokens k WHERE k.page_id = t.page_id
                      AND k.topic_id = t.topic_id AND k.state = 0 AND k.expires_ms > $2) AS usable
                 FROM topics t WHERE t.page_id = $1 AND t.deleted_ms IS NULL",
                &[&page.as_str(), &big(now_ms)],
            )?)
        })?;
        let mut users = self.topic_users(page)?;
        let mut summaries: Vec<TopicSummary> = rows
            .iter()
            .map(|row| {
                let topic = topic_from(row);
                TopicSummary {
                    usable_tokens: unbig(row.get("usable")),
                    used_by: users.remove(&topic.id).unwrap_or_default(),
                    topic,
                }
            })
            .collect();
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
        let key = topic_name_key(&clean);
        self.pool.write("rename_topic", true, |tx| {
            let Some(mut current) = live_topic(tx, page, topic)? else {
                return Err(StoreError::TopicNotFound {
                    page: page.clone(),
                    topic: topic.clone(),
                }
                .into());
            };
            if let Some(existing) = topic_named(tx, page, &key)? {
                if &existing.id != topic {
                    return Err(StoreError::TopicNameTaken {
                        name: name.to_owned(),
                        existing_id: existing.id,
                    }
                    .into());
                }
            }
            tx.execute(
                "UPDATE topics SET name = $3, name_key = $4 WHERE page_id = $1 AND topic_id = $2",
                &[&page.as_str(), &topic.as_str(), &clean, &key],
            )?;
            current.name = clean.clone();
            Ok(current)
        })
    }

    /// The flows whose active version refers to each topic id.
    fn topic_users(&self, page: &PageId) -> StoreResult<HashMap<TopicId, Vec<FlowId>>> {
        let mut users: HashMap<TopicId, Vec<FlowId>> = HashMap::new();
        for head in self.flow_heads(page)? {
            let Some(version) = self.version_get(page, &head.flow, head.active)? else {
                continue;
            };
            for (reference, _) in super::flows::topic_refs(&version.document) {
                if let botflow_flow::TopicRef::Id(by_id) = reference {
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
            let flows = self.topic_users(page)?.remove(topic).unwrap_or_default();
            if !flows.is_empty() {
                return Err(StoreError::TopicInUse {
                    topic: topic.clone(),
                    flows,
                });
            }
        }
        self.pool.write("delete_topic", true, |tx| {
            let Some(found) = live_topic(tx, page, topic)? else {
                return Err(Fail::Store(StoreError::TopicNotFound {
                    page: page.clone(),
                    topic: topic.clone(),
                }));
            };
            tx.execute(
                "UPDATE topics SET deleted_ms = $3 WHERE page_id = $1 AND topic_id = $2",
                &[&page.as_str(), &topic.as_str(), &big(now_ms)],
            )?;
            let invalidated = tokens::invalidate_topic(tx, page, topic, "topic deleted", now_ms)?;
            Ok(DeletedTopic {
                topic: found,
                invalidated_tokens: invalidated,
            })
        })
    }
}

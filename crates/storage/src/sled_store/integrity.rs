//! A full consistency check of the sled indexes (tokens, counters, queues, journal), used by the
//! crash and property tests and usable by an operator tool.

use super::SledStore;
use super::codec::{Key, KeyReader, decode};
use super::journal::{EventRecord, JournalPointer};
use super::tokens::SubscriberTokens;
use super::trees::T;
use crate::commit::OutboxStats;
use crate::ids::OutboxId;
use crate::outbox::{OutboundKind, OutboundMessage};
use crate::store::StoreResult;
use crate::token::{OtnToken, TokenState};
use std::collections::{BTreeMap, BTreeSet, HashMap};

impl SledStore {
    /// Checks that every index agrees with the records it indexes; returns the problems found
    /// (empty when consistent). Reads the whole database: meant for tests and offline checks.
    pub fn verify_integrity(&self) -> StoreResult<Vec<String>> {
        let mut problems = Vec::new();
        self.verify_tokens(&mut problems)?;
        self.verify_outbox(&mut problems)?;
        self.verify_journal(&mut problems)?;
        Ok(problems)
    }

    fn verify_tokens(&self, problems: &mut Vec<String>) -> StoreResult<()> {
        // (page, token) → record
        let mut records: HashMap<(String, String), OtnToken> = HashMap::new();
        for item in self.tree(T::Tokens).iter() {
            let (_, value) = item?;
            let token: OtnToken = decode("tokens", &value)?;
            records.insert((token.page.0.clone(), token.token.clone()), token);
        }
        let mut listed: BTreeSet<(String, String)> = BTreeSet::new();
        for item in self.tree(T::SubTokens).iter() {
            let (key, value) = item?;
            let mut reader = KeyReader::new(&key);
            let (page, psid, topic) = (reader.str()?, reader.str()?, reader.str()?);
            let list: SubscriberTokens = decode("sub_tokens", &value)?;
            if list.entries.is_empty() {
                problems.push(format!("empty token list for {page}/{psid}/{topic}"));
            }
            if !list
                .entries
                .windows(2)
                .all(|w| (w[0].created_ms, &w[0].token) <= (w[1].created_ms, &w[1].token))
            {
                problems.push(format!(
                    "token list of {page}/{psid}/{topic} not oldest first"
                ));
            }
            let holder = super::codec::Key::new()
                .str(&page)
                .str(&topic)
                .str(&psid)
                .finish();
            if !self.tree(T::TopicHolders).contains_key(holder)? {
                problems.push(format!("holder index misses {page}/{topic}/{psid}"));
            }
            for entry in &list.entries {
                if !listed.insert((page.clone(), entry.token.clone())) {
                    problems.push(format!("token {} listed twice", entry.token));
                }
                match records.get(&(page.clone(), entry.token.clone())) {
                    Some(record) if matches!(record.state, TokenState::Usable) => {
                        if record.psid.0 != psid || record.topic.0 != topic {
                            problems.push(format!(
                                "token {} listed under the wrong owner",
                                entry.token
                            ));
                        }
                    }
                    Some(record) => problems.push(format!(
                        "token {} is listed as usable but is {:?}",
                        entry.token, record.state
                    )),
                    None => problems.push(format!("listed token {} has no record", entry.token)),
                }
            }
        }
        let mut usable_per_topic: BTreeMap<(String, String), u64> = BTreeMap::new();
        for ((page, token), record) in &records {
            let usable = matches!(record.state, TokenState::Usable);
            if usable {
                *usable_per_topic
                    .entry((page.clone(), record.topic.0.clone()))
                    .or_default() += 1;
                if !listed.contains(&(page.clone(), token.clone())) {
                    problems.push(format!(
                        "usable token {token} is not in its subscriber's list"
                    ));
                }
            }
            let expiry = super::codec::Key::new()
                .u64(record.expires_ms)
                .str(page)
                .str(record.topic.as_str())
                .str(token)
                .finish();
            if self.tree(T::TokenExpiry).contains_key(expiry)? != usable {
                problems.push(format!(
                    "expiry index disagrees with token {token} ({:?})",
                    record.state
                ));
            }
        }
        for item in self.tree(T::TopicCounts).iter() {
            let (key, value) = item?;
            let mut reader = KeyReader::new(&key);
            let (page, topic) = (reader.str()?, reader.str()?);
            let counted: u64 = decode("topic_counts", &value)?;
            let actual = usable_per_topic
                .remove(&(page.clone(), topic.clone()))
                .unwrap_or(0);
            if counted != actual {
                problems.push(format!(
                    "topic {page}/{topic} counts {counted} usable tokens, {actual} exist"
                ));
            }
        }
        for ((page, topic), actual) in usable_per_topic {
            problems.push(format!(
                "topic {page}/{topic} has {actual} usable tokens but no counter"
            ));
        }
        for item in self.tree(T::TopicHolders).iter() {
            let (key, _) = item?;
            let mut reader = KeyReader::new(&key);
            let (page, topic, psid) = (reader.str()?, reader.str()?, reader.str()?);
            let list = super::codec::Key::new()
                .str(&page)
                .str(&psid)
                .str(&topic)
                .finish();
            if !self.tree(T::SubTokens).contains_key(list)? {
                problems.push(format!("holder {page}/{topic}/{psid} has no tokens"));
            }
        }
        Ok(())
    }

    fn verify_outbox(&self, problems: &mut Vec<String>) -> StoreResult<()> {
        let mut pending: BTreeMap<(String, String), Vec<OutboxId>> = BTreeMap::new();
        let mut messages: HashMap<OutboxId, OutboundMessage> = HashMap::new();
        let mut token_users: HashMap<(String, String), OutboxId> = HashMap::new();
        for item in self.tree(T::Outbox).iter() {
            let (_, value) = item?;
            let message: OutboundMessage = decode("outbox", &value)?;
            if message.status.is_pending() {
                pending
                    .entry((message.page.0.clone(), message.psid.0.clone()))
                    .or_default()
                    .push(message.id);
            }
            if let (OutboundKind::RecurringToken { .. }, Some(token)) =
                (&message.kind, &message.token)
            {
                // Recurring tokens are never spent: a message is paid by a stored token.
                let key = Key::new().str(message.page.as_str()).str(token).finish();
                if message.status.is_pending() && !self.tree(T::Recurring).contains_key(key)? {
                    problems.push(format!(
                        "message {} is paid by recurring token {token}, which is not stored",
                        message.id
                    ));
                }
            } else if let Some(token) = &message.token {
                if let Some(other) =
                    token_users.insert((message.page.0.clone(), token.clone()), message.id)
                {
                    problems.push(format!(
                        "token {token} pays for messages {other} and {}",
                        message.id
                    ));
                }
                let record: Option<OtnToken> =
                    self.read(T::Tokens, &super::tokens::token_key(&message.page, token))?;
                match record.map(|r| r.state) {
                    Some(TokenState::Spent {
                        outbox: Some(id), ..
                    }) if id == message.id => {}
                    Some(TokenState::Invalid { .. }) => {}
                    // Removed by retention: only once the message finished (a token paying for
                    // a pending message is kept).
                    None if !message.status.is_pending() => {}
                    other => problems.push(format!(
                        "message {} is paid by token {token} in state {other:?}",
                        message.id
                    )),
                }
            }
            messages.insert(message.id, message);
        }
        let mut heads = BTreeSet::new();
        for item in self.tree(T::SubQueue).iter() {
            let (key, value) = item?;
            let mut reader = KeyReader::new(&key);
            let owner = (reader.str()?, reader.str()?);
            let queue: Vec<OutboxId> = decode("sub_queue", &value)?;
            let expected = pending.remove(&owner).unwrap_or_default();
            if queue != expected {
                problems.push(format!(
                    "queue of {owner:?} is {queue:?}, pending messages are {expected:?}"
                ));
            }
            if let Some(head) = queue.first().and_then(|id| messages.get(id)) {
                heads.insert((head.due_ms, head.id));
            }
        }
        for (owner, ids) in pending {
            problems.push(format!(
                "pending messages {ids:?} of {owner:?} are in no queue"
            ));
        }
        let mut due_entries = BTreeSet::new();
        for item in self.tree(T::OutboxDue).iter() {
            let (key, _) = item?;
            let mut reader = KeyReader::new(&key);
            due_entries.insert((reader.u64()?, OutboxId(reader.u64()?)));
        }
        if due_entries != heads {
            problems.push(format!(
                "due index {due_entries:?} differs from queue heads {heads:?}"
            ));
        }
        let stats: OutboxStats = crate::Store::outbox_stats(self)?;
        let pending_count = messages.values().filter(|m| m.status.is_pending()).count() as u64;
        if stats.pending != pending_count {
            problems.push(format!(
                "outbox stats count {} pending, {pending_count} are",
                stats.pending
            ));
        }
        Ok(())
    }

    fn verify_journal(&self, problems: &mut Vec<String>) -> StoreResult<()> {
        for item in self.tree(T::Journal).iter() {
            let (key, value) = item?;
            let seq = KeyReader::new(&key).u64()?;
            let pointer: JournalPointer = decode("journal", &value)?;
            let record_key = super::journal::event_key(&pointer.page, &pointer.event);
            let record: Option<EventRecord> = self.read(T::EventKeys, &record_key)?;
            match record {
                Some(EventRecord {
                    seq: Some(recorded),
                    processed: false,
                    entry: Some(_),
                    ..
                }) if recorded == seq => {}
                other => problems.push(format!(
                    "journal entry {seq} ({}) has dedup record {other:?}",
                    pointer.event
                )),
            }
        }
        Ok(())
    }
}

//! OTN tokens on sled: add, take the oldest usable one, mark, expire, count.
//!
//! Each subscriber's usable tokens of a topic are one record, oldest first, so a transaction can
//! take the oldest without a range scan. Per topic, a counter holds the number of usable tokens
//! (including expired ones no sweep has marked yet) and an expiry index lists every usable token
//! by expiry time, so counting usable tokens of all topics never scans the tokens themselves.

use super::SledStore;
use super::codec::{Key, KeyReader};
use super::ledger;
use super::topics::{count_key, live_topic};
use super::trees::{T, Tx, TxResult};
use crate::error::StoreError;
use crate::ids::{OutboxId, PageId, Psid};
use crate::store::StoreResult;
use crate::token::{NewToken, OtnToken, TokenAdded, TokenMark, TokenState};
use botflow_flow::TopicId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One usable token in a subscriber's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct TokenEntry {
    pub(super) token: String,
    pub(super) created_ms: u64,
    pub(super) expires_ms: u64,
}

/// A subscriber's usable tokens of one topic, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SubscriberTokens {
    pub(super) topic: TopicId,
    pub(super) entries: Vec<TokenEntry>,
}

pub(super) fn token_key(page: &PageId, token: &str) -> Vec<u8> {
    Key::new().str(page.as_str()).str(token).finish()
}

pub(super) fn list_key(page: &PageId, psid: &Psid, topic: &TopicId) -> Vec<u8> {
    Key::new()
        .str(page.as_str())
        .str(psid.as_str())
        .str(topic.as_str())
        .finish()
}

fn expiry_key(expires_ms: u64, page: &PageId, topic: &TopicId, token: &str) -> Vec<u8> {
    Key::new()
        .u64(expires_ms)
        .str(page.as_str())
        .str(topic.as_str())
        .str(token)
        .finish()
}

pub(super) fn holder_prefix(page: &PageId, topic: &TopicId) -> Vec<u8> {
    Key::new().str(page.as_str()).str(topic.as_str()).finish()
}

pub(super) fn holder_key(page: &PageId, topic: &TopicId, psid: &Psid) -> Vec<u8> {
    Key::new()
        .str(page.as_str())
        .str(topic.as_str())
        .str(psid.as_str())
        .finish()
}

/// Indexes a token that is no longer usable for the retention sweep.
fn note_used_up(tx: &Tx<'_>, tkey: &[u8], state: &TokenState) -> TxResult<()> {
    match super::retention::used_up_ms(state) {
        Some(at_ms) => super::retention::note_token(tx, tkey, at_ms),
        None => Ok(()),
    }
}

fn add_to_count(tx: &Tx<'_>, page: &PageId, topic: &TopicId, delta: i64) -> TxResult<()> {
    let key = count_key(page, topic);
    let count: u64 = tx.get(T::TopicCounts, &key)?.unwrap_or(0);
    let next = count.saturating_add_signed(delta);
    tx.put(T::TopicCounts, &key, &next)
}

/// Writes a subscriber's token list back, keeping the holder index in step with it.
fn write_list(tx: &Tx<'_>, page: &PageId, psid: &Psid, list: &SubscriberTokens) -> TxResult<()> {
    let lkey = list_key(page, psid, &list.topic);
    let hkey = holder_key(page, &list.topic, psid);
    if list.entries.is_empty() {
        tx.del(T::SubTokens, &lkey)?;
        tx.del(T::TopicHolders, &hkey)
    } else {
        if !tx.contains(T::TopicHolders, &hkey)? {
            tx.mark(T::TopicHolders, &hkey)?;
        }
        tx.put(T::SubTokens, &lkey, list)
    }
}

fn read_list(
    tx: &Tx<'_>,
    page: &PageId,
    psid: &Psid,
    topic: &TopicId,
) -> TxResult<SubscriberTokens> {
    Ok(tx
        .get(T::SubTokens, &list_key(page, psid, topic))?
        .unwrap_or_else(|| SubscriberTokens {
            topic: topic.clone(),
            entries: Vec::new(),
        }))
}

/// Sets the state of a token that leaves the usable set and drops it from the indexes
/// (the caller removes it from the subscriber's list).
fn retire(
    tx: &Tx<'_>,
    page: &PageId,
    topic: &TopicId,
    entry: &TokenEntry,
    state: TokenState,
) -> TxResult<()> {
    let tkey = token_key(page, &entry.token);
    let mut record: OtnToken = tx
        .get(T::Tokens, &tkey)?
        .ok_or_else(|| StoreError::Corrupt {
            what: "tokens",
            detail: "a listed token has no record".into(),
        })?;
    ledger::note_token_change(tx, page, topic, &record.state, &state)?;
    record.state = state;
    tx.put(T::Tokens, &tkey, &record)?;
    note_used_up(tx, &tkey, &record.state)?;
    tx.del(
        T::TokenExpiry,
        &expiry_key(entry.expires_ms, page, topic, &entry.token),
    )?;
    add_to_count(tx, page, topic, -1)
}

/// Stores a token from an opt-in (a token stored before is left as it is).
pub(super) fn add(
    tx: &Tx<'_>,
    page: &PageId,
    psid: &Psid,
    new: &NewToken,
    now_ms: u64,
) -> TxResult<TokenAdded> {
    let tkey = token_key(page, &new.token);
    if tx.contains(T::Tokens, &tkey)? {
        return Ok(TokenAdded::Duplicate);
    }
    let (state, outcome) = if live_topic(tx, page, &new.topic)?.is_none() {
        (
            TokenState::Invalid {
                reason: "topic not found".into(),
                at_ms: now_ms,
            },
            TokenAdded::TopicMissing,
        )
    } else if new.expires_ms <= now_ms {
        (TokenState::Expired { at_ms: now_ms }, TokenAdded::Expired)
    } else {
        (TokenState::Usable, TokenAdded::New)
    };
    note_used_up(tx, &tkey, &state)?;
    if outcome != TokenAdded::TopicMissing {
        ledger::note_opt_in(tx, page, &new.topic, &state, new.created_ms)?;
    }
    tx.put(
        T::Tokens,
        &tkey,
        &OtnToken {
            page: page.clone(),
            psid: psid.clone(),
            topic: new.topic.clone(),
            token: new.token.clone(),
            created_ms: new.created_ms,
            expires_ms: new.expires_ms,
            state,
        },
    )?;
    if outcome == TokenAdded::New {
        let mut list = read_list(tx, page, psid, &new.topic)?;
        let entry = TokenEntry {
            token: new.token.clone(),
            created_ms: new.created_ms,
            expires_ms: new.expires_ms,
        };
        let at = list
            .entries
            .partition_point(|e| (e.created_ms, &e.token) <= (entry.created_ms, &entry.token));
        list.entries.insert(at, entry);
        write_list(tx, page, psid, &list)?;
        tx.put(
            T::TokenExpiry,
            &expiry_key(new.expires_ms, page, &new.topic, &new.token),
            psid,
        )?;
        add_to_count(tx, page, &new.topic, 1)?;
    }
    Ok(outcome)
}

/// What taking a token found.
pub(super) struct Taken {
    /// The token now spent, if one was usable.
    pub(super) token: Option<String>,
    /// Tokens found expired (and marked so) on the way.
    pub(super) expired: u64,
}

/// How many usable tokens of the topic the subscriber holds at `now_ms`, read inside the
/// transaction that will spend them.
pub(super) fn usable_count(
    tx: &Tx<'_>,
    page: &PageId,
    psid: &Psid,
    topic: &TopicId,
    now_ms: u64,
) -> TxResult<usize> {
    if live_topic(tx, page, topic)?.is_none() {
        return Ok(0);
    }
    let list = read_list(tx, page, psid, topic)?;
    Ok(list
        .entries
        .iter()
        .filter(|entry| entry.expires_ms > now_ms)
        .count())
}

/// Takes the subscriber's oldest usable token of the topic for message `outbox`, marking
/// expired ones on the way.
pub(super) fn take_oldest(
    tx: &Tx<'_>,
    page: &PageId,
    psid: &Psid,
    topic: &TopicId,
    outbox: OutboxId,
    now_ms: u64,
) -> TxResult<Taken> {
    let mut taken = Taken {
        token: None,
        expired: 0,
    };
    if live_topic(tx, page, topic)?.is_none() {
        return Ok(taken);
    }
    let mut list = read_list(tx, page, psid, topic)?;
    if list.entries.is_empty() {
        return Ok(taken);
    }
    let mut kept = Vec::with_capacity(list.entries.len());
    for entry in std::mem::take(&mut list.entries) {
        if entry.expires_ms <= now_ms {
            retire(
                tx,
                page,
                topic,
                &entry,
                TokenState::Expired { at_ms: now_ms },
            )?;
            taken.expired += 1;
        } else if taken.token.is_none() {
            let state = TokenState::Spent {
                outbox: Some(outbox),
                at_ms: now_ms,
            };
            retire(tx, page, topic, &entry, state)?;
            taken.token = Some(entry.token);
        } else {
            kept.push(entry);
        }
    }
    list.entries = kept;
    write_list(tx, page, psid, &list)?;
    Ok(taken)
}

/// Gives back the token that paid for message `outbox` (removed from the outbox before it was
/// sent): usable again when it has not expired at `now_ms`, else expired; the ledger moves it
/// out of `spent` and takes the send off its day. Returns whether it is usable again.
pub(super) fn restore(
    tx: &Tx<'_>,
    page: &PageId,
    topic: &TopicId,
    token: &str,
    outbox: OutboxId,
    now_ms: u64,
) -> TxResult<bool> {
    let tkey = token_key(page, token);
    let Some(mut record) = tx.get::<OtnToken>(T::Tokens, &tkey)? else {
        return Ok(false);
    };
    let TokenState::Spent {
        outbox: Some(paid),
        at_ms: spent_ms,
    } = record.state
    else {
        return Ok(false);
    };
    if paid != outbox {
        return Ok(false);
    }
    let usable = live_topic(tx, page, topic)?.is_some() && now_ms < record.expires_ms;
    let state = if usable {
        TokenState::Usable
    } else {
        TokenState::Expired { at_ms: now_ms }
    };
    ledger::note_token_change(tx, page, topic, &record.state, &state)?;
    ledger::note_send_undone(tx, page, topic, spent_ms)?;
    record.state = state;
    tx.put(T::Tokens, &tkey, &record)?;
    if usable {
        let mut list = read_list(tx, page, &record.psid, topic)?;
        let entry = TokenEntry {
            token: record.token.clone(),
            created_ms: record.created_ms,
            expires_ms: record.expires_ms,
        };
        let at = list
            .entries
            .partition_point(|e| (e.created_ms, &e.token) <= (entry.created_ms, &entry.token));
        list.entries.insert(at, entry);
        write_list(tx, page, &record.psid, &list)?;
        tx.put(
            T::TokenExpiry,
            &expiry_key(record.expires_ms, page, topic, token),
            &record.psid,
        )?;
        add_to_count(tx, page, topic, 1)?;
    } else {
        note_used_up(tx, &tkey, &record.state)?;
    }
    Ok(usable)
}

/// Marks a token spent or invalid; returns whether it was usable before.
pub(super) fn mark(
    tx: &Tx<'_>,
    page: &PageId,
    token: &str,
    mark: &TokenMark,
    now_ms: u64,
) -> TxResult<bool> {
    let tkey = token_key(page, token);
    let Some(mut record) = tx.get::<OtnToken>(T::Tokens, &tkey)? else {
        return Err(StoreError::TokenNotFound { page: page.clone() }.into());
    };
    let new_state = match mark {
        TokenMark::Spent => TokenState::Spent {
            outbox: None,
            at_ms: now_ms,
        },
        TokenMark::Invalid { reason } => TokenState::Invalid {
            reason: reason.clone(),
            at_ms: now_ms,
        },
    };
    match record.state {
        TokenState::Usable => {
            let mut list = read_list(tx, page, &record.psid, &record.topic)?;
            if let Some(at) = list.entries.iter().position(|e| e.token == token) {
                let entry = list.entries.remove(at);
                retire(tx, page, &record.topic, &entry, new_state)?;
                write_list(tx, page, &record.psid, &list)?;
            } else {
                let topic = record.topic.clone();
                ledger::note_token_change(tx, page, &topic, &record.state, &new_state)?;
                record.state = new_state;
                tx.put(T::Tokens, &tkey, &record)?;
                note_used_up(tx, &tkey, &record.state)?;
            }
            Ok(true)
        }
        TokenState::Spent { .. } if matches!(mark, TokenMark::Invalid { .. }) => {
            // A spent token that Messenger refused: record why, it stays unusable.
            let topic = record.topic.clone();
            ledger::note_token_change(tx, page, &topic, &record.state, &new_state)?;
            record.state = new_state;
            tx.put(T::Tokens, &tkey, &record)?;
            note_used_up(tx, &tkey, &record.state)?;
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// Invalidates every usable token of the subscriber for the topic; returns how many.
pub(super) fn invalidate_all(
    tx: &Tx<'_>,
    page: &PageId,
    psid: &Psid,
    topic: &TopicId,
    reason: &str,
    now_ms: u64,
) -> TxResult<u64> {
    let mut list = read_list(tx, page, psid, topic)?;
    let n = list.entries.len() as u64;
    for entry in std::mem::take(&mut list.entries) {
        let state = TokenState::Invalid {
            reason: reason.to_owned(),
            at_ms: now_ms,
        };
        retire(tx, page, topic, &entry, state)?;
    }
    write_list(tx, page, psid, &list)?;
    Ok(n)
}

impl SledStore {
    pub(super) fn tokens_usable(
        &self,
        page: &PageId,
        psid: &Psid,
        topic: &TopicId,
        now_ms: u64,
    ) -> StoreResult<Vec<OtnToken>> {
        if self.topic_get(page, topic)?.is_none() {
            return Ok(Vec::new());
        }
        let list: Option<SubscriberTokens> =
            self.read(T::SubTokens, &list_key(page, psid, topic))?;
        let mut usable = Vec::new();
        for entry in list.map(|l| l.entries).unwrap_or_default() {
            if let Some(token) = self.read::<OtnToken>(T::Tokens, &token_key(page, &entry.token))? {
                if token.is_usable(now_ms) {
                    usable.push(token);
                }
            }
        }
        Ok(usable)
    }

    pub(super) fn tokens_counts(
        &self,
        page: &PageId,
        psid: &Psid,
        now_ms: u64,
    ) -> StoreResult<BTreeMap<TopicId, u64>> {
        let prefix = Key::new().str(page.as_str()).str(psid.as_str()).finish();
        let mut counts = BTreeMap::new();
        for list in self.scan::<SubscriberTokens>(T::SubTokens, &prefix)? {
            let n = list
                .entries
                .iter()
                .filter(|e| now_ms < e.expires_ms)
                .count() as u64;
            if n > 0 && self.topic_get(page, &list.topic)?.is_some() {
                counts.insert(list.topic, n);
            }
        }
        Ok(counts)
    }

    pub(super) fn tokens_holders(
        &self,
        page: &PageId,
        topic: &TopicId,
        now_ms: u64,
    ) -> StoreResult<Vec<Psid>> {
        if self.topic_get(page, topic)?.is_none() {
            return Ok(Vec::new());
        }
        let mut holders = Vec::new();
        for key in self.scan_keys(T::TopicHolders, &holder_prefix(page, topic))? {
            let mut reader = KeyReader::new(&key);
            let (_page, _topic) = (reader.str()?, reader.str()?);
            let psid = Psid(reader.str()?);
            let list: Option<SubscriberTokens> =
                self.read(T::SubTokens, &list_key(page, &psid, topic))?;
            if list.is_some_and(|l| l.entries.iter().any(|e| now_ms < e.expires_ms)) {
                holders.push(psid);
            }
        }
        Ok(holders)
    }

    /// The raw holder list (no expiry filter), used by notifications that count expiries.
    pub(super) fn holder_psids(&self, page: &PageId, topic: &TopicId) -> StoreResult<Vec<Psid>> {
        self.holders_in(T::TopicHolders, page, topic)
    }

    /// The subscribers listed under (page, topic) in a holder index (one-time or recurring).
    pub(super) fn holders_in(
        &self,
        tree: T,
        page: &PageId,
        topic: &TopicId,
    ) -> StoreResult<Vec<Psid>> {
        self.scan_keys(tree, &holder_prefix(page, topic))?
            .iter()
            .map(|key| {
                let mut reader = KeyReader::new(key);
                let (_page, _topic) = (reader.str()?, reader.str()?);
                Ok(Psid(reader.str()?))
            })
            .collect()
    }

    pub(super) fn tokens_expire(&self, now_ms: u64) -> StoreResult<u64> {
        let end = Key::new().u64(now_ms.saturating_add(1)).finish();
        let mut expired = 0;
        loop {
            let batch: Vec<(sled::IVec, sled::IVec)> = self
                .tree(T::TokenExpiry)
                .range(..end.clone())
                .take(512)
                .collect::<Result<_, _>>()?;
            if batch.is_empty() {
                break;
            }
            let mut found = Vec::with_capacity(batch.len());
            for (key, value) in &batch {
                let mut reader = KeyReader::new(key);
                let _expires = reader.u64()?;
                let page = PageId(reader.str()?);
                let topic = TopicId(reader.str()?);
                let token = reader.str()?;
                let psid: Psid = super::codec::decode("token_expiry", value)?;
                found.push((key.to_vec(), page, topic, token, psid));
            }
            expired += self.transact(|tx| {
                let mut n = 0;
                for (key, page, topic, token, psid) in &found {
                    let mut list = read_list(tx, page, psid, topic)?;
                    match list.entries.iter().position(|e| &e.token == token) {
                        Some(at) => {
                            let entry = list.entries.remove(at);
                            retire(
                                tx,
                                page,
                                topic,
                                &entry,
                                TokenState::Expired { at_ms: now_ms },
                            )?;
                            write_list(tx, page, psid, &list)?;
                            n += 1;
                        }
                        // Not in the list any more: only the index entry was left behind.
                        None => tx.del(T::TokenExpiry, key)?,
                    }
                }
                Ok(n)
            })?;
        }
        if expired > 0 {
            self.durable()?;
        }
        Ok(expired)
    }
}

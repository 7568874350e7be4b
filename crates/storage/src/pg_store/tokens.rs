//! OTN tokens on PostgreSQL: store from opt-ins, take the oldest usable one for a send (expired
//! ones met on the way are marked expired), mark, expire, invalidate, and the read queries.

use super::PgStore;
use super::db::{Cached, Tx, TxResult, big, decode, encode, shard_of, unbig};
use super::ledger;
use super::topics::live_topic;
use crate::error::StoreError;
use crate::ids::{OutboxId, PageId, Psid};
use crate::store::StoreResult;
use crate::token::{NewToken, OtnToken, TokenAdded, TokenMark, TokenState};
use botflow_flow::TopicId;
use postgres::GenericClient;
use std::collections::BTreeMap;

/// The `state` column of a token state.
fn state_code(state: &TokenState) -> i16 {
    match state {
        TokenState::Usable => 0,
        TokenState::Spent { .. } => 1,
        TokenState::Invalid { .. } => 2,
        TokenState::Expired { .. } => 3,
    }
}

fn record(row: &postgres::Row) -> Result<OtnToken, StoreError> {
    decode("tokens", row.get("rec"))
}

/// When a token was used up (spent, invalid or expired), for the retention sweep.
fn used_ms(state: &TokenState) -> Option<i64> {
    match state {
        TokenState::Usable => None,
        TokenState::Spent { at_ms, .. }
        | TokenState::Invalid { at_ms, .. }
        | TokenState::Expired { at_ms } => Some(big(*at_ms)),
    }
}

/// Writes a token's new state (record and columns) and moves the ledger with it.
fn set_state(tx: &mut Tx<'_, '_>, token: &mut OtnToken, state: TokenState) -> TxResult<()> {
    let from = std::mem::replace(&mut token.state, state);
    ledger::note_token_change(tx, &token.page, &token.topic, &from, &token.state)?;
    tx.execute(
        "UPDATE tokens SET state = $3, rec = $4, used_ms = $5 WHERE page_id = $1 AND token = $2",
        &[
            &token.page.as_str(),
            &token.token,
            &state_code(&token.state),
            &encode("tokens", &*token)?,
            &used_ms(&token.state),
        ],
    )?;
    Ok(())
}

/// Stores a token from an opt-in.
pub(super) fn add(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    psid: &Psid,
    new: &NewToken,
    now_ms: u64,
) -> TxResult<TokenAdded> {
    let exists = tx
        .query_opt(
            "SELECT 1 FROM tokens WHERE page_id = $1 AND token = $2",
            &[&page.as_str(), &new.token],
        )?
        .is_some();
    if exists {
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
    let token = OtnToken {
        page: page.clone(),
        psid: psid.clone(),
        topic: new.topic.clone(),
        token: new.token.clone(),
        created_ms: new.created_ms,
        expires_ms: new.expires_ms,
        state,
    };
    if outcome != TokenAdded::TopicMissing {
        ledger::note_opt_in(tx, page, &new.topic, &token.state, new.created_ms)?;
    }
    tx.execute(
        "INSERT INTO tokens
           (page_id, token, psid, topic_id, shard, created_ms, expires_ms, state, rec, used_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &page.as_str(),
            &token.token,
            &psid.as_str(),
            &token.topic.as_str(),
            &shard_of(page.as_str()),
            &big(token.created_ms),
            &big(token.expires_ms),
            &state_code(&token.state),
            &encode("tokens", &token)?,
            &used_ms(&token.state),
        ],
    )?;
    Ok(outcome)
}

/// The subscriber's tokens of the topic still marked usable, oldest first, locked.
fn usable_rows(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    psid: &Psid,
    topic: &TopicId,
) -> TxResult<Vec<OtnToken>> {
    let rows = tx.query(
        "SELECT rec FROM tokens WHERE page_id = $1 AND psid = $2 AND topic_id = $3 AND state = 0
         ORDER BY created_ms, token FOR UPDATE",
        &[&page.as_str(), &psid.as_str(), &topic.as_str()],
    )?;
    Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
}

/// How many of the subscriber's tokens of a live topic are usable at `now_ms`.
pub(super) fn usable_count(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    psid: &Psid,
    topic: &TopicId,
    now_ms: u64,
) -> TxResult<usize> {
    if live_topic(tx, page, topic)?.is_none() {
        return Ok(0);
    }
    let row = tx.query_one(
        "SELECT count(*) FROM tokens WHERE page_id = $1 AND psid = $2 AND topic_id = $3
         AND state = 0 AND expires_ms > $4",
        &[
            &page.as_str(),
            &psid.as_str(),
            &topic.as_str(),
            &big(now_ms),
        ],
    )?;
    Ok(usize::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// What [`take_oldest`] found.
pub(super) struct Taken {
    /// The token now spent on the message, if one was usable.
    pub(super) token: Option<String>,
    /// Tokens found expired on the way (marked expired).
    pub(super) expired: u64,
}

/// Spends the subscriber's oldest usable token of a live topic on outbox message `outbox`,
/// marking the expired ones met on the way.
pub(super) fn take_oldest(
    tx: &mut Tx<'_, '_>,
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
    for mut token in usable_rows(tx, page, psid, topic)? {
        if token.expires_ms <= now_ms {
            set_state(tx, &mut token, TokenState::Expired { at_ms: now_ms })?;
            taken.expired += 1;
        } else if taken.token.is_none() {
            let state = TokenState::Spent {
                outbox: Some(outbox),
                at_ms: now_ms,
            };
            set_state(tx, &mut token, state)?;
            taken.token = Some(token.token);
        }
    }
    Ok(taken)
}

/// Marks a token spent or invalid; whether it was usable before.
pub(super) fn mark(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    value: &str,
    mark: &TokenMark,
    now_ms: u64,
) -> TxResult<bool> {
    let Some(row) = tx.query_opt(
        "SELECT rec FROM tokens WHERE page_id = $1 AND token = $2 FOR UPDATE",
        &[&page.as_str(), &value],
    )?
    else {
        return Err(StoreError::TokenNotFound { page: page.clone() }.into());
    };
    let mut token = record(&row)?;
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
    match token.state {
        TokenState::Usable => {
            set_state(tx, &mut token, new_state)?;
            Ok(true)
        }
        TokenState::Spent { .. } if matches!(mark, TokenMark::Invalid { .. }) => {
            set_state(tx, &mut token, new_state)?;
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// Invalidates every token of a topic still marked usable; how many.
pub(super) fn invalidate_topic(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    topic: &TopicId,
    reason: &str,
    now_ms: u64,
) -> TxResult<u64> {
    let rows = tx.query(
        "SELECT rec FROM tokens WHERE page_id = $1 AND topic_id = $2 AND state = 0 FOR UPDATE",
        &[&page.as_str(), &topic.as_str()],
    )?;
    let mut n = 0;
    for row in &rows {
        let mut token = record(row)?;
        let state = TokenState::Invalid {
            reason: reason.to_owned(),
            at_ms: now_ms,
        };
        set_state(tx, &mut token, state)?;
        n += 1;
    }
    Ok(n)
}

/// Marks every usable token with `expires_ms <= now_ms` expired.
pub(super) fn expire(tx: &mut Tx<'_, '_>, shards: &[i32], now_ms: u64) -> TxResult<u64> {
    let rows = tx.query(
        "SELECT rec FROM tokens WHERE state = 0 AND expires_ms <= $1 AND shard = ANY($2)
         FOR UPDATE",
        &[&big(now_ms), &shards],
    )?;
    for row in &rows {
        let mut token = record(row)?;
        set_state(tx, &mut token, TokenState::Expired { at_ms: now_ms })?;
    }
    Ok(rows.len() as u64)
}

/// Puts a token spent on `outbox` back (its message was removed before any send attempt):
/// usable again, or expired when its time or topic is gone; whether it is usable.
pub(super) fn restore(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    value: &str,
    outbox: OutboxId,
    now_ms: u64,
) -> TxResult<bool> {
    let Some(row) = tx.query_opt(
        "SELECT rec FROM tokens WHERE page_id = $1 AND token = $2 FOR UPDATE",
        &[&page.as_str(), &value],
    )?
    else {
        return Ok(false);
    };
    let mut token = record(&row)?;
    let TokenState::Spent {
        outbox: Some(paid),
        at_ms: spent_ms,
    } = token.state
    else {
        return Ok(false);
    };
    if paid != outbox {
        return Ok(false);
    }
    ledger::note_send_undone(tx, page, &token.topic.clone(), spent_ms)?;
    let usable = live_topic(tx, page, &token.topic)?.is_some() && now_ms < token.expires_ms;
    let state = if usable {
        TokenState::Usable
    } else {
        TokenState::Expired { at_ms: now_ms }
    };
    set_state(tx, &mut token, state)?;
    Ok(usable)
}

impl PgStore {
    pub(super) fn token_get(&self, page: &PageId, token: &str) -> StoreResult<Option<OtnToken>> {
        self.pool.read("get_token", |c| {
            let row = c.query_opt(
                "SELECT rec FROM tokens WHERE page_id = $1 AND token = $2",
                &[&page.as_str(), &token],
            )?;
            Ok(row.as_ref().map(record).transpose()?)
        })
    }

    pub(super) fn tokens_usable(
        &self,
        page: &PageId,
        psid: &Psid,
        topic: &TopicId,
        now_ms: u64,
    ) -> StoreResult<Vec<OtnToken>> {
        self.pool.read("usable_tokens", |c| {
            if live_topic(c, page, topic)?.is_none() {
                return Ok(Vec::new());
            }
            let rows = c.query(
                "SELECT rec FROM tokens WHERE page_id = $1 AND psid = $2 AND topic_id = $3
                 AND state = 0 AND expires_ms > $4 ORDER BY created_ms, token",
                &[
                    &page.as_str(),
                    &psid.as_str(),
                    &topic.as_str(),
                    &big(now_ms),
                ],
            )?;
            Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
        })
    }

    pub(super) fn tokens_counts(
        &self,
        page: &PageId,
        psid: &Psid,
        now_ms: u64,
    ) -> StoreResult<BTreeMap<TopicId, u64>> {
        self.pool.read("usable_token_counts", |c| {
            let rows = c.query(
                "SELECT k.topic_id, count(*) FROM tokens k
                 JOIN topics t ON t.page_id = k.page_id AND t.topic_id = k.topic_id
                   AND t.deleted_ms IS NULL
                 WHERE k.page_id = $1 AND k.psid = $2 AND k.state = 0 AND k.expires_ms > $3
                 GROUP BY k.topic_id",
                &[&page.as_str(), &psid.as_str(), &big(now_ms)],
            )?;
            Ok(rows
                .iter()
                .map(|r| (TopicId(r.get(0)), unbig(r.get(1))))
                .collect())
        })
    }

    pub(super) fn holders(
        &self,
        page: &PageId,
        topic: &TopicId,
        now_ms: u64,
    ) -> StoreResult<Vec<Psid>> {
        self.pool
            .read("topic_holders", |c| holders_in(c, page, topic, now_ms))
    }
}

/// The subscribers holding a usable token of a live topic at `now_ms`, in psid order.
pub(super) fn holders_in(
    c: &mut Cached<'_, impl GenericClient>,
    page: &PageId,
    topic: &TopicId,
    now_ms: u64,
) -> TxResult<Vec<Psid>> {
    if live_topic(c, page, topic)?.is_none() {
        return Ok(Vec::new());
    }
    let rows = c.query(
        "SELECT DISTINCT octet_length(psid), psid FROM tokens WHERE page_id = $1
         AND topic_id = $2 AND state = 0 AND expires_ms > $3 ORDER BY 1, 2",
        &[&page.as_str(), &topic.as_str(), &big(now_ms)],
    )?;
    Ok(rows.iter().map(|r| Psid(r.get(1))).collect())
}

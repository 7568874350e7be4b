//! Shard leases on PostgreSQL (SCALE-OUT.md §3.1): the lease manager (heartbeat, renewal,
//! fair-share acquisition with `FOR UPDATE SKIP LOCKED`, graceful release of the surplus) on a
//! dedicated connection and thread, and the fence every owner write transaction runs first.

use super::db::{Tx, TxResult, db_error};
use super::tls::Connector;
use crate::error::StoreError;
use crate::ownership::{Lease, Ownership, SHARD_COUNT};
use crate::store::StoreResult;
use postgres::Client;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a lease lasts without renewal when nothing is configured (`BOTFLOW_SHARD_LEASE_MS`).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// Checks, first thing in an owner write transaction, that this node still holds the leases of
/// `shards` at the epochs it knows (`FOR SHARE`: a takeover's `UPDATE` waits for this
/// transaction, and once it committed this check fails). A miss fails the transaction with
/// [`StoreError::OwnershipLost`].
pub(super) fn fence(tx: &mut Tx<'_, '_>, ownership: &Ownership, shards: &[i32]) -> TxResult<()> {
    let mut wanted: Vec<i32> = shards.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut epochs = Vec::with_capacity(wanted.len());
    for &shard in &wanted {
        let shard_u = u32::try_from(shard).unwrap_or(u32::MAX);
        match ownership.lease(shard_u) {
            Some(lease) => epochs.push(lease.epoch),
            None => {
                return Err(StoreError::OwnershipLost {
                    node: ownership.node_id().to_owned(),
                    shard: shard_u,
                    epoch: 0,
                }
                .into());
            }
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let rows = tx.query(
        "SELECT shard, epoch FROM shard_leases WHERE shard = ANY($1) AND owner = $2
         ORDER BY shard FOR SHARE",
        &[&wanted, &ownership.node_id()],
    )?;
    let held: BTreeMap<i32, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for (shard, epoch) in wanted.iter().zip(epochs) {
        if held.get(shard).copied() != i64::try_from(epoch).ok() {
            return Err(StoreError::OwnershipLost {
                node: ownership.node_id().to_owned(),
                shard: u32::try_from(*shard).unwrap_or(u32::MAX),
                epoch,
            }
            .into());
        }
    }
    Ok(())
}

/// [`fence`] on the shards of outbox messages (an outcome names only the message).
pub(super) fn fence_outbox(
    tx: &mut Tx<'_, '_>,
    ownership: &Ownership,
    ids: &[crate::ids::OutboxId],
) -> TxResult<()> {
    let ids: Vec<i64> = ids.iter().map(|id| super::db::big(id.0)).collect();
    let rows = tx.query(
        "SELECT DISTINCT shard FROM outbox WHERE id = ANY($1)",
        &[&ids],
    )?;
    let shards: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    fence(tx, ownership, &shards)
}

/// Runs the leases of one node: a thread with its own connection that heartbeats, renews,
/// acquires a fair share and releases the surplus every TTL/3. Dropping it releases every lease
/// (a graceful stop) and removes the node.
pub(super) struct LeaseManager {
    ownership: Arc<Ownership>,
    signal: Arc<(Mutex<Signal>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// What the lease thread is asked to do.
#[derive(Debug, Default)]
struct Signal {
    stop: bool,
    /// Rounds asked for by [`LeaseManager::round_now`], and rounds run.
    asked: u64,
    done: u64,
    /// The last round's error, as text.
    last_error: Option<String>,
    /// The thread ended after releasing the leases (or failing to).
    left: bool,
}

/// The lease manager's state on its thread.
struct Leaser {
    connector: Connector,
    client: Option<Client>,
    ownership: Arc<Ownership>,
    ttl: Duration,
    /// Shards given up locally, released in the database at the next round (in-flight steps
    /// and sends of them have finished or been refused by then).
    releasing: Vec<(i32, i64)>,
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

impl Leaser {
    fn client(&mut self) -> StoreResult<&mut Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let client = self.connector.connect("shard leases")?;
            self.client = Some(client);
        }
        self.client.as_mut().ok_or_else(|| StoreError::Postgres {
            what: "shard leases".to_owned(),
            detail: "no connection".to_owned(),
            transient: true,
        })
    }

    /// One round: heartbeat, release what was given up, renew, acquire or give up the
    /// difference to the fair share.
    fn round(&mut self) -> StoreResult<()> {
        let node = self.ownership.node_id().to_owned();
        let ttl = ttl_ms(self.ttl);
        let margin = self.ttl / 5;
        let valid_until = Some(Instant::now() + self.ttl.saturating_sub(margin));
        let held = self.ownership.held();
        let releasing = std::mem::take(&mut self.releasing);
        let sent = Instant::now();
        let valid_until = valid_until.map(|_| sent + self.ttl.saturating_sub(margin));
        let err = |what: &'static str| move |e: postgres::Error| db_error(what, &e);
        let client = self.client()?;
        client
            .execute(
                "INSERT INTO nodes (node_id, heartbeat_at, started_at) VALUES ($1, now(), now())
                 ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now()",
                &[&node],
            )
            .map_err(err("shard leases: heartbeat"))?;
        // nodes gone for a day (killed with an id never used again) are forgotten
        client
            .execute(
                "DELETE FROM nodes WHERE heartbeat_at < now() - interval '1 day'",
                &[],
            )
            .map_err(err("shard leases: forgetting gone nodes"))?;
        if !releasing.is_empty() {
            let (shards, epochs): (Vec<i32>, Vec<i64>) = releasing.into_iter().unzip();
            client
                .execute(
                    "UPDATE shard_leases s SET owner = NULL, lease_until = '-infinity',
                       released_at = now(), released_by = $1
                     FROM unnest($2::int[], $3::bigint[]) AS r(shard, epoch)
                     WHERE s.shard = r.shard AND s.epoch = r.epoch AND s.owner = $1",
                    &[&node, &shards, &epochs],
                )
                .map_err(err("shard leases: releasing"))?;
        }
        let (shards, epochs): (Vec<i32>, Vec<i64>) = held
            .iter()
            .map(|(s, l)| {
                (
                    i32::try_from(*s).unwrap_or(i32::MAX),
                    i64::try_from(l.epoch).unwrap_or(i64::MAX),
                )
            })
            .unzip();
        let renewed = client
            .query(
                "UPDATE shard_leases s SET lease_until = now() + $4::float8 * interval '1 millisecond'
                 FROM unnest($2::int[], $3::bigint[]) AS h(shard, epoch)
                 WHERE s.shard = h.shard AND s.epoch = h.epoch AND s.owner = $1
                 RETURNING s.shard",
                &[&node, &shards, &epochs, &(ttl as f64)],
            )
            .map_err(err("shard leases: renewing"))?;
        let mut now_held: BTreeMap<u32, Lease> = BTreeMap::new();
        for row in &renewed {
            let shard = u32::try_from(row.get::<_, i32>(0)).unwrap_or(u32::MAX);
            if let Some(lease) = held.get(&shard) {
                now_held.insert(
                    shard,
                    Lease {
                        valid_until,
                        ..*lease
                    },
                );
            }
        }
        let live: i64 = client
            .query_one(
                "SELECT count(*) FROM nodes
                 WHERE heartbeat_at > now() - $1::float8 * interval '1 millisecond'",
                &[&(ttl as f64)],
            )
            .map_err(err("shard leases: counting live nodes"))?
            .get(0);
        let live = u32::try_from(live.max(1)).unwrap_or(1);
        let fair = SHARD_COUNT.div_ceil(live) as usize;
        if now_held.len() < fair {
            let want = i64::try_from(fair - now_held.len()).unwrap_or(0);
            let mine: Vec<i32> = now_held
                .keys()
                .map(|s| i32::try_from(*s).unwrap_or(i32::MAX))
                .collect();
            let acquired = client
                .query(
                    "WITH c AS (
                       SELECT shard, CASE WHEN released_by IS DISTINCT FROM $1 THEN released_at END
                         AS released_at FROM shard_leases
                       WHERE (owner IS NULL OR lease_until < now() OR owner = $1)
                         AND NOT (shard = ANY($2))
                       ORDER BY shard LIMIT $3 FOR UPDATE SKIP LOCKED)
                     UPDATE shard_leases s SET owner = $1, epoch = s.epoch + 1,
                       lease_until = now() + $4::float8 * interval '1 millisecond', released_at = NULL
                     FROM c WHERE s.shard = c.shard
                     RETURNING s.shard, s.epoch, GREATEST(0, ceil(extract(epoch FROM
                       (c.released_at + interval '1 second' - now())) * 1000))::bigint",
                    &[&node, &mine, &want, &(ttl as f64)],
                )
                .map_err(err("shard leases: acquiring"))?;
            for row in &acquired {
                let shard = u32::try_from(row.get::<_, i32>(0)).unwrap_or(u32::MAX);
                let epoch = u64::try_from(row.get::<_, i64>(1)).unwrap_or(0);
                let wait_ms = row
                    .get::<_, Option<i64>>(2)
                    .map_or(0, |w| u64::try_from(w).unwrap_or(0));
                now_held.insert(
                    shard,
                    Lease {
                        epoch,
                        valid_until,
                        dispatch_after: (wait_ms > 0)
                            .then(|| sent + Duration::from_millis(wait_ms)),
                    },
                );
            }
        } else if now_held.len() > fair {
            // give up the surplus (highest shards first): stop working on them now, release
            // them in the database at the next round
            let surplus = now_held.len() - fair;
            let given: Vec<u32> = now_held.keys().rev().take(surplus).copied().collect();
            for shard in given {
                if let Some(lease) = now_held.remove(&shard) {
                    self.releasing.push((
                        i32::try_from(shard).unwrap_or(i32::MAX),
                        i64::try_from(lease.epoch).unwrap_or(i64::MAX),
                    ));
                }
            }
        }
        self.ownership.set(now_held);
        Ok(())
    }

    /// The graceful stop: every lease released, the node removed.
    fn release_all(&mut self) -> StoreResult<()> {
        let node = self.ownership.node_id().to_owned();
        self.ownership.set(BTreeMap::new());
        let client = self.client()?;
        client
            .execute(
                "UPDATE shard_leases SET owner = NULL, lease_until = '-infinity',
                   released_at = now(), released_by = $1 WHERE owner = $1",
                &[&node],
            )
            .map_err(|e| db_error("shard leases: releasing all", &e))?;
        client
            .execute("DELETE FROM nodes WHERE node_id = $1", &[&node])
            .map_err(|e| db_error("shard leases: leaving", &e))?;
        Ok(())
    }
}

impl LeaseManager {
    /// Checks the shard count the database was created with, runs a first round (so the node
    /// holds its share when this returns) and starts the renewal thread.
    pub(super) fn start(connector: Connector, node_id: &str, ttl: Duration) -> StoreResult<Self> {
        let ownership = Arc::new(Ownership::new(node_id));
        let mut leaser = Leaser {
            connector,
            client: None,
            ownership: Arc::clone(&ownership),
            ttl,
            releasing: Vec::new(),
        };
        // the driver blocks on a runtime of its own: never on a Tokio worker
        let leaser = super::db::off_runtime("shard leases", move || {
            let count: i32 = leaser
                .client()?
                .query_one(
                    "SELECT (value #>> '{}')::int FROM meta WHERE key = 'shard_count'",
                    &[],
                )
                .map_err(|e| db_error("shard leases: reading the shard count", &e))?
                .get(0);
            if u32::try_from(count).ok() != Some(SHARD_COUNT) {
                return Err(StoreError::Postgres {
                    what: "shard leases".to_owned(),
                    detail: format!(
                        "the database has {count} shards, this release uses {SHARD_COUNT}"
                    ),
                    transient: false,
                });
            }
            leaser.round()?;
            Ok(leaser)
        })?;
        let signal = Arc::new((Mutex::new(Signal::default()), Condvar::new()));
        let thread = {
            let signal = Arc::clone(&signal);
            std::thread::Builder::new()
                .name("botflow-leases".into())
                .spawn(move || run(leaser, &signal))
                .map_err(|e| StoreError::Postgres {
                    what: "shard leases".to_owned(),
                    detail: format!("cannot start the lease thread: {e}"),
                    transient: false,
                })?
        };
        Ok(Self {
            ownership,
            signal,
            thread: Some(thread),
        })
    }

    /// Runs a lease round now (heartbeat, renewal, acquisition, release) and waits for it.
    pub(super) fn round_now(&self) -> StoreResult<()> {
        let (lock, cvar) = &*self.signal;
        let mut signal = lock.lock().unwrap_or_else(PoisonError::into_inner);
        signal.asked += 1;
        let asked = signal.asked;
        cvar.notify_all();
        let (signal, timeout) = cvar
            .wait_timeout_while(signal, Duration::from_secs(30), |s| {
                s.done < asked && !s.stop
            })
            .unwrap_or_else(PoisonError::into_inner);
        match (&signal.last_error, timeout.timed_out()) {
            (_, true) => Err(StoreError::Postgres {
                what: "shard leases: a round".to_owned(),
                detail: "no round finished within 30 s".to_owned(),
                transient: true,
            }),
            (Some(error), false) => Err(StoreError::Postgres {
                what: "shard leases: a round".to_owned(),
                detail: error.clone(),
                transient: true,
            }),
            (None, false) => Ok(()),
        }
    }

    /// Stops renewing and releases every lease (a graceful stop: other nodes take the shards
    /// at their next round instead of after the TTL); waits (at most 10 s) until done.
    pub(super) fn leave(&self) {
        let (lock, cvar) = &*self.signal;
        let mut signal = lock.lock().unwrap_or_else(PoisonError::into_inner);
        signal.stop = true;
        cvar.notify_all();
        let _ = cvar
            .wait_timeout_while(signal, Duration::from_secs(10), |s| !s.left)
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// The leases this node holds.
    pub(super) fn ownership(&self) -> &Arc<Ownership> {
        &self.ownership
    }
}

fn run(mut leaser: Leaser, signal: &(Mutex<Signal>, Condvar)) {
    let period = leaser.ttl / 3;
    let (lock, cvar) = signal;
    loop {
        let asked = {
            let state = lock.lock().unwrap_or_else(PoisonError::into_inner);
            let done = state.done;
            let (state, _) = cvar
                .wait_timeout_while(state, period, |s| !s.stop && s.asked <= done)
                .unwrap_or_else(PoisonError::into_inner);
            if state.stop {
                break;
            }
            state.asked
        };
        let result = leaser.round();
        if let Err(error) = &result {
            tracing::warn!(%error, "shard lease round failed; sends stop when the leases may have expired");
        }
        let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        state.done = state.done.max(asked);
        state.last_error = result.err().map(|e| e.to_string());
        cvar.notify_all();
    }
    if let Err(error) = leaser.release_all() {
        tracing::warn!(%error, "cannot release the shard leases; other nodes take them over after the lease TTL");
    }
    lock.lock().unwrap_or_else(PoisonError::into_inner).left = true;
    cvar.notify_all();
}

impl Drop for LeaseManager {
    fn drop(&mut self) {
        self.signal
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stop = true;
        self.signal.1.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

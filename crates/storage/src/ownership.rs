//! Which Pages this node may work on: the shard leases it holds (several nodes on one
//! PostgreSQL database, SCALE-OUT.md §3.1), the stable shard hash, and the self-fence the
//! dispatcher asks before each Send API request.
//!
//! Every Page hashes to one of [`SHARD_COUNT`] shards with [`shard_of`] (FNV-1a 64: a stable
//! definition, stored in every per-Page row and shared between nodes). A node processes the
//! journal, fires timers and sends messages only for the shards it holds a lease on; each lease
//! has an epoch (a fencing number) that grows at every change of owner. The sled store is one
//! node owning every shard forever ([`Ownership::everything`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::Instant;
use tokio::sync::watch;

/// Virtual shards a Page hashes to (stored in the database, never changed).
pub const SHARD_COUNT: u32 = 256;

/// The shard of a Page: FNV-1a 64 of its id modulo [`SHARD_COUNT`]. Stable across releases and
/// platforms (it is stored and shared between nodes); `std`'s `DefaultHasher` is not.
pub fn shard_of(page: &str) -> u32 {
    let hash = fnv1a(page.as_bytes());
    u32::try_from(hash % u64::from(SHARD_COUNT)).unwrap_or(0)
}

/// FNV-1a 64 of `bytes` (the published definition: offset basis 0xcbf29ce484222325, prime
/// 0x100000001b3).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_parts(&[bytes])
}

/// FNV-1a 64 of the concatenation of `parts`, without building it.
pub fn fnv1a_parts(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// One lease this node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The fencing number: grows at every change of owner of the shard.
    pub epoch: u64,
    /// Until when this node may send for the shard: when the last successful renewal was sent,
    /// plus the lease TTL, minus a safety margin. `None`: forever (a single node).
    pub valid_until: Option<Instant>,
    /// Not before: after a graceful handover, the previous owner's sends of the last second
    /// still count against the Page's pace (the new owner waits until `released_at + 1 s`).
    pub dispatch_after: Option<Instant>,
}

/// The leases a node holds, shared by the store (fence, owned-shard filters) and the runtime
/// (what to load, what to drop, whether to send).
#[derive(Debug)]
pub struct Ownership {
    node_id: String,
    /// `true` for a store that is the only node (sled): every shard, forever.
    everything: bool,
    leases: RwLock<BTreeMap<u32, Lease>>,
    /// Shards acquired or lost since the start.
    changes: AtomicU64,
    /// Bumped at every change of the owned set (not at renewals).
    generation: watch::Sender<u64>,
}

static EVERYTHING: LazyLock<Arc<Ownership>> = LazyLock::new(|| {
    Arc::new(Ownership {
        node_id: "single".to_owned(),
        everything: true,
        leases: RwLock::new(BTreeMap::new()),
        changes: AtomicU64::new(0),
        generation: watch::channel(0).0,
    })
});

impl Ownership {
    /// The ownership of a single node: every shard, forever, at epoch 0 (the sled store).
    pub fn everything() -> Arc<Self> {
        Arc::clone(&EVERYTHING)
    }

    /// A node holding no lease yet.
    pub fn new(node_id: &str) -> Self {
        Self {
            node_id: node_id.to_owned(),
            everything: false,
            leases: RwLock::new(BTreeMap::new()),
            changes: AtomicU64::new(0),
            generation: watch::channel(0).0,
        }
    }

    /// This node's id (`BOTFLOW_NODE_ID`).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Whether other nodes may share the database (leases change over time): work of other
    /// nodes' webhooks is found by polling the journal.
    pub fn is_shared(&self) -> bool {
        !self.everything
    }

    /// The lease on `shard`, if this node holds one.
    pub fn lease(&self, shard: u32) -> Option<Lease> {
        if self.everything {
            return Some(Lease {
                epoch: 0,
                valid_until: None,
                dispatch_after: None,
            });
        }
        self.read().get(&shard).copied()
    }

    /// [`crate::StoreError::OwnershipLost`] for `shard` when this node holds no lease on it
    /// (a write about it must fail alone); `None` while it does.
    pub fn not_held(&self, shard: u32) -> Option<crate::StoreError> {
        self.lease(shard)
            .is_none()
            .then(|| crate::StoreError::OwnershipLost {
                node: self.node_id().to_owned(),
                shard,
                epoch: 0,
            })
    }

    /// Whether this node holds the lease of the Page's shard.
    pub fn owns(&self, page: &str) -> bool {
        self.lease(shard_of(page)).is_some()
    }

    /// The self-fence: whether this node may send a Send API request for `page` at `now` (it
    /// holds the lease, the lease cannot have expired yet, and a graceful handover's pause is
    /// over).
    pub fn may_send(&self, page: &str, now: Instant) -> bool {
        self.lease(shard_of(page)).is_some_and(|lease| {
            lease.valid_until.is_none_or(|until| now < until)
                && lease.dispatch_after.is_none_or(|after| now >= after)
        })
    }

    /// The shards held now with their leases, by shard (empty for a single node, which holds
    /// them all: see [`Ownership::is_shared`]).
    pub fn held(&self) -> BTreeMap<u32, Lease> {
        self.read().clone()
    }

    /// How many shards this node holds.
    pub fn held_count(&self) -> usize {
        if self.everything {
            return SHARD_COUNT as usize;
        }
        self.read().len()
    }

    /// Shards acquired plus shards lost since the start.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// Notified (a new generation number) whenever the owned set changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, Lease>> {
        self.leases.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the held leases (the lease manager's view after a renewal round); counts the
    /// shards gained and lost and notifies subscribers when the set changed.
    pub fn set(&self, leases: BTreeMap<u32, Lease>) {
        let changed = {
            let mut held = self.leases.write().unwrap_or_else(PoisonError::into_inner);
            let gained = leases
                .iter()
                .filter(|(shard, lease)| held.get(shard).is_none_or(|old| old.epoch != lease.epoch))
                .count();
            let lost = held
                .iter()
                .filter(|(shard, old)| leases.get(shard).is_none_or(|new| new.epoch != old.epoch))
                .count();
            *held = leases;
            gained + lost
        };
        if changed > 0 {
            self.changes.fetch_add(changed as u64, Ordering::Relaxed);
            self.generation.send_modify(|g| *g += 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_shard_hash_is_fnv1a_and_stable() {
        // FNV-1a 64 of "a" and "foobar" (the published test vectors).
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(shard_of("a"), (0xaf63_dc4c_8601_ec8c_u64 % 256) as u32);
        // Hashing in parts is hashing the concatenation.
        assert_eq!(fnv1a_parts(&[b"foo", b"", b"bar"]), fnv1a(b"foobar"));
    }

    #[test]
    fn a_single_node_owns_everything_and_a_cluster_node_only_its_valid_leases() {
        let single = Ownership::everything();
        assert!(!single.is_shared());
        assert!(single.may_send("any page", Instant::now()));
        assert_eq!(single.held_count(), SHARD_COUNT as usize);

        let node = Ownership::new("a");
        let mut changes = node.subscribe();
        assert!(!node.owns("p1"));
        let now = Instant::now();
        let shard = shard_of("p1");
        node.set(BTreeMap::from([(
            shard,
            Lease {
                epoch: 3,
                valid_until: Some(now + Duration::from_secs(1)),
                dispatch_after: Some(now + Duration::from_millis(100)),
            },
        )]));
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert!(node.owns("p1"));
        assert!(!node.may_send("p1", now), "the handover pause is not over");
        assert!(node.may_send("p1", now + Duration::from_millis(200)));
        assert!(
            !node.may_send("p1", now + Duration::from_secs(2)),
            "the lease may have expired: no send"
        );
        node.set(BTreeMap::new());
        assert!(changes.has_changed().unwrap());
        assert_eq!(node.changes(), 2);
        assert!(!node.owns("p1"));
    }
}

//! The writes committed to the log but not yet checkpointed into sled, held in memory per
//! tree: an *active* layer that commits write into, and while a checkpoint runs, the *frozen*
//! layer it is copying into sled. Reads look at the active layer, then the frozen one, then
//! sled; a key's entry is its latest value or a tombstone.

use super::trees::T;
use sled::IVec;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A pending value: `Some(bytes)` written, `None` removed.
pub(super) type Pending = Option<IVec>;

/// One transaction's writes (or a layer's), per tree in `T::ALL` order.
#[derive(Debug, Clone)]
pub(super) struct Writes {
    trees: Vec<BTreeMap<Vec<u8>, Pending>>,
}

impl Default for Writes {
    fn default() -> Self {
        Self {
            trees: vec![BTreeMap::new(); T::ALL.len()],
        }
    }
}

impl Writes {
    /// The pending value of `key`, if this set wrote it.
    pub(super) fn get(&self, t: T, key: &[u8]) -> Option<&Pending> {
        self.trees[t as usize].get(key)
    }

    /// Records a write (`None`: a removal), replacing an earlier one of the same key.
    pub(super) fn put(&mut self, t: T, key: Vec<u8>, value: Pending) {
        self.trees[t as usize].insert(key, value);
    }

    /// Number of keys written.
    pub(super) fn len(&self) -> usize {
        self.trees.iter().map(BTreeMap::len).sum()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.trees.iter().all(BTreeMap::is_empty)
    }

    /// Every write, tree by tree, in key order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (T, &[u8], &Pending)> {
        T::ALL.iter().flat_map(|&t| {
            self.trees[t as usize]
                .iter()
                .map(move |(k, v)| (t, k.as_slice(), v))
        })
    }

    /// Every write, tree by tree, in key order, by value.
    pub(super) fn into_iter(self) -> impl Iterator<Item = (T, Vec<u8>, Pending)> {
        T::ALL
            .iter()
            .zip(self.trees)
            .flat_map(|(&t, tree)| tree.into_iter().map(move |(k, v)| (t, k, v)))
    }
}

/// A layer's entry: the pending value, and whether the key was absent from everything below
/// the layer when the layer first wrote it. Removing such a key drops the entry instead of
/// leaving a tombstone (an outbox index entry made and removed between two checkpoints never
/// reaches sled, and scans do not step over it).
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) value: Pending,
    fresh: bool,
}

/// The writes of a layer, per tree in `T::ALL` order.
#[derive(Debug)]
pub(super) struct Layer {
    trees: Vec<BTreeMap<Vec<u8>, Slot>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self {
            trees: vec![BTreeMap::new(); T::ALL.len()],
        }
    }
}

impl Layer {
    fn get(&self, t: T, key: &[u8]) -> Option<&Pending> {
        self.trees[t as usize].get(key).map(|slot| &slot.value)
    }

    /// The entries of one tree, in key order.
    pub(super) fn tree(&self, t: T) -> &BTreeMap<Vec<u8>, Slot> {
        &self.trees[t as usize]
    }

    /// Number of keys held.
    pub(super) fn len(&self) -> usize {
        self.trees.iter().map(BTreeMap::len).sum()
    }

    fn is_empty(&self) -> bool {
        self.trees.iter().all(BTreeMap::is_empty)
    }
}

#[derive(Debug, Default)]
struct Layers {
    active: Layer,
    /// The highest LSN whose writes are in `active` (or older layers).
    active_lsn: u64,
    frozen: Option<Arc<Layer>>,
    /// The highest LSN whose writes are in `frozen`.
    frozen_lsn: u64,
}

/// The in-memory layers over sled; see the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct Overlay {
    layers: RwLock<Layers>,
}

/// A layer handed to a checkpoint: its writes and the LSN they reach.
pub(super) struct Frozen {
    pub(super) writes: Arc<Layer>,
    pub(super) lsn: u64,
    /// Frozen by this call (not a layer an earlier, failed checkpoint left).
    pub(super) fresh: bool,
}

impl Overlay {
    fn read(&self) -> RwLockReadGuard<'_, Layers> {
        self.layers.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Layers> {
        self.layers.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The pending value of `key`, if a layer holds one.
    pub(super) fn get(&self, t: T, key: &[u8]) -> Option<Pending> {
        let layers = self.read();
        if let Some(value) = layers.active.get(t, key) {
            return Some(value.clone());
        }
        layers
            .frozen
            .as_ref()
            .and_then(|frozen| frozen.get(t, key).cloned())
    }

    /// Up to `limit` pending entries of tree `t` from `start` (exclusive or inclusive) up to
    /// `end`, in key order, the active layer's over the frozen one's.
    pub(super) fn chunk(
        &self,
        t: T,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Pending)> {
        let layers = self.read();
        let range = (start, end);
        let active = layers.active.tree(t).range::<[u8], _>(range);
        let mut out: Vec<(Vec<u8>, Pending)> = Vec::new();
        match &layers.frozen {
            None => {
                out.extend(
                    active
                        .take(limit)
                        .map(|(k, slot)| (k.clone(), slot.value.clone())),
                );
            }
            Some(frozen) => {
                let mut active = active.peekable();
                let mut frozen = frozen.tree(t).range::<[u8], _>(range).peekable();
                while out.len() < limit {
                    let next = match (active.peek(), frozen.peek()) {
                        (None, None) => break,
                        (Some(_), None) => active.next(),
                        (None, Some(_)) => frozen.next(),
                        (Some((a, _)), Some((f, _))) => match a.cmp(f) {
                            std::cmp::Ordering::Less => active.next(),
                            std::cmp::Ordering::Greater => frozen.next(),
                            std::cmp::Ordering::Equal => {
                                frozen.next();
                                active.next()
                            }
                        },
                    };
                    if let Some((k, slot)) = next {
                        out.push((k.clone(), slot.value.clone()));
                    }
                }
            }
        }
        out
    }

    /// Applies a committed transaction's writes, logged at `lsn`; `in_sled` says whether sled
    /// holds a key. The caller holds the commit lock: no other commit runs, and a checkpoint can
    /// only move frozen entries into sled, so what is found absent below stays absent.
    pub(super) fn apply(&self, writes: Writes, lsn: u64, in_sled: impl Fn(T, &[u8]) -> bool) {
        let absent: Vec<bool> = {
            let layers = self.read();
            writes
                .iter()
                .map(|(t, key, value)| {
                    value.is_some()
                        && layers.active.get(t, key).is_none()
                        && layers
                            .frozen
                            .as_ref()
                            .is_none_or(|frozen| frozen.get(t, key).is_none())
                        && !in_sled(t, key)
                })
                .collect()
        };
        let mut layers = self.write();
        for ((t, key, value), fresh) in writes.into_iter().zip(absent) {
            let tree = &mut layers.active.trees[t as usize];
            match tree.get_mut(&key) {
                Some(slot) if slot.fresh && value.is_none() => {
                    tree.remove(&key);
                }
                Some(slot) => slot.value = value,
                None => {
                    tree.insert(key, Slot { value, fresh });
                }
            }
        }
        layers.active_lsn = layers.active_lsn.max(lsn);
    }

    /// Number of keys in the active layer.
    pub(super) fn active_len(&self) -> usize {
        self.read().active.len()
    }

    /// The layer a checkpoint should copy: the frozen one an earlier checkpoint failed to
    /// finish, else the active layer, frozen now (`None` when both are empty). The caller holds
    /// the commit lock, so no commit is half applied.
    pub(super) fn freeze(&self) -> Option<Frozen> {
        let mut layers = self.write();
        if let Some(writes) = &layers.frozen {
            return Some(Frozen {
                writes: Arc::clone(writes),
                lsn: layers.frozen_lsn,
                fresh: false,
            });
        }
        if layers.active.is_empty() {
            return None;
        }
        let writes = Arc::new(std::mem::take(&mut layers.active));
        layers.frozen = Some(Arc::clone(&writes));
        layers.frozen_lsn = layers.active_lsn;
        Some(Frozen {
            writes,
            lsn: layers.active_lsn,
            fresh: true,
        })
    }

    /// Drops the frozen layer once sled holds its writes.
    pub(super) fn release_frozen(&self) {
        self.write().frozen = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ivec(s: &str) -> Pending {
        Some(IVec::from(s.as_bytes()))
    }

    #[test]
    fn the_active_layer_wins_over_the_frozen_one_and_tombstones_hide_keys() {
        let overlay = Overlay::default();
        let mut first = Writes::default();
        first.put(T::Sessions, b"a".to_vec(), ivec("1"));
        first.put(T::Sessions, b"b".to_vec(), ivec("1"));
        first.put(T::Sessions, b"c".to_vec(), ivec("1"));
        overlay.apply(first, 5, |_, _| false);
        let frozen = overlay.freeze().unwrap();
        assert_eq!(frozen.lsn, 5);
        assert!(frozen.fresh);
        let again = overlay.freeze().unwrap();
        assert!(
            !again.fresh,
            "one frozen layer at a time, until it is released"
        );
        assert_eq!(again.lsn, 5);
        let mut second = Writes::default();
        second.put(T::Sessions, b"b".to_vec(), None);
        second.put(T::Sessions, b"d".to_vec(), ivec("2"));
        overlay.apply(second, 6, |_, _| false);
        assert_eq!(overlay.get(T::Sessions, b"a"), Some(ivec("1")));
        assert_eq!(overlay.get(T::Sessions, b"b"), Some(None));
        assert_eq!(overlay.get(T::Sessions, b"z"), None);
        assert_eq!(overlay.get(T::Outbox, b"a"), None);
        let all = overlay.chunk(T::Sessions, Bound::Unbounded, Bound::Unbounded, 10);
        let keys: Vec<(&[u8], bool)> = all
            .iter()
            .map(|(k, v)| (k.as_slice(), v.is_some()))
            .collect();
        assert_eq!(
            keys,
            vec![
                (&b"a"[..], true),
                (&b"b"[..], false),
                (&b"c"[..], true),
                (&b"d"[..], true)
            ]
        );
        let after_b = overlay.chunk(T::Sessions, Bound::Excluded(b"b"), Bound::Unbounded, 1);
        assert_eq!(after_b, vec![(b"c".to_vec(), ivec("1"))]);
        overlay.release_frozen();
        assert_eq!(overlay.get(T::Sessions, b"a"), None);
        assert_eq!(overlay.active_len(), 2);
    }

    #[test]
    fn a_key_made_and_removed_above_an_empty_base_leaves_no_tombstone() {
        let overlay = Overlay::default();
        let in_sled = |_: T, key: &[u8]| key == b"old";
        let mut made = Writes::default();
        made.put(T::OutboxDue, b"new".to_vec(), ivec("1"));
        made.put(T::OutboxDue, b"old".to_vec(), ivec("1"));
        overlay.apply(made, 1, in_sled);
        let mut removed = Writes::default();
        removed.put(T::OutboxDue, b"new".to_vec(), None);
        removed.put(T::OutboxDue, b"old".to_vec(), None);
        removed.put(T::OutboxDue, b"gone".to_vec(), None);
        overlay.apply(removed, 2, in_sled);
        assert_eq!(overlay.get(T::OutboxDue, b"new"), None, "no entry at all");
        assert_eq!(
            overlay.get(T::OutboxDue, b"old"),
            Some(None),
            "sled's key is hidden"
        );
        assert_eq!(overlay.get(T::OutboxDue, b"gone"), Some(None));
        // Above a frozen layer that holds the key, a removal must hide the frozen value.
        let mut again = Writes::default();
        again.put(T::Outbox, b"k".to_vec(), ivec("1"));
        overlay.apply(again, 3, in_sled);
        overlay.freeze().unwrap();
        let mut put = Writes::default();
        put.put(T::Outbox, b"k".to_vec(), ivec("2"));
        overlay.apply(put, 4, in_sled);
        let mut del = Writes::default();
        del.put(T::Outbox, b"k".to_vec(), None);
        overlay.apply(del, 5, in_sled);
        assert_eq!(overlay.get(T::Outbox, b"k"), Some(None));
    }
}

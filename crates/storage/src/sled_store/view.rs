//! The store's data as readers see it: sled's trees under the [`Overlay`] of logged writes not
//! yet checkpointed. Point reads and ordered scans merge the two (the overlay wins; its
//! tombstones hide sled's keys).
//!
//! A scan holds the scan lock for its whole run and a checkpoint takes it only to drop the layer
//! it copied, so an entry that was in memory when the scan began stays visible to it until it
//! ends: a scan never misses a key that moved from memory into sled under it.

use super::overlay::{Overlay, Pending};
use super::trees::T;
use crate::store::StoreResult;
use sled::IVec;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

/// sled's trees and the overlay over them.
pub(super) struct Base {
    pub(super) overlay: Overlay,
    /// Held (shared) by every scan; a checkpoint takes it to release a frozen layer.
    scan_lock: RwLock<()>,
    pub(super) db: sled::Db,
    trees: Vec<sled::Tree>,
}

impl Base {
    pub(super) fn new(db: sled::Db, trees: Vec<sled::Tree>) -> Self {
        Self {
            overlay: Overlay::default(),
            scan_lock: RwLock::new(()),
            db,
            trees,
        }
    }

    /// sled's tree for `t` alone (checkpoints and recovery; readers use the merged view).
    pub(super) fn sled_tree(&self, t: T) -> &sled::Tree {
        // `trees` holds one tree per `T::ALL` entry, in order, so the index is always valid.
        &self.trees[t as usize]
    }

    /// Drops the frozen layer once no scan that may need it is running.
    pub(super) fn release_frozen(&self) {
        let _no_scan = self
            .scan_lock
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        self.overlay.release_frozen();
    }

    /// The current value of `key`.
    pub(super) fn get(&self, t: T, key: &[u8]) -> StoreResult<Option<IVec>> {
        match self.overlay.get(t, key) {
            Some(pending) => Ok(pending),
            None => Ok(self.sled_tree(t).get(key)?),
        }
    }

    /// Whether `key` is present.
    pub(super) fn contains_key(&self, t: T, key: &[u8]) -> StoreResult<bool> {
        Ok(self.get(t, key)?.is_some())
    }

    /// Every entry of `t` from `start` to `end`, in key order.
    pub(super) fn range(&self, t: T, start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> Scan<'_> {
        let guard = self
            .scan_lock
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let sled = self
            .sled_tree(t)
            .range::<Vec<u8>, _>((start.clone(), end.clone()))
            .peekable();
        Scan {
            base: self,
            t,
            _guard: guard,
            sled,
            pending: std::collections::VecDeque::new(),
            next_start: start,
            end,
            pending_done: false,
        }
    }

    /// Every entry of `t` whose key starts with `prefix`, in key order.
    pub(super) fn scan_prefix(&self, t: T, prefix: &[u8]) -> Scan<'_> {
        let end = match prefix_end(prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        self.range(t, Bound::Included(prefix.to_vec()), end)
    }

    /// Every entry of `t`, in key order.
    pub(super) fn iter(&self, t: T) -> Scan<'_> {
        self.range(t, Bound::Unbounded, Bound::Unbounded)
    }

    /// One tree of the merged view.
    pub(super) fn tree(&self, t: T) -> TreeView<'_> {
        TreeView { base: self, t }
    }
}

/// One tree of the merged view, with the read methods of a `sled::Tree`.
#[derive(Clone, Copy)]
pub(super) struct TreeView<'a> {
    base: &'a Base,
    t: T,
}

impl<'a> TreeView<'a> {
    /// Whether `key` is present.
    pub(super) fn contains_key(&self, key: impl AsRef<[u8]>) -> StoreResult<bool> {
        self.base.contains_key(self.t, key.as_ref())
    }

    /// Every entry, in key order.
    pub(super) fn iter(&self) -> Scan<'a> {
        self.base.iter(self.t)
    }

    /// The entries in `range`, in key order.
    pub(super) fn range(&self, range: impl std::ops::RangeBounds<Vec<u8>>) -> Scan<'a> {
        self.base.range(
            self.t,
            range.start_bound().cloned(),
            range.end_bound().cloned(),
        )
    }

    /// The entries whose key starts with `prefix`, in key order.
    pub(super) fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Scan<'a> {
        self.base.scan_prefix(self.t, prefix.as_ref())
    }

    /// The number of entries (a full scan: for tests and benches).
    pub(super) fn len(&self) -> usize {
        self.iter().count()
    }
}

/// The smallest key greater than every key starting with `prefix` (`None`: no such key).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// How many overlay entries a scan takes at a time.
const CHUNK: usize = 128;

/// A merged, ordered scan of one tree; see [`Base::range`].
pub(super) struct Scan<'a> {
    base: &'a Base,
    t: T,
    _guard: RwLockReadGuard<'a, ()>,
    sled: std::iter::Peekable<sled::Iter>,
    /// Overlay entries taken but not yet merged.
    pending: std::collections::VecDeque<(Vec<u8>, Pending)>,
    /// Where the next overlay chunk starts.
    next_start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    pending_done: bool,
}

impl Scan<'_> {
    fn refill(&mut self) {
        if !self.pending.is_empty() || self.pending_done {
            return;
        }
        let chunk = self.base.overlay.chunk(
            self.t,
            as_slice(&self.next_start),
            as_slice(&self.end),
            CHUNK,
        );
        if chunk.len() < CHUNK {
            self.pending_done = true;
        }
        if let Some((last, _)) = chunk.last() {
            self.next_start = Bound::Excluded(last.clone());
        }
        self.pending.extend(chunk);
    }

    /// Keys only.
    pub(super) fn keys(self) -> impl Iterator<Item = StoreResult<IVec>> {
        self.map(|item| item.map(|(k, _)| k))
    }
}

fn as_slice(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Iterator for Scan<'_> {
    type Item = StoreResult<(IVec, IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.refill();
            let from_overlay = match (self.pending.front(), self.sled.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(_), Some(Err(_))) => false,
                (Some((mine, _)), Some(Ok((theirs, _)))) => {
                    match mine.as_slice().cmp(theirs.as_ref()) {
                        std::cmp::Ordering::Less => true,
                        std::cmp::Ordering::Greater => false,
                        std::cmp::Ordering::Equal => {
                            // The overlay's entry replaces sled's.
                            self.sled.next();
                            true
                        }
                    }
                }
            };
            if from_overlay {
                let (key, value) = self.pending.pop_front()?;
                match value {
                    Some(value) => return Some(Ok((IVec::from(key), value))),
                    None => continue,
                }
            }
            return self.sled.next().map(|item| item.map_err(Into::into));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sled_store::overlay::Writes;

    fn base() -> (tempfile::TempDir, Base) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let trees = T::ALL
            .iter()
            .map(|t| db.open_tree(t.name()).unwrap())
            .collect();
        (dir, Base::new(db, trees))
    }

    fn keys(scan: Scan<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
        scan.map(|item| {
            let (k, v) = item.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
    }

    #[test]
    fn scans_merge_sled_and_the_overlay_in_key_order() {
        let (_dir, base) = base();
        let tree = base.sled_tree(T::Outbox);
        for key in [&b"a1"[..], b"a3", b"a5", b"b1"] {
            tree.insert(key, b"sled".as_slice()).unwrap();
        }
        let mut writes = Writes::default();
        writes.put(T::Outbox, b"a2".to_vec(), Some(IVec::from(&b"mem"[..])));
        writes.put(T::Outbox, b"a3".to_vec(), None);
        writes.put(T::Outbox, b"a5".to_vec(), Some(IVec::from(&b"new"[..])));
        writes.put(T::Outbox, b"a6".to_vec(), Some(IVec::from(&b"mem"[..])));
        writes.put(T::Sessions, b"a4".to_vec(), Some(IVec::from(&b"other"[..])));
        base.overlay.apply(writes, 1, |_, _| true);
        let got = keys(base.scan_prefix(T::Outbox, b"a"));
        let want: Vec<(Vec<u8>, Vec<u8>)> =
            [("a1", "sled"), ("a2", "mem"), ("a5", "new"), ("a6", "mem")]
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect();
        assert_eq!(got, want);
        assert_eq!(keys(base.iter(T::Outbox)).len(), 5);
        assert!(!base.contains_key(T::Outbox, b"a3").unwrap());
        assert_eq!(base.get(T::Outbox, b"a5").unwrap().unwrap(), b"new");
        assert_eq!(base.get(T::Outbox, b"b1").unwrap().unwrap(), b"sled");
        let upto = keys(base.range(T::Outbox, Bound::Unbounded, Bound::Excluded(b"a5".to_vec())));
        assert_eq!(upto.len(), 2);
    }

    #[test]
    fn a_scan_longer_than_a_chunk_sees_every_overlay_entry_once() {
        let (_dir, base) = base();
        let mut writes = Writes::default();
        for i in 0..(CHUNK as u32 * 3 + 7) {
            let key = i.to_be_bytes().to_vec();
            if i % 2 == 0 {
                base.sled_tree(T::Sessions).insert(&key, &b"s"[..]).unwrap();
            }
            if i % 3 == 0 {
                writes.put(T::Sessions, key, Some(IVec::from(&b"m"[..])));
            }
        }
        base.overlay.apply(writes, 1, |_, _| true);
        let got = keys(base.iter(T::Sessions));
        let expected: usize = (0..(CHUNK as u32 * 3 + 7))
            .filter(|i| i % 2 == 0 || i % 3 == 0)
            .count();
        assert_eq!(got.len(), expected);
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn prefix_ends_carry_past_ff_bytes() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}

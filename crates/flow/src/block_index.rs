//! Block ids mapped to the position of the first block that has each, in a hash map with a
//! fast seeded hasher (ids are short strings; SipHash dominated the lookups of large flows).

use crate::model::Block;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};

/// The position of the first block with each id; built once per validation and shared by the
/// content rules (duplicate ids) and the graph (edge targets).
#[derive(Debug, Clone)]
pub(crate) struct BlockIndex<'a> {
    first: HashMap<&'a str, usize, SeededHasher>,
}

impl<'a> BlockIndex<'a> {
    /// Indexes `blocks`; with duplicate ids the first block of an id is kept.
    pub(crate) fn new(blocks: &'a [Block]) -> Self {
        let mut first = HashMap::with_capacity_and_hasher(blocks.len(), SeededHasher::new());
        for (index, block) in blocks.iter().enumerate() {
            first.entry(block.id.as_str()).or_insert(index);
        }
        Self { first }
    }

    /// The position of the first block whose id is `id`.
    pub(crate) fn get(&self, id: &str) -> Option<usize> {
        self.first.get(id).copied()
    }
}

/// Builds [`WordHasher`]s that start from a per-map random seed, so that which ids collide
/// is not the same from one run to the next.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeededHasher {
    seed: u64,
}

impl SeededHasher {
    /// A builder with a fresh seed taken from std's [`RandomState`].
    pub(crate) fn new() -> Self {
        Self {
            seed: RandomState::new().hash_one(0u8),
        }
    }
}

impl BuildHasher for SeededHasher {
    type Hasher = WordHasher;

    fn build_hasher(&self) -> WordHasher {
        WordHasher { hash: self.seed }
    }
}

/// A multiply-rotate hasher over 8-byte words (the scheme of rustc's FxHasher).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WordHasher {
    hash: u64,
}

/// Odd multiplier of the mixing step (FxHasher's constant).
const MULTIPLIER: u64 = 0xf135_7aea_2e62_a9c5;

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Byte by byte: a call to memcpy for under 8 bytes costs more than the loop.
            let mut word = (rest.len() as u64) << 59;
            for (i, byte) in rest.iter().enumerate() {
                word ^= u64::from(*byte) << (8 * i);
            }
            self.add(word);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the high bits best mixed; the table indexes with the low ones.
        self.hash.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check_text;

    #[test]
    fn first_block_of_each_id_is_kept() {
        let report = check_text(
            r#"{"format": 1, "id": "f", "name": "F", "start": "a", "blocks": [
            {"id": "a", "type": "delay", "duration": "1s", "next": "b"},
            {"id": "b", "type": "delay", "duration": "1s"},
            {"id": "a", "type": "delay", "duration": "1s"}]}"#,
        );
        let blocks = &report.document.unwrap().blocks;
        let index = BlockIndex::new(blocks);
        assert_eq!(index.get("a"), Some(0));
        assert_eq!(index.get("b"), Some(1));
        assert_eq!(index.get("c"), None);
    }

    #[test]
    fn short_long_and_non_ascii_ids_are_found() {
        let ids = [
            "x".to_owned(),
            "x".repeat(8),
            "x".repeat(9),
            "3f2b9c1e-8d4a-4b6f-9e2d-7a1c5b8e0f34".to_owned(),
            "é".repeat(20),
        ];
        let blocks: Vec<Block> = ids
            .iter()
            .map(|id| Block {
                id: id.as_str().into(),
                kind: crate::model::BlockKind::Action { actions: vec![] },
                next: None,
                position: None,
                ui: None,
            })
            .collect();
        let index = BlockIndex::new(&blocks);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(index.get(id), Some(i), "{id}");
        }
        assert_eq!(index.get(&"x".repeat(7)), None);
        assert_eq!(index.get(""), None);
    }

    #[test]
    fn hashes_differ_for_ids_that_differ_in_one_byte_or_length() {
        let builder = SeededHasher::new();
        let ids = [
            "ask1",
            "ask2",
            "ask10",
            "ask1\0",
            "",
            "a_much_longer_block_id_1",
            "a_much_longer_block_id_2",
        ];
        let hashes: std::collections::HashSet<u64> =
            ids.iter().map(|id| builder.hash_one(id)).collect();
        assert_eq!(hashes.len(), ids.len());
    }
}

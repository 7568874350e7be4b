//! The `Redo` log record: the physical writes of one committed transaction (tree, key, new value
//! or removal). Replaying the records after the last checkpoint, in LSN order, rebuilds the
//! overlay exactly; replaying one that sled already holds writes the same bytes again.
//!
//! Layout: `REDO_RECORD_V1 | count u32 | { tree u8 | key_len u32 | key | 0 (removed) or
//! 1 | value_len u32 | value }*`, integers little-endian.

use super::overlay::Writes;
use super::trees::T;
use crate::error::StoreError;
use crate::log::Lsn;
use sled::IVec;

/// Format byte of a `Redo` record (event records start with 1).
pub(super) const REDO_RECORD_V1: u8 = 2;

/// Encodes a transaction's writes as one record.
pub(super) fn encode(writes: &Writes) -> Vec<u8> {
    let mut size = 5;
    for (_, key, value) in writes.iter() {
        size += 1 + 4 + key.len() + 1 + value.as_ref().map_or(0, |v| 4 + v.len());
    }
    let mut out = Vec::with_capacity(size);
    out.push(REDO_RECORD_V1);
    out.extend_from_slice(&(writes.len() as u32).to_le_bytes());
    for (t, key, value) in writes.iter() {
        out.push(t as u8);
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        match value {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                out.extend_from_slice(&(value.len() as u32).to_le_bytes());
                out.extend_from_slice(value);
            }
        }
    }
    out
}

/// Decodes a record [`encode`] made.
pub(super) fn decode(lsn: Lsn, bytes: &[u8]) -> Result<Writes, StoreError> {
    let corrupt = |detail: &str| StoreError::Corrupt {
        what: "redo log",
        detail: format!("record {lsn}: {detail}"),
    };
    let mut reader = Reader { bytes, at: 0 };
    if reader.u8() != Some(REDO_RECORD_V1) {
        return Err(corrupt("not a redo record"));
    }
    let count = reader.u32().ok_or_else(|| corrupt("no write count"))?;
    let mut writes = Writes::default();
    for _ in 0..count {
        let tree = reader.u8().ok_or_else(|| corrupt("cut short"))?;
        let t = *T::ALL
            .get(usize::from(tree))
            .ok_or_else(|| corrupt(&format!("unknown tree {tree}")))?;
        let key = reader
            .slice()
            .ok_or_else(|| corrupt("cut short in a key"))?;
        let value = match reader.u8() {
            Some(0) => None,
            Some(1) => Some(IVec::from(
                reader
                    .slice()
                    .ok_or_else(|| corrupt("cut short in a value"))?,
            )),
            _ => return Err(corrupt("bad write tag")),
        };
        writes.put(t, key.to_vec(), value);
    }
    if reader.at != bytes.len() {
        return Err(corrupt("bytes after the last write"));
    }
    Ok(writes)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn slice(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_damage_is_refused() {
        let mut writes = Writes::default();
        writes.put(T::Sessions, b"k1".to_vec(), Some(IVec::from(&b"v1"[..])));
        writes.put(T::Outbox, b"k2".to_vec(), None);
        writes.put(
            T::NotificationMessages,
            Vec::new(),
            Some(IVec::from(&b""[..])),
        );
        let bytes = encode(&writes);
        let back = decode(7, &bytes).unwrap();
        let pairs = |w: &Writes| {
            w.iter()
                .map(|(t, k, v)| (t, k.to_vec(), v.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&back), pairs(&writes));
        for cut in 0..bytes.len() {
            assert!(decode(7, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut unknown = bytes.clone();
        unknown[5] = 200;
        assert!(
            decode(7, &unknown)
                .unwrap_err()
                .to_string()
                .contains("unknown tree 200")
        );
    }
}

//! Record and key encoding: a one-byte format version before each JSON record, and
//! order-preserving keys built from length-prefixed strings and big-endian integers.

use crate::error::StoreError;
use crate::store::StoreResult;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Format version written before every record; `decode` is where a later release migrates.
pub(crate) const RECORD_VERSION: u8 = 1;

/// Encodes a record as its format version byte followed by JSON.
pub(crate) fn encode<T: Serialize>(what: &'static str, value: &T) -> StoreResult<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    out.push(RECORD_VERSION);
    serde_json::to_writer(&mut out, value).map_err(|err| StoreError::Encode {
        what,
        detail: err.to_string(),
    })?;
    Ok(out)
}

/// Decodes a record written by [`encode`], refusing format versions newer than this release's.
pub(crate) fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> StoreResult<T> {
    match bytes.split_first() {
        None => Err(StoreError::Corrupt {
            what,
            detail: "empty record".into(),
        }),
        Some((&RECORD_VERSION, json)) => {
            serde_json::from_slice(json).map_err(|err| StoreError::Corrupt {
                what,
                detail: err.to_string(),
            })
        }
        Some((&version, _)) => Err(StoreError::UnsupportedRecordVersion {
            what,
            version,
            supported: RECORD_VERSION,
        }),
    }
}

/// Builds a key from components; a prefix of components is a byte prefix of the key.
#[derive(Debug, Default, Clone)]
pub(crate) struct Key(Vec<u8>);

impl Key {
    /// An empty key.
    pub(crate) fn new() -> Self {
        Self(Vec::with_capacity(48))
    }

    /// Appends a string component (length-prefixed, so components never run together).
    pub(crate) fn str(mut self, s: &str) -> Self {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }

    /// Appends an integer component (big-endian, so keys sort by it).
    pub(crate) fn u64(mut self, n: u64) -> Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    /// The key's bytes.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads the components of a key built by [`Key`], in order.
pub(crate) struct KeyReader<'a> {
    rest: &'a [u8],
}

impl<'a> KeyReader<'a> {
    /// Starts reading `key`.
    pub(crate) fn new(key: &'a [u8]) -> Self {
        Self { rest: key }
    }

    /// The next string component.
    pub(crate) fn str(&mut self) -> StoreResult<String> {
        let len = self.take(4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|err| corrupt_key(err.to_string()))
    }

    /// The next integer component.
    pub(crate) fn u64(&mut self) -> StoreResult<u64> {
        let bytes = self.take(8)?;
        let mut buf = [0u8; 8];
        buf.copy_from_slice(bytes);
        Ok(u64::from_be_bytes(buf))
    }

    fn take(&mut self, n: usize) -> StoreResult<&'a [u8]> {
        if self.rest.len() < n {
            return Err(corrupt_key(format!(
                "key ends after {} bytes, {n} more expected",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
}

fn corrupt_key(detail: String) -> StoreError {
    StoreError::Corrupt {
        what: "key",
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_newer_versions_are_refused() {
        let bytes = encode("test", &vec![1u32, 2, 3]).unwrap();
        assert_eq!(bytes[0], RECORD_VERSION);
        let back: Vec<u32> = decode("test", &bytes).unwrap();
        assert_eq!(back, vec![1, 2, 3]);

        let mut newer = bytes.clone();
        newer[0] = RECORD_VERSION + 1;
        assert!(matches!(
            decode::<Vec<u32>>("test", &newer),
            Err(StoreError::UnsupportedRecordVersion { version, .. }) if version == RECORD_VERSION + 1
        ));
        assert!(matches!(
            decode::<Vec<u32>>("test", &[]),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn keys_keep_components_apart_and_sort_by_integers() {
        let ab_c = Key::new().str("ab").str("c").finish();
        let a_bc = Key::new().str("a").str("bc").finish();
        assert_ne!(ab_c, a_bc);
        let prefix = Key::new().str("ab").finish();
        assert!(ab_c.starts_with(&prefix));
        assert!(!a_bc.starts_with(&prefix));

        let early = Key::new().u64(9).str("z").finish();
        let late = Key::new().u64(10).str("a").finish();
        assert!(early < late);

        let key = Key::new().str("page").u64(42).str("psid").finish();
        let mut reader = KeyReader::new(&key);
        assert_eq!(reader.str().unwrap(), "page");
        assert_eq!(reader.u64().unwrap(), 42);
        assert_eq!(reader.str().unwrap(), "psid");
        assert!(reader.str().is_err());
    }
}

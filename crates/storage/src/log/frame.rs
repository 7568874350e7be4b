//! The on-disk frame of one log record: a fixed header with a CRC over the LSN and payload,
//! then the payload; encoding, and decoding that tells a valid frame from the end of the log.

use super::Lsn;

/// First two bytes of every frame (little-endian `0xB0F1`); zeros never match.
pub(crate) const MAGIC: u16 = 0xB0F1;
/// `magic u16 | len u32 | crc32 u32 | lsn u64`, then `len` payload bytes.
pub(crate) const HEADER_LEN: usize = 2 + 4 + 4 + 8;
/// The largest payload a frame may carry (a sanity bound for decoding torn lengths).
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// CRC-32 (crc32fast, hardware-accelerated) over the LSN and the payload, so a frame copied to
/// another position or holding another record's bytes fails the check.
fn checksum(lsn: Lsn, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&lsn.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Appends the frame of `payload` at `lsn` to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, lsn: Lsn, payload: &[u8]) {
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(lsn, payload).to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(payload);
}

/// What is at one offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A valid frame with the expected LSN, and its total length.
    Frame { payload: &'a [u8], len: usize },
    /// Nothing left to read: the end of the bytes.
    End,
    /// Bytes that are not a valid frame with the expected LSN, and why.
    Invalid(String),
}

/// Decodes the frame at the start of `bytes`, which must carry `expected` as its LSN.
pub(crate) fn decode(bytes: &[u8], expected: Lsn) -> Decoded<'_> {
    if bytes.is_empty() {
        return Decoded::End;
    }
    if bytes.len() < HEADER_LEN {
        return Decoded::Invalid(format!(
            "{} bytes, shorter than a frame header",
            bytes.len()
        ));
    }
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let magic = u16::from_le_bytes([bytes[0], bytes[1]]);
    if magic != MAGIC {
        return Decoded::Invalid(format!("no frame magic (found {magic:#06x})"));
    }
    let len = u32_at(2) as usize;
    if len > MAX_PAYLOAD {
        return Decoded::Invalid(format!("payload length {len} over the {MAX_PAYLOAD} limit"));
    }
    if bytes.len() < HEADER_LEN + len {
        return Decoded::Invalid(format!(
            "frame of {} bytes cut off after {}",
            HEADER_LEN + len,
            bytes.len()
        ));
    }
    let crc = u32_at(6);
    let mut lsn_bytes = [0u8; 8];
    lsn_bytes.copy_from_slice(&bytes[10..18]);
    let lsn = Lsn::from_le_bytes(lsn_bytes);
    let payload = &bytes[HEADER_LEN..HEADER_LEN + len];
    if checksum(lsn, payload) != crc {
        return Decoded::Invalid("checksum mismatch".to_owned());
    }
    if lsn != expected {
        return Decoded::Invalid(format!("LSN {lsn} where {expected} was expected"));
    }
    Decoded::Frame {
        payload,
        len: HEADER_LEN + len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_every_damage_is_invalid() {
        let mut bytes = Vec::new();
        encode(&mut bytes, 7, b"hello");
        assert_eq!(
            decode(&bytes, 7),
            Decoded::Frame {
                payload: b"hello",
                len: HEADER_LEN + 5
            }
        );
        assert!(matches!(decode(&bytes, 8), Decoded::Invalid(reason) if reason.contains("LSN 7")));
        for cut in 1..bytes.len() {
            assert!(
                matches!(decode(&bytes[..cut], 7), Decoded::Invalid(_)),
                "cut at {cut}"
            );
        }
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(decode(&flipped, 7), Decoded::Invalid(_)),
                "flipped bit {bit} still decodes"
            );
        }
        assert_eq!(decode(&[], 1), Decoded::End);
        assert!(matches!(decode(&[0; 40], 1), Decoded::Invalid(_)));
    }
}

//! Opening a log directory: segment names, the scan that reads every record in LSN order, and
//! the rules for damage (a torn tail of the last segment is cut off; an invalid frame in an
//! earlier segment, or a gap between segments, refuses to open).

use super::file::{LogDir, LogFile};
use super::frame::{Decoded, decode};
use super::{LogError, Lsn};

const SUFFIX: &str = ".seg";

/// The file name of the segment whose first record has LSN `first`.
pub(crate) fn segment_name(first: Lsn) -> String {
    format!("{first:020}{SUFFIX}")
}

fn parse_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(SUFFIX)?;
    match digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
        // LSNs start at 1: a segment "starting" at 0 is not one of ours.
        true => digits.parse().ok().filter(|first| *first > 0),
        false => None,
    }
}

/// One segment: the LSN of its first record and its file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) first: Lsn,
    pub(crate) name: String,
}

/// What a scan found.
pub(crate) struct Scanned {
    /// Every segment, oldest first; the last one is open for appending.
    pub(crate) segments: Vec<Segment>,
    /// Every valid record, in LSN order.
    pub(crate) records: Vec<(Lsn, Vec<u8>)>,
    /// The LSN the next append gets.
    pub(crate) next_lsn: Lsn,
    /// The last segment's file and its length after the scan (any torn tail cut off).
    pub(crate) tail: Box<dyn LogFile>,
    pub(crate) tail_len: u64,
    /// Where the last segment's zeros written ahead of its records end (`tail_len` when none).
    pub(crate) tail_zeroed: u64,
    /// Bytes cut off the end of the last segment.
    pub(crate) truncated: u64,
}

fn io_error(dir: &dyn LogDir, action: &str, name: &str, source: std::io::Error) -> LogError {
    LogError::Io {
        action: format!("{action} {}/{name}", dir.location()),
        source,
    }
}

/// Reads every segment of `dir` (creating the first one in an empty directory).
pub(crate) fn scan(dir: &dyn LogDir) -> Result<Scanned, LogError> {
    let names = dir.list().map_err(|source| LogError::Io {
        action: format!("list the log directory {}", dir.location()),
        source,
    })?;
    let mut segments: Vec<Segment> = names
        .into_iter()
        .filter_map(|name| {
            Some(Segment {
                first: parse_name(&name)?,
                name,
            })
        })
        .collect();
    segments.sort_by_key(|s| s.first);
    if segments.is_empty() {
        let name = segment_name(1);
        let tail = dir
            .create(&name)
            .map_err(|e| io_error(dir, "create", &name, e))?;
        return Ok(Scanned {
            segments: vec![Segment { first: 1, name }],
            records: Vec::new(),
            next_lsn: 1,
            tail,
            tail_len: 0,
            tail_zeroed: 0,
            truncated: 0,
        });
    }
    let mut records = Vec::new();
    let mut expected = segments[0].first;
    let last = segments.len() - 1;
    for (index, segment) in segments.iter().enumerate() {
        let location = format!("{}/{}", dir.location(), segment.name);
        if segment.first != expected {
            return Err(LogError::Corrupt {
                file: location,
                offset: 0,
                reason: format!(
                    "the segment starts at LSN {} but the previous one ends at LSN {}",
                    segment.first,
                    expected.saturating_sub(1)
                ),
            });
        }
        let mut file = dir
            .open(&segment.name)
            .map_err(|e| io_error(dir, "open", &segment.name, e))?;
        let bytes = file
            .read_all()
            .map_err(|e| io_error(dir, "read", &segment.name, e))?;
        let (end, invalid) = read_frames(&bytes, &mut expected, &mut records);
        if index < last {
            if let Some(reason) = invalid {
                return Err(LogError::Corrupt {
                    file: location,
                    offset: end as u64,
                    reason,
                });
            }
            continue;
        }
        // Zeros only after the records: the space the appender preallocated, kept for it.
        let preallocated = bytes[end..].iter().all(|&b| b == 0);
        if invalid.is_some() && !preallocated {
            // A torn tail: the appender syncs whole groups and acknowledges only synced
            // records, so nothing acknowledged lies past the first invalid frame. It is cut
            // off, not zeroed over: no stale frame may follow the records appended next.
            file.truncate(end as u64)
                .map_err(|e| io_error(dir, "truncate the torn tail of", &segment.name, e))?;
        }
        let (tail_zeroed, truncated) = match preallocated {
            true => (bytes.len() as u64, 0),
            false => (end as u64, (bytes.len() - end) as u64),
        };
        return Ok(Scanned {
            segments,
            records,
            next_lsn: expected,
            tail: file,
            tail_len: end as u64,
            tail_zeroed,
            truncated,
        });
    }
    Err(LogError::Corrupt {
        file: dir.location(),
        offset: 0,
        reason: "no segment to append to".to_owned(),
    })
}

/// Decodes frames from the start of `bytes`, pushing each record and advancing `expected`;
/// returns where the valid frames end and, when they end before the bytes do, why.
fn read_frames(
    bytes: &[u8],
    expected: &mut Lsn,
    records: &mut Vec<(Lsn, Vec<u8>)>,
) -> (usize, Option<String>) {
    let mut offset = 0usize;
    loop {
        match decode(&bytes[offset..], *expected) {
            Decoded::Frame { payload, len } => {
                records.push((*expected, payload.to_vec()));
                offset += len;
                *expected += 1;
            }
            Decoded::End => return (offset, None),
            Decoded::Invalid(reason) => return (offset, Some(reason)),
        }
    }
}

//! Recovery: a torn last segment is cut at its last valid frame, whatever the cut; damage in an
//! earlier segment refuses to open with an error naming the file and offset; appends continue
//! after a recovered tail; deleted segments stay deleted.

use crate::{append_durable, assert_records, open_sim, open_sim_preallocating, payload};
use botflow_storage::log::{HotLog, LogError, LogOptions, SimDir};

/// The frame header's length (magic, length, checksum, LSN).
const HEADER: usize = 18;

#[test]
fn a_torn_tail_at_every_byte_offset_keeps_the_longest_valid_prefix() {
    let dir = SimDir::new();
    {
        let (log, _) = open_sim(&dir, 1 << 20);
        append_durable(&log, 1, 20);
    }
    let name = "00000000000000000001.seg";
    let full = dir.bytes(name).unwrap();
    // Frame boundaries of the last three records.
    let mut ends = Vec::new();
    let mut at = 0;
    for n in 1..=20 {
        at += HEADER + payload(n).len();
        ends.push(at);
    }
    assert_eq!(at, full.len());
    let first_cut = ends[16];
    for cut in first_cut..=full.len() {
        let torn = dir.crash(|| true);
        torn.set_bytes(name, full[..cut].to_vec());
        let (log, recovered) = open_sim(&torn, 1 << 20);
        let kept = ends.iter().filter(|&&end| end <= cut).count() as u64;
        assert_records(&recovered, kept);
        let valid_end = ends[kept as usize - 1];
        assert_eq!(
            recovered.truncated_bytes,
            (cut - valid_end) as u64,
            "cut {cut}"
        );
        // Appends continue right after the kept records, and survive the next reopen.
        assert_eq!(log.append_durable(&payload(kept + 1)).unwrap(), kept + 1);
        drop(log);
        let (_, again) = open_sim(&torn, 1 << 20);
        assert_records(&again, kept + 1);
    }
}

#[test]
fn garbage_and_a_valid_frame_with_the_wrong_lsn_end_the_last_segment_and_are_cut_off() {
    let dir = SimDir::new();
    {
        let (log, _) = open_sim(&dir, 1 << 20);
        append_durable(&log, 1, 5);
    }
    let name = "00000000000000000001.seg";
    let full = dir.bytes(name).unwrap();
    let first_frame = HEADER + payload(1).len();
    for tail in [
        b"garbage after the records".to_vec(),
        // Garbage in the middle of preallocated zeros (a torn write into them).
        [vec![0u8; 100], b"torn".to_vec(), vec![0u8; 4000]].concat(),
        // A copy of frame 1 (a valid frame, LSN 1) where LSN 6 is expected.
        full[..first_frame].to_vec(),
    ] {
        let damaged = dir.crash(|| true);
        let mut bytes = full.clone();
        bytes.extend_from_slice(&tail);
        damaged.set_bytes(name, bytes);
        let (_, recovered) = open_sim(&damaged, 1 << 20);
        assert_records(&recovered, 5);
        assert_eq!(recovered.truncated_bytes, tail.len() as u64);
        assert_eq!(
            damaged.bytes(name).unwrap(),
            full,
            "the tail is cut off on disk"
        );
    }
}

#[test]
fn a_flipped_bit_in_an_earlier_segment_refuses_to_open_naming_file_and_offset() {
    let dir = SimDir::new();
    {
        // Small segments: every group of a few records starts a new one.
        let (log, _) = open_sim(&dir, 300);
        for n in 1..=30 {
            append_durable(&log, n, n);
        }
        assert!(log.segment_names().len() > 3, "{:?}", log.segment_names());
    }
    let names: Vec<String> = {
        let (log, recovered) = open_sim(&dir, 300);
        assert_records(&recovered, 30);
        log.segment_names()
    };
    let victim = &names[1];
    let original = dir.bytes(victim).unwrap();
    for bit in [0, 7, 8 * 3, 8 * 12, 8 * 20, original.len() * 8 - 1] {
        let damaged = dir.crash(|| true);
        let mut bytes = original.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        damaged.set_bytes(victim, bytes);
        let error = HotLog::open(
            std::sync::Arc::new(damaged),
            LogOptions {
                segment_bytes: 300,
                preallocate_bytes: 0,
                ..LogOptions::default()
            },
        )
        .expect_err("a damaged earlier segment must refuse to open");
        let LogError::Corrupt { file, offset, .. } = &error else {
            panic!("expected Corrupt, got {error}");
        };
        assert!(file.ends_with(victim.as_str()), "{file}");
        // The frame holding the flipped bit (segments here hold whole frames from offset 0).
        assert!(
            *offset as usize <= bit / 8,
            "offset {offset} after bit {bit}"
        );
        let message = error.to_string();
        assert!(
            message.contains(victim.as_str()) && message.contains("byte"),
            "{message}"
        );
    }
}

#[test]
fn a_missing_middle_segment_refuses_to_open() {
    let dir = SimDir::new();
    let names = {
        let (log, _) = open_sim(&dir, 200);
        for n in 1..=20 {
            append_durable(&log, n, n);
        }
        log.segment_names()
    };
    let damaged = dir.crash(|| true);
    use botflow_storage::log::LogDir;
    damaged.remove(&names[1]).unwrap();
    let error = HotLog::open(
        std::sync::Arc::new(damaged),
        LogOptions {
            segment_bytes: 200,
            preallocate_bytes: 0,
            ..LogOptions::default()
        },
    )
    .expect_err("a gap must refuse to open");
    assert!(
        matches!(&error, LogError::Corrupt { file, .. } if file.ends_with(names[2].as_str())),
        "{error}"
    );
}

#[test]
fn delete_below_removes_only_whole_durable_segments_below_the_lsn() {
    let dir = SimDir::new();
    let (log, _) = open_sim(&dir, 250);
    for n in 1..=40 {
        append_durable(&log, n, n);
    }
    let before = log.segment_names();
    assert!(before.len() > 4);
    let second_first: u64 = before[1].trim_end_matches(".seg").parse().unwrap();
    let third_first: u64 = before[2].trim_end_matches(".seg").parse().unwrap();
    // Below the first record of the third segment: exactly the first two segments go.
    assert_eq!(log.delete_below(third_first).unwrap(), 2);
    assert_eq!(log.segment_names(), before[2..].to_vec());
    // Nothing more until a whole segment lies below.
    assert_eq!(log.delete_below(third_first + 1).unwrap(), 0);
    // Never the segment being written, even past the end of the log.
    log.delete_below(u64::MAX).unwrap();
    assert_eq!(log.segment_names().len(), 1);
    drop(log);
    let (log, recovered) = open_sim(&dir, 250);
    let first = recovered.records[0].0;
    assert!(
        first > second_first,
        "records from the deleted segments are gone"
    );
    assert_eq!(recovered.records.last().unwrap().0, 40);
    assert_eq!(log.append(&payload(41)).unwrap(), 41);
}

#[test]
fn zeros_after_the_records_end_the_last_segment_and_are_kept_for_the_next_appends() {
    let dir = SimDir::new();
    {
        let (log, _) = open_sim(&dir, 1 << 20);
        append_durable(&log, 1, 5);
    }
    let name = "00000000000000000001.seg";
    let mut bytes = dir.bytes(name).unwrap();
    let records_end = bytes.len();
    bytes.extend_from_slice(&[0u8; 4096]);
    let zeroed = dir.crash(|| true);
    zeroed.set_bytes(name, bytes.clone());
    let (log, recovered) = open_sim(&zeroed, 1 << 20);
    assert_records(&recovered, 5);
    assert_eq!(recovered.truncated_bytes, 0, "zeros are no torn tail");
    assert_eq!(zeroed.bytes(name).unwrap(), bytes, "the zeros stay on disk");
    // The next records go right after the old ones, over the zeros.
    assert_eq!(log.append_durable(&payload(6)).unwrap(), 6);
    drop(log);
    let on_disk = zeroed.bytes(name).unwrap();
    assert_eq!(on_disk.len(), bytes.len(), "written inside the zeros");
    assert_eq!(&on_disk[..records_end], &bytes[..records_end]);
    let (_, again) = open_sim(&zeroed, 1 << 20);
    assert_records(&again, 6);
}

#[test]
fn a_preallocating_log_keeps_zeros_ahead_and_cuts_each_full_segment_to_its_records() {
    let dir = SimDir::new();
    let names = {
        // Segments of 400 bytes, 128 bytes of zeros kept ahead.
        let (log, _) = open_sim_preallocating(&dir, 400, 128);
        for n in 1..=40 {
            append_durable(&log, n, n);
        }
        let names = log.segment_names();
        assert!(names.len() > 3, "{names:?}");
        // The segment being written ends in synced zeros: the crash keeps nothing unsynced.
        let tail = dir.crash(|| false).bytes(names.last().unwrap()).unwrap();
        let records: usize = (1..=40u64)
            .filter(|n| {
                *n >= names
                    .last()
                    .unwrap()
                    .trim_end_matches(".seg")
                    .parse()
                    .unwrap()
            })
            .map(|n| HEADER + payload(n).len())
            .sum();
        assert!(
            tail.len() > records,
            "zeros are written ahead of the records"
        );
        assert!(tail[records..].iter().all(|&b| b == 0));
        names
    };
    // Every full segment holds exactly its frames.
    for window in names.windows(2) {
        let first: u64 = window[0].trim_end_matches(".seg").parse().unwrap();
        let next: u64 = window[1].trim_end_matches(".seg").parse().unwrap();
        let frames: usize = (first..next).map(|n| HEADER + payload(n).len()).sum();
        assert_eq!(
            dir.bytes(&window[0]).unwrap().len(),
            frames,
            "{}",
            window[0]
        );
    }
    // A power loss now keeps every record, and appends continue after a reopen.
    let crashed = dir.crash(|| false);
    let (log, recovered) = open_sim_preallocating(&crashed, 400, 128);
    assert_records(&recovered, 40);
    assert_eq!(recovered.truncated_bytes, 0);
    append_durable(&log, 41, 60);
    drop(log);
    let (_, again) = open_sim_preallocating(&crashed, 400, 128);
    assert_records(&again, 60);
}

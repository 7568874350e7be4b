//! `HotLog`: an append-only segment log whose appends become durable by group commit (one
//! `fdatasync` shared by every record waiting for it), the building block of the log-first hot
//! path (`design/HOT-PATH.md` §3).
//!
//! - **Records** are opaque byte payloads numbered by consecutive LSNs from 1. Each is framed as
//!   `magic u16 | len u32 | crc32 u32 | lsn u64 | payload`; the checksum covers the LSN and the
//!   payload (`frame.rs`).
//! - **Segments** are files named after their first LSN (`00000000000000000001.seg`); a new one
//!   starts when the current one would pass [`LogOptions::segment_bytes`].
//! - **Preallocation**: the appender keeps zeros written and synced ahead of the records in the
//!   segment it writes ([`LogOptions::preallocate_bytes`]), so most syncs write data blocks
//!   into a file whose size does not change: an `fdatasync` then needs no file-system journal
//!   commit (on ext4, 2 device writes instead of 3, about a third less CPU and latency per
//!   sync). A segment is cut to its records before the next one starts.
//! - **Group commit**: [`HotLog::append`] copies the frame into a shared buffer and returns its
//!   LSN at once; one appender thread writes the buffer with one write, calls `fdatasync`, and
//!   publishes the durable watermark ([`HotLog::durable_lsn`]). [`HotLog::wait_durable`] blocks,
//!   [`HotLog::wait_durable_async`] awaits. An acknowledged (durable) record survives a process
//!   kill and a power loss. A record appended with [`HotLog::append_lazy`] (one nobody waits
//!   for yet, as a send outcome) starts no sync of its own: it rides with the next group that
//!   an eager append or a waiter starts, or is synced once it is [`LogOptions::lazy_sync`] old;
//!   [`HotLog::append_within`] sets that wait per record (an inbound event waits briefly for
//!   its step's commit), and [`HotLog::durable_watcher`] awaits a sync without asking for one.
//! - **Poison**: a failed write or `fdatasync` is never retried. The log refuses every later
//!   append and wait with [`LogError::Poisoned`]; the process must restart and recover from
//!   what is on disk.
//! - **Recovery** ([`HotLog::open`]) reads every segment in order. In the last segment, the
//!   first invalid frame (torn write, zeros, garbage, wrong LSN) ends the log and the rest is cut
//!   off: nothing acknowledged can lie there. A rest of zeros only (the preallocated space) is
//!   kept as it is: zeros never decode as a frame. In an earlier segment an invalid frame means synced
//!   data was damaged: open refuses with [`LogError::Corrupt`], naming the file and offset.
//!   (A damaged frame inside the synced part of the *last* segment cannot be told from a torn
//!   write and is cut off with it; the stage that replays the log must tolerate that or keep
//!   its own copy, as a checkpoint does.)
//!   Open syncs the last segment before reporting its records, so every recovered record is
//!   durable (a killed process may have left written but unsynced frames in the page cache).
//! - **Deletion**: [`HotLog::delete_below`] removes the segments whose records all lie below an
//!   LSN (after a checkpoint made them redundant).
//!
//! The log reaches the disk only through the [`LogDir`] / [`LogFile`] file layer: [`OsDir`] in
//! production, `SimDir` (feature `test-support`) in tests that simulate power loss or fsync
//! failures.

mod appender;
mod file;
mod frame;
mod recovery;
#[cfg(any(test, feature = "test-support"))]
mod sim;

pub use file::{LogDir, LogFile, OsDir};
pub use frame::MAX_PAYLOAD;
#[cfg(any(test, feature = "test-support"))]
pub use sim::{SIM_PAGE, SimDir};

use appender::{Appender, Shared};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A log sequence number: records are numbered 1, 2, 3, ...; 0 means "none".
pub type Lsn = u64;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file layer failed outside the appender (listing, opening, reading, deleting).
    #[error("log I/O failed: {action}: {source}")]
    Io {
        /// What was being done, with the file.
        action: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Synced data is damaged: an invalid frame before the last segment, or a gap in LSNs.
    #[error(
        "log segment {file} is damaged at byte {offset}: {reason}. Records after it cannot be \
         trusted; restore the directory from a backup, or move this segment and every later one \
         aside to start from the records before it"
    )]
    Corrupt {
        /// The segment file.
        file: String,
        /// Byte offset of the invalid frame in the file.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// A write or `fdatasync` failed earlier; the log accepts nothing more.
    #[error(
        "the log refuses writes after a failed write or fdatasync ({cause}); restart the process \
         to recover from what is on disk"
    )]
    Poisoned {
        /// The failure that poisoned the log.
        cause: String,
    },
    /// A payload over [`MAX_PAYLOAD`] bytes.
    #[error("a log record of {len} bytes is over the {MAX_PAYLOAD}-byte limit")]
    TooLarge {
        /// The payload's length.
        len: usize,
    },
    /// The log was closed.
    #[error("the log is closed")]
    Closed,
}

/// Tuning of a [`HotLog`].
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// A new segment starts when the current one would grow past this many bytes (64 MiB).
    pub segment_bytes: u64,
    /// Zeros kept written ahead of the records (1 MiB; 0: none, the file grows with each
    /// group). The appender extends them, in the same sync as a group, when less than half
    /// is left.
    pub preallocate_bytes: u64,
    /// The longest a record appended with [`HotLog::append_lazy`] waits for a sync that a
    /// waiter or an eager append starts (100 ms).
    pub lazy_sync: Duration,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 * 1024 * 1024,
            preallocate_bytes: 1024 * 1024,
            lazy_sync: Duration::from_millis(100),
        }
    }
}

/// What recovery found when the log was opened.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every record on disk, in LSN order (LSN, payload).
    pub records: Vec<(Lsn, Vec<u8>)>,
    /// Bytes cut off the end of the last segment (a torn tail).
    pub truncated_bytes: u64,
}

/// Counters since the log was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStats {
    /// Records appended.
    pub appends: u64,
    /// Groups written, each with one `fdatasync`.
    pub syncs: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Time spent in `fdatasync`: divided by `syncs`, the disk's mean sync latency.
    pub sync_time: Duration,
}

/// An append-only, group-committed segment log; see the [module docs](self).
pub struct HotLog {
    shared: Arc<Shared>,
    dir: Arc<dyn LogDir>,
    appender: Option<std::thread::JoinHandle<()>>,
    /// How long a lazy append may wait for a sync ([`LogOptions::lazy_sync`]).
    lazy_sync: Duration,
}

impl std::fmt::Debug for HotLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotLog")
            .field("dir", &self.dir.location())
            .field("durable_lsn", &self.durable_lsn())
            .finish()
    }
}

impl HotLog {
    /// Opens (or creates) the log in the directory `path`.
    pub fn open_path(
        path: impl AsRef<Path>,
        options: LogOptions,
    ) -> Result<(HotLog, Recovered), LogError> {
        let dir = OsDir::open(path.as_ref()).map_err(|source| LogError::Io {
            action: format!("create the log directory {}", path.as_ref().display()),
            source,
        })?;
        Self::open(Arc::new(dir), options)
    }

    /// Opens (or creates) the log in `dir`: recovers every record on disk (see the module docs
    /// for how damage is handled) and starts the appender thread.
    pub fn open(
        dir: Arc<dyn LogDir>,
        options: LogOptions,
    ) -> Result<(HotLog, Recovered), LogError> {
        let mut scanned = recovery::scan(dir.as_ref())?;
        if scanned.tail_len > 0 {
            // Records a killed process wrote but never synced sit in the page cache: sync them
            // now, so that every recovered record is durable as `durable_lsn` says.
            scanned.tail.sync_data().map_err(|source| LogError::Io {
                action: format!("sync the recovered tail in {}", dir.location()),
                source,
            })?;
        }
        let shared = Arc::new(Shared::new(scanned.next_lsn, scanned.segments));
        let appender = Appender {
            shared: Arc::clone(&shared),
            dir: Arc::clone(&dir),
            file: scanned.tail,
            file_len: scanned.tail_len,
            zeroed: scanned.tail_zeroed,
            segment_bytes: options.segment_bytes.max(1),
            preallocate_bytes: options.preallocate_bytes,
            zeros: Vec::new(),
        };
        let handle = std::thread::Builder::new()
            .name("botflow-log".to_owned())
            .spawn(move || appender.run())
            .map_err(|source| LogError::Io {
                action: "start the log appender thread".to_owned(),
                source,
            })?;
        let recovered = Recovered {
            records: scanned.records,
            truncated_bytes: scanned.truncated,
        };
        let log = HotLog {
            shared,
            dir,
            appender: Some(handle),
            lazy_sync: options.lazy_sync,
        };
        Ok((log, recovered))
    }

    /// Appends one record and starts its sync; returns its LSN at once (not yet durable: see
    /// [`HotLog::wait_durable`]).
    pub fn append(&self, payload: &[u8]) -> Result<Lsn, LogError> {
        self.shared.append(&[payload], Duration::ZERO)
    }

    /// Appends one record nobody waits for yet: it joins the next sync another append or a
    /// waiter starts, and starts one itself only after [`LogOptions::lazy_sync`].
    pub fn append_lazy(&self, payload: &[u8]) -> Result<Lsn, LogError> {
        self.shared.append(&[payload], self.lazy_sync)
    }

    /// Appends one record whose sync may wait up to `may_wait` for one that something else
    /// starts (a record expected to follow at once, so one `fdatasync` covers both).
    pub fn append_within(&self, payload: &[u8], may_wait: Duration) -> Result<Lsn, LogError> {
        self.shared.append(&[payload], may_wait)
    }

    /// Appends records with consecutive LSNs, in one group; returns the last LSN.
    pub fn append_all<P: AsRef<[u8]>>(&self, payloads: &[P]) -> Result<Lsn, LogError> {
        self.shared.append(payloads, Duration::ZERO)
    }

    /// Appends one record and blocks until it is durable.
    pub fn append_durable(&self, payload: &[u8]) -> Result<Lsn, LogError> {
        let lsn = self.append(payload)?;
        self.wait_durable(lsn)?;
        Ok(lsn)
    }

    /// Blocks until every record up to `lsn` is durable.
    pub fn wait_durable(&self, lsn: Lsn) -> Result<(), LogError> {
        self.shared.wait_durable(lsn)
    }

    /// Waits (async) until every record up to `lsn` is durable.
    pub async fn wait_durable_async(&self, lsn: Lsn) -> Result<(), LogError> {
        self.durable_waiter(lsn).await
    }

    /// A future, independent of `self`, that resolves once every record up to `lsn` is durable
    /// (or fails when the log is poisoned or closed first): awaited by callers that must not
    /// hold a thread while the `fdatasync` runs.
    pub fn durable_waiter(
        &self,
        lsn: Lsn,
    ) -> impl std::future::Future<Output = Result<(), LogError>> + Send + 'static {
        // Asked for now, not when first polled: a waiter dropped unpolled still gets its sync.
        self.shared.want(lsn);
        self.durable_watcher(lsn)
    }

    /// [`HotLog::durable_waiter`] that asks for no sync: it resolves with the sync that the
    /// records' own deadlines, an eager append or another waiter start.
    pub fn durable_watcher(
        &self,
        lsn: Lsn,
    ) -> impl std::future::Future<Output = Result<(), LogError>> + Send + 'static {
        let mut watch = self.shared.watch.subscribe();
        let shared = Arc::clone(&self.shared);
        async move {
            let reached = watch
                .wait_for(|w| w.durable >= lsn || w.poisoned)
                .await
                .map(|w| w.durable >= lsn);
            match reached {
                Ok(true) => Ok(()),
                Ok(false) => Err(shared.poison_error()),
                Err(_) => Err(LogError::Closed),
            }
        }
    }

    /// Every record up to this LSN is durable (0: none).
    pub fn durable_lsn(&self) -> Lsn {
        self.shared.watermark().durable
    }

    /// The LSN of the last record appended, durable or not (0: none).
    pub fn last_lsn(&self) -> Lsn {
        self.shared.last_appended()
    }

    /// Whether a failed write or sync has poisoned the log.
    pub fn is_poisoned(&self) -> bool {
        self.shared.watermark().poisoned
    }

    /// Counters since the log was opened.
    pub fn stats(&self) -> LogStats {
        let counters = &self.shared.counters;
        LogStats {
            appends: counters.appends.load(Ordering::Relaxed),
            syncs: counters.groups.load(Ordering::Relaxed),
            bytes: counters.bytes.load(Ordering::Relaxed),
            sync_time: Duration::from_nanos(counters.sync_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Deletes every segment whose records all lie below `lsn` and are durable (never the
    /// segment being written); returns how many were deleted.
    pub fn delete_below(&self, lsn: Lsn) -> Result<usize, LogError> {
        let limit = lsn.min(self.durable_lsn() + 1);
        let mut segments = self
            .shared
            .segments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut deleted = 0;
        while segments.len() > 1 && segments[1].first <= limit {
            let name = segments[0].name.clone();
            self.dir.remove(&name).map_err(|source| LogError::Io {
                action: format!("delete {}/{name}", self.dir.location()),
                source,
            })?;
            segments.remove(0);
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Whether [`HotLog::delete_below`] with this `lsn` would delete a segment.
    pub fn has_segment_below(&self, lsn: Lsn) -> bool {
        let limit = lsn.min(self.durable_lsn() + 1);
        let segments = self
            .shared
            .segments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        segments.len() > 1 && segments[1].first <= limit
    }

    /// The segment files, oldest first (for tests and diagnostics).
    pub fn segment_names(&self) -> Vec<String> {
        self.shared
            .segments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }
}

impl Drop for HotLog {
    /// Writes and syncs what is pending, then stops the appender thread.
    fn drop(&mut self) {
        self.shared.close();
        if let Some(handle) = self.appender.take() {
            let _ = handle.join();
        }
    }
}

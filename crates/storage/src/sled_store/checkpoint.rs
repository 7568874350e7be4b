//! Checkpoints: copying the overlay's logged writes into sled in the background, then deleting
//! the log segments no recovery needs any more.
//!
//! One checkpoint, in order:
//! 1. Under the commit lock, freeze the active layer (its writes reach LSN `L`) and note the
//!    oldest unprocessed event `E`.
//! 2. Wait until the log is durable through `L`: sled never holds a write the log could lose.
//! 3. Write the frozen layer into sled tree by tree, `flush` sled and `fdatasync` its data
//!    file; only then write `meta/checkpoint_lsn = L` and `meta/journal_floor = E` and sync
//!    again: the checkpoint survives a power loss from here on.
//! 4. Drop the frozen layer (readers now find its writes in sled).
//! 5. Delete the log segments whose records all lie below `min(L + 1, E)`.
//!
//! A crash anywhere in 3 leaves sled with some of the layer's writes and the old
//! `checkpoint_lsn`: recovery replays every redo record above it in order, which rewrites the
//! same keys with the same final values. A checkpoint is skipped when the overlay is empty.

use super::Core;
use super::trees::T;
use crate::error::StoreError;
use crate::log::{LogError, Lsn};
use crate::store::StoreResult;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The `meta` key (written by checkpoints straight into sled) of the last checkpointed LSN.
pub(super) const CHECKPOINT_LSN: &[u8] = b"checkpoint_lsn";
/// The `meta` key of the journal's processed floor: every event below it is processed.
pub(super) const JOURNAL_FLOOR: &[u8] = b"journal_floor";

/// What one checkpoint did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Keys written into sled (removals included).
    pub keys: usize,
    /// The LSN the checkpoint reached (0: nothing to checkpoint).
    pub lsn: Lsn,
    /// Log segments deleted afterwards.
    pub segments_deleted: usize,
}

/// A crash point inside a checkpoint, only with the `test-support` feature:
/// `BOTFLOW_KILL_AT=<point>` ends the process there at once, without running destructors (the
/// storage crash test sets it in its child processes).
fn kill_point(point: &str) {
    #[cfg(feature = "test-support")]
    if std::env::var("BOTFLOW_KILL_AT").as_deref() == Ok(point) {
        std::process::exit(86);
    }
    #[cfg(not(feature = "test-support"))]
    let _ = point;
}

fn log_error(action: &'static str) -> impl FnOnce(LogError) -> StoreError {
    move |source| StoreError::Log { action, source }
}

/// Runs one checkpoint (see the [module docs](self)); one at a time.
pub(super) fn run(core: &Core) -> StoreResult<CheckpointReport> {
    // Held by one checkpoint at a time; holds the event floor of a frozen layer that a failed
    // checkpoint left, for the next one to finish.
    let mut pending_floor = core
        .checkpointing
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let frozen = {
        let _turn = core.commit.lock().unwrap_or_else(PoisonError::into_inner);
        let frozen = core.base.overlay.freeze();
        if frozen.as_ref().is_some_and(|f| f.fresh) {
            // Every event below the floor is processed, and the commit that marked it is in
            // this layer or an older one.
            *pending_floor = Some(
                core.journal
                    .lowest_unprocessed()
                    .unwrap_or(core.log.last_lsn() + 1),
            );
        }
        frozen
    };
    let event_floor = pending_floor.unwrap_or(0);
    let mut report = CheckpointReport::default();
    if let Some(frozen) = frozen {
        core.log
            .wait_durable(frozen.lsn)
            .map_err(log_error("wait for the log before a checkpoint"))?;
        for &t in &T::ALL {
            let writes = frozen.writes.tree(t);
            if writes.is_empty() {
                continue;
            }
            // Key by key, not `apply_batch`: a batch takes sled's process-wide write lock,
            // which every sled read waits for (a new event's dedup lookup stalled up to 240 ms
            // behind a checkpoint's batch). Atomicity is not needed here: readers see the frozen
            // layer over sled until it is released, and recovery redoes a cut-short copy.
            let tree = core.base.sled_tree(t);
            for (key, slot) in writes {
                match &slot.value {
                    Some(value) => tree.insert(key.as_slice(), value.clone())?,
                    None => tree.remove(key.as_slice())?,
                };
            }
            kill_point("checkpoint-tree");
        }
        // The layer's writes are durable before the mark that says so is written: recovery
        // never trusts sled's write order.
        sync_sled(core)?;
        kill_point("checkpoint-synced");
        let meta = core.base.sled_tree(T::Meta);
        meta.insert(CHECKPOINT_LSN, &frozen.lsn.to_le_bytes())?;
        meta.insert(JOURNAL_FLOOR, super::codec::encode("meta", &event_floor)?)?;
        sync_sled(core)?;
        kill_point("checkpoint-marked");
        core.checkpoint_lsn
            .store(frozen.lsn, std::sync::atomic::Ordering::Release);
        core.journal.set_floor(event_floor);
        core.base.release_frozen();
        *pending_floor = None;
        report.keys = frozen.writes.len();
        report.lsn = frozen.lsn;
    }
    // Below `keep` every redo record is in sled durably and every event processed with its
    // mark there too.
    let keep = (core.checkpoint_lsn() + 1).min(core.journal.floor());
    if core.log.has_segment_below(keep) {
        report.segments_deleted = core
            .log
            .delete_below(keep)
            .map_err(log_error("delete checkpointed log segments"))?;
        kill_point("checkpoint-truncated");
    }
    Ok(report)
}

/// Makes everything written into sled so far survive a power loss: sled's `flush` writes its
/// buffers (with `sync_file_range`, which does not flush the device cache), then an
/// `fdatasync` of its data file does.
fn sync_sled(core: &Core) -> StoreResult<()> {
    core.base.db.flush()?;
    let data = core.path.join("db");
    let io = |err: std::io::Error| {
        StoreError::Database(format!("sync {} after a checkpoint: {err}", data.display()))
    };
    std::fs::File::open(&data)
        .map_err(io)?
        .sync_data()
        .map_err(io)
}

/// When the background thread checkpoints.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schedule {
    /// Checkpoint at least this often while there are writes (`None`: only on demand and when
    /// the store closes).
    pub(super) every: Option<Duration>,
    /// Checkpoint early once the overlay holds this many keys.
    pub(super) max_keys: usize,
}

/// The background checkpoint thread; stopping it (on drop) runs a last checkpoint.
pub(super) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<std::thread::JoinHandle<()>>,
}

/// How often the thread looks at the overlay's size.
const POLL: Duration = Duration::from_millis(50);

impl Checkpointer {
    pub(super) fn start(core: Arc<Core>, schedule: Schedule) -> Result<Self, StoreError> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("botflow-checkpoint".to_owned())
            .spawn(move || background(&core, schedule, &signal))
            .map_err(|err| StoreError::Database(format!("start the checkpoint thread: {err}")))?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }
}

fn background(core: &Core, schedule: Schedule, stop: &(Mutex<bool>, Condvar)) {
    let (flag, wake) = stop;
    let mut last = Instant::now();
    loop {
        let stopping = {
            let guard = flag.lock().unwrap_or_else(PoisonError::into_inner);
            let (guard, _) = wake
                .wait_timeout_while(guard, POLL, |stopped| !*stopped)
                .unwrap_or_else(PoisonError::into_inner);
            *guard
        };
        let due = stopping
            || schedule.every.is_some_and(|every| last.elapsed() >= every)
            || core.base.overlay.active_len() >= schedule.max_keys;
        if !due {
            continue;
        }
        last = Instant::now();
        if core.log.is_poisoned() || (stopping && !core.final_checkpoint.load(Ordering::Acquire)) {
            // Nothing more can become durable; recovery at the next start replays the log.
            if stopping {
                return;
            }
            continue;
        }
        match run(core) {
            Ok(report) if report.keys > 0 => {
                tracing::debug!(keys = report.keys, lsn = report.lsn, "checkpoint");
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "checkpoint failed; retrying later"),
        }
        if stopping {
            return;
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

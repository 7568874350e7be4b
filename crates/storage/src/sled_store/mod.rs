//! The sled backend of [`crate::Store`]: one sled database, one tree per record kind.

mod checkpoint;
mod codec;
mod combine;
mod flows;
mod integrity;
mod journal;
mod ledger;
mod notifications;
mod outbox;
mod outcomes;
mod overlay;
mod pages;
mod recurring;
mod redo;
mod retention;
mod steps;
mod tokens;
mod topics;
mod trees;
mod version_cache;
mod view;

pub use checkpoint::CheckpointReport;

use crate::commit::{DueTimer, NotifyOutcome, OutboxStats, StepCommit, StepCommitted};
use crate::error::StoreError;
use crate::flows::{ActiveFlows, Draft, DraftSource, FlowSummary, FlowVersion, Published};
use crate::ids::{EventId, OutboxId, PageId, Psid};
use crate::journal::{Appended, JournalEntry, NewJournalEvent};
use crate::ledger::TopicLedger;
use crate::log::{HotLog, LogDir, LogError, LogOptions, Lsn, OsDir};
use crate::notification::{Notification, NotificationCancel, NotificationContent, NotificationId};
use crate::outbox::OutboundMessage;
use crate::outcome::Outcome;
use crate::recurring::{
    RecurringChange, RecurringChanged, RecurringNotifyOutcome, RecurringPass, RecurringToken,
};
use crate::retention::{RetentionPolicy, SweepReport};
use crate::session::Session;
use crate::store::{BodyFor, DurableWait, Store, StoreResult};
use crate::token::{NewToken, OtnToken, TokenAdded, TokenMark};
use crate::topic::{DeletedTopic, Topic, TopicSummary};
use botflow_flow::{Diagnostic, FlowDocument, FlowId, TopicId, ValidFlow};
use codec::{Key, decode};
use serde::de::DeserializeOwned;
use sled::transaction::ConflictableTransactionError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use trees::{T, Tx, TxResult};
use view::{Base, TreeView};

/// Format of the database as a whole; bumped when trees or keys change shape.
pub const DATABASE_FORMAT: u32 = 1;

/// Settings of a [`SledStore`].
#[derive(Clone)]
pub struct StoreOptions {
    /// How often sled's own background thread fsyncs (`None`: never). Durability does not rest
    /// on it: commits are durable in the log, and checkpoints sync sled themselves.
    pub flush_every_ms: Option<u64>,
    /// sled's page cache size in bytes.
    pub cache_capacity_bytes: u64,
    /// Published flow versions kept decoded in memory; beyond it the least recently used are
    /// dropped. Default 1,024.
    pub version_cache_entries: usize,
    /// Where the event log lives: `None` (the default) is `<path>/log` on the real filesystem;
    /// tests pass a simulated directory (`SimDir`) to cut power or fail `fdatasync`.
    pub log_dir: Option<Arc<dyn LogDir>>,
    /// Size of a log segment; checkpointed segments are deleted whole (64 MiB).
    pub log_segment_bytes: u64,
    /// How often logged writes are checkpointed into sled (100 ms; `None`: only when the overlay
    /// reaches `checkpoint_keys`, on [`SledStore::checkpoint`] and when the store closes).
    pub checkpoint_every_ms: Option<u64>,
    /// Checkpoint early once this many written keys wait in memory (100,000).
    pub checkpoint_keys: usize,
    /// How long a new event's log record waits for its step's commit to start the one
    /// `fdatasync` that makes both durable; then it starts its own (2 ms).
    pub event_sync_wait: std::time::Duration,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("flush_every_ms", &self.flush_every_ms)
            .field("cache_capacity_bytes", &self.cache_capacity_bytes)
            .field("version_cache_entries", &self.version_cache_entries)
            .field("log_dir", &self.log_dir.as_ref().map(|d| d.location()))
            .field("log_segment_bytes", &self.log_segment_bytes)
            .field("checkpoint_every_ms", &self.checkpoint_every_ms)
            .field("checkpoint_keys", &self.checkpoint_keys)
            .field("event_sync_wait", &self.event_sync_wait)
            .finish()
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            flush_every_ms: Some(500),
            cache_capacity_bytes: 256 * 1024 * 1024,
            version_cache_entries: 1_024,
            log_dir: None,
            log_segment_bytes: LogOptions::default().segment_bytes,
            // Short bursts: at 2,800 events/s open loop, p99 webhook -> send was 30-68 ms with
            // 250 ms checkpoints and 12-20 ms with 100 ms (the same CPU per event).
            checkpoint_every_ms: Some(100),
            checkpoint_keys: 100_000,
            // At 1,800 one-reply events/s open loop: 0.87 instead of 1.7 fdatasyncs per event,
            // 11% less CPU; the step commits within a fraction of it when the shard is free.
            event_sync_wait: std::time::Duration::from_millis(2),
        }
    }
}

/// What the store and its checkpoint thread share.
pub(super) struct Core {
    /// The log in `<path>/log`: inbound events and the redo records of commits. Declared first
    /// so it is dropped (its appender thread stopped) before sled releases the file lock that
    /// guards the log too.
    log: HotLog,
    /// The unprocessed inbound events.
    journal: journal::EventJournal,
    /// Taken by every transaction for its whole run: commits are logged and applied in one
    /// order (the role of sled's store-wide transaction lock).
    commit: Mutex<()>,
    /// Held by the running checkpoint, with the event floor of its frozen layer.
    checkpointing: Mutex<Option<u64>>,
    /// The last LSN whose writes sled holds durably (`meta/checkpoint_lsn`).
    checkpoint_lsn: AtomicU64,
    /// Whether closing the store runs a last checkpoint (tests turn it off to leave work for
    /// recovery).
    final_checkpoint: std::sync::atomic::AtomicBool,
    /// sled and the overlay of logged writes over it.
    base: Base,
    /// The database directory.
    path: PathBuf,
    /// [`StoreOptions::event_sync_wait`].
    event_sync_wait: std::time::Duration,
}

impl Core {
    fn checkpoint_lsn(&self) -> u64 {
        self.checkpoint_lsn.load(Ordering::Acquire)
    }

    /// Runs `f` as one transaction: under the commit lock, its writes become one redo record
    /// appended to the log (not waited for; its sync starts at once when `eager`, else with the
    /// next one, see [`HotLog::append_lazy`]) and are applied to the overlay. Returns the
    /// record's LSN (`None`: nothing written).
    fn transact<R>(
        &self,
        eager: bool,
        f: impl Fn(&Tx<'_>) -> TxResult<R>,
    ) -> StoreResult<(R, Option<u64>)> {
        let _turn = self.commit.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = Tx::new(&self.base);
        let result = f(&tx).map_err(|err| match err {
            ConflictableTransactionError::Abort(err) => err,
            ConflictableTransactionError::Storage(err) => StoreError::from(err),
            ConflictableTransactionError::Conflict => {
                StoreError::Database("a transaction met a conflict".to_owned())
            }
        })?;
        let writes = tx.writes.into_inner();
        if writes.is_empty() {
            return Ok((result, None));
        }
        let record = redo::encode(&writes);
        let appended = if eager {
            self.log.append(&record)
        } else {
            self.log.append_lazy(&record)
        };
        let lsn = appended.map_err(|source| StoreError::Log {
            action: "append a commit",
            source,
        })?;
        self.apply(writes, lsn);
        Ok((result, Some(lsn)))
    }

    /// Applies logged writes to the overlay.
    fn apply(&self, writes: overlay::Writes, lsn: u64) {
        self.base.overlay.apply(writes, lsn, |t, key| {
            // Only the queues and indexes whose entries come and go within seconds are worth a
            // sled read to drop a tombstone; elsewhere (and on a failed read) the key counts as
            // present and a removal keeps its tombstone.
            !matches!(
                t,
                T::OutboxDue | T::SubQueue | T::TimersDue | T::NotificationMessages
            ) || self.base.sled_tree(t).contains_key(key).unwrap_or(true)
        });
    }

    /// Replays the redo records after the last checkpoint into the overlay (at open) and
    /// returns the other records (inbound events) for the journal.
    fn replay(&self, records: Vec<(Lsn, Vec<u8>)>) -> StoreResult<Vec<(Lsn, Vec<u8>)>> {
        let last = self.log.last_lsn();
        if self.checkpoint_lsn() > last {
            // The log is not the one the checkpoint covered (removed or restored by hand): its
            // LSNs start again. Treat what it holds as checkpointed, so new records count.
            tracing::warn!(
                checkpoint = self.checkpoint_lsn(),
                last,
                "the log is behind the last checkpoint; not replaying it"
            );
            let meta = self.base.sled_tree(T::Meta);
            meta.insert(checkpoint::CHECKPOINT_LSN, &last.to_le_bytes())?;
            self.base.db.flush()?;
            self.checkpoint_lsn.store(last, Ordering::Release);
            return Ok(records
                .into_iter()
                .filter(|(_, bytes)| bytes.first() != Some(&redo::REDO_RECORD_V1))
                .collect());
        }
        let floor = self.checkpoint_lsn();
        let mut events = Vec::new();
        let mut replayed = 0usize;
        for (lsn, bytes) in records {
            if bytes.first() == Some(&redo::REDO_RECORD_V1) {
                if lsn > floor {
                    self.apply(redo::decode(lsn, &bytes)?, lsn);
                    replayed += 1;
                }
            } else {
                events.push((lsn, bytes));
            }
        }
        if replayed > 0 {
            tracing::info!(
                replayed,
                "replayed commits logged after the last checkpoint"
            );
        }
        Ok(events)
    }
}

/// The embedded implementation of [`Store`]: commits are redo records in the log (durable by
/// group-committed `fdatasync`) applied to an in-memory overlay, which a background thread
/// checkpoints into sled (`design/HOT-PATH.md`; see `checkpoint.rs`).
pub struct SledStore {
    /// Held for its `Drop`: stops the thread (with a last checkpoint) before the rest goes.
    _checkpointer: checkpoint::Checkpointer,
    core: Arc<Core>,
    /// Step-commit batches of concurrent callers (scheduler shards), committed together.
    step_batches: combine::Combiner<StepCommit, StoreResult<StepCommitted>>,
    valid_flows: Mutex<version_cache::VersionCache>,
    /// Outbox figures: pending counted from the queues at open, final states since open.
    outbox_stats: Mutex<OutboxStats>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

/// How long [`SledStore::open`] waits for the database's file lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens sled, waiting up to [`LOCK_WAIT`] while the file lock is held: a store dropped in this
/// process releases the lock only when sled's background threads have ended, a moment later.
/// Another process holding it gets the lock error after the wait.
fn open_when_unlocked(config: &sled::Config) -> Result<sled::Db, sled::Error> {
    let started = std::time::Instant::now();
    loop {
        match config.open() {
            Err(sled::Error::Io(error))
                if error.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

impl SledStore {
    /// Opens (or creates) the database in directory `path`, finishing any interrupted topic
    /// deletion.
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .path(path.as_ref())
            .flush_every_ms(options.flush_every_ms)
            .cache_capacity(options.cache_capacity_bytes);
        let db = open_when_unlocked(&config)?;
        let trees = T::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<Result<Vec<_>, _>>()?;
        let log_dir: Arc<dyn LogDir> = match &options.log_dir {
            Some(dir) => Arc::clone(dir),
            None => {
                let location = path.as_ref().join("log");
                Arc::new(OsDir::open(&location).map_err(|source| StoreError::Log {
                    action: "create the log directory",
                    source: LogError::Io {
                        action: format!("create {}", location.display()),
                        source,
                    },
                })?)
            }
        };
        let (log, recovered) = HotLog::open(
            log_dir,
            LogOptions {
                segment_bytes: options.log_segment_bytes,
                ..LogOptions::default()
            },
        )
        .map_err(|source| StoreError::Log {
            action: "open",
            source,
        })?;
        if recovered.truncated_bytes > 0 {
            tracing::warn!(
                bytes = recovered.truncated_bytes,
                "cut a torn tail off the event log (records never acknowledged)"
            );
        }
        let base = Base::new(db, trees);
        let checkpoint_lsn = base
            .sled_tree(T::Meta)
            .get(checkpoint::CHECKPOINT_LSN)?
            .map(|bytes| {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
                u64::from_le_bytes(raw)
            })
            .unwrap_or(0);
        let core = Arc::new(Core {
            log,
            journal: journal::EventJournal::default(),
            commit: Mutex::new(()),
            checkpointing: Mutex::new(None),
            checkpoint_lsn: AtomicU64::new(checkpoint_lsn),
            final_checkpoint: std::sync::atomic::AtomicBool::new(true),
            base,
            path: path.as_ref().to_path_buf(),
            event_sync_wait: options.event_sync_wait,
        });
        let records = core.replay(recovered.records)?;
        let checkpointer = checkpoint::Checkpointer::start(
            Arc::clone(&core),
            checkpoint::Schedule {
                every: options
                    .checkpoint_every_ms
                    .map(std::time::Duration::from_millis),
                max_keys: options.checkpoint_keys.max(1),
            },
        )?;
        let store = Self {
            _checkpointer: checkpointer,
            core,
            step_batches: combine::Combiner::default(),
            valid_flows: Mutex::new(version_cache::VersionCache::new(
                options.version_cache_entries,
            )),
            outbox_stats: Mutex::new(OutboxStats::default()),
        };
        store.check_format()?;
        store.finish_topic_deletions()?;
        store.journal_recover(records)?;
        store.retention_backfill()?;
        store.ledger_backfill()?;
        store.notifications_resume()?;
        let pending = store.count_pending()?;
        store.count_outbox(|s| s.pending = pending);
        Ok(store)
    }

    fn check_format(&self) -> StoreResult<()> {
        match self.read::<u32>(T::Meta, b"format")? {
            Some(found) if found > DATABASE_FORMAT => Err(StoreError::UnsupportedDatabaseFormat {
                found,
                supported: DATABASE_FORMAT,
            }),
            Some(_) => Ok(()),
            None => {
                self.transact(|tx| tx.put(T::Meta, b"format", &DATABASE_FORMAT))?;
                self.durable()
            }
        }
    }

    /// Tree `t` as readers see it (sled under the overlay).
    fn tree(&self, t: T) -> TreeView<'_> {
        self.core.base.tree(t)
    }

    /// Runs `f` as one atomic transaction over every tree.
    fn transact<R>(&self, f: impl Fn(&Tx<'_>) -> TxResult<R>) -> StoreResult<R> {
        Ok(self.core.transact(true, f)?.0)
    }

    /// [`Self::transact`] for writes nobody waits for yet (send outcomes): their record's sync
    /// waits for the next one a waiter or another commit starts (at most the log's `lazy_sync`).
    fn transact_lazy<R>(&self, f: impl Fn(&Tx<'_>) -> TxResult<R>) -> StoreResult<R> {
        Ok(self.core.transact(false, f)?.0)
    }

    /// Waits until everything committed so far is durable in the log (shared `fdatasync`).
    fn durable(&self) -> StoreResult<()> {
        let log = &self.core.log;
        log.wait_durable(log.last_lsn())
            .map_err(|source| StoreError::Log {
                action: "wait for the log's fdatasync",
                source,
            })
    }

    /// The wait (holding no thread) until the log is durable through `lsn`.
    fn durable_wait(&self, lsn: Lsn, action: &'static str) -> DurableWait {
        self.durable_wait_for(self.core.log.durable_waiter(lsn), action)
    }

    /// The wait (holding no thread) for `waiter`, a [`crate::log::HotLog`] durable waiter.
    fn durable_wait_for(
        &self,
        waiter: impl std::future::Future<Output = Result<(), LogError>> + Send + 'static,
        action: &'static str,
    ) -> DurableWait {
        DurableWait::on(async move {
            waiter
                .await
                .map_err(|source| StoreError::Log { action, source })
        })
    }

    /// Reads one record outside a transaction.
    fn read<V: DeserializeOwned>(&self, t: T, key: &[u8]) -> StoreResult<Option<V>> {
        trees::read(&self.core.base, t, key)
    }

    /// Decodes every record under a key prefix, in key order.
    fn scan<V: DeserializeOwned>(&self, t: T, prefix: &[u8]) -> StoreResult<Vec<V>> {
        self.tree(t)
            .scan_prefix(prefix)
            .map(|item| {
                let (_, value) = item?;
                decode(t.name(), &value)
            })
            .collect()
    }

    /// The keys under a prefix, in order.
    fn scan_keys(&self, t: T, prefix: &[u8]) -> StoreResult<Vec<sled::IVec>> {
        self.tree(t).scan_prefix(prefix).keys().collect()
    }

    fn page_key(page: &PageId) -> Vec<u8> {
        Key::new().str(page.as_str()).finish()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, version_cache::VersionCache> {
        self.valid_flows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many published flow versions are cached in memory (at most
    /// [`StoreOptions::version_cache_entries`]).
    pub fn cached_versions(&self) -> usize {
        self.cache().len()
    }

    /// The event log, only with the `test-support` feature: for tests of truncation and
    /// poisoning.
    #[cfg(feature = "test-support")]
    pub fn event_log(&self) -> &HotLog {
        &self.core.log
    }

    /// Checkpoints now: copies the logged writes into sled, makes them durable there and
    /// deletes the log segments no recovery needs (the background thread does this every
    /// [`StoreOptions::checkpoint_every_ms`]).
    pub fn checkpoint(&self) -> StoreResult<CheckpointReport> {
        checkpoint::run(&self.core)
    }

    /// Closes the store like a crash after its last `flush`, only with the `test-support`
    /// feature: no last checkpoint, so the next open replays the log.
    #[cfg(feature = "test-support")]
    pub fn close_without_checkpoint(self) {
        self.core.final_checkpoint.store(false, Ordering::Release);
    }

    /// The raw sled database after a checkpoint (so it holds every commit so far), only with
    /// the `test-support` feature: for this crate's tests that damage records on purpose and
    /// its benchmarks that compare the store with plain sled. Writes made through it are seen
    /// by the store unless the store writes the same key later.
    #[cfg(feature = "test-support")]
    pub fn raw_db(&self) -> &sled::Db {
        if let Err(err) = self.checkpoint() {
            tracing::warn!(error = %err, "checkpoint before raw access failed");
        }
        &self.core.base.db
    }
}

impl Store for SledStore {
    fn ensure_page(&self, page: &PageId, now_ms: u64) -> StoreResult<bool> {
        self.page_ensure(page, now_ms)
    }

    fn page_exists(&self, page: &PageId) -> StoreResult<bool> {
        self.tree(T::Pages).contains_key(Self::page_key(page))
    }

    fn list_pages(&self) -> StoreResult<Vec<PageId>> {
        self.pages_list()
    }

    fn create_topic(&self, page: &PageId, name: &str, now_ms: u64) -> StoreResult<Topic> {
        self.topic_create(page, name, now_ms)
    }

    fn get_topic(&self, page: &PageId, topic: &TopicId) -> StoreResult<Option<Topic>> {
        self.topic_get(page, topic)
    }

    fn find_topic_by_name(&self, page: &PageId, name: &str) -> StoreResult<Option<Topic>> {
        self.topic_by_name(page, name)
    }

    fn list_topics(&self, page: &PageId, now_ms: u64) -> StoreResult<Vec<TopicSummary>> {
        self.topic_list(page, now_ms)
    }

    fn topic_ledger(
        &self,
        page: &PageId,
        topic: &TopicId,
        now_ms: u64,
    ) -> StoreResult<Option<TopicLedger>> {
        self.ledger_read(page, topic, now_ms)
    }

    fn rename_topic(&self, page: &PageId, topic: &TopicId, name: &str) -> StoreResult<Topic> {
        self.topic_rename(page, topic, name)
    }

    fn delete_topic(
        &self,
        page: &PageId,
        topic: &TopicId,
        force: bool,
        now_ms: u64,
    ) -> StoreResult<DeletedTopic> {
        self.topic_delete(page, topic, force, now_ms)
    }

    fn save_draft(&self, page: &PageId, source: DraftSource, now_ms: u64) -> StoreResult<Draft> {
        self.draft_save(page, source, now_ms)
    }

    fn draft(&self, page: &PageId, flow: &FlowId) -> StoreResult<Option<Draft>> {
        self.read(T::Drafts, &flows::flow_key(page, flow))
    }

    fn publish(&self, page: &PageId, flow: &FlowId, now_ms: u64) -> StoreResult<Published> {
        self.flow_publish(page, flow, now_ms)
    }

    fn publish_document(
        &self,
        page: &PageId,
        document: FlowDocument,
        now_ms: u64,
    ) -> StoreResult<Published> {
        self.flow_publish_document(page, document, now_ms)
    }

    fn rollback(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
        now_ms: u64,
    ) -> StoreResult<Published> {
        self.flow_rollback(page, flow, version, now_ms)
    }

    fn list_flows(&self, page: &PageId) -> StoreResult<Vec<FlowSummary>> {
        self.flow_list(page)
    }

    fn flow_versions(&self, page: &PageId, flow: &FlowId) -> StoreResult<Vec<FlowVersion>> {
        self.scan(T::Versions, &flows::flow_key(page, flow))
    }

    fn flow_version(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
    ) -> StoreResult<Option<FlowVersion>> {
        self.read(T::Versions, &flows::version_key(page, flow, version))
    }

    fn valid_flow(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
    ) -> StoreResult<Option<Arc<ValidFlow>>> {
        self.flow_valid(page, flow, version)
    }

    fn active_version(&self, page: &PageId, flow: &FlowId) -> StoreResult<Option<u32>> {
        Ok(self.flow_head(page, flow)?.map(|head| head.active))
    }

    fn live_trigger_conflicts(
        &self,
        page: &PageId,
        document: &FlowDocument,
    ) -> StoreResult<Vec<Diagnostic>> {
        self.flow_trigger_conflicts(page, document)
    }

    fn active_flows(&self, page: &PageId) -> StoreResult<ActiveFlows> {
        self.flow_active_all(page)
    }

    fn load_session(&self, page: &PageId, psid: &Psid) -> StoreResult<Option<Session>> {
        self.read(T::Sessions, &steps::session_key(page, psid))
    }

    fn list_subscribers(&self, page: &PageId) -> StoreResult<Vec<Psid>> {
        self.subscribers_list(page)
    }

    fn add_token(
        &self,
        page: &PageId,
        psid: &Psid,
        token: NewToken,
        now_ms: u64,
    ) -> StoreResult<TokenAdded> {
        let added = self.transact(|tx| tokens::add(tx, page, psid, &token, now_ms))?;
        self.durable()?;
        Ok(added)
    }

    fn get_token(&self, page: &PageId, token: &str) -> StoreResult<Option<OtnToken>> {
        self.read(T::Tokens, &tokens::token_key(page, token))
    }

    fn usable_tokens(
        &self,
        page: &PageId,
        psid: &Psid,
        topic: &TopicId,
        now_ms: u64,
    ) -> StoreResult<Vec<OtnToken>> {
        self.tokens_usable(page, psid, topic, now_ms)
    }

    fn usable_token_counts(
        &self,
        page: &PageId,
        psid: &Psid,
        now_ms: u64,
    ) -> StoreResult<BTreeMap<TopicId, u64>> {
        self.tokens_counts(page, psid, now_ms)
    }

    fn topic_holders(&self, page: &PageId, topic: &TopicId, now_ms: u64) -> StoreResult<Vec<Psid>> {
        self.tokens_holders(page, topic, now_ms)
    }

    fn mark_token(
        &self,
        page: &PageId,
        token: &str,
        mark: TokenMark,
        now_ms: u64,
    ) -> StoreResult<bool> {
        let changed = self.transact(|tx| tokens::mark(tx, page, token, &mark, now_ms))?;
        self.durable()?;
        Ok(changed)
    }

    fn expire_tokens(&self, now_ms: u64) -> StoreResult<u64> {
        self.tokens_expire(now_ms)
    }

    fn journal_append(
        &self,
        page: &PageId,
        event: &EventId,
        psid: &Psid,
        payload: &serde_json::Value,
        received_ms: u64,
    ) -> StoreResult<Appended> {
        let event = NewJournalEvent {
            page: page.clone(),
            event: event.clone(),
            psid: psid.clone(),
            payload: payload.clone(),
            received_ms,
        };
        let mut appended = self.journal_append_all(std::slice::from_ref(&event))?;
        appended.pop().ok_or_else(|| StoreError::Corrupt {
            what: "journal",
            detail: "append returned no outcome".into(),
        })
    }

    fn journal_append_batch(&self, events: &[NewJournalEvent]) -> StoreResult<Vec<Appended>> {
        self.journal_append_all(events)
    }

    fn journal_append_batch_deferred(
        &self,
        events: &[NewJournalEvent],
    ) -> StoreResult<(Vec<Appended>, DurableWait)> {
        let (outcomes, lsn) = self.journal_append_pending(events)?;
        const ACTION: &str = "wait for the event log's fdatasync";
        let wait = match lsn {
            0 => DurableWait::ready(),
            // New events only: their records' own deadline starts the sync if their step's
            // commit has not by then, so the wait asks for none.
            lsn if outcomes.iter().all(|o| matches!(o, Appended::New { .. })) => {
                self.durable_wait_for(self.core.log.durable_watcher(lsn), ACTION)
            }
            lsn => self.durable_wait(lsn, ACTION),
        };
        Ok((outcomes, wait))
    }

    fn unprocessed_events(&self) -> StoreResult<Vec<JournalEntry>> {
        self.journal_unprocessed()
    }

    fn commit_step(&self, commit: StepCommit) -> StoreResult<StepCommitted> {
        self.step_commit(commit)
    }

    fn commit_steps(
        &self,
        commits: Vec<StepCommit>,
    ) -> StoreResult<Vec<StoreResult<StepCommitted>>> {
        self.step_commit_all(commits)
    }

    fn notify_topic(
        &self,
        page: &PageId,
        topic: &TopicId,
        notification: NotificationId,
        body_for: BodyFor<'_>,
        now_ms: u64,
    ) -> StoreResult<NotifyOutcome> {
        self.topic_notify(page, topic, notification, body_for, now_ms)
    }

    fn create_notification(
        &self,
        page: &PageId,
        topic: &TopicId,
        content: &NotificationContent,
        now_ms: u64,
    ) -> StoreResult<Notification> {
        self.notification_create(page, topic, content, now_ms)
    }

    fn expect_notification_runs(
        &self,
        page: &PageId,
        id: NotificationId,
        runs: u64,
        expired: u64,
        now_ms: u64,
    ) -> StoreResult<Notification> {
        self.notification_expect_runs(page, id, runs, expired, now_ms)
    }

    fn close_notification_queuing(
        &self,
        page: &PageId,
        id: NotificationId,
        now_ms: u64,
    ) -> StoreResult<Notification> {
        self.notification_close_queuing(page, id, now_ms)
    }

    fn notification(&self, page: &PageId, id: NotificationId) -> StoreResult<Option<Notification>> {
        self.notification_get(page, id)
    }

    fn notifications(
        &self,
        page: &PageId,
        topic: Option<&TopicId>,
    ) -> StoreResult<Vec<Notification>> {
        self.notification_list(page, topic)
    }

    fn cancel_notification(
        &self,
        page: &PageId,
        id: NotificationId,
        now_ms: u64,
    ) -> StoreResult<NotificationCancel> {
        self.notification_cancel(page, id, now_ms)
    }

    fn recurring_change(
        &self,
        page: &PageId,
        psid: &Psid,
        change: &RecurringChange,
        now_ms: u64,
    ) -> StoreResult<RecurringChanged> {
        self.recurring_apply(page, psid, change, now_ms)
    }

    fn recurring_token(&self, page: &PageId, token: &str) -> StoreResult<Option<RecurringToken>> {
        self.recurring_get(page, token)
    }

    fn recurring_held(
        &self,
        page: &PageId,
        psid: &Psid,
        topic: &TopicId,
    ) -> StoreResult<Option<RecurringToken>> {
        self.recurring_of(page, psid, topic)
    }

    fn recurring_topic_holders(
        &self,
        page: &PageId,
        topic: &TopicId,
    ) -> StoreResult<Vec<RecurringToken>> {
        let mut held = Vec::new();
        for psid in self.recurring_holders(page, topic)? {
            held.extend(self.recurring_of(page, &psid, topic)?);
        }
        Ok(held)
    }

    fn notify_topic_recurring(
        &self,
        page: &PageId,
        topic: &TopicId,
        pass: &RecurringPass<'_>,
        body_for: BodyFor<'_>,
        now_ms: u64,
    ) -> StoreResult<RecurringNotifyOutcome> {
        self.recurring_notify(page, topic, pass, body_for, now_ms)
    }

    fn due_outbound_skipping(
        &self,
        now_ms: u64,
        limit: usize,
        skip: &dyn Fn(OutboxId) -> bool,
    ) -> StoreResult<Vec<OutboundMessage>> {
        self.outbox_due(now_ms, limit, skip)
    }

    fn outbound(&self, id: OutboxId) -> StoreResult<Option<OutboundMessage>> {
        self.read(T::Outbox, &outbox::outbox_key(id))
    }

    fn mark_sent(&self, id: OutboxId, message_id: &str, at_ms: u64) -> StoreResult<()> {
        self.outbox_finish(
            id,
            crate::OutboundStatus::Sent {
                message_id: message_id.to_owned(),
                at_ms,
            },
        )
    }

    fn mark_retry(&self, id: OutboxId, due_ms: u64, error: &str) -> StoreResult<()> {
        self.outbox_retry(id, due_ms, error)
    }

    fn mark_failed(&self, id: OutboxId, error: &str, at_ms: u64) -> StoreResult<()> {
        self.outbox_finish(
            id,
            crate::OutboundStatus::Failed {
                error: error.to_owned(),
                at_ms,
            },
        )
    }

    fn mark_refused(&self, id: OutboxId, reason: &str, at_ms: u64) -> StoreResult<()> {
        self.outbox_finish(
            id,
            crate::OutboundStatus::RefusedByPolicy {
                reason: reason.to_owned(),
                at_ms,
            },
        )
    }

    fn mark_delivered_unconfirmed(&self, id: OutboxId, at_ms: u64) -> StoreResult<()> {
        self.outbox_finish(id, crate::OutboundStatus::DeliveredUnconfirmed { at_ms })
    }

    fn mark_outcomes(&self, outcomes: &[Outcome]) -> StoreResult<Vec<StoreResult<()>>> {
        self.outbox_record(outcomes)
    }

    fn mark_outcomes_deferred(
        &self,
        outcomes: &[Outcome],
    ) -> StoreResult<(Vec<StoreResult<()>>, DurableWait)> {
        let (results, lsn) = self.outbox_record_pending(outcomes)?;
        let wait = match lsn {
            None => DurableWait::ready(),
            Some(lsn) => self.durable_wait(lsn, "wait for the log's fdatasync"),
        };
        Ok((results, wait))
    }

    fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        Ok(*self
            .outbox_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner))
    }

    fn messages_for(&self, page: &PageId, psid: &Psid) -> StoreResult<Vec<OutboundMessage>> {
        self.outbox_messages_for(page, psid)
    }

    fn due_timers(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<DueTimer>> {
        self.timers_due(now_ms, limit)
    }

    fn sweep_retention(
        &self,
        now_ms: u64,
        policy: &RetentionPolicy,
        max_records: usize,
    ) -> StoreResult<SweepReport> {
        self.retention_sweep(now_ms, policy, max_records)
    }

    fn flush(&self) -> StoreResult<()> {
        self.durable()
    }

    fn calls_are_local(&self) -> bool {
        true
    }

    fn log_stats(&self) -> Option<crate::log::LogStats> {
        Some(self.core.log.stats())
    }

    fn flush_deferred(&self) -> Option<DurableWait> {
        Some(self.durable_wait(self.core.log.last_lsn(), "wait for the log's fdatasync"))
    }
}

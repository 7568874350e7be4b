//! The PostgreSQL backend of [`Store`]: one node on tables of its own (SCALE-OUT.md §3.2),
//! plain SQL checked by the shared storage suite, embedded migrations.
//!
//! Every write is one serializable transaction (run again, bounded, when it conflicts with
//! another), so the sled store's guarantees hold with several connections: a step commit is
//! all or nothing, a token pays for one message (`UNIQUE (page_id, token)` on `outbox` as
//! well), an event is processed once (`UNIQUE (page_id, event_id)` on `journal`), and a
//! subscriber's queue is in commit order (every transaction about a subscriber writes its
//! `subscribers` row first). Durable calls commit with `synchronous_commit = on` (the server's
//! WAL flush); non-durable step commits and normal outcomes commit asynchronously and
//! [`Store::flush`] makes them durable.

mod db;
mod flows;
mod journal;
mod leases;
mod ledger;
mod migrate;
mod notifications;
mod outbox;
mod recurring;
mod retention;
mod steps;
mod tls;
mod tokens;
mod topics;

use crate::commit::{DueTimer, NotifyOutcome, OutboxStats, StepCommit, StepCommitted};
use crate::error::StoreError;
use crate::flows::{ActiveFlows, Draft, DraftSource, FlowSummary, FlowVersion, Published};
use crate::ids::{EventId, OutboxId, PageId, Psid};
use crate::journal::{Appended, JournalEntry, NewJournalEvent};
use crate::ledger::TopicLedger;
use crate::notification::{Notification, NotificationCancel, NotificationContent, NotificationId};
use crate::outbox::{OutboundMessage, OutboundStatus};
use crate::outcome::Outcome;
use crate::ownership::Ownership;
use crate::recurring::{
    RecurringChange, RecurringChanged, RecurringNotifyOutcome, RecurringPass, RecurringToken,
};
use crate::retention::{RetentionPolicy, SweepReport};
use crate::session::Session;
use crate::store::{BodyFor, Store, StoreResult};
use crate::token::{NewToken, OtnToken, TokenAdded, TokenMark};
use crate::topic::{DeletedTopic, Topic, TopicSummary};
use botflow_flow::{FlowDocument, FlowId, TopicId, ValidFlow};
use db::Pool;
pub use leases::DEFAULT_LEASE_TTL;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
pub use tls::check_database_ca_file;
use tls::{Connector, Tls};

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// A `postgres://user:password@host:port/database` URL (key=value connection strings work
    /// too). Plain TCP or a unix socket directory as `host`. Its `sslmode` decides TLS as libpq
    /// does (`disable`, `prefer`: the default, `require`; `verify-ca` and `verify-full` read as
    /// `require`); whenever TLS is used the server's certificate chain and host name are
    /// verified ([`PgOptions::ca_file`]).
    pub url: String,
    /// A PEM file of CA certificates trusted for the server's certificate besides the webpki
    /// roots (`BOTFLOW_DATABASE_CA_FILE`): a provider's CA, or a self-signed server certificate.
    pub ca_file: Option<PathBuf>,
    /// The schema botflow's tables live in (`search_path`), created when missing; `None` uses
    /// the server's default (`public`). The tests give each test its own.
    pub schema: Option<String>,
    /// This node's id among the nodes sharing the database (`BOTFLOW_NODE_ID`); `None`: a new
    /// random UUID. A node restarted with the same id takes its leases back at once; with a
    /// new one, the shards of the killed process wait for their leases to expire.
    pub node_id: Option<String>,
    /// How long a shard lease lasts without renewal (`BOTFLOW_SHARD_LEASE_MS`); renewed every
    /// third of it. The failover time after a node dies is about this long.
    pub lease_ttl: Duration,
}

impl PgOptions {
    /// Options for `url`: the default schema, a random node id, the default lease TTL.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            ca_file: None,
            schema: None,
            node_id: None,
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    }
}

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    /// Published versions are immutable: ready-to-run flows are cached.
    valid_flows: Mutex<HashMap<(PageId, FlowId, u32), Arc<ValidFlow>>>,
    /// Outcomes recorded since the store was opened (`pending` unused: counted in SQL).
    finished: Mutex<OutboxStats>,
    /// The shard leases of this node (dropped last: releases them).
    leases: Box<leases::LeaseManager>,
    /// How long a lease lasts without renewal.
    lease_ttl: Duration,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// The leases of this node.
    fn owned(&self) -> &Arc<Ownership> {
        self.leases.ownership()
    }

    /// The epoch this node holds the Page's shard at (0 when it holds none: the fence refuses
    /// the write then).
    fn epoch_of(&self, page: &PageId) -> i64 {
        self.owned()
            .lease(crate::ownership::shard_of(page.as_str()))
            .map_or(0, |l| i64::try_from(l.epoch).unwrap_or(i64::MAX))
    }

    /// The shards this node holds, for the work reads' filter.
    fn owned_shards(&self) -> Vec<i32> {
        self.owned()
            .held()
            .keys()
            .map(|s| i32::try_from(*s).unwrap_or(i32::MAX))
            .collect()
    }

    /// The shards this node may send for now (held, a graceful handover's pause over, the
    /// lease not possibly expired).
    fn dispatchable_shards(&self) -> Vec<i32> {
        let now = std::time::Instant::now();
        self.owned()
            .held()
            .iter()
            .filter(|(_, l)| {
                l.valid_until.is_none_or(|u| now < u) && l.dispatch_after.is_none_or(|a| now >= a)
            })
            .map(|(s, _)| i32::try_from(*s).unwrap_or(i32::MAX))
            .collect()
    }

    /// Gives one message its final status, durably, and counts it.
    fn finish_one(
        &self,
        what: &'static str,
        id: OutboxId,
        status: &OutboundStatus,
    ) -> StoreResult<()> {
        self.pool.write(what, true, |tx| {
            leases::fence_outbox(tx, self.owned(), &[id])?;
            outbox::finish(tx, id, status).map(|_| ())
        })?;
        self.count_outcomes(std::iter::once(status));
        Ok(())
    }
}

/// The `flush_marks` row this thread's flushes update.
fn flush_slot() -> i16 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::thread::current().id().hash(&mut hasher);
    i16::try_from(hasher.finish() % 16).unwrap_or(0)
}

/// The URL with libpq's verifying `sslmode`s, which the driver does not know, read as `require`
/// (which verifies the chain and the host name here).
fn url_for_driver(url: &str) -> String {
    url.replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require")
}

fn config(options: &PgOptions) -> StoreResult<postgres::Config> {
    let mut config: postgres::Config =
        url_for_driver(&options.url)
            .parse()
            .map_err(|err: postgres::Error| {
                let text = err.to_string();
                let hint = if text.contains("sslrootcert") {
                    "; give the CA file with BOTFLOW_DATABASE_CA_FILE (file key database_ca_file) \
                     instead of sslrootcert"
                } else if text.contains("sslmode") {
                    "; sslmode is one of disable, prefer, require (verify-ca and verify-full are \
                     read as require, which verifies the certificate)"
                } else {
                    ""
                };
                StoreError::Postgres {
                    what: "reading the database URL (BOTFLOW_DATABASE_URL / database_url)"
                        .to_owned(),
                    detail: format!(
                        "{err}{hint}; expected postgres://user:password@host:port/database"
                    ),
                    transient: false,
                }
            })?;
    if config.get_application_name().is_none() {
        config.application_name("botflow");
    }
    if let Some(schema) = &options.schema {
        if !schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || schema.is_empty()
        {
            return Err(StoreError::Postgres {
                what: "choosing the schema".to_owned(),
                detail: format!(
                    "schema name {schema:?} must be lowercase ASCII letters, digits and _"
                ),
                transient: false,
            });
        }
        add_option(&mut config, &format!("-c search_path={schema}"));
    }
    Ok(config)
}

/// Appends a server option (`-c name=value`) to the connection's startup options.
fn add_option(config: &mut postgres::Config, option: &str) {
    let options = match config.get_options() {
        Some(existing) if !existing.trim().is_empty() => format!("{existing} {option}"),
        _ => option.to_owned(),
    };
    config.options(&options);
}

/// [`config`] for the store's own connections: a transaction left open by a node that stopped
/// (a paused process, a frozen host) is ended by the server after one lease TTL, so the row
/// locks it holds (a shard lease `FOR SHARE`, a subscriber) do not keep the shard from its next
/// owner.
fn session_config(options: &PgOptions) -> StoreResult<postgres::Config> {
    let mut config = config(options)?;
    let ms = options.lease_ttl.as_millis().max(1_000);
    add_option(
        &mut config,
        &format!("-c idle_in_transaction_session_timeout={ms}"),
    );
    Ok(config)
}

impl PgStore {
    /// Connects to `url`, applies pending migrations and returns the store.
    pub fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(&PgOptions::new(url))
    }

    /// Connects with `options` (creating the schema when one is named), applies pending
    /// migrations and returns the store.
    pub fn connect_with(options: &PgOptions) -> StoreResult<Self> {
        let tls = Tls::new(options.ca_file.as_deref())?;
        Self::migrate_on(options, &tls)?;
        let node_id = options
            .node_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let mut lease_config = session_config(options)?;
        lease_config.application_name(&format!("botflow-leases-{node_id}"));
        let store = Self {
            pool: Pool::new(Connector::new(session_config(options)?, &tls)),
            valid_flows: Mutex::new(HashMap::new()),
            finished: Mutex::new(OutboxStats::default()),
            leases: Box::new(leases::LeaseManager::start(
                Connector::new(lease_config, &tls),
                &node_id,
                options.lease_ttl,
            )?),
            lease_ttl: options.lease_ttl,
        };
        store.notifications_resume()?;
        Ok(store)
    }

    /// Applies the migrations the database at `url` lacks, under an advisory lock; returns
    /// the ones applied, as `(version, name)` (empty when the schema was current).
    pub fn migrate(url: &str) -> StoreResult<Vec<(i32, &'static str)>> {
        Self::migrate_with(&PgOptions::new(url))
    }

    /// [`PgStore::migrate`] with options (a schema, a CA file).
    pub fn migrate_with(options: &PgOptions) -> StoreResult<Vec<(i32, &'static str)>> {
        Self::migrate_on(options, &Tls::new(options.ca_file.as_deref())?)
    }

    fn migrate_on(options: &PgOptions, tls: &Tls) -> StoreResult<Vec<(i32, &'static str)>> {
        if let Some(schema) = &options.schema {
            let plain = PgOptions::new(&options.url);
            let pool = Pool::new(Connector::new(config(&plain)?, tls));
            config(options)?; // checks the name before it reaches SQL
            db::off_runtime("creating the schema", || {
                let mut client = pool.connect("creating the schema")?;
                // `CREATE SCHEMA IF NOT EXISTS` is not safe against a concurrent one (a unique
                // violation in `pg_namespace`): nodes starting together take turns.
                client
                    .batch_execute(&format!(
                        "BEGIN; SELECT pg_advisory_xact_lock(hashtext('botflow create schema')); \
                         CREATE SCHEMA IF NOT EXISTS {schema}; COMMIT;"
                    ))
                    .map_err(|e| db::db_error("creating the schema", &e))
            })?;
        }
        migrate::run(&Pool::new(Connector::new(config(options)?, tls)))
    }

    /// The schema version this release migrates to.
    pub fn schema_version() -> i32 {
        migrate::latest()
    }

    /// Cross-checks what constraints cannot: each subscriber's queue head is its oldest pending
    /// message, and every pending token send's token is spent on it. One line per problem.
    pub fn verify_integrity(&self) -> StoreResult<Vec<String>> {
        self.pool.read("verify_integrity", |c| {
            let mut problems = Vec::new();
            for row in c.query(
                "SELECT p.page_id, p.psid, p.first, h.head_id FROM
                   (SELECT page_id, psid, min(id) AS first FROM outbox WHERE status = 0
                    GROUP BY page_id, psid) p
                 FULL JOIN outbox_heads h ON h.page_id = p.page_id AND h.psid = p.psid
                 WHERE p.first IS DISTINCT FROM h.head_id",
                &[],
            )? {
                problems.push(format!(
                    "queue head of {:?}/{:?}: oldest pending {:?}, head {:?}",
                    row.get::<_, Option<String>>(0),
                    row.get::<_, Option<String>>(1),
                    row.get::<_, Option<i64>>(2),
                    row.get::<_, Option<i64>>(3)
                ));
            }
            for row in c.query(
                "SELECT o.id, o.token FROM outbox o
                 LEFT JOIN tokens t ON t.page_id = o.page_id AND t.token = o.token
                 WHERE o.status = 0 AND o.token IS NOT NULL
                   AND (t.token IS NULL OR t.state NOT IN (1, 2))",
                &[],
            )? {
                problems.push(format!(
                    "pending message {} pays with token {:?}, which is not spent",
                    row.get::<_, i64>(0),
                    row.get::<_, Option<String>>(1)
                ));
            }
            Ok(problems)
        })
    }

    /// How many calls failed with a database error (unreachable, refused, conflicts beyond the
    /// retries) since the store was opened.
    pub fn database_errors(&self) -> u64 {
        self.pool.errors()
    }

    /// Runs a round of this node's lease manager now (heartbeat, renewal, acquiring its fair
    /// share, releasing a surplus) and waits for it; rounds otherwise run every third of the
    /// lease TTL.
    pub fn lease_round(&self) -> StoreResult<()> {
        self.leases.round_now()
    }

    /// Leaves the cluster gracefully: stops renewing and releases every shard lease, so other
    /// nodes take the shards over at their next round; the store refuses owner writes after it.
    pub fn leave(&self) {
        db::off_runtime("leaving", || {
            self.leases.leave();
            Ok(())
        })
        .unwrap_or(());
    }

    /// Whether a pooled connection of this store is encrypted (`pg_stat_ssl` of its own backend),
    /// for tests.
    #[cfg(feature = "test-support")]
    pub fn pooled_connection_uses_tls(&self) -> StoreResult<bool> {
        self.pool.read("pooled_connection_uses_tls", |c| {
            Ok(c.query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )?
            .get(0))
        })
    }

    /// Checks that the database answers (`SELECT 1`), for health checks.
    pub fn ping(&self) -> StoreResult<()> {
        self.pool.read("ping", |c| {
            c.query_one("SELECT 1", &[])?;
            Ok(())
        })
    }
}

impl Store for PgStore {
    fn ensure_page(&self, page: &PageId, now_ms: u64) -> StoreResult<bool> {
        self.page_ensure(page, now_ms)
    }
    fn page_exists(&self, page: &PageId) -> StoreResult<bool> {
        self.page_known(page)
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
        self.draft_get(page, flow)
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
        self.versions_of(page, flow)
    }
    fn flow_version(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
    ) -> StoreResult<Option<FlowVersion>> {
        self.version_get(page, flow, version)
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
        Ok(self.flow_head(page, flow)?.map(|h| h.active))
    }
    fn active_flows(&self, page: &PageId) -> StoreResult<ActiveFlows> {
        self.flow_active_all(page)
    }
    fn live_trigger_conflicts(
        &self,
        page: &PageId,
        document: &FlowDocument,
    ) -> StoreResult<Vec<botflow_flow::Diagnostic>> {
        self.flow_trigger_conflicts(page, document)
    }
    fn load_session(&self, page: &PageId, psid: &Psid) -> StoreResult<Option<Session>> {
        self.session_load(page, psid)
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
        self.pool.write("add_token", true, |tx| {
            tokens::add(tx, page, psid, &token, now_ms)
        })
    }
    fn get_token(&self, page: &PageId, token: &str) -> StoreResult<Option<OtnToken>> {
        self.token_get(page, token)
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
        self.holders(page, topic, now_ms)
    }
    fn mark_token(
        &self,
        page: &PageId,
        token: &str,
        mark: TokenMark,
        now_ms: u64,
    ) -> StoreResult<bool> {
        self.pool.write("mark_token", true, |tx| {
            leases::fence(tx, self.owned(), &[db::shard_of(page.as_str())])?;
            tokens::mark(tx, page, token, &mark, now_ms)
        })
    }
    fn expire_tokens(&self, now_ms: u64) -> StoreResult<u64> {
        let shards = self.owned_shards();
        self.pool.write("expire_tokens", true, |tx| {
            tokens::expire(tx, &shards, now_ms)
        })
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
        let mut outcomes = self.journal_append_all(std::slice::from_ref(&event))?;
        outcomes.pop().ok_or_else(|| StoreError::Postgres {
            what: "journal_append".to_owned(),
            detail: "the append returned no outcome".to_owned(),
            transient: false,
        })
    }
    fn journal_append_batch(&self, events: &[NewJournalEvent]) -> StoreResult<Vec<Appended>> {
        self.journal_append_all(events)
    }
    fn unprocessed_events(&self) -> StoreResult<Vec<JournalEntry>> {
        self.journal_unprocessed(usize::MAX)
    }
    fn poll_unprocessed(&self, limit: usize) -> StoreResult<Vec<JournalEntry>> {
        self.journal_unprocessed(limit)
    }
    fn commit_step(&self, commit: StepCommit) -> StoreResult<StepCommitted> {
        let durable = commit.durable;
        let shard = db::shard_of(commit.page.as_str());
        let epoch = self.epoch_of(&commit.page);
        self.pool.write("commit_step", durable, |tx| {
            leases::fence(tx, self.owned(), &[shard])?;
            steps::apply_step(tx, &commit, epoch)
        })?
    }
    fn commit_steps(
        &self,
        commits: Vec<StepCommit>,
    ) -> StoreResult<Vec<StoreResult<StepCommitted>>> {
        let durable = commits.iter().any(|c| c.durable);
        // a step of a shard this node does not hold fails alone; the others are fenced together
        let ownership = self.owned();
        let lost = |c: &StepCommit| ownership.not_held(crate::ownership::shard_of(c.page.as_str()));
        let (held, gone): (Vec<StepCommit>, Vec<(usize, StoreError)>) = {
            let mut held = Vec::with_capacity(commits.len());
            let mut gone = Vec::new();
            for (i, commit) in commits.into_iter().enumerate() {
                match lost(&commit) {
                    Some(error) => gone.push((i, error)),
                    None => held.push(commit),
                }
            }
            (held, gone)
        };
        let shards: Vec<i32> = held.iter().map(|c| db::shard_of(c.page.as_str())).collect();
        let epochs: Vec<i64> = held.iter().map(|c| self.epoch_of(&c.page)).collect();
        let mut results = if held.is_empty() {
            Vec::new()
        } else {
            self.pool.write("commit_steps", durable, |tx| {
                leases::fence(tx, ownership, &shards)?;
                steps::apply_steps(tx, &held, &epochs)
            })?
        };
        for (i, error) in gone {
            results.insert(i, Err(error));
        }
        Ok(results)
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
        self.recurring_holders(page, topic)
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
    fn due_outbound_skipping(
        &self,
        now_ms: u64,
        limit: usize,
        skip: &dyn Fn(OutboxId) -> bool,
    ) -> StoreResult<Vec<OutboundMessage>> {
        self.outbox_due_skipping(now_ms, limit, skip)
    }
    fn outbound(&self, id: OutboxId) -> StoreResult<Option<OutboundMessage>> {
        self.outbox_get(id)
    }
    fn mark_sent(&self, id: OutboxId, message_id: &str, at_ms: u64) -> StoreResult<()> {
        let status = OutboundStatus::Sent {
            message_id: message_id.to_owned(),
            at_ms,
        };
        self.finish_one("mark_sent", id, &status)
    }
    fn mark_retry(&self, id: OutboxId, due_ms: u64, error: &str) -> StoreResult<()> {
        self.pool.write("mark_retry", true, |tx| {
            leases::fence_outbox(tx, self.owned(), &[id])?;
            outbox::retry(tx, id, due_ms, error).map(|_| ())
        })
    }
    fn mark_failed(&self, id: OutboxId, error: &str, at_ms: u64) -> StoreResult<()> {
        let status = OutboundStatus::Failed {
            error: error.to_owned(),
            at_ms,
        };
        self.finish_one("mark_failed", id, &status)
    }
    fn mark_refused(&self, id: OutboxId, reason: &str, at_ms: u64) -> StoreResult<()> {
        let status = OutboundStatus::RefusedByPolicy {
            reason: reason.to_owned(),
            at_ms,
        };
        self.finish_one("mark_refused", id, &status)
    }
    fn mark_delivered_unconfirmed(&self, id: OutboxId, at_ms: u64) -> StoreResult<()> {
        let status = OutboundStatus::DeliveredUnconfirmed { at_ms };
        self.finish_one("mark_delivered_unconfirmed", id, &status)
    }
    fn mark_outcomes(&self, outcomes: &[Outcome]) -> StoreResult<Vec<StoreResult<()>>> {
        self.outcomes_mark(outcomes)
    }
    fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        self.stats()
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
    fn ownership(&self) -> Arc<Ownership> {
        Arc::clone(self.owned())
    }
    fn flush(&self) -> StoreResult<()> {
        // A synchronous commit waits for the WAL flush up to its commit record, which covers
        // every earlier asynchronous commit, but only when the transaction wrote WAL before
        // its commit record: it updates one of the `flush_marks` rows (by thread, so that
        // concurrent flushes rarely meet on one row).
        let slot = flush_slot();
        self.pool.write("flush", true, |tx| {
            tx.execute("UPDATE flush_marks SET n = n + 1 WHERE slot = $1", &[&slot])?;
            Ok(())
        })
    }
}

//! The PostgreSQL connection pool, the transaction runner (serializable, retried on conflicts)
//! and the mapping of driver errors to [`StoreError::Postgres`].

use super::tls::Connector;
use crate::error::StoreError;
use crate::store::StoreResult;
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, IsolationLevel, Row, Statement, Transaction};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// How many times a transaction is run again after a serialization failure or deadlock.
const CONFLICT_ATTEMPTS: u32 = 50;
/// Connections kept open between calls.
const IDLE_CONNECTIONS: usize = 16;

/// What a transaction body fails with: a database error (retried when it is a conflict) or a
/// store refusal (returned as it is, the transaction rolled back).
pub(super) enum Fail {
    /// The driver's error.
    Db(postgres::Error),
    /// A refusal or a decoding problem.
    Store(StoreError),
}

impl From<postgres::Error> for Fail {
    fn from(err: postgres::Error) -> Self {
        Self::Db(err)
    }
}

impl From<StoreError> for Fail {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

/// Result of a transaction body.
pub(super) type TxResult<T> = Result<T, Fail>;

/// Whether an error is worth retrying the transaction for at once (a conflict with another
/// transaction).
fn is_conflict(err: &postgres::Error) -> bool {
    matches!(
        err.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Whether a cached statement went stale (a migration changed a table it reads): the cache
/// is dropped and the call made again.
fn is_stale_statement(err: &postgres::Error) -> bool {
    err.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED)
        && err
            .as_db_error()
            .is_some_and(|db| db.message().contains("cached plan"))
}

/// Whether the database may answer later: connection problems, a server shutting down or out of
/// connections, conflicts.
fn is_transient(err: &postgres::Error) -> bool {
    if err.is_closed() {
        return true;
    }
    match err.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || c.starts_with("57P")
                || c == "53300"
                || c == "40001"
                || c == "40P01"
        }
        // no SQLSTATE: transient when the connection itself failed (refused, reset, timed
        // out), not when a value could not be converted
        None => {
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                if s.is::<std::io::Error>() {
                    return true;
                }
                source = s.source();
            }
            false
        }
    }
}

/// Converts a driver error, naming what was being done.
pub(super) fn db_error(what: &str, err: &postgres::Error) -> StoreError {
    let detail = match err.as_db_error() {
        Some(db) => format!(
            "{} (SQLSTATE {}{})",
            db.message(),
            db.code().code(),
            db.table()
                .map(|t| format!(", table {t}"))
                .unwrap_or_default()
        ),
        None => {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    };
    StoreError::Postgres {
        what: what.to_owned(),
        detail,
        transient: is_transient(err),
    }
}

/// Runs blocking driver code from any thread. The driver blocks on a runtime of its own, which
/// may not start on a thread that is driving Tokio tasks: on a multi-thread runtime the call
/// moves out of the worker with `block_in_place`; on a current-thread runtime it runs on a
/// short-lived plain thread (blocking the caller, which is what a blocking store call does).
pub(super) fn off_runtime<T: Send>(
    what: &str,
    f: impl FnOnce() -> StoreResult<T> + Send,
) -> StoreResult<T> {
    match tokio::runtime::Handle::try_current() {
        Err(_) => f(),
        Ok(handle) => match handle.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
            _ => std::thread::scope(|scope| {
                std::thread::Builder::new()
                    .name("botflow-pg-call".into())
                    .spawn_scoped(scope, f)
                    .map_err(|err| StoreError::Postgres {
                        what: what.to_owned(),
                        detail: format!("cannot start a thread for the blocking call: {err}"),
                        transient: true,
                    })?
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            }),
        },
    }
}

/// A connection with the statements prepared on it, by query text.
pub(super) struct Connection {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// A connection or transaction with its connection's statement cache: each query text is
/// prepared once per connection, after which a statement is one round trip, not two.
pub(super) struct Cached<'a, C> {
    /// The connection or transaction.
    pub(super) inner: &'a mut C,
    /// The connection's prepared statements.
    pub(super) statements: &'a mut HashMap<String, Statement>,
}

/// A transaction of [`Pool::write`].
pub(super) type Tx<'a, 'b> = Cached<'a, Transaction<'b>>;

/// A connection of [`Pool::read`].
pub(super) type Conn<'a> = Cached<'a, Client>;

impl<C: GenericClient> Cached<'_, C> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.inner.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    /// Runs a query, returning its rows.
    pub(super) fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.inner.query(&statement, params)
    }

    /// Runs a query that returns exactly one row.
    pub(super) fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let statement = self.statement(sql)?;
        self.inner.query_one(&statement, params)
    }

    /// Runs a query that returns at most one row.
    pub(super) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.inner.query_opt(&statement, params)
    }

    /// Runs a statement, returning the number of rows it changed.
    pub(super) fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        self.inner.execute(&statement, params)
    }
}

/// A small pool of blocking clients.
pub(super) struct Pool {
    connector: Connector,
    idle: Mutex<Vec<Connection>>,
    /// Calls that failed with a database error (not refusals), for metrics.
    errors: AtomicU64,
}

impl Pool {
    /// A pool connecting with `connector` (no connection is made yet).
    pub(super) fn new(connector: Connector) -> Self {
        Self {
            connector,
            idle: Mutex::new(Vec::new()),
            errors: AtomicU64::new(0),
        }
    }

    /// Calls that failed with a database error so far.
    pub(super) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn counted<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        if let Err(StoreError::Postgres { .. }) = &result {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// A new connection.
    pub(super) fn connect(&self, what: &str) -> StoreResult<Client> {
        self.connector.connect(what)
    }

    fn take(&self, what: &str) -> StoreResult<Connection> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(connection) if !connection.client.is_closed() => Ok(connection),
            _ => Ok(Connection {
                client: self.connect(what)?,
                statements: HashMap::new(),
            }),
        }
    }

    fn give_back(&self, connection: Connection) {
        if connection.client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(connection);
        }
    }

    /// Runs `body` with a pooled connection (no transaction: single statements; run again once
    /// when a cached statement went stale).
    pub(super) fn read<T: Send>(
        &self,
        what: &'static str,
        mut body: impl FnMut(&mut Conn<'_>) -> TxResult<T> + Send,
    ) -> StoreResult<T> {
        self.counted(off_runtime(what, || {
            let mut connection = self.take(what)?;
            let mut result = body(&mut Cached {
                inner: &mut connection.client,
                statements: &mut connection.statements,
            });
            if matches!(&result, Err(Fail::Db(err)) if is_stale_statement(err)) {
                // prepared before a migration changed the table: prepare again, once
                connection.statements.clear();
                result = body(&mut Cached {
                    inner: &mut connection.client,
                    statements: &mut connection.statements,
                });
            }
            self.give_back(connection);
            result.map_err(|fail| match fail {
                Fail::Db(err) => db_error(what, &err),
                Fail::Store(err) => err,
            })
        }))
    }

    /// Runs `body` in one serializable transaction, again (bounded) when it conflicts with
    /// another; `durable: false` commits with `synchronous_commit = off` (atomic and visible at
    /// once; a server crash may lose it).
    pub(super) fn write<T: Send>(
        &self,
        what: &'static str,
        durable: bool,
        mut body: impl FnMut(&mut Tx<'_, '_>) -> TxResult<T> + Send,
    ) -> StoreResult<T> {
        self.counted(off_runtime(what, || {
            let mut connection = self.take(what)?;
            let mut attempt = 0;
            let result = loop {
                attempt += 1;
                let outcome = (|| -> TxResult<T> {
                    let Connection { client, statements } = &mut connection;
                    let mut tx = client
                        .build_transaction()
                        .isolation_level(IsolationLevel::Serializable)
                        .start()?;
                    if !durable {
                        tx.batch_execute("SET LOCAL synchronous_commit = off")?;
                    }
                    let value = body(&mut Cached {
                        inner: &mut tx,
                        statements,
                    })?;
                    tx.commit()?;
                    Ok(value)
                })();
                match outcome {
                    Err(Fail::Db(err)) if is_conflict(&err) && attempt < CONFLICT_ATTEMPTS => {
                        continue;
                    }
                    Err(Fail::Db(err))
                        if is_stale_statement(&err) && attempt < CONFLICT_ATTEMPTS =>
                    {
                        connection.statements.clear();
                        continue;
                    }
                    Err(Fail::Db(err)) => break Err(db_error(what, &err)),
                    Err(Fail::Store(err)) => break Err(err),
                    Ok(value) => break Ok(value),
                }
            };
            self.give_back(connection);
            result
        }))
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(PoisonError::into_inner));
        if idle.is_empty() {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            drop(idle);
            return;
        }
        // Closing a client blocks on the driver's own runtime, which may not run on a Tokio
        // thread (the last holder of the store may be a task): close them on a plain thread.
        let closing = std::thread::Builder::new()
            .name("pg-pool-close".into())
            .spawn(move || drop(idle));
        if let Ok(handle) = closing {
            let _ = handle.join();
        }
    }
}

/// A `u64` as PostgreSQL `bigint` (values above `i64::MAX` are clamped: times and ids in
/// botflow stay far below).
pub(super) fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A `bigint` read back as `u64` (negative values, which botflow never writes, read as 0).
pub(super) fn unbig(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Decodes a `jsonb` record into one of the storage types.
pub(super) fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    value: serde_json::Value,
) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|err| StoreError::Corrupt {
        what,
        detail: err.to_string(),
    })
}

/// Encodes a record as `jsonb`.
pub(super) fn encode<T: serde::Serialize>(
    what: &'static str,
    value: &T,
) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(value).map_err(|err| StoreError::Encode {
        what,
        detail: err.to_string(),
    })
}

/// The shard of a Page as the `shard` column stores it ([`crate::ownership::shard_of`]).
pub(super) fn shard_of(page: &str) -> i32 {
    i32::try_from(crate::ownership::shard_of(page)).unwrap_or(0)
}

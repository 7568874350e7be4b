//! Embedded schema migrations: numbered SQL files applied in order, each in its own
//! transaction, under a session advisory lock so nodes starting together do not race.

use super::db::{Pool, db_error};
use crate::error::StoreError;
use crate::store::StoreResult;

/// One embedded migration.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, oldest first; a new one is a new numbered file added here.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "notifications_recurring_ledger_retention",
        sql: include_str!("migrations/0002_notifications_recurring_ledger_retention.sql"),
    },
    Migration {
        version: 3,
        name: "flush_marks",
        sql: include_str!("migrations/0003_flush_marks.sql"),
    },
    Migration {
        version: 4,
        name: "shard_leases",
        sql: include_str!("migrations/0004_shard_leases.sql"),
    },
];

/// The advisory lock key (class, object) guarding migrations; the object is the hash of the
/// schema in use, so databases with several botflow schemas (the tests) migrate them in parallel.
const LOCK_CLASS: i32 = 0x626f_7466; // "botf"

/// The newest schema version this release knows.
pub(super) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies the migrations the database lacks; returns the ones applied (version, name).
pub(super) fn run(pool: &Pool) -> StoreResult<Vec<(i32, &'static str)>> {
    super::db::off_runtime("migrate", || {
        let mut client = pool.connect("migrate")?;
        let err = |what: &'static str| move |e: postgres::Error| db_error(what, &e);
        client
            .execute(
                "SELECT pg_advisory_lock($1, hashtext(current_schema()))",
                &[&LOCK_CLASS],
            )
            .map_err(err("migrate: taking the advisory lock"))?;
        let result = apply(&mut client);
        // the lock is the session's: closing the connection would release it too
        let unlock = client
            .execute(
                "SELECT pg_advisory_unlock($1, hashtext(current_schema()))",
                &[&LOCK_CLASS],
            )
            .map_err(err("migrate: releasing the advisory lock"));
        let applied = result?;
        unlock?;
        Ok(applied)
    })
}

fn apply(client: &mut postgres::Client) -> StoreResult<Vec<(i32, &'static str)>> {
    let err = |what: &'static str| move |e: postgres::Error| db_error(what, &e);
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
               version int PRIMARY KEY, name text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .map_err(err("migrate: creating schema_migrations"))?;
    let found: Option<i32> = client
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .map_err(err("migrate: reading schema_migrations"))?
        .get(0);
    let found = found.unwrap_or(0);
    if found > latest() {
        return Err(StoreError::UnsupportedDatabaseFormat {
            found: u32::try_from(found).unwrap_or(0),
            supported: u32::try_from(latest()).unwrap_or(0),
        });
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
        let mut tx = client
            .transaction()
            .map_err(err("migrate: starting a transaction"))?;
        tx.batch_execute(migration.sql).map_err(|e| {
            db_error(
                &format!(
                    "migrate: applying {:04}_{}.sql",
                    migration.version, migration.name
                ),
                &e,
            )
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .map_err(err("migrate: recording the migration"))?;
        tx.commit().map_err(err("migrate: committing"))?;
        applied.push((migration.version, migration.name));
    }
    Ok(applied)
}

//! `botflow migrate [--config FILE]`: applies the PostgreSQL schema migrations alone (the same
//! ones `botflow serve` applies at start-up, under the same advisory lock) and says what it did.

use botflow_server::config::ServerConfig;
use botflow_storage::PgStore;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `botflow migrate`.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// TOML configuration file (its `database_url` and `database_ca_file`); BOTFLOW_DATABASE_URL
    /// and BOTFLOW_DATABASE_CA_FILE win over it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Runs the migrations; exit code 2 when no database is configured, 1 when they fail.
pub(crate) fn run(args: &MigrateArgs) -> ExitCode {
    let options = match ServerConfig::load_database(args.config.as_deref()) {
        Ok(Some(options)) => options,
        Ok(None) => {
            eprintln!(
                "botflow migrate: no database is configured: set BOTFLOW_DATABASE_URL (or \
                 `database_url` in the file given with --config) to a postgres:// URL; the \
                 embedded sled store needs no migration"
            );
            return ExitCode::from(2);
        }
        Err(err) => {
            eprintln!("botflow migrate: {err}");
            return ExitCode::from(2);
        }
    };
    match PgStore::migrate_with(&options) {
        Ok(applied) if applied.is_empty() => {
            println!(
                "the database schema is up to date (version {}); nothing to apply",
                PgStore::schema_version()
            );
            ExitCode::SUCCESS
        }
        Ok(applied) => {
            for (version, name) in &applied {
                println!("applied migration {version:04}_{name}");
            }
            println!(
                "the database schema is at version {}",
                PgStore::schema_version()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("botflow migrate: {err}");
            ExitCode::FAILURE
        }
    }
}

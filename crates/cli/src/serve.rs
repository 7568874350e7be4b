//! `botflow serve [--config FILE] [--demo]`: the webhook, the admin API and the runtime on the
//! embedded sled database, until SIGINT or SIGTERM.

use botflow_server::app::{self, RunningServer};
use botflow_server::config::{DEFAULT_DATA_DIR, ServerConfig};
use botflow_server::demo::{
    DEMO_PSID, DemoWalkthrough, crowd_tokens, find_demo_request, seed_crowd, start_printing_fake,
};
use botflow_server::startup::read_flows_dir;
use botflow_storage::PageId;
use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// Arguments of `botflow serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// TOML configuration file; every setting can also come from a BOTFLOW_* variable, which wins.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// First look: no secrets needed, example flows published, messages printed by a built-in
    /// fake Graph API, and the curl commands of the OTN story printed.
    #[arg(long)]
    demo: bool,
}

/// The example flows compiled into the binary, used by `--demo` when `./flows` is absent.
const EMBEDDED_FLOWS: [(&str, &str); 4] = [
    (
        "embedded:lead-capture.json",
        include_str!("../../../flows/lead-capture.json"),
    ),
    (
        "embedded:restock-notify.json",
        include_str!("../../../flows/restock-notify.json"),
    ),
    (
        "embedded:restock.json",
        include_str!("../../../flows/restock.json"),
    ),
    (
        "embedded:weekly-deals.json",
        include_str!("../../../flows/weekly-deals.json"),
    ),
];

/// Runs the server until a shutdown signal; exit code 2 for configuration errors, 1 for others.
pub(crate) fn run(args: &ServeArgs) -> ExitCode {
    init_tracing(args.demo);
    let config = match ServerConfig::load(args.config.as_deref(), args.demo) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("botflow serve: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("botflow serve: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("botflow serve: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(mut config: ServerConfig) -> anyhow::Result<()> {
    if config.demo && config.data_dir == Path::new(DEFAULT_DATA_DIR) {
        // A fresh database per demo run: the fake Graph API only knows tokens it issued itself.
        let dir = std::env::temp_dir().join(format!("botflow-demo-{}", std::process::id()));
        config.data_dir = dir.clone();
        let outcome = serve_until_signal(config).await;
        let _ = std::fs::remove_dir_all(dir);
        return outcome;
    }
    serve_until_signal(config).await
}

/// How long a shutdown after a fatal store error may take before the process exits anyway.
const FATAL_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(10);

async fn serve_until_signal(mut config: ServerConfig) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let demo = config.demo;
    let fake = match demo {
        true => {
            let fake = start_printing_fake().await?;
            config.graph_api_url = fake.base_url().to_owned();
            Some(fake)
        }
        false => None,
    };
    let flows = startup_flows(&config)?;
    let server = app::start(config, flows).await?;
    let base_url = format!("http://{}", server.local_addr());
    // The end-to-end tests and operators read this line to find the bound port.
    println!("botflow listening on {base_url}");
    if let Some(fake) = &fake {
        print_walkthrough(&server, fake, &base_url).await?;
    }

    let state = server.state().clone();
    tokio::select! {
        () = shutdown => {
            tracing::info!("shutdown signal received; finishing in-flight work");
            server.shutdown().await?;
            Ok(())
        }
        error = state.fatal_error() => {
            // A poisoned event log: stop as cleanly as we can, then exit non-zero so that a
            // restart recovers from what is on disk.
            let stopped =
                tokio::time::timeout(FATAL_SHUTDOWN, server.shutdown()).await;
            if let Ok(Err(err)) = stopped {
                tracing::warn!(%err, "shutdown after the fatal store error failed");
            }
            anyhow::bail!("the store refuses writes ({error}); restart botflow to recover")
        }
    }
}

/// The flows to publish at start-up: `BOTFLOW_FLOWS_DIR`, or in demo mode `./flows` (else the
/// embedded examples).
fn startup_flows(config: &ServerConfig) -> anyhow::Result<Vec<(String, String)>> {
    if let Some(dir) = &config.flows_dir {
        return Ok(read_flows_dir(dir)?);
    }
    if !config.demo {
        return Ok(Vec::new());
    }
    let local = Path::new("flows");
    if local.is_dir() {
        return Ok(read_flows_dir(local)?);
    }
    Ok(EMBEDDED_FLOWS
        .iter()
        .map(|(origin, text)| ((*origin).to_owned(), (*text).to_owned()))
        .collect())
}

async fn print_walkthrough(
    server: &RunningServer,
    fake: &botflow_messenger::fake::FakeGraphApi,
    base_url: &str,
) -> anyhow::Result<()> {
    let state = server.state().clone();
    let Some(page) = state
        .config
        .pages
        .first()
        .map(|p| PageId::from(p.id.as_str()))
    else {
        return Ok(());
    };
    let lookup_page = page.clone();
    let store = state.store.clone();
    let request =
        tokio::task::spawn_blocking(move || find_demo_request(store.as_ref(), &lookup_page))
            .await??;
    let Some(request) = request else {
        println!(
            "\nOpen the builder: {}",
            botflow_server::demo::builder_link(base_url, &state.config.admin_token)
        );
        println!("(no published flow with a keyword trigger and an OTN request: no walkthrough)");
        return Ok(());
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let (store, crowd, crowd_page) = (state.store.clone(), crowd_tokens(fake), page.clone());
    let crowd_topic_id = tokio::task::spawn_blocking(move || {
        seed_crowd(store.as_ref(), &crowd_page, &crowd, now_ms)
    })
    .await??;
    let walkthrough = DemoWalkthrough {
        base_url: base_url.to_owned(),
        page: page.0,
        app_secret: state.config.app_secret.clone(),
        admin_token: state.config.admin_token.clone(),
        topic_id: request.topic_id,
        topic_name: request.topic_name,
        optin_payload: request.optin_payload,
        otn_token: fake.issue_otn_token(DEMO_PSID),
        trigger_text: request.trigger_text,
        notify_flow: request.notify_flow,
        now_ms,
        crowd_topic_id,
    };
    println!("\n{}", walkthrough.render());
    Ok(())
}

/// Listens for SIGINT and SIGTERM from the moment it is called (the listeners are installed
/// before the returned future is first polled), so a signal that arrives while the server starts
/// or prints its walkthrough still stops it gracefully instead of killing the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                (Ok(mut only), Err(err)) | (Err(err), Ok(mut only)) => {
                    tracing::warn!(%err, "cannot listen for one of SIGINT and SIGTERM");
                    let _ = only.recv().await;
                }
                (Err(err), Err(_)) => {
                    tracing::warn!(%err, "cannot listen for SIGINT or SIGTERM; stop with SIGKILL");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn init_tracing(demo: bool) {
    let default = match demo {
        true => "warn",
        false => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only on a terminal: logs piped to a file, journald or docker stay plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

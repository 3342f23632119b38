//! `chattrd`: parses settings, starts logging, serves until SIGINT or SIGTERM.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

use chattr::config::{Command, LogFormat};
use chattr::{serve, Config};

fn main() -> ExitCode {
    // `RUST_BACKTRACE=1` asks for backtraces of panics; without `RUST_LIB_BACKTRACE` it also
    // makes every error a library creates capture one, and the store makes (and drops) errors
    // on its everyday paths: with it set, storing a message cost a backtrace each. Panics keep
    // theirs. Set while this is the only thread, before the runtime starts any.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("chattrd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(Config::parse()))
}

async fn run(config: Config) -> ExitCode {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info")));
    match config.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stdout().is_terminal()).init(),
        LogFormat::Json => logs.json().init(),
    }
    match &config.command {
        Some(Command::Backup { file }) => {
            return match chattr::backup::backup(&config, file).await {
                Ok(size) => {
                    tracing::info!(file = %file.display(), bytes = size, "backup written");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!("backup failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Restore { file }) => {
            return match chattr::backup::restore(&config, file).await {
                Ok(()) => {
                    tracing::info!(file = %file.display(), db = %config.db, "restored; start chattrd on it");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!("restore failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => {}
    }
    if config.shared_secret.as_deref().is_none_or(str::is_empty) {
        tracing::warn!("no CHATTR_SHARED_SECRET: token endpoints are disabled, only guests can log in");
    }
    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addr = %config.addr, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = match shutdown_signal() {
        Ok(signal) => signal,
        Err(e) => {
            tracing::error!(error = %e, "cannot handle SIGINT and SIGTERM");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(db = %config.db, "opening the store");
    match serve(config, listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on the first SIGINT or SIGTERM.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    })
}

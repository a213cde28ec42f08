//! Logging through `tracing`: the proxy logs to stderr (stdout is its MCP channel), the host
//! logs to one file per daemon in the state dir (`manager.log`, `memory.log`, ...).

use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Keeps the background log writers flushing; drop it last.
pub struct LogGuards(#[allow(dead_code)] Vec<tracing_appender::non_blocking::WorkerGuard>);

fn env_filter(default: &str) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default))
}

/// Stderr only, plus an optional file (the proxy's `--log-file`). Level from `RUST_LOG`.
pub fn init_stderr(log_file: Option<&Path>) -> std::io::Result<LogGuards> {
    let mut guards = Vec::new();
    let file_writer = match log_file {
        Some(path) => {
            let file = open_append(path)?;
            let (writer, guard) = tracing_appender::non_blocking(file);
            guards.push(guard);
            Some(writer)
        }
        None => None,
    };
    // Colours only for a person at a terminal: Claude Code stores the proxy's stderr verbatim.
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let file = file_writer.map(|w| {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(w)
    });
    let _ = tracing_subscriber::registry()
        .with(env_filter("warn"))
        .with(stderr)
        .with(file)
        .try_init();
    Ok(LogGuards(guards))
}

/// The host's logging: events of the in-process memory server go to `memory.log`, everything
/// else to `manager.log`; both are mirrored to stderr when `echo_stderr` (the foreground daemon).
pub fn init_host(state_dir: &Path, echo_stderr: bool) -> std::io::Result<LogGuards> {
    std::fs::create_dir_all(state_dir)?;
    let (manager, g1) =
        tracing_appender::non_blocking(open_append(&state_dir.join("manager.log"))?);
    let (memory, g2) = tracing_appender::non_blocking(open_append(&state_dir.join("memory.log"))?);
    let memory_targets = Targets::new()
        .with_target("msm_memory", tracing::Level::TRACE)
        .with_target("msm_host::memory", tracing::Level::TRACE);
    let is_memory = move |meta: &tracing::Metadata<'_>| {
        memory_targets.would_enable(meta.target(), meta.level())
    };
    let not_memory = {
        let is_memory = is_memory.clone();
        move |meta: &tracing::Metadata<'_>| !is_memory(meta)
    };
    let file_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(
            memory
                .with_filter(is_memory)
                .or_else(manager.with_filter(not_memory)),
        );
    let stderr = echo_stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    let _ = tracing_subscriber::registry()
        .with(env_filter("info"))
        .with(file_layer)
        .with(stderr)
        .try_init();
    Ok(LogGuards(vec![g1, g2]))
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

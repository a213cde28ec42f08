//! Facts about a target that `/status` adds to the host's own state: the CPU and memory its
//! process uses (from /proc on Linux; `null` elsewhere for now), and whether the command of a
//! `command` target is installed at all (the examples in the default config name `uvx`, `npx`
//! and the like, which a fresh machine may lack: such a target says "needs uvx" rather than
//! offer a Start that can only fail).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use msm_core::config::{Config, TargetKind};

use crate::api_types::Status;

/// Adds CPU %, RSS and the missing command to every target of `status`.
pub fn fill(status: &mut Status, config: &Config) {
    for target in &mut status.targets {
        if let Some(pid) = target.pid {
            let usage = sample(pid);
            target.cpu_percent = usage.cpu_percent;
            target.rss_bytes = usage.rss_bytes;
        }
        target.needs = config
            .targets
            .get(&target.name)
            .and_then(|c| match &c.kind {
                TargetKind::Process { command, .. } => {
                    missing_command(command, std::env::var_os("PATH"))
                }
                _ => None,
            });
    }
}

/// `command` when it cannot be found: a path that is not a file, or a bare name on no directory
/// of `path` (the `PATH` the host's children inherit).
pub fn missing_command(command: &str, path: Option<std::ffi::OsString>) -> Option<String> {
    if command.contains(std::path::MAIN_SEPARATOR) || command.contains('/') {
        return (!Path::new(command).is_file()).then(|| command.to_owned());
    }
    let found = path.is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let candidate = dir.join(command);
            candidate.is_file() || (cfg!(windows) && dir.join(format!("{command}.exe")).is_file())
        })
    });
    (!found).then(|| command.to_owned())
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Since the previous sample of the same pid; `None` on the first.
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<u64>,
}

/// The previous CPU sample per pid: (when, CPU seconds used so far).
fn samples() -> &'static Mutex<HashMap<u32, (Instant, f64)>> {
    static SAMPLES: OnceLock<Mutex<HashMap<u32, (Instant, f64)>>> = OnceLock::new();
    SAMPLES.get_or_init(Default::default)
}

/// CPU % since the last call for `pid`, and its resident memory.
pub fn sample(pid: u32) -> Usage {
    let Some((cpu_seconds, rss_bytes)) = read_proc(pid) else {
        return Usage::default();
    };
    let now = Instant::now();
    let mut samples = samples().lock().unwrap_or_else(|e| e.into_inner());
    // Bounded: a pid that is gone is dropped whenever the table grows.
    if samples.len() > 256 {
        samples.retain(|pid, _| read_proc(*pid).is_some());
    }
    let cpu_percent = samples
        .insert(pid, (now, cpu_seconds))
        .and_then(|(then, before)| {
            let elapsed = now.duration_since(then).as_secs_f64();
            (elapsed > 0.05 && cpu_seconds >= before)
                .then(|| (cpu_seconds - before) / elapsed * 100.0)
        });
    Usage {
        cpu_percent,
        rss_bytes: Some(rss_bytes),
    }
}

/// (CPU seconds used, resident bytes) of `pid` from /proc.
#[cfg(target_os = "linux")]
fn read_proc(pid: u32) -> Option<(f64, u64)> {
    /// Linux reports times in USER_HZ, which is 100 on every architecture it supports.
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based, name = 2).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(((utime + stime) / TICKS_PER_SECOND, rss_kib * 1024))
}

#[cfg(not(target_os = "linux"))]
fn read_proc(_pid: u32) -> Option<(f64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_command_is_named_and_a_present_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("present-tool"), "").unwrap();
        let path = Some(dir.path().as_os_str().to_owned());
        assert_eq!(missing_command("present-tool", path.clone()), None);
        assert_eq!(
            missing_command("uvx-not-here", path.clone()),
            Some("uvx-not-here".into())
        );
        assert_eq!(missing_command("uvx", None), Some("uvx".into()));
        let absolute = dir.path().join("present-tool");
        assert_eq!(missing_command(absolute.to_str().unwrap(), None), None);
        assert!(missing_command("/no/such/bin", None).is_some());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn cpu_and_rss_of_a_busy_process() {
        // A child of its own, so that no other test samples the same pid meanwhile.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let first = sample(pid);
        assert!(first.rss_bytes.unwrap() > 0, "{first:?}");
        assert_eq!(
            first.cpu_percent, None,
            "no figure without a previous sample"
        );
        let (start_cpu, _) = read_proc(pid).unwrap();
        // Wait for the busy loop to be charged some CPU time, then sample again.
        while read_proc(pid).unwrap().0 < start_cpu + 0.05 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let second = sample(pid);
        child.kill().unwrap();
        child.wait().unwrap();
        let cpu = second
            .cpu_percent
            .expect("a second sample has a CPU figure");
        assert!(cpu > 0.0, "a busy loop shows as CPU use: {cpu}");
        assert_eq!(
            sample(pid),
            Usage::default(),
            "a pid that is gone has no figures"
        );
    }
}

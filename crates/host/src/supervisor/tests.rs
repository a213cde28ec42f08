//! Supervisor tests with real child processes (`sh`, `sleep`, and server-everything over HTTP).

use super::*;
use tokio::io::AsyncWriteExt;

fn fast_policy() -> RestartPolicy {
    RestartPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        stable_after: Duration::from_secs(30),
        crash_loop_crashes: 5,
        crash_loop_window: Duration::from_secs(60),
        ready_timeout: Duration::from_secs(30),
    }
}

fn shell_spec(dir: &Path, name: &str, script: &str) -> ChildSpec {
    ChildSpec {
        name: name.to_owned(),
        command: "sh".into(),
        args: vec!["-c".into(), script.into()],
        env: BTreeMap::new(),
        cwd: Some(dir.to_owned()),
        log_path: dir.join(format!("{name}.log")),
        policy: fast_policy(),
        stop_grace: Duration::from_millis(500),
        internal_port: None,
    }
}

pub(crate) fn pid_alive(pid: u32) -> bool {
    // A zombie still "exists" for kill(0); check /proc state too.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn runs_logs_and_stops_a_child_in_its_own_group() {
    let dir = tempfile::tempdir().unwrap();
    let (events, mut events_rx) = broadcast::channel(64);
    let mut spec = shell_spec(
        dir.path(),
        "echoer",
        "echo hello-out; echo hello-err >&2; exec sleep 30",
    );
    spec.env.insert("GREETING".into(), "x".into());
    let child = SupervisedChild::spawn(spec, Readiness::Spawned, ChildIo::Logged, Some(events));
    child.wait_ready(Duration::from_secs(10)).await.unwrap();
    let status = child.snapshot();
    assert_eq!(status.state, TargetState::Running);
    let pid = status.pid.expect("a pid");
    assert!(pid_alive(pid));
    #[cfg(unix)]
    assert_eq!(
        nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid as i32)))
            .unwrap()
            .as_raw(),
        pid as i32,
        "the child leads its own process group"
    );
    let log = dir.path().join("echoer.log");
    wait_for("log lines", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("hello-out") && text.contains("hello-err")
    })
    .await;
    let started = Instant::now();
    child.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "SIGTERM was enough"
    );
    assert_eq!(child.snapshot().state, TargetState::Stopped);
    assert_eq!(child.snapshot().pid, None);
    assert!(!pid_alive(pid));
    let mut seen = Vec::new();
    while let Ok(event) = events_rx.try_recv() {
        seen.push(event.status.state);
    }
    assert!(seen.contains(&TargetState::Running), "{seen:?}");
    assert_eq!(seen.last(), Some(&TargetState::Stopped), "{seen:?}");
}

#[tokio::test]
async fn a_killed_child_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let child = SupervisedChild::spawn(
        shell_spec(dir.path(), "sleeper", "exec sleep 30"),
        Readiness::Spawned,
        ChildIo::Logged,
        None,
    );
    child.wait_ready(Duration::from_secs(10)).await.unwrap();
    let first = child.snapshot().pid.unwrap();
    signal_group(first, Signal::Kill);
    wait_for("a new pid", || {
        let s = child.snapshot();
        s.state == TargetState::Running && s.pid.is_some_and(|p| p != first)
    })
    .await;
    let status = child.snapshot();
    assert_eq!(status.restarts, 1);
    assert!(
        status.last_error.is_none(),
        "running again clears the error: {status:?}"
    );
    let second = status.pid.unwrap();
    child.restart().await;
    child.wait_ready(Duration::from_secs(10)).await.unwrap();
    assert_eq!(child.snapshot().restarts, 2);
    assert!(!pid_alive(second));
    child.stop().await;
}

#[tokio::test]
async fn a_command_that_exits_at_once_is_a_crash_loop() {
    let dir = tempfile::tempdir().unwrap();
    let child = SupervisedChild::spawn(
        shell_spec(dir.path(), "crasher", "echo dy\"\"ing >&2; exit 3"),
        Readiness::Spawned,
        ChildIo::Logged,
        None,
    );
    wait_for("crash-loop", || {
        child.snapshot().state == TargetState::CrashLoop
    })
    .await;
    let status = child.snapshot();
    let error = status.last_error.unwrap();
    assert!(error.contains("exited with code 3"), "{error}");
    assert!(error.contains("crasher.log"), "{error}");
    assert_eq!(status.restarts, 4, "5 spawns, then it gives up");
    match child.wait_ready(Duration::from_secs(1)).await {
        Err(SupervisorError::CrashLoop { .. }) => {}
        other => panic!("expected a crash loop, got {other:?}"),
    }
    // It stays given up: no more spawns.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(child.snapshot().restarts, 4);
    let log = std::fs::read_to_string(dir.path().join("crasher.log")).unwrap();
    assert_eq!(log.matches("dying").count(), 5, "{log}");
    // A requested restart tries again (and fails again).
    child.restart().await;
    wait_for("crash-loop again", || {
        let s = child.snapshot();
        s.state == TargetState::CrashLoop && s.restarts >= 9
    })
    .await;
    child.stop().await;
    assert_eq!(child.snapshot().state, TargetState::Stopped);
}

#[tokio::test]
async fn a_missing_command_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = shell_spec(dir.path(), "missing", "");
    spec.command = "definitely-not-a-command-msm".into();
    spec.args.clear();
    let child = SupervisedChild::spawn(spec, Readiness::Spawned, ChildIo::Logged, None);
    let error = child.wait_ready(Duration::from_secs(10)).await.unwrap_err();
    assert!(error.to_string().contains("not found on PATH"), "{error}");
}

#[tokio::test]
async fn a_child_ignoring_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let child = SupervisedChild::spawn(
        shell_spec(
            dir.path(),
            "stubborn",
            "trap '' TERM; echo re\"\"ady; sleep 30; sleep 30",
        ),
        Readiness::Spawned,
        ChildIo::Logged,
        None,
    );
    child.wait_ready(Duration::from_secs(10)).await.unwrap();
    let pid = child.snapshot().pid.unwrap();
    let log = dir.path().join("stubborn.log");
    wait_for("trap set", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("ready")
    })
    .await;
    let started = Instant::now();
    child.stop().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "waited for the grace: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(!pid_alive(pid));
}

#[tokio::test]
async fn dropping_the_handle_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let child = SupervisedChild::spawn(
        shell_spec(
            dir.path(),
            "dropped",
            "sleep 30 & echo $! > grandchild.pid; wait",
        ),
        Readiness::Spawned,
        ChildIo::Logged,
        None,
    );
    child.wait_ready(Duration::from_secs(10)).await.unwrap();
    let pid = child.snapshot().pid.unwrap();
    let file = dir.path().join("grandchild.pid");
    wait_for("grandchild pid", || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.trim().parse::<u32>().is_ok())
    })
    .await;
    let grandchild: u32 = std::fs::read_to_string(&file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    drop(child);
    wait_for("child and grandchild gone", || {
        !pid_alive(pid) && !pid_alive(grandchild)
    })
    .await;
}

#[tokio::test]
async fn piped_children_hand_their_pipes_over_on_every_spawn() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let (pipes_tx, mut pipes_rx) = mpsc::unbounded_channel();
    let child = SupervisedChild::spawn(
        shell_spec(dir.path(), "cat", "exec cat"),
        Readiness::Spawned,
        ChildIo::Piped(pipes_tx),
        None,
    );
    for generation in 1..=2u64 {
        let mut pipes = pipes_rx.recv().await.unwrap();
        assert_eq!(pipes.generation, generation);
        pipes.stdin.write_all(b"ping\n").await.unwrap();
        let mut line = String::new();
        BufReader::new(&mut pipes.stdout)
            .read_line(&mut line)
            .await
            .unwrap();
        assert_eq!(line, "ping\n");
        // Closing stdin ends `cat`: the supervisor restarts it.
        drop(pipes);
    }
    child.stop().await;
}

pub(crate) fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers")
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn an_http_child_is_ready_once_mcp_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let script =
        peers_dir().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        script.is_file(),
        "peers not installed: {}",
        script.display()
    );
    let mut env = BTreeMap::new();
    env.insert("PORT".to_owned(), port.to_string());
    let spec = ChildSpec {
        name: "everything".into(),
        command: "node".into(),
        args: vec![script.display().to_string(), "streamableHttp".into()],
        env,
        cwd: None,
        log_path: dir.path().join("everything.log"),
        policy: fast_policy(),
        stop_grace: Duration::from_secs(3),
        internal_port: None,
    };
    let child = SupervisedChild::spawn(
        spec,
        Readiness::Http {
            port,
            transport: Transport::StreamableHttp,
        },
        ChildIo::Logged,
        None,
    );
    assert_eq!(child.snapshot().state, TargetState::Starting);
    child.wait_ready(Duration::from_secs(30)).await.unwrap();
    let client = reqwest::Client::new();
    probe_mcp(&client, port, Transport::StreamableHttp)
        .await
        .unwrap();
    let pid = child.snapshot().pid.unwrap();
    child.stop().await;
    assert!(!pid_alive(pid));
    assert!(
        probe_mcp(&client, port, Transport::StreamableHttp)
            .await
            .is_err()
    );
}

#[test]
fn internal_port_is_kept_while_free_and_replaced_when_taken() {
    let first = super::pick_internal_port(0).unwrap();
    assert_ne!(first, 0);
    assert_eq!(super::pick_internal_port(first).unwrap(), first);
    let holder = std::net::TcpListener::bind(("127.0.0.1", first)).unwrap();
    let second = super::pick_internal_port(first).unwrap();
    assert_ne!(second, first);
    assert_ne!(second, 0);
    drop(holder);
}

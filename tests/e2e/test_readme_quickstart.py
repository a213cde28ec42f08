"""The README's Quick start, followed word for word on a fresh clone: each command of its code
block is run as written (in a temp HOME, with config.toml on ephemeral ports so that nothing
here meets another host), and `claude mcp list` must show memory connected through the proxy
the plain `cargo build --release` built.

The clone's `target/` is a link to this checkout's, so dependencies are not built twice; our own
crates are built from the clone's sources."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

from conftest import NODE_BIN, REPO, Home, free_port, http_ok, wait_until


def quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_the_quick_start_works_on_a_fresh_clone(home: Home, tmp_path: Path):
    commands = quick_start_commands()
    assert commands[0] == "cargo build --release", commands
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{REPO}", str(clone)], check=True)
    (clone / "target").symlink_to(REPO / "target")
    manager_port, memory_port = free_port(), free_port()
    home.write_config(f'[manager]\nport = {manager_port}\n\n[targets.memory]\nbuiltin = "memory"\nport = {memory_port}\n')
    # The user's own toolchain: rustup and cargo find it under the real HOME.
    real_home = Path(os.path.expanduser("~"))
    env = dict(
        home.env,
        PATH=f"{NODE_BIN}{os.pathsep}{home.env['PATH']}",
        RUSTUP_HOME=os.environ.get("RUSTUP_HOME", str(real_home / ".rustup")),
        CARGO_HOME=os.environ.get("CARGO_HOME", str(real_home / ".cargo")),
    )
    daemon = None
    try:
        for command in commands:
            if command.endswith("&"):
                argv = shlex.split(command[:-1])
                daemon = subprocess.Popen(argv, cwd=clone, env=env, stdout=subprocess.DEVNULL,
                                          stderr=open(tmp_path / "daemon.log", "wb"), start_new_session=True)
                wait_until(lambda: http_ok(f"http://127.0.0.1:{memory_port}/health"), timeout=60, what="the daemon")
                continue
            result = subprocess.run(shlex.split(command), cwd=clone, env=env, capture_output=True, text=True,
                                    timeout=3600)
            assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
            if command.startswith("claude"):
                line = next((l for l in result.stdout.splitlines() if l.startswith("memory:")), "")
                assert "mcp-session-proxy --target memory" in line and "✔ Connected" in line, result.stdout
        assert (clone / "target" / "release" / "mcp-session-proxy").exists()
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)

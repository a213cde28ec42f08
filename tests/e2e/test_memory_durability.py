"""The memory DB of a project survives what happens to it outside the host: its `.claude/` deleted
(by hand or by `git clean -fdx`) or the project renamed or the DB file replaced while a session
is open, the host SIGKILLed mid-write, a full disk and a read-only project. Raw JSON-RPC
sessions over one keep-alive connection each (`RawSession`), the files checked from outside
with Python's sqlite3 and, when installed, the `sqlite3` shell."""

from __future__ import annotations

import http.client
import os
import random
import shutil
import signal
import subprocess
import threading
import time

import pytest

from _durability_util import (
    EventReader,
    RawSession,
    cli_names,
    db_names,
    entity,
    fill_file_system,
    graph_in_fresh_host,
    integrity,
    path_spellings,
    remount_read_only,
    require_root_mounts,
    running,
    tmpfs,
    tool_text,
)
from conftest import start_host


def memory_db(project):
    return project / ".claude" / "memory.db"


def check_write_after_removal(home, project, remove) -> None:
    """Writes A through a session on `project`, runs `remove` (which takes `.claude/` away)
    while the host runs, writes B through the same session: B lands in a new
    `project/.claude/memory.db`, which the old session, the file itself and a fresh host show
    without A."""
    db = memory_db(project)
    with running(home) as host:
        session = RawSession.of(host, project)
        assert session.create("A") == ["A"]
        assert db_names(db) == {"A"}
        remove()
        assert not (project / ".claude").exists()
        assert session.create("B") == ["B"], "a write after .claude/ was deleted"
        assert session.graph_names() == ["B"], "the old session reads the new DB (A went with the deleted dir)"
        session.close()
    assert db_names(db) == {"B"}, f"{db} after the host stopped"
    assert cli_names(db) in (None, {"B"}), "the sqlite3 shell's view"
    assert integrity(db) == "ok"
    assert graph_in_fresh_host(home, project) == ["B"], "a fresh host reads B from the project DB"


def test_deleted_claude_dir_mid_session_is_recreated_by_the_next_write(home, tmp_path):
    project = tmp_path / "orchard"
    project.mkdir()
    check_write_after_removal(home, project, lambda: shutil.rmtree(project / ".claude"))


def test_git_clean_mid_session_is_survived(home, tmp_path):
    if shutil.which("git") is None:
        pytest.skip("needs git")
    project = tmp_path / "repo"
    project.mkdir()
    git = ["git", "-c", "user.name=Durability", "-c", "user.email=durability@example.invalid",
           "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]

    def run(*args):
        done = subprocess.run([*git, *args], cwd=project, env=home.env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("init", "-q")
    (project / "README.md").write_text("tracked\n")
    run("add", "README.md")
    run("commit", "-q", "-m", "first")

    def clean():
        assert "?? .claude/" in run("status", "--porcelain", "--untracked-files=normal")
        run("clean", "-fdx")
        assert (project / "README.md").read_text() == "tracked\n"

    check_write_after_removal(home, project, clean)


def test_renamed_project_dir_mid_session_writes_to_the_home_db(home, tmp_path):
    project = tmp_path / "ledger"
    project.mkdir()
    moved = tmp_path / "ledger-moved"
    home_db = home.home / ".claude" / "memory.db"
    with running(home) as host:
        session = RawSession.of(host, project)
        assert session.create("before rename") == ["before rename"]
        os.rename(project, moved)
        assert session.create("after rename") == ["after rename"], "a write whose project dir was renamed"
        session.close()
    assert db_names(memory_db(moved)) == {"before rename"}, "the moved DB keeps what it had, and only that"
    assert integrity(memory_db(moved)) == "ok"
    assert not project.exists(), "nothing recreates the old project dir"
    assert db_names(home_db) == {"after rename"}, "the write went to the fallback home DB"
    assert graph_in_fresh_host(home, project) == ["after rename"], "a fresh host with the old header reads it again"


def test_replaced_db_file_is_used_by_the_next_read_and_write(home, tmp_path):
    project = tmp_path / "papers"
    other = tmp_path / "quarry"
    for p in (project, other):
        p.mkdir()
    with running(home) as host:
        session = RawSession.of(host, other)
        assert session.create("Q1") == ["Q1"]
        session.close()
    assert db_names(memory_db(other)) == {"Q1"}
    db = memory_db(project)
    with running(home) as host:
        session = RawSession.of(host, project)
        assert session.create("P1") == ["P1"]
        assert session.graph_names() == ["P1"]
        incoming = db.with_name("memory.db.incoming")
        shutil.copyfile(memory_db(other), incoming)
        os.replace(incoming, db)
        assert session.graph_names() == ["Q1"], "the read after the replacement uses the new file"
        assert session.create("P2") == ["P2"]
        assert sorted(session.graph_names()) == ["P2", "Q1"]
        session.close()
    assert db_names(db) == {"Q1", "P2"}, "the write after the replacement landed in the new file"
    assert cli_names(db) in (None, {"Q1", "P2"})
    assert integrity(db) == "ok"
    assert db_names(memory_db(other)) == {"Q1"}, "the copy's source is untouched"


def test_deleted_db_is_announced_on_the_events_stream(home, tmp_path):
    project = tmp_path / "lighthouse"
    project.mkdir()
    db = memory_db(project)
    with running(home) as host:
        session = RawSession.of(host, project)
        session.create("A")
        events = EventReader(host)
        try:
            shutil.rmtree(project / ".claude")
            assert session.create("B") == ["B"]
            found = events.wait_for("memory-db-reopened", timeout=5)
        finally:
            events.close()
        session.close()
    assert found, f"no memory-db-reopened event; the stream carried {events.events}"
    event = found[0]
    assert event["reason"] == "deleted", event
    assert event["db"] in path_spellings(db), event
    assert event["now"] in path_spellings(db), event
    assert event["project"] in path_spellings(project), event
    assert isinstance(event["message"], str) and project.name in event["message"], event


ROUNDS = 20
WRITERS = 10


def _writer(port, headers, prefix, start, acked, failures):
    """Creates `prefix-i` entities one call at a time until the connection dies; appends the
    name of every call that answered success to `acked`, and tool errors to `failures`."""
    try:
        session = RawSession(port, headers)
    except BaseException as error:
        failures.append(f"{prefix}: no session: {error!r}")
        start.abort()
        return
    try:
        start.wait(10)
    except threading.BrokenBarrierError:
        return
    i = 0
    while True:
        name = f"{prefix}-{i}"
        try:
            result = session.call("create_entities", {"entities": [entity(name, [f"payload of {name}", "crash"])]})
        except (OSError, ValueError, http.client.HTTPException):
            break  # the host was killed under this call
        except AssertionError as error:
            failures.append(f"{name}: {error}")
            break
        if result.get("isError"):
            failures.append(f"{name}: {tool_text(result)}")
        elif [e["name"] for e in result["structuredContent"]["entities"]] == [name]:
            acked.append(name)
        else:
            failures.append(f"{name}: unexpected answer {result}")
        i += 1
    session.conn.close()


def _check_acknowledged(host, project, acked, last_round_names, rng, seed):
    """Every acknowledged name is in the DB (a sample through the host: open_nodes and a search
    of the last round's names; all of them through Python's sqlite3), which is intact."""
    session = RawSession.of(host, project)
    try:
        sample = rng.sample(sorted(acked), min(40, len(acked)))
        opened = session.ok("open_nodes", {"names": sample})
        assert sorted(e["name"] for e in opened["entities"]) == sorted(sample), f"seed {seed}"
        if last_round_names:
            prefix = last_round_names[0].split("-w")[0] + "-w"
            found = {e["name"] for e in session.ok("search_nodes", {"query": prefix})["entities"]}
            lost = set(last_round_names) - found
            assert not lost, f"seed {seed}: acknowledged but not found by search: {sorted(lost)[:20]}"
    finally:
        session.close()
    db = memory_db(project)
    lost = set(acked) - db_names(db)
    assert not lost, f"seed {seed}: {len(lost)} acknowledged writes lost, e.g. {sorted(lost)[:20]}"
    assert integrity(db) == "ok", f"seed {seed}"


def test_sigkill_mid_write_loses_no_acknowledged_entity(home, tmp_path):
    seed = int(os.environ.get("MSM_DURABILITY_SEED", time.time_ns() % 1_000_000))
    print(f"random seed {seed} (set MSM_DURABILITY_SEED to replay)")
    rng = random.Random(seed)
    project = tmp_path / "crashsite"
    project.mkdir()
    acked: list[str] = []
    last_round: list[str] = []
    failures: list[str] = []
    started = time.monotonic()
    for round_ in range(ROUNDS):
        host = start_host(home)
        try:
            if acked:
                _check_acknowledged(host, project, acked, last_round, rng, seed)
            last_round = []
            start = threading.Barrier(WRITERS + 1)
            threads = [
                threading.Thread(target=_writer, args=(host.ports["memory"], host.headers(project),
                                                       f"r{round_:02d}-w{w}", start, last_round, failures))
                for w in range(WRITERS)
            ]
            for t in threads:
                t.start()
            try:
                start.wait(15)
            except threading.BrokenBarrierError:
                pass  # a writer could not open its session: `failures` says why
            else:
                time.sleep(rng.uniform(0.1, 0.8))
        finally:
            host.proc.send_signal(signal.SIGKILL)
            host.proc.wait(10)
        for t in threads:
            t.join(15)
            assert not t.is_alive(), f"seed {seed}: a writer hangs after the kill"
        assert host.proc.returncode == -signal.SIGKILL
        acked.extend(last_round)
        assert failures == [], f"seed {seed}, round {round_}: {failures[:5]}"
    with running(home) as host:
        _check_acknowledged(host, project, acked, last_round, rng, seed)
    elapsed = time.monotonic() - started
    print(f"{len(acked)} acknowledged writes in {ROUNDS} rounds, {elapsed:.1f} s")
    assert len(acked) >= ROUNDS, f"seed {seed}: too few writes were acknowledged to test anything ({len(acked)})"


def test_full_disk_is_a_tool_error_naming_the_db_and_the_db_stays_intact(home, tmp_path):
    require_root_mounts()
    with tmpfs(tmp_path / "disk", "2m") as disk:
        project = disk / "proj"
        project.mkdir()
        db = memory_db(project)
        filler = disk / "filler"
        big = {"entities": [entity(f"big {n}", [f"{n} " + "x" * 2048]) for n in range(50)]}
        host = start_host(home)
        try:
            session = RawSession.of(host, project)
            assert session.create("early 1", "early 2", "early 3") == ["early 1", "early 2", "early 3"]
            assert fill_file_system(filler) > 0
            result = session.call("create_entities", big)
            assert result.get("isError") is True, f"a write on a full disk must fail: {str(result)[:500]}"
            text = tool_text(result)
            assert any(p in text for p in path_spellings(db)), f"the error names the DB: {text!r}"
            assert "disk is full" in text.lower(), text
            opened = session.ok("open_nodes", {"names": ["early 1", "early 2", "early 3"]})
            assert sorted(e["name"] for e in opened["entities"]) == ["early 1", "early 2", "early 3"]
            filler.unlink()
            created = session.ok("create_entities", big)
            assert len(created["entities"]) == 50, "the same write once there is room again"
            session.close()
        finally:
            stopped = host.stop()
        assert stopped == 0
        assert integrity(db) == "ok"
        assert db_names(db) == {"early 1", "early 2", "early 3"} | {f"big {n}" for n in range(50)}


def test_read_only_project_dir_writes_to_the_home_db(home, tmp_path):
    require_root_mounts()
    home_db = home.home / ".claude" / "memory.db"
    with tmpfs(tmp_path / "ro", "1m") as mount:
        project = mount / "proj"
        project.mkdir()
        remount_read_only(mount)
        host = start_host(home)
        try:
            session = RawSession.of(host, project)
            assert session.create("on a read-only project") == ["on a read-only project"]
            assert session.graph_names() == ["on a read-only project"]
            session.close()
        finally:
            stopped = host.stop()
        assert stopped == 0
        assert not memory_db(project).exists() and not (project / ".claude").exists()
    assert db_names(home_db) == {"on a read-only project"}
    assert cli_names(home_db) in (None, {"on a read-only project"})

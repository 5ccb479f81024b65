"""The search index shared by processes: one writer at a time, readers that never see a
half-written index, and a writer killed in the middle of a rebuild.

This file is also the writer processes' entry point:
    python test_search_processes.py hold FOLDER                 (the lock, until stdin closes)
    python test_search_processes.py rebuild FOLDER ROWS SNAPSHOT
    python test_search_processes.py churn FOLDER ROWS ROUNDS    (incremental syncs, same ids)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from opencdp.serve.search import SearchIndexBusyError
from opencdp.serve.search.tantivy_index import POINTER, TantivyProfileSearch

pytestmark = pytest.mark.integration

FIRST = ("Ana", "Ben", "Chloé", "Dmitri", "Eve", "Farid", "Grace", "Hugo", "Ines", "Jun")
LAST = ("Smith", "García", "Müller", "Dubois", "Rossi", "Kowalski", "Chen", "Okafor")
EVERYONE = {"identified": "true"}  # a filter every generated profile passes


def people(rows: int, *, start: int = 0, tag: str = "") -> pa.Table:
    """`rows` profiles P{start}..., all identified; `tag` goes into their company."""
    numbers = range(start, start + rows)
    return pa.table(
        {
            "profile_id": [f"P{i:08d}" for i in numbers],
            "first_name": [FIRST[i % len(FIRST)] for i in numbers],
            "last_name": [LAST[i // len(FIRST) % len(LAST)] for i in numbers],
            "email": [f"user{i}@example.com" for i in numbers],
            "phone": [f"+1415{2_000_000 + i:07d}" for i in numbers],
            "company": [f"{tag}co" for _ in numbers],
            "identified": [True] * rows,
        }
    )


def run(*args: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def total(search: TantivyProfileSearch) -> int:
    return search.search("", filters=EVERYONE, limit=1).total


# --- the processes -------------------------------------------------------------------------


def hold_main(folder: str) -> None:
    search = TantivyProfileSearch(Path(folder))
    with search._writer_lock():
        print("locked", flush=True)
        sys.stdin.read()  # until the test closes our stdin


def rebuild_main(folder: str, rows: int, snapshot: int) -> None:
    table = people(rows, tag="new")
    print("ready", flush=True)
    TantivyProfileSearch(Path(folder)).sync(table, [], full=True, snapshot_id=snapshot)


def churn_main(folder: str, rows: int, rounds: int) -> None:
    search = TantivyProfileSearch(Path(folder))
    for k in range(rounds):
        # The same profiles again, with another company: deleted and added in one commit.
        search.sync(people(rows, tag=f"round{k}"), [], full=False, snapshot_id=100 + k)


# --- the tests -----------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "search" / "acme"


def test_a_second_writer_fails_clearly_while_one_writes(folder: Path) -> None:
    holder = run("hold", folder)
    assert holder.stdout is not None
    assert holder.stdout.readline() == b"locked\n"
    try:
        search = TantivyProfileSearch(folder, lock_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(SearchIndexBusyError, match="another process is writing"):
            search.sync(people(10), [], full=True, snapshot_id=1)
        assert time.monotonic() - started >= 0.3  # it waited first
        assert search.synced_snapshot() is None
    finally:
        holder.communicate(timeout=30)


def test_a_second_writer_waits_for_the_first(folder: Path) -> None:
    holder = run("hold", folder)
    assert holder.stdout is not None
    assert holder.stdout.readline() == b"locked\n"
    release = threading.Timer(0.5, lambda: holder.communicate(timeout=30))
    release.start()
    try:
        search = TantivyProfileSearch(folder, lock_timeout=60)
        search.sync(people(10), [], full=True, snapshot_id=1)
    finally:
        release.join()
    assert holder.returncode == 0
    assert search.synced_snapshot() == 1


def test_a_reader_sees_the_old_or_the_new_index_during_a_rebuild(folder: Path) -> None:
    reader = TantivyProfileSearch(folder)
    TantivyProfileSearch(folder).sync(people(1_000, tag="old"), [], full=True, snapshot_id=1)
    assert total(reader) == 1_000
    writer = run("rebuild", folder, 60_000, 2)
    seen = set()
    while writer.poll() is None:
        seen.add(total(reader))
    assert writer.returncode == 0
    seen.add(total(reader))
    assert seen == {1_000, 60_000}
    assert reader.synced_snapshot() == 2
    assert reader.search("newco", limit=1).total == 60_000


def test_a_reader_never_sees_an_incremental_sync_half_done(folder: Path) -> None:
    rows = 20_000
    reader = TantivyProfileSearch(folder)
    TantivyProfileSearch(folder).sync(people(rows, tag="old"), [], full=True, snapshot_id=1)
    writer = run("churn", folder, rows, 4)
    seen = set()
    while writer.poll() is None:
        seen.add(total(reader))
    assert writer.returncode == 0
    assert seen == {rows}
    assert reader.synced_snapshot() == 103
    assert reader.search("round3co", limit=1).total == rows
    assert reader.search("oldco", limit=1).total == 0


def test_a_writer_killed_during_a_rebuild_changes_nothing(folder: Path) -> None:
    search = TantivyProfileSearch(folder)
    search.sync(people(1_000, tag="old"), [], full=True, snapshot_id=1)
    pointer = (folder / POINTER).read_bytes()
    writer = run("rebuild", folder, 300_000, 2)
    assert writer.stdout is not None
    assert writer.stdout.readline() == b"ready\n"
    while not (folder / "gen-000002").exists():
        assert writer.poll() is None
        time.sleep(0.001)
    os.kill(writer.pid, signal.SIGKILL)
    assert writer.wait(timeout=30) == -signal.SIGKILL
    assert (folder / POINTER).read_bytes() == pointer
    assert search.synced_snapshot() == 1
    assert total(search) == 1_000
    # The next writer takes the lock the dead one held, and the half-built generation goes.
    search.sync(people(10, tag="next"), [], full=True, snapshot_id=3)
    assert total(search) == 10
    assert sorted(p.name for p in folder.glob("gen-*")) == ["gen-000001", "gen-000003"]


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command == "hold":
        hold_main(arguments[0])
    elif command == "rebuild":
        rebuild_main(arguments[0], int(arguments[1]), int(arguments[2]))
    elif command == "churn":
        churn_main(arguments[0], int(arguments[1]), int(arguments[2]))
    else:
        raise SystemExit(f"unknown command {command!r}")

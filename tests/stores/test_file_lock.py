"""The run directory's lock: concurrent runs never lose a loop, the loser is told who runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.servers.http_target import ThreadedHttpTarget

from canarist.core.errors import UnavailableError
from canarist.stores.file import LOCK_FILE, FileStore, RunDirLocked

CANARIST = [sys.executable, "-m", "canarist"]
LOSER = re.compile(
    r"^Error: (?P<dir>\S+): another canarist run is using this run directory \(pid (?P<pid>\d+) "
    r"on host \S+ since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\); this one stops without changing it "
    r"\(wait for that run to end, or use another --run-dir\)$")


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with ThreadedHttpTarget() as url:
        yield url


def loops(run_dir: Path) -> tuple[int, int]:
    """numLoops, and how many loops' request counts the file keeps."""
    result: dict[str, Any] = yaml.safe_load((run_dir / "experiment.yaml").read_text())["result"]
    counts = result["insights"]["nonHistMetricValues"][0]["http/request-count"]
    return int(result["numLoops"]), len(counts)


@pytest.mark.parametrize(("at_once", "rounds"), [(2, 3), (4, 2)])
def test_concurrent_runs_never_lose_a_loop(tmp_path: Path, target: str, at_once: int,
                                           rounds: int) -> None:
    """Rounds of 2 or 4 `canarist run --reuse-result` started together on one run directory:
    every run that exits 0 added exactly one loop and its results; every other run exits 3
    with one line naming the directory and a holder, and changed nothing."""
    launch = subprocess.run(
        [*CANARIST, "launch", "--run-dir", str(tmp_path), "--set", "tasks={http}",
         "--set", f"http.url={target}", "--set", "http.numRequests=30", "--set", "http.qps=30"],
        capture_output=True, text=True, timeout=120, check=False)
    assert launch.returncode == 0, launch.stderr
    expected = 1
    assert loops(tmp_path) == (1, 1)
    refused = 0
    for _round in range(rounds):
        procs = [subprocess.Popen([*CANARIST, "run", "--reuse-result", "--run-dir", str(tmp_path)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(at_once)]
        outcomes = [(proc.pid, proc.wait(120), proc.stderr.read() if proc.stderr else "")
                    for proc in procs]
        for proc in procs:
            assert proc.stderr is not None
            proc.stderr.close()
        winners = {pid for pid, code, _ in outcomes if code == 0}
        for _pid, code, stderr in outcomes:
            assert code in (0, 3), stderr
            if code == 3:
                refused += 1
                errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
                assert len(errors) == 1 and "Traceback" not in stderr, stderr
                found = LOSER.match(errors[0])
                assert found, errors[0]
                assert found["dir"] == str(tmp_path)
                # the holder named is one of this round's runs (the one that won)
                assert int(found["pid"]) in {pid for pid, _, _ in outcomes}
        expected += len(winners)
        assert loops(tmp_path) == (expected, expected)
    assert refused > 0, "the runs never overlapped; the test proves nothing"


def test_a_second_holder_is_refused_and_the_lock_is_released(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    with store.lock(create=True):
        assert (tmp_path / LOCK_FILE).read_text().startswith(f"pid {os.getpid()} on host ")
        with pytest.raises(RunDirLocked, match="another canarist run is using this run "
                                               f"directory \\(pid {os.getpid()} on host") as caught, \
                FileStore(tmp_path).lock():
            pass
        assert caught.value.exit_code == 3
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released, holder cleared
    with store.lock():
        pass


def test_a_killed_holder_never_leaves_the_directory_locked(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from canarist.stores.file import FileStore\n"
            "with FileStore(Path(sys.argv[1])).lock(create=True):\n"
            "    print('locked', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(RunDirLocked, match=f"pid {holder.pid} on host"), \
                FileStore(tmp_path).lock():
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    with FileStore(tmp_path).lock():  # taken at once (flock is never waited for): ours now
        assert (tmp_path / LOCK_FILE).read_text().startswith(f"pid {os.getpid()} on host ")


def test_a_missing_run_directory_is_not_created_by_run(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    with pytest.raises(UnavailableError, match="no experiment file; run `canarist launch` first"), \
            FileStore(missing).lock():
        pass
    assert not missing.exists()

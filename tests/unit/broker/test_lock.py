"""Data directory lock tests: one owner per data directory, with an error that says what to do.

Goal: a second process (or a second store in the same process) opening a data directory
in use fails at once with DataDirLockedError naming the owner and pointing to server mode;
the lock goes away with its owner, even after kill -9, so there are no stale locks.
Method: real child processes (subprocess, python -c) that open the same directory; the
owner is this test process or a child that is killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from headwater.broker import DataDirLock, MetadataStore
from headwater.errors import DataDirLockedError

SRC = str(Path(__file__).resolve().parents[3] / "src")

TRY_OPEN = textwrap.dedent(
    """
    import sys
    from headwater.broker import MetadataStore
    from headwater.errors import DataDirLockedError
    try:
        MetadataStore.open(sys.argv[1]).close()
    except DataDirLockedError as exc:
        print(exc)
        sys.exit(3)
    print("opened")
    """
)

HOLD = textwrap.dedent(
    """
    import sys, time
    from headwater.broker import MetadataStore
    store = MetadataStore.open(sys.argv[1])
    print("locked", flush=True)
    time.sleep(60)
    """
)


def _python(code: str, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,  # type: ignore[arg-type]
    )


def _try_open(data_dir: Path) -> tuple[int, str]:
    proc = _python(TRY_OPEN, str(data_dir))
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out + err


def test_second_process_gets_a_clear_error(tmp_path: Path) -> None:
    store = MetadataStore.open(tmp_path)
    try:
        code, out = _try_open(tmp_path)
        assert code == 3, out
        assert "locked" in out
        assert f"process {os.getpid()}" in out
        assert "headwater serve" in out and "Kafka client" in out
        assert str(tmp_path) in out
    finally:
        store.close()
    code, out = _try_open(tmp_path)
    assert code == 0 and "opened" in out, out


def test_lock_dies_with_a_killed_owner(tmp_path: Path) -> None:
    holder = _python(HOLD, str(tmp_path))
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(DataDirLockedError, match=f"process {holder.pid}"):
            MetadataStore.open(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    MetadataStore.open(tmp_path).close()


def test_second_store_in_this_process(tmp_path: Path) -> None:
    with MetadataStore.open(tmp_path):
        with pytest.raises(DataDirLockedError, match="this process"):
            MetadataStore.open(tmp_path)
        with pytest.raises(DataDirLockedError):
            DataDirLock.acquire(tmp_path)
    MetadataStore.open(tmp_path).close()


def test_handed_over_lock_and_no_lock(tmp_path: Path) -> None:
    lock = DataDirLock.acquire(tmp_path)
    store = MetadataStore.open(tmp_path, lock=lock)
    assert lock.held
    store.close()
    assert not lock.held
    unlocked = MetadataStore.open(tmp_path, lock=False)
    unlocked.close()
    assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())


def test_lock_file_is_not_inherited_by_children(tmp_path: Path) -> None:
    """A child process spawned by the owner must not keep the lock alive after the owner."""
    store = MetadataStore.open(tmp_path)
    child = _python("import time; time.sleep(60)", close_fds=False)
    try:
        store.close()
        code, out = _try_open(tmp_path)
        assert code == 0, out
    finally:
        child.kill()
        child.communicate(timeout=30)

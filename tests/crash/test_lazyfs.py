"""lazyfs itself: proof that the simulated power cut is live before trusting any crash test.

Goal: show with plain file operations (no headwater code) that the FUSE file system in
tools/lazyfs.py forgets exactly what was not made durable: unsynced write()s, stores into a
shared mapping without msync, size changes, and directory entries whose directory was not
fsync'd; and that fsync / msync / fsyncdir make the same things survive. Also that its
injected read errors are live: EIO for pread, SIGBUS through a mapping.

Method: a real FUSE mount (root, /dev/fuse) over a temporary backing directory; each test
does some I/O, calls Mount.crash() (drop, unmount, mount again) and reads the files back.
The op counters prove the kernel really sent the write/fsync ops we model (msync(MS_SYNC)
arrives as write + fdatasync).
"""

from __future__ import annotations

import errno
import mmap
import os
import subprocess
import sys

import pytest
from crash_harness import fsync_dir, requires_fuse

pytestmark = [requires_fuse, pytest.mark.root]


def write_file(path: str, data: bytes, *, fsync: bool) -> None:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def delta(before: dict, after: dict) -> dict:
    b, a = before["counts"], after["counts"]
    return {k: a.get(k, 0) - b.get(k, 0) for k in a if a.get(k, 0) != b.get(k, 0)}


def durable_file(m, name: str, data: bytes) -> str:  # type: ignore[no-untyped-def]
    path = m.path(name)
    write_file(path, data, fsync=True)
    fsync_dir(m.mountpoint)
    return path


def test_unsynced_write_is_lost(lazy_mount):  # type: ignore[no-untyped-def]
    p = durable_file(lazy_mount, "f", b"durable")
    write_file(p, b"+volatile", fsync=False)
    assert read(p) == b"durable+volatile"
    report = lazy_mount.crash()
    assert read(p) == b"durable"
    assert report["pages_dropped"] == 1 and report["bytes_cut"] == len(b"+volatile")


def test_fsynced_write_survives(lazy_mount):  # type: ignore[no-untyped-def]
    p = durable_file(lazy_mount, "f", b"one")
    write_file(p, b"+two", fsync=True)
    write_file(p, b"+three", fsync=False)
    lazy_mount.crash()
    assert read(p) == b"one+two"


def test_overwrite_in_place_rolls_back_to_synced_bytes(lazy_mount):  # type: ignore[no-untyped-def]
    p = durable_file(lazy_mount, "f", bytes(range(256)) * 64)  # 16 KiB, 4 pages
    fd = os.open(p, os.O_RDWR)
    os.pwrite(fd, b"X" * 5000, 3000)  # spans pages 0-1
    os.pwrite(fd, b"Y" * 10, 20000)  # extends the file
    os.close(fd)
    lazy_mount.crash()
    assert read(p) == bytes(range(256)) * 64


def test_mmap_msync_survives_and_reaches_fs_as_write_fdatasync(lazy_mount):  # type: ignore[no-untyped-def]
    p = durable_file(lazy_mount, "seg", bytes(1 << 16))
    fd = os.open(p, os.O_RDWR)
    mm = mmap.mmap(fd, 1 << 16)
    mm[100:110] = b"synced...."
    before = lazy_mount.stats()
    mm.flush()  # msync(MS_SYNC)
    after = lazy_mount.stats()
    mm[40000:40010] = b"unsynced.."  # a different page, never msync'd
    mm.close()
    os.close(fd)
    assert delta(before, after) == {"write": 1, "fdatasync": 1}
    lazy_mount.crash()
    data = read(p)
    assert data is not None
    assert data[100:110] == b"synced...."
    assert data[40000:40010] == bytes(10)


def test_mmap_without_msync_is_lost_even_after_kill9(lazy_mount):  # type: ignore[no-untyped-def]
    """A killed mapper's dirty pages are written back at exit, but that is not a sync."""
    p = durable_file(lazy_mount, "seg", bytes(1 << 16))
    code = (
        "import mmap, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "mm = mmap.mmap(fd, 1 << 16)\n"
        "mm[0:8] = b'msynced!'\n"
        "mm.flush()\n"
        "mm[8:16] = b'dirty...'\n"
        "mm[50000:50008] = b'dirty...'\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, p], stdout=subprocess.PIPE, cwd="/")
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    before = lazy_mount.stats()
    child.kill()
    child.wait()
    child.stdout.close()
    after = lazy_mount.stats()
    assert delta(before, after).get("write", 0) >= 1  # the kernel did write the pages back
    assert "fdatasync" not in delta(before, after)
    lazy_mount.crash()
    data = read(p)
    assert data is not None
    assert data[:16] == b"msynced!" + bytes(8)
    assert data[50000:50008] == bytes(8)


def test_size_changes_need_fsync(lazy_mount):  # type: ignore[no-untyped-def]
    a = durable_file(lazy_mount, "a", b"a" * 10000)
    b = durable_file(lazy_mount, "b", b"b" * 100)
    c = durable_file(lazy_mount, "c", b"c" * 100)
    os.truncate(a, 10)  # shrink, not synced
    fd = os.open(b, os.O_RDWR)
    os.posix_fallocate(fd, 0, 1 << 20)  # grow, not synced
    os.close(fd)
    fd = os.open(c, os.O_RDWR)
    os.ftruncate(fd, 50)
    os.fsync(fd)  # synced
    os.close(fd)
    lazy_mount.crash()
    assert read(a) == b"a" * 10000
    assert read(b) == b"b" * 100
    assert read(c) == b"c" * 50


def test_truncate_then_regrow_reads_zeros_after_sync(lazy_mount):  # type: ignore[no-untyped-def]
    p = durable_file(lazy_mount, "f", b"z" * 8192)
    fd = os.open(p, os.O_RDWR)
    os.ftruncate(fd, 100)
    os.ftruncate(fd, 8192)
    os.fsync(fd)
    os.ftruncate(fd, 0)
    os.close(fd)
    lazy_mount.crash()
    assert read(p) == b"z" * 100 + bytes(8092)


def test_new_file_needs_directory_fsync(lazy_mount):  # type: ignore[no-untyped-def]
    m = lazy_mount
    os.mkdir(m.path("d"))
    fsync_dir(m.mountpoint)
    write_file(m.path("synced-file-only"), b"x", fsync=True)
    write_file(m.path("d", "both"), b"y", fsync=True)
    fsync_dir(m.path("d"))
    os.mkdir(m.path("undurable-dir"))
    write_file(m.path("undurable-dir", "f"), b"z", fsync=True)
    fsync_dir(m.path("undurable-dir"))  # its parent was never synced
    report = m.crash()
    assert sorted(os.listdir(m.mountpoint)) == ["d"]
    assert read(m.path("d", "both")) == b"y"
    assert set(report["entries_lost"]) == {"synced-file-only", "undurable-dir/", "undurable-dir/f"}


def test_unlink_and_rename_need_directory_fsync(lazy_mount):  # type: ignore[no-untyped-def]
    m = lazy_mount
    for name in ("gone", "old", "target", "kept"):
        durable_file(m, name, name.encode())
    os.unlink(m.path("gone"))
    os.rename(m.path("old"), m.path("new"))
    os.rename(m.path("kept"), m.path("target"))  # replaces a durable file
    assert sorted(os.listdir(m.mountpoint)) == ["new", "target"]
    report = m.crash()
    assert sorted(os.listdir(m.mountpoint)) == ["gone", "kept", "old", "target"]
    assert [read(m.path(n)) for n in ("gone", "kept", "old", "target")] == [
        b"gone",
        b"kept",
        b"old",
        b"target",
    ]
    assert set(report["entries_restored"]) == {"gone", "kept", "old"}
    # and with the directory synced, the new names are what survives
    os.rename(m.path("old"), m.path("new"))
    os.unlink(m.path("gone"))
    fsync_dir(m.mountpoint)
    m.crash()
    assert sorted(os.listdir(m.mountpoint)) == ["kept", "new", "target"]
    assert read(m.path("new")) == b"old"
    os.unlink(m.path("kept"))
    assert len(os.listdir(m.backing + "/.lazyfs/trash")) == 1  # kept for a crash to restore
    fsync_dir(m.mountpoint)
    assert os.listdir(m.backing + "/.lazyfs/trash") == []  # the removal is durable now


def test_lenient_dir_model_keeps_fsynced_files(lazyfs, tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "b").mkdir()
    with lazyfs.Mount(str(tmp_path / "b"), str(tmp_path / "m"), dir_sync="file") as m:
        write_file(m.path("f"), b"data", fsync=True)
        write_file(m.path("g"), b"data", fsync=False)
        m.crash()
        assert os.listdir(m.mountpoint) == ["f"]
        assert read(m.path("f")) == b"data"


def test_keep_mode_tears_unsynced_pages(lazy_mount):  # type: ignore[no-untyped-def]
    """crash(keep=P) keeps a random subset of the unsynced pages: partial, torn states."""
    p = durable_file(lazy_mount, "f", b"")
    page = 4096
    write_file(p, b"".join(bytes([i]) * page for i in range(1, 33)), fsync=False)
    report = lazy_mount.crash(keep=0.5, seed=7)
    data = read(p)
    assert data is not None and 0 < report["pages_kept"] < 32
    assert len(data) % page == 0 and len(data) // page <= 32
    pages = [data[i : i + page] for i in range(0, len(data), page)]
    kept = [i for i, pg in enumerate(pages) if pg == bytes([i + 1]) * page]
    assert len(kept) + pages.count(bytes(page)) == len(pages)  # each page: new or zeros
    assert pages[-1] != bytes(page)  # the size ends at a kept page


def test_dead_after_crash_until_remount(lazy_mount):  # type: ignore[no-untyped-def]
    p = durable_file(lazy_mount, "f", b"x")
    lazy_mount.command("crash")
    with pytest.raises(OSError) as info:
        write_file(p, b"late", fsync=False)
    assert info.value.errno == errno.EIO
    gen = lazy_mount.status()["generation"]
    lazy_mount._unmount()
    lazy_mount._wait_generation(gen + 1)
    write_file(p, b"y", fsync=True)
    assert read(p) == b"xy"


def test_clean_unmount_is_a_clean_shutdown(lazyfs, tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "b").mkdir()
    with lazyfs.Mount(str(tmp_path / "b"), str(tmp_path / "m")) as m:
        write_file(m.path("f"), b"never synced", fsync=False)
    assert (tmp_path / "b" / "f").read_bytes() == b"never synced"
    assert sorted(os.listdir(tmp_path / "b" / ".lazyfs" / "trash")) == []


def test_fail_read_is_eio_for_pread_and_sigbus_for_a_mapping(lazy_mount):  # type: ignore[no-untyped-def]
    p = durable_file(lazy_mount, "f", b"x" * 3 * 4096)
    lazy_mount.fail_read("f", 4096, 8192)
    lazy_mount.remount()  # empty the page cache, so reads reach lazyfs
    fd = os.open(p, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as info:
            os.pread(fd, 100, 5000)
        assert info.value.errno == errno.EIO
    finally:
        os.close(fd)
    code = (
        "import mmap, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)\n"
        "print(mm[5000])\n"
    )
    child = subprocess.run([sys.executable, "-c", code, p], capture_output=True, cwd="/")
    assert child.returncode == -7  # SIGBUS: what a log that reads through its mapping gets
    lazy_mount.command("clear-faults")
    assert read(p) == b"x" * 3 * 4096

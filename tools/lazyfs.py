"""lazyfs: a FUSE passthrough file system that forgets everything not fsync'd.

It simulates power loss for the crash tests (RELIABILITY.md section 3 a'). A real VM disk
may not honour flushes, so power-loss behaviour has to be simulated, not observed.

Model
-----
The backing directory always holds the *live* tree, so reads, ``mmap`` and readdir are
plain passthrough. Beside it, lazyfs keeps what the durable state would be:

* **File data and size.** Before the first change to a 4 KiB page after the file's last
  ``fsync``/``fdatasync`` (the FUSE ``fsync`` op, which both send; ``msync(MS_SYNC)`` sends it
  too), lazyfs saves the page's durable bytes and the file's durable size (undo log, one
  entry per inode). ``write``, ``truncate``/``ftruncate``, ``fallocate`` and ``open(O_TRUNC)``
  all count as changes. An fsync of the file forgets the undo entry, so its current data and
  size become durable. ``fsync`` and ``fdatasync`` are treated alike: both make data and size
  durable.
* **Directory entries.** Entries created, renamed or removed (``create``, ``mkdir``,
  ``rename``, ``unlink``, ``rmdir``) are durable only after an ``fsync`` of their directory
  (``fsyncdir``): before the first change to a directory after its last fsync, lazyfs saves its
  entries (name -> inode). Files unlinked or replaced while a durable entry still names them
  are moved to ``<backing>/.lazyfs/trash`` so that a crash can bring them back (until an
  fsync of the directory that named them makes the removal durable). With
  ``dir_sync="file"`` an ``fsync`` of a file also makes its own current name durable (the
  lenient ext4-in-practice model); the default ``"strict"`` is the POSIX one.
* **Kernel write-back.** The mount uses FUSE's default page-cache mode (no ``direct_io``,
  which shared mappings cannot use, and no ``writeback_cache``), so a ``write()`` reaches
  lazyfs at once, and stores into a ``MAP_SHARED`` mapping reach it as ``write`` ops when the
  kernel writes the pages back: on ``msync``, ``fsync``, ``munmap``/exit of the mapper, or by
  the flusher after ``dirty_expire``. They are unsynced until lazyfs sees an ``fsync``.

Crash
-----
Write ``crash [keep=P] [seed=N]`` to the virtual file ``<mount>/.lazyfs-ctl``. lazyfs then

1. puts every changed page back to its durable bytes and every changed file back to its
   durable size (with ``keep=P`` each changed page instead keeps its new bytes with probability
   P, as if the kernel had written it back just before the power cut: torn, partial states);
2. rebuilds the tree from the durable directory entries (files are renamed into place, never
   copied, so their inode numbers stay), drops everything else and empties the trash;
3. turns "dead": every later change fails with EIO, until the mount is remounted. The kernel
   still caches the pre-crash pages and attributes, so the mount must be unmounted and mounted
   again before anyone looks at the files. ``Mount.crash()`` does all of that; the ``serve``
   process mounts again by itself after an unmount that follows a crash.

Kill (``kill -9``) every process using the mount first: a crash is a power cut of the whole
machine, and ``fusermount3 -u`` refuses a busy mount. Other commands: ``sync`` (make
everything durable now), ``stats``, ``fail-read PATH START END`` (reads of those bytes of PATH
fail with EIO, like a bad sector; ``clear-faults`` ends that) and ``remount`` (the next
unmount is followed by a mount, with nothing lost: it empties the kernel's page cache so that
reads reach lazyfs). After each command the state (op counts, mount generation, the last crash
report) is written to ``<backing>/.lazyfs/status.json``. A clean unmount (not after
a crash) is a clean shutdown: everything becomes durable.

Limits
------
Metadata other than names and sizes (mode, owner, times) is not modelled and always persists.
Hard links, symlinks and device nodes are not supported (ENOSYS/EPERM). ``fallocate`` supports
mode 0 and ``FALLOC_FL_KEEP_SIZE`` (others: EOPNOTSUPP). ``RENAME_EXCHANGE`` is refused
(EINVAL). POSIX and flock locks are left to the kernel (local to the mount). A rename is
atomic per directory, not across two directories: if only the target directory is synced, the
file may come back under both names (a copy). The file system runs single-threaded, so ops
are serialised: it is a correctness tool, not a fast one.

Usage
-----
    python tools/lazyfs.py serve BACKING MOUNTPOINT [--dir-sync strict|file]

or from Python (tests): ``with Mount(backing, mountpoint) as m: ...; m.crash(); ...``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import shutil
import stat
import subprocess
import sys
import time
from typing import Any

PAGE = 4096
CTL_NAME = ".lazyfs-ctl"  # virtual control file at the mount root
STATE_NAME = ".lazyfs"  # reserved directory in the backing root, hidden from the mount
_CTL_FH = 1 << 62  # file handle of the control file
_FALLOC_FL_KEEP_SIZE = 1
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


def _err(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class _Undo:
    """Durable state of one inode changed since its last fsync."""

    __slots__ = ("fd", "size", "pages")

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd  # our own O_RDWR descriptor: works wherever the name has gone
        self.size = size  # durable size
        self.pages: dict[int, bytes] = {}  # page -> its durable bytes (short or empty past size)


try:  # the FUSE parts need libfuse; the Mount helper and the docs do not
    import mfusepy

    _Operations: Any = mfusepy.Operations
except (ImportError, OSError):  # pragma: no cover - reported by Mount.start / the tests
    mfusepy = None
    _Operations = object


class LazyFS(_Operations):
    """The FUSE operations: passthrough to ``backing`` plus the durability bookkeeping."""

    use_ns = True

    def __init__(self, backing: str, dir_sync: str = "strict") -> None:
        if dir_sync not in ("strict", "file"):
            raise ValueError(f"dir_sync must be 'strict' or 'file', not {dir_sync!r}")
        self.root = os.path.realpath(backing)
        self.dir_sync = dir_sync
        self.state = os.path.join(self.root, STATE_NAME)
        self.trash = os.path.join(self.state, "trash")
        shutil.rmtree(self.trash, ignore_errors=True)
        os.makedirs(self.trash)
        self.files: dict[int, _Undo] = {}  # inode -> undo log
        self.dirs: dict[int, dict[str, tuple[int, bool]]] = {}  # dir inode -> durable entries
        self.dead = False
        self.generation = 0
        self.counts: dict[str, int] = {}
        self.last_crash: dict[str, Any] | None = None
        self.read_faults: dict[str, list[tuple[int, int]]] = {}  # path -> EIO byte ranges
        self.remount = False  # mount again after the next unmount
        self._seq = 0

    # ---------------------------------------------------------------- helpers
    def _count(self, op: str) -> None:
        self.counts[op] = self.counts.get(op, 0) + 1

    def _real(self, path: str) -> str:
        first = path.lstrip("/").split("/", 1)[0]
        if first == STATE_NAME:
            raise _err(errno.ENOENT)
        return self.root if path == "/" else self.root + path.rstrip("/")

    def _alive(self) -> None:
        if self.dead:
            raise _err(errno.EIO)

    def _track(self, fd: int, start: int, end: int) -> None:
        """Record the durable bytes of [start, end) of the file open as fd before it changes."""
        st = os.fstat(fd)
        u = self.files.get(st.st_ino)
        if u is None:
            u = self.files[st.st_ino] = _Undo(os.open(f"/proc/self/fd/{fd}", os.O_RDWR), st.st_size)
        for p in range(start // PAGE, (end + PAGE - 1) // PAGE):
            if p not in u.pages:
                keep = max(0, min(PAGE, u.size - p * PAGE))
                u.pages[p] = os.pread(u.fd, keep, p * PAGE) if keep else b""

    def _entries(self, dirpath: str) -> dict[str, tuple[int, bool]]:
        out = {}
        with os.scandir(dirpath) as it:
            for e in it:
                if dirpath == self.root and e.name == STATE_NAME:
                    continue
                st = e.stat(follow_symlinks=False)
                out[e.name] = (st.st_ino, stat.S_ISDIR(st.st_mode))
        return out

    def _dir_changing(self, real: str) -> None:
        """Save the durable entries of the directory holding ``real`` before it changes."""
        parent = os.path.dirname(real)
        ino = os.stat(parent).st_ino
        if ino not in self.dirs:
            self.dirs[ino] = self._entries(parent)

    def _scan(self) -> tuple[dict[int, str], dict[int, dict[str, tuple[int, bool]]], set[str]]:
        """ino -> one current path, dir ino -> current entries, live relative paths."""
        where: dict[int, str] = {}
        listing: dict[int, dict[str, tuple[int, bool]]] = {}
        live: set[str] = set()

        def walk(d: str, rel: str | None) -> None:
            ents = self._entries(d)
            listing[os.stat(d).st_ino] = ents
            for name, (ino, is_dir) in ents.items():
                p = os.path.join(d, name)
                where.setdefault(ino, p)
                if rel is not None:
                    live.add(rel + name + ("/" if is_dir else ""))
                if is_dir:
                    walk(p, None if rel is None else rel + name + "/")

        where[os.stat(self.root).st_ino] = self.root
        walk(self.root, "")
        walk(self.trash, None)
        return where, listing, live

    def _durable(self, where, listing, visit) -> None:
        """Walk the durable tree from the root, calling visit(parent_rel, name, ino, is_dir)."""

        def walk(dir_ino: int, rel: str, seen: frozenset[int]) -> None:
            ents = self.dirs.get(dir_ino, listing.get(dir_ino, {}))
            for name, (ino, is_dir) in sorted(ents.items()):
                if ino not in where or ino in seen:  # gone (cannot happen) or a cycle
                    continue
                if visit(rel, name, ino, is_dir) and is_dir:
                    walk(ino, rel + name + "/", seen | {ino})

        walk(os.stat(self.root).st_ino, "", frozenset())

    def _referenced(self, ino: int) -> bool:
        return any(e[0] == ino for ents in self.dirs.values() for e in ents.values())

    def _discard(self, real: str) -> None:
        """Remove a name: to the trash if a durable entry may still need the inode."""
        st = os.lstat(real)
        if self._referenced(st.st_ino) or (stat.S_ISDIR(st.st_mode) and st.st_ino in self.dirs):
            self._seq += 1
            os.rename(real, os.path.join(self.trash, f"{st.st_ino}.{self._seq}"))
        elif stat.S_ISDIR(st.st_mode):
            os.rmdir(real)
        else:
            os.unlink(real)
            u = self.files.pop(st.st_ino, None)
            if u is not None:
                os.close(u.fd)

    # ---------------------------------------------------------------- durability
    def sync_all(self) -> None:
        for u in self.files.values():
            os.close(u.fd)
        self.files.clear()
        self.dirs.clear()
        shutil.rmtree(self.trash, ignore_errors=True)
        os.makedirs(self.trash)

    def crash(self, keep: float = 0.0, seed: int | None = None) -> dict[str, Any]:
        """Roll the backing tree back to its durable state (see the module docstring)."""
        rng = random.Random(seed)
        rep: dict[str, Any] = {
            "files": len(self.files),
            "pages_dropped": 0,
            "pages_kept": 0,
            "bytes_cut": 0,
            "keep": keep,
            "seed": seed,
        }
        for u in self.files.values():
            cur = os.fstat(u.fd).st_size
            kept = {p for p in sorted(u.pages) if keep and rng.random() < keep}
            size = u.size
            if kept:
                size = max(size, min(cur, (max(kept) + 1) * PAGE))
            for p, pre in u.pages.items():
                lo, hi = p * PAGE, min(p * PAGE + PAGE, size)
                if p in kept:
                    rep["pages_kept"] += 1
                    continue
                rep["pages_dropped"] += 1
                if hi > lo:  # durable bytes, then zeros for bytes that were never durable
                    os.pwrite(u.fd, (pre + bytes(hi - lo - len(pre)))[: hi - lo], lo)
            rep["bytes_cut"] += max(0, cur - size)
            os.ftruncate(u.fd, size)
            os.close(u.fd)
        self.files.clear()

        where, listing, live_before = self._scan()
        stage = os.path.join(self.state, "stage")
        old = os.path.join(self.state, "old")
        for d in (stage, old):
            shutil.rmtree(d, ignore_errors=True)
            os.mkdir(d)
        placed: dict[int, str] = {}
        after: set[str] = set()

        def visit(rel: str, name: str, ino: int, is_dir: bool) -> bool:
            dst = os.path.join(stage, rel, name)
            if is_dir:
                os.mkdir(dst)
                shutil.copymode(where[ino], dst)
            elif ino in placed:  # durable under two names (see Limits)
                shutil.copy2(placed[ino], dst)
            else:
                os.rename(where[ino], dst)
                placed[ino] = dst
            after.add(rel + name + ("/" if is_dir else ""))
            return True

        self._durable(where, listing, visit)
        for name in os.listdir(self.root):
            if name != STATE_NAME:
                os.rename(os.path.join(self.root, name), os.path.join(old, name))
        for name in os.listdir(stage):
            os.rename(os.path.join(stage, name), os.path.join(self.root, name))
        for d in (stage, old):
            shutil.rmtree(d)
        self.sync_all()
        rep["entries_lost"] = sorted(live_before - after)
        rep["entries_restored"] = sorted(after - live_before)
        self.dead = True
        self.last_crash = rep
        self._count("crash")
        return rep

    def status(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "dead": self.dead,
            "counts": dict(self.counts),
            "unsynced_files": len(self.files),
            "unsynced_dirs": len(self.dirs),
            "last_crash": self.last_crash,
            "pid": os.getpid(),
        }

    def _write_status(self) -> None:
        tmp = os.path.join(self.state, "status.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.status(), f)
        os.rename(tmp, os.path.join(self.state, "status.json"))

    def _command(self, text: str) -> None:
        words = text.split()
        if not words:
            return
        opts = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        if words[0] == "crash":
            self.crash(float(opts.get("keep", 0.0)), int(opts["seed"]) if "seed" in opts else None)
        elif words[0] == "sync":
            self._alive()
            self.sync_all()
        elif words[0] == "remount":
            self.remount = True
        elif words[0] == "fail-read":  # fail-read /path START END
            path, start, end = words[1], int(words[2]), int(words[3])
            self.read_faults.setdefault("/" + path.lstrip("/"), []).append((start, end))
        elif words[0] == "clear-faults":
            self.read_faults.clear()
        elif words[0] != "stats":
            raise _err(errno.EINVAL)
        self._write_status()

    # ---------------------------------------------------------------- FUSE ops
    def init(self, path: str) -> None:
        self.dead = self.remount = False
        self.generation += 1
        self._write_status()

    def destroy(self, path: str) -> None:
        if not self.dead:  # a clean unmount is a clean shutdown
            self.sync_all()
        self._write_status()

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        if path == "/" + CTL_NAME:
            return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": 0}
        st = os.fstat(fh) if fh is not None and fh != _CTL_FH else os.lstat(self._real(path))
        out = {
            k: getattr(st, k)
            for k in (
                "st_mode",
                "st_ino",
                "st_nlink",
                "st_uid",
                "st_gid",
                "st_size",
                "st_blocks",
                "st_blksize",
            )
        }
        out.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
        return out

    def statfs(self, path: str) -> dict[str, int]:
        sv = os.statvfs(self.root)
        return {
            k: getattr(sv, k)
            for k in (
                "f_bsize",
                "f_frsize",
                "f_blocks",
                "f_bfree",
                "f_bavail",
                "f_files",
                "f_ffree",
                "f_favail",
                "f_namemax",
            )
        }

    def readdir(self, path: str, fh: int) -> list[str]:
        names = sorted(self._entries(self._real(path)))
        return [".", ".."] + names

    def opendir(self, path: str) -> int:
        if not os.path.isdir(self._real(path)):
            raise _err(errno.ENOTDIR)
        return 0

    def open(self, path: str, flags: int) -> int:
        if path == "/" + CTL_NAME:
            return _CTL_FH
        fd = os.open(self._real(path), flags & ~(os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_APPEND))
        if flags & os.O_TRUNC:
            try:
                self._truncate_fd(fd, 0)
            except OSError:
                os.close(fd)
                raise
        return fd

    def create(self, path: str, mode: int, flags: int = os.O_RDWR) -> int:
        self._alive()
        self._count("create")
        real = self._real(path)
        if not os.path.lexists(real):
            self._dir_changing(real)
        fd = os.open(real, (flags & ~(os.O_APPEND | os.O_TRUNC)) | os.O_CREAT, mode)
        if flags & os.O_TRUNC:
            self._truncate_fd(fd, 0)
        return fd

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        if fh == _CTL_FH:
            return b""
        for start, end in self.read_faults.get(path, ()):
            if offset < end and start < offset + size:
                self._count("read_eio")
                raise _err(errno.EIO)
        return os.pread(fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        if fh == _CTL_FH:
            self._command(data.decode())
            return len(data)
        self._alive()
        self._count("write")
        self._track(fh, offset, offset + len(data))
        return os.pwrite(fh, data, offset)

    def _truncate_fd(self, fd: int, length: int) -> None:
        self._alive()
        self._count("truncate")
        cur = os.fstat(fd).st_size
        self._track(fd, min(length, cur), cur)
        os.ftruncate(fd, length)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        if path == "/" + CTL_NAME or fh == _CTL_FH:
            return 0
        if fh is not None:
            self._truncate_fd(fh, length)
            return 0
        fd = os.open(self._real(path), os.O_RDWR)
        try:
            self._truncate_fd(fd, length)
        finally:
            os.close(fd)
        return 0

    def fallocate(self, path: str, mode: int, offset: int, size: int, fh: int) -> int:
        self._alive()
        self._count("fallocate")
        if mode & ~_FALLOC_FL_KEEP_SIZE:
            raise _err(errno.EOPNOTSUPP)
        if not mode:
            cur = os.fstat(fh).st_size
            self._track(fh, cur, cur)  # the size grows: remember the durable one
            os.posix_fallocate(fh, offset, size)
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        if fh == _CTL_FH:
            return 0
        self._alive()
        self._count("fdatasync" if datasync else "fsync")
        st = os.fstat(fh)
        u = self.files.pop(st.st_ino, None)
        if u is not None:
            os.close(u.fd)
        if self.dir_sync == "file" and path:
            real = self._real(path)
            ents = self.dirs.get(os.stat(os.path.dirname(real)).st_ino)
            if ents is not None:
                ents[os.path.basename(real)] = (st.st_ino, False)
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        self._alive()
        self._count("fsyncdir")
        self.dirs.pop(os.stat(self._real(path)).st_ino, None)
        self._gc_trash()
        return 0

    def _gc_trash(self) -> None:
        """Delete what no saved directory entry names any more (e.g. unlinked, then synced)."""
        with os.scandir(self.trash) as it:
            for e in it:
                ino = e.inode()
                if self._referenced(ino):
                    continue
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path)
                    self.dirs.pop(ino, None)
                else:
                    os.unlink(e.path)
                    u = self.files.pop(ino, None)
                    if u is not None:
                        os.close(u.fd)

    def flush(self, path: str, fh: int) -> int:
        return 0

    def release(self, path: str, fh: int) -> int:
        if fh != _CTL_FH:
            os.close(fh)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        self._alive()
        self._count("mkdir")
        real = self._real(path)
        self._dir_changing(real)
        os.mkdir(real, mode)
        self.dirs[os.stat(real).st_ino] = {}
        return 0

    def unlink(self, path: str) -> int:
        self._alive()
        self._count("unlink")
        real = self._real(path)
        if stat.S_ISDIR(os.lstat(real).st_mode):
            raise _err(errno.EISDIR)
        self._dir_changing(real)
        self._discard(real)
        return 0

    def rmdir(self, path: str) -> int:
        self._alive()
        self._count("rmdir")
        real = self._real(path)
        if not stat.S_ISDIR(os.lstat(real).st_mode):
            raise _err(errno.ENOTDIR)
        if os.listdir(real):
            raise _err(errno.ENOTEMPTY)
        self._dir_changing(real)
        self._discard(real)
        return 0

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        self._alive()
        self._count("rename")
        src, dst = self._real(old), self._real(new)
        if flags & _RENAME_EXCHANGE:
            raise _err(errno.EINVAL)
        src_dir = stat.S_ISDIR(os.lstat(src).st_mode)
        if os.path.lexists(dst):
            if flags & _RENAME_NOREPLACE:
                raise _err(errno.EEXIST)
            dst_dir = stat.S_ISDIR(os.lstat(dst).st_mode)
            if src_dir != dst_dir:
                raise _err(errno.EISDIR if dst_dir else errno.ENOTDIR)
            if dst_dir and os.listdir(dst):
                raise _err(errno.ENOTEMPTY)
            if os.lstat(dst).st_ino == os.lstat(src).st_ino:
                return 0
        if src_dir and (dst + "/").startswith(src + "/"):
            raise _err(errno.EINVAL)
        self._dir_changing(src)
        self._dir_changing(dst)
        if os.path.lexists(dst):
            self._discard(dst)
        os.rename(src, dst)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._real(path), uid, gid, follow_symlinks=False)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if path != "/" + CTL_NAME:
            os.utime(self._real(path), ns=times)
        return 0


if mfusepy is not None:

    class _FUSE(mfusepy.FUSE):
        """mfusepy drops the file handle of ftruncate and the flags of rename2: keep them."""

        def truncate_fuse_3(self, path, length, fip):  # type: ignore[no-untyped-def]
            fh = fip.contents.fh if fip else None
            return self.operations.truncate(None if path is None else path.decode(), length, fh)

        def rename_fuse_3(self, old, new, flags):  # type: ignore[no-untyped-def]
            return self.operations.rename(old.decode(), new.decode(), flags)


def serve(backing: str, mountpoint: str, dir_sync: str = "strict") -> None:
    """Mount and serve in the foreground; mount again after each crash-then-unmount."""
    if mfusepy is None:
        raise RuntimeError("lazyfs needs mfusepy and libfuse3 (apt-get install fuse3)")
    fs = LazyFS(backing, dir_sync)
    while True:
        _FUSE(fs, mountpoint, foreground=True, nothreads=True, fsname="lazyfs", hard_remove=True)
        if not (fs.dead or fs.remount):
            break


def _users(mountpoint: str) -> list[str]:
    """Processes holding files, mappings or a cwd under mountpoint (for error messages)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = [os.readlink(f"/proc/{pid}/cwd")]
            links += [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            with open(f"/proc/{pid}/maps") as f:
                links += [line.split(None, 5)[-1].strip() for line in f]
        except OSError:
            continue
        hits = sorted({p for p in links if p.startswith(mountpoint.rstrip("/") + "/")})
        if hits:
            out.append(f"pid {pid}: {', '.join(hits[:5])}")
    return out


class Mount:
    """Run ``serve`` in a child process; ``crash()`` cuts the power and remounts."""

    def __init__(
        self, backing: str, mountpoint: str, dir_sync: str = "strict", timeout: float = 10.0
    ) -> None:
        self.backing = os.path.realpath(backing)
        self.mountpoint = os.path.realpath(mountpoint)
        self.dir_sync = dir_sync
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.status_path = os.path.join(self.backing, STATE_NAME, "status.json")
        self.log_path = os.path.join(
            os.path.dirname(self.backing), os.path.basename(self.backing) + ".lazyfs.log"
        )

    def status(self) -> dict[str, Any]:
        try:
            with open(self.status_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {"generation": 0}

    def _wait_generation(self, gen: int) -> None:
        deadline = time.monotonic() + self.timeout
        while self.status().get("generation", 0) < gen or not os.path.ismount(self.mountpoint):
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"lazyfs exited with {self.proc.returncode}: {self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"lazyfs did not mount {self.mountpoint}: {self.log()}")
            time.sleep(0.002)

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def start(self) -> Mount:
        os.makedirs(self.mountpoint, exist_ok=True)
        try:
            os.unlink(self.status_path)
        except FileNotFoundError:
            pass
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "serve",
                    self.backing,
                    self.mountpoint,
                    "--dir-sync",
                    self.dir_sync,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd="/",
            )
        self._wait_generation(1)
        return self

    def path(self, *parts: str) -> str:
        return os.path.join(self.mountpoint, *parts)

    def command(self, text: str) -> dict[str, Any]:
        fd = os.open(self.path(CTL_NAME), os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        return self.status()

    def stats(self) -> dict[str, Any]:
        return self.command("stats")

    def _unmount(self) -> None:
        for _ in range(100):  # a killed process may still be exiting for a few ms
            r = subprocess.run(
                ["fusermount3", "-u", self.mountpoint], capture_output=True, text=True
            )
            if r.returncode == 0:
                return
            if "busy" not in r.stderr.lower():
                raise RuntimeError(f"fusermount3 -u failed: {r.stderr.strip()}")
            time.sleep(0.01)
        raise RuntimeError(f"mount still busy after crash: {_users(self.mountpoint)}")

    def crash(self, keep: float = 0.0, seed: int | None = None) -> dict[str, Any]:
        """Power cut: drop what is not durable, unmount, mount again. Returns the report."""
        gen = self.status()["generation"]
        cmd = f"crash keep={keep}" + ("" if seed is None else f" seed={seed}")
        report = self.command(cmd)["last_crash"]
        self._unmount()
        self._wait_generation(gen + 1)
        return report

    def remount(self) -> None:
        """Unmount and mount again (a clean one: nothing is lost) to empty the kernel caches,
        e.g. so that reads reach lazyfs again after ``fail-read``."""
        gen = self.status()["generation"]
        self.command("remount")
        self._unmount()
        self._wait_generation(gen + 1)

    def fail_read(self, path: str, start: int, end: int) -> None:
        """Reads of bytes [start, end) of path (relative to the mount) fail with EIO."""
        self.command(f"fail-read {path} {start} {end}")

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            if os.path.ismount(self.mountpoint):
                self._unmount()
            self.proc.wait(timeout=self.timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                subprocess.run(["fusermount3", "-u", "-z", self.mountpoint], capture_output=True)
            self.proc = None

    def __enter__(self) -> Mount:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="mount BACKING at MOUNTPOINT in the foreground")
    s.add_argument("backing")
    s.add_argument("mountpoint")
    s.add_argument("--dir-sync", choices=("strict", "file"), default="strict")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    serve(args.backing, args.mountpoint, args.dir_sync)
    return 0


if __name__ == "__main__":
    sys.exit(main())

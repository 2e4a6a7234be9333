"""I/O errors under a PartitionLog writer: ENOSPC, EIO, EFBIG (RELIABILITY.md section 3 c).

Goal: an I/O error is never a dead process (no SIGBUS, rc -7), always a StorageError from the
call that hit it (KafkaStorageError; LogOfflineError for a failed fsync/msync); after a failed
fsync the log refuses every later append (LogOfflineError), never retrying the fsync and
trusting it; reopening runs recovery and every acknowledged (committed) record survives.

Methods, each scenario in child processes (crash_child.py), so a crash fails the test instead
of killing the runner:
  * strace fault injection: the child appends a few committed batches, prints READY and
    waits; strace attaches (-p) with ``-e inject=<syscall>:error=<E>:when=<N>``; the child
    then appends more, reporting ACK/ERR per call, flushes and closes. Counting starts at the
    attach, so N names the N-th such call of the append phase. The child writes its report
    lines with writev, so injecting into write() only hits the log's own writes.
  * a real full disk: a 1 MiB tmpfs, appended to until it is full;
  * a real short write / EFBIG: RLIMIT_FSIZE set after the committed batches;
  * EIO on reading a page of a sealed segment (lazyfs fail-read): an error, not a SIGBUS.
A verifier child then reopens the log (no fault) and checks acked ⊆ recovered, intact records,
contiguous offsets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass

import pytest
from crash_harness import (
    ChildRun,
    Ledger,
    child_cmd,
    fsync_dir,
    requires_fuse,
    requires_root,
    run_child,
)

FSYNC_CLASS = {"fsync", "fdatasync", "msync"}
SIGBUS = -7


@dataclass
class Outcome:
    run: ChildRun
    injected: list[str]  # strace lines of the calls that got the fault
    verify: ChildRun


def run_scenario(  # type: ignore[no-untyped-def]
    part: str,
    *,
    inject: str | None = None,
    fsize_limit: int = -1,
    appends: int = 60,
    zygote=None,
) -> Outcome:
    strace_log = part + ".strace"
    tracer: list[subprocess.Popen[bytes]] = []

    def attach(line: str, proc: subprocess.Popen[bytes]) -> None:
        if line != "READY" or inject is None:
            return
        syscalls = inject.split(":", 1)[0]
        t = subprocess.Popen(
            [
                "strace",
                "-f",
                "-y",
                "-o",
                strace_log,
                "-e",
                f"trace={syscalls}",
                "-e",
                f"inject={inject}",
                "-p",
                str(proc.pid),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert t.stderr is not None
        first = t.stderr.readline().decode()
        assert "attached" in first, f"strace did not attach: {first}"
        tracer.append(t)

    cmd = child_cmd("ioerr", part, setup=4, appends=appends, fsize_limit=fsize_limit)
    try:
        run = run_child(
            cmd, on_line=attach, stdin_script={"READY": "go\n"}, timeout=60, zygote=zygote
        )
    finally:
        for t in tracer:
            try:
                t.wait(timeout=10)
            except subprocess.TimeoutExpired:
                t.kill()
                t.wait()
            if t.stderr is not None:
                t.stderr.close()
    injected = []
    if inject is not None:
        with open(strace_log, errors="replace") as f:
            injected = [ln.strip() for ln in f if "(INJECTED)" in ln]
    verify = run_child(child_cmd("verify", part, check_from=0), timeout=60, zygote=zygote)
    return Outcome(run, injected, verify)


def problems_of(out: Outcome, *, fsync_fault: bool) -> list[str]:
    """Everything the scenario got wrong (empty: it behaved)."""
    run, probs = out.run, []
    if run.returncode == SIGBUS:
        probs.append("writer died of SIGBUS")
    elif run.returncode != 0:
        probs.append(f"writer did not exit cleanly: {run.describe()}")
    errs = run.errors()
    for e in errs:
        if not e["storage"]:
            probs.append(f"{e['op']} raised {e['type']} (not a StorageError): {e['msg']}")
    if fsync_fault and out.injected:
        if not errs:
            probs.append(f"a failed fsync/msync went unreported: {out.injected[0]}")
        else:
            after = run.lines[run.lines.index("ERR " + json.dumps(errs[0])) + 1 :]
            if any(ln.startswith("ACK") for ln in after):
                probs.append(
                    "appends were acked after a failed fsync: "
                    + next(ln for ln in after if ln.startswith("ACK"))
                )
            for e in errs[1:]:
                if e["op"] in ("append", "flush") and not e["offline"]:
                    probs.append(
                        f"{e['op']} after a failed fsync raised {e['type']}, "
                        f"not LogOfflineError: {e['msg']}"
                    )
    v = out.verify
    summary = v.opened()
    if v.returncode != 0 or summary is None:
        probs.append(f"reopen failed: {v.describe()}")
    else:
        ledger = Ledger()
        ledger.record(run, 0)
        probs += [f"after reopen: {p}" for p in ledger.check_open(summary, 0)]
    return probs


STRACE_SCENARIOS = [
    # segment data and index flushes (fsync class: the log must go offline)
    "fdatasync:error=EIO:when=1",
    "fdatasync:error=EIO:when=7",
    "fdatasync:error=ENOSPC:when=3",
    "msync:error=EIO:when=1",
    "msync:error=EIO:when=6",
    # the directory fsync at a roll (1), then the recovery-point checkpoint file (2) and
    # its directory (3)
    "fsync:error=EIO:when=1",
    "fsync:error=EIO:when=2",
    "fsync:error=EIO:when=3",
    # segment creation and preallocation
    "fallocate:error=ENOSPC:when=1",
    "fallocate:error=ENOSPC:when=1+",
    "fallocate:error=EIO:when=2",
    "openat:error=ENOSPC:when=1",
    "openat:error=EIO:when=2",
    # sealing and checkpoint writes
    "ftruncate:error=EIO:when=1",
    "write:error=ENOSPC:when=1",
    "rename:error=EIO:when=1",
]


@pytest.fixture(scope="module")
def strace_bin() -> str:
    path = shutil.which("strace")
    if path is None:
        pytest.fail(
            "strace is not installed (Debian strace; .ci/run must install it)", pytrace=False
        )
    return path


@pytest.mark.parametrize("inject", STRACE_SCENARIOS)
def test_injected_error(tmp_path, strace_bin, inject, figures, zygote):  # type: ignore[no-untyped-def]
    out = run_scenario(str(tmp_path / "orders-0"), inject=inject, zygote=zygote)
    syscall = inject.split(":", 1)[0]
    probs = problems_of(out, fsync_fault=syscall in FSYNC_CLASS)
    errs = out.run.errors()
    figures(
        "io-errors",
        inject=inject,
        injected=len(out.injected),
        acked=len(out.run.acks()),
        storage_errors=len(errs),
        offline=sum(e["offline"] for e in errs),
        rc=out.run.returncode,
        problems=len(probs),
    )
    assert out.injected, f"{inject}: the fault never fired (the scenario tests nothing)"
    assert not probs, (
        f"{inject}: injected at {out.injected[:2]}\n"
        + "\n".join(probs)
        + "\nERR lines: "
        + "\n".join(out.run.events("ERR"))
    )


@pytest.mark.parametrize(
    "limit",
    [
        0,
        4096,
        100_000,
    ],
)
def test_rlimit_fsize(tmp_path, limit, figures, zygote):  # type: ignore[no-untyped-def]
    """EFBIG (and real short writes) once files may not grow past `limit` bytes."""
    out = run_scenario(str(tmp_path / "orders-0"), fsize_limit=limit, appends=80, zygote=zygote)
    probs = problems_of(out, fsync_fault=False)
    errs = out.run.errors()
    figures(
        "io-errors",
        rlimit_fsize=limit,
        acked=len(out.run.acks()),
        storage_errors=len(errs),
        rc=out.run.returncode,
        problems=len(probs),
    )
    assert errs, "no append ever hit the file size limit"
    assert not probs, "\n".join(probs) + "\nERR lines: " + "\n".join(out.run.events("ERR"))


@requires_root
def test_full_tmpfs(tmp_path, figures):  # type: ignore[no-untyped-def]
    """A real ENOSPC: a 1 MiB tmpfs filled by appends. Preallocation must turn the full disk
    into a clean error (RELIABILITY.md: stores into a sparse mapping on a full fs SIGBUS)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        part = str(mnt / "orders-0")
        out = run_scenario(part, appends=2000)
        probs = problems_of(out, fsync_fault=False)
        errs = out.run.errors()
        full_reopen = out.verify
        subprocess.run(["mount", "-o", "remount,size=8m", str(mnt)], check=True)
        roomy_reopen = run_child(child_cmd("verify", part, check_from=0), timeout=60)
        figures(
            "io-errors",
            tmpfs="1m",
            acked=len(out.run.acks()),
            storage_errors=len(errs),
            first_error=errs[0]["type"] if errs else None,
            rc=out.run.returncode,
            reopen_on_full_disk=full_reopen.returncode,
            problems=len(probs),
        )
        assert errs and errs[0]["kafka_storage"], errs[:1]
        if full_reopen.returncode == SIGBUS or roomy_reopen.returncode == SIGBUS:
            probs.append("reopen died of SIGBUS")
        summary = roomy_reopen.opened()
        if summary is None:
            probs.append(f"reopen with free space failed: {roomy_reopen.describe()}")
        else:
            ledger = Ledger()
            ledger.record(out.run, 0)
            probs += [f"after reopen with space: {p}" for p in ledger.check_open(summary, 0)]
        assert not probs, "\n".join(probs) + "\nERR lines: " + "\n".join(out.run.events("ERR"))
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_storage_error_keeps_errno(tmp_path, strace_bin, zygote):  # type: ignore[no-untyped-def]
    """A full disk must be reported as ENOSPC, not as errno 0 ("Success")."""
    out = run_scenario(
        str(tmp_path / "orders-0"), inject="fallocate:error=ENOSPC:when=1", zygote=zygote
    )
    errs = out.run.errors()
    assert out.injected and errs and errs[0]["kafka_storage"]
    assert errs[0]["errno"] == 28, errs[0]["msg"]


@requires_fuse
def test_eio_reading_a_segment_is_an_error_not_sigbus(lazy_mount, zygote, figures):  # type: ignore[no-untyped-def]
    """A bad sector under a sealed segment: reading it must raise, not kill the broker.

    lazyfs fails reads of one page of the first segment with EIO (after a remount, so the page
    is not cached). RELIABILITY.md section 3 c: reads of mapped pages must go through pread or
    a SIGBUS guard, so the fault becomes a StorageError.
    """
    part = lazy_mount.path("orders-0")
    os.mkdir(part)
    fsync_dir(lazy_mount.mountpoint)
    writer = run_child(child_cmd("write", part, max_appends=40), zygote=zygote)
    assert writer.returncode == 0 and writer.events("CLOSED"), writer.describe()
    lazy_mount.fail_read("orders-0/00000000000000000000.log", 8192, 12288)
    lazy_mount.remount()
    reader = run_child(child_cmd("verify", part), zygote=zygote)
    read_eio = lazy_mount.stats()["counts"].get("read_eio", 0)
    errs = [json.loads(e) for e in reader.events("READERR") + reader.events("OPENFAIL")]
    figures(
        "io-errors",
        read_eio_page=1,
        eio_reads=read_eio,
        rc=reader.returncode,
        error=errs[0]["type"] if errs else None,
    )
    assert read_eio > 0, "the faulty page was never read (still cached?)"
    assert reader.returncode != SIGBUS, "a read I/O error killed the process with SIGBUS"
    assert errs and errs[0]["storage"], reader.describe()

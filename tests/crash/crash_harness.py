"""Parent side of the crash tests: spawn crash_child.py, kill it on time, check what came back.

The invariants (RELIABILITY.md section 3 a/a'), checked by Ledger.check_open():
  * acked ⊆ recovered: every offset whose append returned is present with the bytes written;
  * the recovered offsets form a contiguous prefix [log_start, log_end): no gaps;
  * every recovered record is intact (self-describing values, see crash_child.py);
  * no offset is reused: the next writer's first offset is log_end, above every acked offset.

Children are started from scratch (subprocess) or forked from a Zygote, a fork server that
has already imported headwater: that takes a trial from ~0.35 s to ~0.1 s.
"""

from __future__ import annotations

import importlib.util
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("crash_child.py")

IS_ROOT = os.geteuid() == 0
HAS_FUSE = os.path.exists("/dev/fuse")
requires_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (mount, FUSE, tmpfs)")
requires_fuse = pytest.mark.skipif(
    not (IS_ROOT and HAS_FUSE), reason="needs root and /dev/fuse for the lazyfs FUSE mount"
)

# Small segments and indexes so rolls, index entries and preallocation happen in every trial.
SMALL_LOG = ["segment.bytes=131072", "index.interval.bytes=1024", "segment.index.bytes=8192"]


def load_lazyfs() -> ModuleType:
    if "lazyfs" not in sys.modules:
        spec = importlib.util.spec_from_file_location("lazyfs", REPO / "tools" / "lazyfs.py")
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        sys.modules["lazyfs"] = mod
        spec.loader.exec_module(mod)
    return sys.modules["lazyfs"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    env["PYTHONFAULTHANDLER"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def child_cmd(
    mode: str,
    part_dir: str,
    *,
    policy: str = "batch",
    tag: int = 0,
    seed: int = 0,
    check_from: int = 0,
    config: list[str] | None = None,
    **extra: int,
) -> list[str]:
    cmd = [
        sys.executable,
        str(CHILD),
        mode,
        "--dir",
        part_dir,
        "--policy",
        policy,
        "--tag",
        str(tag),
        "--seed",
        str(seed),
        "--check-from",
        str(check_from),
    ]
    for item in SMALL_LOG if config is None else config:
        cmd += ["--config", item]
    for name, val in extra.items():
        cmd += ["--" + name.replace("_", "-"), str(val)]
    return cmd


@dataclass
class ChildRun:
    lines: list[str]
    returncode: int
    stderr: str
    killed: bool = False
    times: list[float] = field(default_factory=list)  # monotonic receipt time of each line
    kill_time: float | None = None

    def events(self, kind: str) -> list[str]:
        return [ln[len(kind) + 1 :] for ln in self.lines if ln.split(" ", 1)[0] == kind]

    def opened(self) -> dict[str, Any] | None:
        got = self.events("OPEN")
        return json.loads(got[0]) if got else None

    def acks(self) -> list[tuple[int, int, int]]:
        return [tuple(map(int, a.split())) for a in self.events("ACK")]  # type: ignore[misc]

    def ack_times(self) -> dict[int, float]:
        """offset -> when the parent read its ACK line (just after the append returned)."""
        out = {}
        for line, t in zip(self.lines, self.times, strict=False):
            if line.startswith("ACK "):
                first, n, _ = map(int, line.split()[1:4])
                out.update(dict.fromkeys(range(first, first + n), t))
        return out

    def errors(self) -> list[dict[str, Any]]:
        return [json.loads(e) for e in self.events("ERR")]

    def describe(self) -> str:
        tail = "\n".join(self.lines[-5:])
        return f"rc={self.returncode} killed={self.killed}\nstdout tail:\n{tail}\nstderr:\n{self.stderr[-3000:]}"


class Zygote:
    """A crash_child.py fork server (see crash_child.zygote): children start in milliseconds.

    Children inherit the zygote's environment (child_env() when it started) and cwd "/".
    """

    def __init__(self) -> None:
        import socket

        self._socket = socket
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), "zygote", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=child_env(),
            cwd="/",
        )
        theirs.close()
        self.sock = ours
        self.sock.settimeout(30)
        self.exits: dict[int, int] = {}
        assert self._recv() == {"ready": True}

    def _recv(self) -> dict[str, Any]:
        msg = self.sock.recv(1 << 16)
        if not msg:
            raise RuntimeError(f"zygote died (rc {self.proc.poll()})")
        return json.loads(msg)

    def spawn(self, cmd: list[str], errf: Any) -> _Forked:
        assert cmd[1] == str(CHILD), cmd
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            self._socket.send_fds(
                self.sock, [json.dumps({"argv": cmd[2:]}).encode()], [in_r, out_w, errf.fileno()]
            )
            while True:
                reply = self._recv()
                if "pid" in reply:
                    break
                self.exits[reply["exit"]] = reply["rc"]
        finally:
            os.close(in_r)
            os.close(out_w)
        return _Forked(self, reply["pid"], os.fdopen(in_w, "wb"), os.fdopen(out_r, "rb"))

    def wait(self, pid: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while pid not in self.exits:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                reply = self._recv()
            except TimeoutError:
                raise subprocess.TimeoutExpired(str(pid), timeout) from None
            finally:
                self.sock.settimeout(30)
            if "exit" in reply:
                self.exits[reply["exit"]] = reply["rc"]
        return self.exits.pop(pid)

    def close(self) -> None:
        self.sock.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _Forked:
    """The subset of Popen that run_child uses, for a child forked by a Zygote."""

    def __init__(self, zygote: Zygote, pid: int, stdin: Any, stdout: Any) -> None:
        self.zygote, self.pid, self.stdin, self.stdout = zygote, pid, stdin, stdout
        self.returncode: int | None = None

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.zygote.wait(self.pid, 60.0 if timeout is None else timeout)
        return self.returncode

    def poll(self) -> int | None:
        if self.returncode is None and self.pid in self.zygote.exits:
            self.returncode = self.zygote.exits.pop(self.pid)
        return self.returncode


def run_child(
    cmd: list[str],
    *,
    kill_after: float | None = None,
    kill_marker: str = "OPEN",
    timeout: float = 60.0,
    stdin_script: dict[str, str] | None = None,
    on_line=None,
    zygote: Zygote | None = None,
) -> ChildRun:  # type: ignore[no-untyped-def]
    """Run a child; SIGKILL it kill_after seconds after it prints kill_marker.

    stdin_script maps a marker line to text written to the child's stdin when seen; on_line
    is called with each line (used to attach strace on READY). With a zygote the child is
    forked from it (cmd must be a child_cmd) instead of started from scratch.
    """
    errf = tempfile.TemporaryFile()
    proc: Any
    if zygote is not None:
        proc = zygote.spawn(cmd, errf)
    else:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=errf,
            stdin=subprocess.PIPE,
            env=child_env(),
            cwd="/",
        )
    assert proc.stdout is not None and proc.stdin is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    lines: list[str] = []
    times: list[float] = []
    kill_time: float | None = None
    deadline_kill: float | None = None
    hard_deadline = time.monotonic() + timeout
    killed = False
    fd = proc.stdout.fileno()
    eof = False
    try:
        while not eof:
            now = time.monotonic()
            if deadline_kill is not None and now >= deadline_kill and not killed:
                proc.send_signal(signal.SIGKILL)
                killed = True
                kill_time = time.monotonic()
            if now > hard_deadline:
                proc.kill()
                proc.wait()
                raise TimeoutError(f"child did not finish in {timeout}s: {cmd}\n{lines[-5:]}")
            wait = hard_deadline - now
            if deadline_kill is not None and not killed:
                wait = min(wait, max(0.0, deadline_kill - now))
            if not sel.select(wait):
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                eof = True
            buf += chunk
            *complete, buf = buf.split(b"\n")
            for raw in complete:
                line = raw.decode(errors="replace")
                lines.append(line)
                times.append(time.monotonic())
                marker = line.split(" ", 1)[0]
                if kill_after is not None and deadline_kill is None and marker == kill_marker:
                    deadline_kill = time.monotonic() + kill_after
                if on_line is not None:
                    on_line(line, proc)
                if stdin_script and marker in stdin_script:
                    proc.stdin.write(stdin_script[marker].encode())
                    proc.stdin.flush()
        if buf:
            lines.append(buf.decode(errors="replace"))
        rc = proc.wait(timeout=max(1.0, hard_deadline - time.monotonic()))
    finally:
        sel.close()
        proc.stdout.close()
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        errf.seek(0)
        stderr = errf.read().decode(errors="replace")
        errf.close()
    return ChildRun(lines, rc, stderr, killed, times, kill_time)


@dataclass
class Ledger:
    """What the log must hold: acked offset -> (tag, seq)."""

    acked: dict[int, tuple[int, int]] = field(default_factory=dict)
    max_acked: int = -1
    last_trial_from: int = 0  # first offset acked by the latest writer

    def record(self, run: ChildRun, tag: int) -> int:
        acks = run.acks()
        for first, n, seq in acks:
            for i in range(n):
                self.acked[first + i] = (tag, seq + i)
            self.max_acked = max(self.max_acked, first + n - 1)
        if acks:
            self.last_trial_from = acks[0][0]
        return sum(n for _, n, _ in acks)

    def check_open(self, summary: dict[str, Any], check_from: int) -> list[str]:
        """Problems in what a writer/verifier recovered (empty list: all invariants hold)."""
        problems = []
        if summary["gaps"]:
            problems.append(f"offsets not contiguous: gaps {summary['gaps'][:5]}")
        if summary["bad"]:
            problems.append(f"damaged records returned at offsets {summary['bad'][:10]}")
        if summary["start"] != 0:
            problems.append(f"log_start_offset moved to {summary['start']}")
        got = {off: (tag, seq) for off, tag, seq in summary["tags"]}
        lost = [
            off
            for off in self.acked
            if off >= summary["end"] or (off >= check_from and got.get(off) != self.acked[off])
        ]
        if lost:
            lost.sort()
            problems.append(
                f"{len(lost)} acked records lost or changed, first offsets "
                f"{lost[:10]} (log_end {summary['end']})"
            )
        return problems

    def lost(self, summary: dict[str, Any], check_from: int) -> list[int]:
        got = {off: (tag, seq) for off, tag, seq in summary["tags"]}
        return sorted(
            off
            for off in self.acked
            if off >= summary["end"] or (off >= check_from and got.get(off) != self.acked[off])
        )


def check_next_writer(run: ChildRun, summary: dict[str, Any], ledger: Ledger) -> list[str]:
    """A writer's first offset is log_end and above every acked offset (no reuse)."""
    acks = run.acks()
    if not acks:
        return []
    first = acks[0][0]
    problems = []
    if first != summary["end"]:
        problems.append(f"first append got offset {first}, log_end was {summary['end']}")
    if first <= ledger.max_acked:
        problems.append(f"offset {first} reused: {ledger.max_acked} was already acked")
    return problems


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def figures_line(name: str, **figs: object) -> str:
    return f"{name}: " + " ".join(f"{k}={v}" for k, v in figs.items())


@dataclass
class TrialStats:
    """Figures of a series of crash trials (summed over partitions by ``add``)."""

    trials: int = 0
    acked: int = 0
    acked_lost: int = 0
    killed_in_recovery: int = 0
    unacked_recovered: int = 0  # in flight at the kill, present (whole) after recovery
    opens_refused: int = 0
    max_loss_window_ms: float = 0.0  # oldest lost ack: how long before the kill it was acked
    log_end: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, other: TrialStats) -> None:
        for name in (
            "trials",
            "acked",
            "acked_lost",
            "killed_in_recovery",
            "unacked_recovered",
            "opens_refused",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.log_end = max(self.log_end, other.log_end)
        self.max_loss_window_ms = max(self.max_loss_window_ms, other.max_loss_window_ms)
        self.problems += other.problems


def crash_trials(
    part_dir: str,
    trials: int,
    rng,  # type: ignore[no-untyped-def]
    *,
    policy: str = "batch",
    after_kill=None,  # type: ignore[no-untyped-def]
    max_run: float = 0.12,
    recovery_kills: float = 0.15,
    config: list[str] | None = None,
    strict: bool | None = None,
    zygote: Zygote | None = None,
) -> TrialStats:
    """Writer children killed at random moments; each next writer's open is the check.

    A share ``recovery_kills`` of the kills land in the first 4 ms after "OPENING", i.e.
    inside recovery; the rest up to ``max_run`` s after "OPEN". The next writer checks the
    records at and above the previous writer's first ack, and every 10th one all records.
    ``after_kill(trial)`` runs
    between the kill and the next open (the power cut, for lazyfs). A final child only
    verifies. ``strict`` (default: policy is "batch") means every ack must survive: the first
    violated invariant stops the loop. Otherwise acked losses are counted, not failed, and the
    ledger restarts from what was recovered (offsets of lost records are legitimately reused);
    gaps, damaged records and offset assignment are still checked.
    """
    if strict is None:
        strict = policy == "batch"
    ledger = Ledger()
    st = TrialStats()
    last_acks: dict[int, float] = {}
    last_kill: float | None = None
    for t in range(trials + 1):
        final = t == trials
        # Records below the previous writer's first ack were checked before; re-read all of
        # them every 10th trial and at the end (a full read each trial is quadratic).
        full = final or not strict or t % 10 == 0
        check_from = 0 if full else ledger.last_trial_from
        mode = "verify" if final else "write"
        cmd = child_cmd(
            mode,
            part_dir,
            policy=policy,
            tag=t + 1,
            seed=rng.getrandbits(32),
            check_from=check_from,
            config=config,
        )
        in_recovery = not final and rng.random() < recovery_kills
        kill_after = None
        if not final:
            kill_after = rng.uniform(0, 0.004) if in_recovery else rng.uniform(0, max_run)
        run = run_child(
            cmd,
            kill_after=kill_after,
            kill_marker="OPENING" if in_recovery else "OPEN",
            zygote=zygote,
        )
        where = f"trial {t} ({mode}, policy={policy})"
        if run.events("OPENFAIL"):
            st.opens_refused += 1
            st.problems.append(f"{where}: open failed: {run.events('OPENFAIL')[0]}")
        elif not ((run.killed and run.returncode == -9) or (final and run.returncode == 0)):
            st.problems.append(f"{where}: writer ended unexpectedly: {run.describe()}")
        summary = run.opened()
        if summary is None:
            st.killed_in_recovery += run.killed
        else:
            st.log_end = summary["end"]
            lost = ledger.lost(summary, check_from)
            st.acked_lost += len(lost)
            if lost and last_kill is not None:
                oldest = min(last_acks.get(off, last_kill) for off in lost)
                st.max_loss_window_ms = max(st.max_loss_window_ms, (last_kill - oldest) * 1000)
            if strict:
                st.unacked_recovered += max(0, summary["end"] - 1 - ledger.max_acked)
            else:
                ledger = Ledger()
                for off, tag, seq in summary["tags"]:
                    ledger.acked[off] = (tag, seq)
                ledger.max_acked = summary["end"] - 1
            st.problems += [f"{where}: {p}" for p in ledger.check_open(summary, check_from)]
            st.problems += [f"{where}: {p}" for p in check_next_writer(run, summary, ledger)]
        if final:
            break
        st.trials += 1
        st.acked += ledger.record(run, t + 1)
        last_acks, last_kill = run.ack_times(), run.kill_time
        if after_kill is not None:
            after_kill(t)
        if st.problems and strict:
            break
    return st


def partitioned_trials(
    make_dir,
    trials: int,
    rng,
    per_partition: int = 25,  # type: ignore[no-untyped-def]
    **kw,
) -> TrialStats:
    """crash_trials over fresh partitions of ``per_partition`` trials each, so that the log an
    open has to load (and the child to verify) stays small: the cost of a trial stays flat."""
    total = TrialStats()
    done = 0
    strict = kw.get("strict")
    if strict is None:
        strict = kw.get("policy", "batch") == "batch"
    while done < trials and not (total.problems and strict):
        n = min(per_partition, trials - done)
        total.add(crash_trials(make_dir(done // per_partition), n, rng, **kw))
        done += n
    return total

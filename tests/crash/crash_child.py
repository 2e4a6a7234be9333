"""Child process for the crash tests: the only code here that touches a PartitionLog.

Every scenario runs in its own process, so a SIGBUS, a segfault or an abort in the log is a
failed test, not a dead test runner. The parent (crash_harness.py) reads one line per event
on stdout:

    OPENING                         about to call PartitionLog.open (recovery runs now)
    OPEN <json>                     what open() recovered (see dump())
    OPENFAIL <json>                 open() raised
    READERR <json>                  a read() while dumping raised
    ACK <first> <count> <seq>       an append returned: offsets first.. hold seq.. of this tag
    ERR <json>                      an append / flush / close raised (ioerr mode)
    CLOSED                          close() returned

Record values are self-describing, so any process can tell an intact record from a damaged
one without knowing what was acked: b"<tag>:<seq>:" + PATTERN[k:k+n] where k and n are
functions of (tag, seq). Keys are b"k<seq % 7>" or None (every third record).

Modes (plus ``zygote FD``, the fork server the harness may start children from):
    write   open, dump records >= --check-from, then append batches of random size until
            killed (or --max-appends, then close, or with --hold 1 wait to be killed),
            printing ACK for each.
    verify  open, dump, close.
    ioerr   open, append --setup batches (committed), print READY, wait for "go" on stdin
            (the parent attaches strace in between), then append --appends more, reporting
            OK/ERR for each; after the first error, two more appends and a flush show whether
            the log went offline. Then close.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys

PATTERN = bytes(random.Random(20240613).getrandbits(8) for _ in range(8192))


def value_for(tag: int, seq: int) -> bytes:
    k = (tag * 131 + seq * 17) % 4096
    n = (tag * 7919 + seq * 104729) % 1700
    return b"%d:%d:" % (tag, seq) + PATTERN[k : k + n]


def key_for(seq: int) -> bytes | None:
    return None if seq % 3 == 2 else b"k%d" % (seq % 7)


def parse_record(key: bytes | None, value: bytes | None) -> tuple[int, int] | None:
    """(tag, seq) if the record is exactly what value_for/key_for wrote, else None."""
    if value is None:
        return None
    try:
        tag_s, seq_s, _ = bytes(value).split(b":", 2)
        tag, seq = int(tag_s), int(seq_s)
    except ValueError:
        return None
    if bytes(value) != value_for(tag, seq):
        return None
    if (None if key is None else bytes(key)) != key_for(seq):
        return None
    return tag, seq


def config(args: argparse.Namespace) -> dict[str, object]:
    cfg: dict[str, object] = {"flush.policy": args.policy}
    for item in args.config or []:
        name, val = item.split("=", 1)
        cfg[name] = int(val) if val.lstrip("-").isdigit() else val
    return cfg


def dump(log, check_from: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Read the whole log: contiguity, integrity, and (offset, tag, seq) from check_from on."""
    start, end = log.log_start_offset, log.log_end_offset
    gaps: list[list[int]] = []
    bad: list[int] = []
    tags: list[list[int]] = []
    count = 0
    nxt = start
    while nxt < end:
        progressed = False
        with log.read(nxt, max_bytes=1 << 20) as result:
            for rec in result:
                if rec.offset < nxt:
                    continue
                if rec.offset != nxt:
                    gaps.append([nxt, rec.offset])
                nxt = rec.offset + 1
                progressed = True
                count += 1
                parsed = parse_record(rec.key, rec.value)
                if parsed is None:
                    bad.append(rec.offset)
                elif rec.offset >= check_from:
                    tags.append([rec.offset, parsed[0], parsed[1]])
        if not progressed:
            gaps.append([nxt, end])
            break
    rec_info = getattr(log, "recovery", None)
    if rec_info is not None and not isinstance(rec_info, (dict, str, int, float)):
        rec_info = (
            {k: repr(v) for k, v in vars(rec_info).items()}
            if hasattr(rec_info, "__dict__")
            else repr(rec_info)
        )
    return {
        "start": start,
        "end": end,
        "count": count,
        "gaps": gaps,
        "bad": bad,
        "tags": tags,
        "recovery": rec_info,
    }


def describe(exc: BaseException) -> dict[str, object]:
    from headwater.errors import KafkaStorageError, LogOfflineError, StorageError

    errno_ = getattr(exc, "errno", None)
    cause = exc.__cause__ or exc.__context__
    if errno_ is None and cause is not None:
        errno_ = getattr(cause, "errno", None)
    return {
        "type": type(exc).__name__,
        "msg": str(exc)[:300],
        "errno": errno_,
        "storage": isinstance(exc, StorageError),
        "kafka_storage": isinstance(exc, KafkaStorageError),
        "offline": isinstance(exc, LogOfflineError),
    }


def emit(*parts: object) -> None:
    # writev, not write: strace -e inject=write must hit the log's writes, never these lines.
    data = (" ".join(str(p) for p in parts) + "\n").encode()
    while data:
        data = data[os.writev(1, [data]) :]


def log_class():  # type: ignore[no-untyped-def]
    """headwater's PartitionLog, or HEADWATER_CRASH_LOG=module:Class (the harness self-test)."""
    spec = os.environ.get("HEADWATER_CRASH_LOG")
    if spec:
        import importlib

        mod, _, cls = spec.partition(":")
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        return getattr(importlib.import_module(mod), cls)
    from headwater.log import PartitionLog

    return PartitionLog


def open_log(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    cls = log_class()
    emit("OPENING")
    try:
        return cls.open(args.dir, **config(args))
    except Exception as exc:  # reported, the parent decides
        emit("OPENFAIL", json.dumps(describe(exc)))
        sys.exit(3)


def append_batch(log, rng: random.Random, tag: int, seq: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    n = rng.randint(1, 12)
    first = log.append(
        [value_for(tag, seq + i) for i in range(n)], keys=[key_for(seq + i) for i in range(n)]
    )
    return first, n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("write", "verify", "ioerr"))
    ap.add_argument("--dir", required=True)
    ap.add_argument("--policy", default="batch")
    ap.add_argument("--tag", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check-from", type=int, default=0)
    ap.add_argument("--max-appends", type=int, default=1 << 30)
    ap.add_argument("--hold", type=int, default=0, help="write: after --max-appends, wait")
    ap.add_argument("--setup", type=int, default=5)
    ap.add_argument("--appends", type=int, default=20)
    ap.add_argument("--fsize-limit", type=int, default=-1, help="RLIMIT_FSIZE after READY")
    ap.add_argument("--config", action="append", help="name=value, e.g. segment.bytes=65536")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    log = open_log(args)
    if args.mode in ("write", "verify"):
        try:
            summary = dump(log, args.check_from)
        except Exception as exc:  # a read failed: report it, the parent decides
            emit("READERR", json.dumps(describe(exc)))
            return 5
        emit("OPEN", json.dumps(summary))
        seq = 0
        if args.mode == "write":
            for _ in range(args.max_appends):
                first, n = append_batch(log, rng, args.tag, seq)
                emit("ACK", first, n, seq)
                seq += n
            if args.hold:  # wait for the kill with the log open (no close-time syncs)
                emit("HOLDING")
                sys.stdin.read()
        log.close()
        emit("CLOSED")
        return 0

    # ioerr
    seq = 0
    for _ in range(args.setup):
        first, n = append_batch(log, rng, args.tag, seq)
        emit("ACK", first, n, seq)
        seq += n
    emit("READY")
    if sys.stdin.readline().strip() != "go":
        return 4
    if args.fsize_limit >= 0:  # CPython ignores SIGXFSZ, so writes past it fail with EFBIG
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (args.fsize_limit, args.fsize_limit))
    errors = 0
    for _ in range(args.appends):
        try:
            first, n = append_batch(log, rng, args.tag, seq)
        except Exception as exc:
            emit("ERR", json.dumps({"op": "append", **describe(exc)}))
            errors += 1
            seq += 100  # never reuse the values of a batch that may have half-landed
            if errors >= 3:
                break
            continue
        emit("ACK", first, n, seq)
        seq += n
    if errors:
        try:
            log.flush()
            emit("FLUSHED")
        except Exception as exc:
            emit("ERR", json.dumps({"op": "flush", **describe(exc)}))
    try:
        log.close()
        emit("CLOSED")
    except Exception as exc:
        emit("ERR", json.dumps({"op": "close", **describe(exc)}))
    return 0


def zygote(sock_fd: int) -> int:
    """Fork server: import everything once, then fork one child per request.

    Python start-up and the headwater imports cost ~0.2 s per child, more than a whole crash
    trial otherwise takes. Requests arrive on a SOCK_SEQPACKET socket as JSON {"argv": [...]}
    with three fds (stdin, stdout, stderr) attached; the reply is {"pid": n}, and {"exit": n,
    "rc": rc} follows when that child has been reaped (rc < 0: killed by signal -rc).
    """
    import select
    import signal
    import socket
    import traceback

    log_class()  # import the log and everything it imports before the first fork
    sock = socket.socket(fileno=sock_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sock.send(json.dumps({"ready": True}).encode())
    while True:
        ready, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            rc = os.waitstatus_to_exitcode(status)
            sock.send(json.dumps({"exit": pid, "rc": rc}).encode())
        if sock not in ready:
            continue
        msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 3)
        if not msg:
            return 0  # the parent went away
        argv = json.loads(msg)["argv"]
        pid = os.fork()
        if pid == 0:
            rc = 1
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for target, fd in enumerate(fds):
                    os.dup2(fd, target)
                for fd in (*fds, wake_r, wake_w):
                    os.close(fd)
                sock.close()
                sys.argv = [sys.argv[0], *argv]
                rc = main()
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(rc)
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    try:
        import faulthandler

        faulthandler.enable()
    except Exception:  # pragma: no cover
        pass
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if sys.argv[1:2] == ["zygote"]:
        sys.exit(zygote(int(sys.argv[2])))
    sys.exit(main())

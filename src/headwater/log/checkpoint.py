"""Small checkpoint files: one offset, checksummed, replaced atomically.

Layout (text, so a person can read it):

    0            version
    <offset>     decimal
    <crc>        CRC-32C of the first two lines, 8 hex digits

Written to `<name>.tmp`, fsync'd, renamed over `<name>`, then the directory is fsync'd. A file
that fails its checksum reads as None, which callers treat as "unknown" (a full rescan), never
as a trusted value.
"""

from __future__ import annotations

import os

from headwater.record import crc32c


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path: str, offset: int) -> None:
    body = f"0\n{int(offset)}\n".encode()
    data = body + f"{crc32c(body):08x}\n".encode()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path) or ".")


def read(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            data = f.read(256)
    except FileNotFoundError:
        return None
    lines = data.split(b"\n")
    if len(lines) < 3 or lines[0] != b"0":
        return None
    body = lines[0] + b"\n" + lines[1] + b"\n"
    try:
        if int(lines[2], 16) != crc32c(body):
            return None
        value = int(lines[1])
    except ValueError:
        return None
    return value if value >= 0 else None

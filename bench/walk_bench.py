"""Compile and run bench/walk_bench.c: the C column walk alone (no Python, no allocation).

    python bench/walk_bench.py [reps]

Prints one line (records/s of hw_records_columns over an in-memory ~1 MiB batch of 100-byte
values, and the same with the columns malloc'd per walk); exits 0 without a figure when no C
compiler is found. report_embedded.py prints it as a diagnostic next to consume_batch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(reps: int = 400) -> str | None:
    """The benchmark's output line, or None without a C compiler."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    csrc = os.path.join(ROOT, "csrc")
    with tempfile.TemporaryDirectory(prefix="hw-walk-") as d:
        exe = os.path.join(d, "walk_bench")
        subprocess.run(
            [cc, "-std=c11", "-O3", "-D_GNU_SOURCE", "-I", csrc, "-o", exe,
             os.path.join(ROOT, "bench", "walk_bench.c"), os.path.join(csrc, "hw_batch.c"),
             os.path.join(csrc, "hw_crc32c.c")],
            check=True,
        )
        out = subprocess.run([exe, str(reps)], check=True, capture_output=True, text=True)
    return out.stdout.strip()


if __name__ == "__main__":
    line = run(int(sys.argv[1]) if len(sys.argv) > 1 else 400)
    print(line if line is not None else "no C compiler: walk_bench skipped")

"""Fixtures for the crash tests: the lazyfs mount, root/FUSE gating and the figures report.

Tests that need FUSE or mounts skip only when the machine cannot run them at all (not root,
or no /dev/fuse). A missing libfuse3 or mfusepy is a broken environment and fails: CI runs
as root and must install Debian ``fuse3`` and PyPI ``mfusepy`` (RELIABILITY.md section 2).

Each figures line a test reports (``figures`` fixture) is printed in the terminal summary
and, if HEADWATER_FIGURES names a file, appended to it as one JSON object per line.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from crash_harness import Zygote, figures_line, load_lazyfs

_FIGURES: list[tuple[str, dict[str, object]]] = []


@pytest.fixture
def figures():  # type: ignore[no-untyped-def]
    """figures(name, **values): report one line of figures for this run."""

    def report(name: str, **values: object) -> str:
        _FIGURES.append((name, values))
        line = figures_line(name, **values)
        print(line)
        return line

    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if not _FIGURES:
        return
    terminalreporter.section("crash figures")
    for name, values in _FIGURES:
        terminalreporter.write_line(figures_line(name, **values))
    out = os.environ.get("HEADWATER_FIGURES")
    if out:
        with open(out, "a") as f:
            for name, values in _FIGURES:
                f.write(json.dumps({"suite": name, **values}, default=str) + "\n")


@pytest.fixture(scope="session")
def lazyfs():  # type: ignore[no-untyped-def]
    """The tools/lazyfs.py module; fails (not skips) if libfuse3/mfusepy are missing."""
    mod = load_lazyfs()
    if mod.mfusepy is None or shutil.which("fusermount3") is None:
        pytest.fail(
            "lazyfs needs libfuse3 + fusermount3 (Debian fuse3) and PyPI mfusepy; "
            "install them (.ci/run)",
            pytrace=False,
        )
    return mod


@pytest.fixture
def lazy_mount(lazyfs, tmp_path: Path) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A fresh lazyfs mount over tmp_path/backing at tmp_path/mnt (strict directory model)."""
    backing, mnt = tmp_path / "backing", tmp_path / "mnt"
    backing.mkdir()
    m = lazyfs.Mount(str(backing), str(mnt))
    m.start()
    try:
        yield m
    finally:
        m.close()


@pytest.fixture(scope="session")
def zygote() -> Iterator[Zygote]:
    """A fork server for crash_child.py children (saves ~0.2 s of start-up per child)."""
    z = Zygote()
    try:
        yield z
    finally:
        z.close()

"""Code-quality checks as tests: ruff lint over src/ and import-linter's layer contract.

Goal: the layering of DESIGN.md section 3 (a layer imports only layers below it) and the lint
rules in pyproject.toml hold on every run, not only when someone remembers a pre-commit hook.
Method: run the tools as subprocesses from the repository root and fail with their output.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_layers_hold() -> None:
    lint_imports = shutil.which("lint-imports")
    if lint_imports is None:
        pytest.fail("import-linter is not installed (pip install -e '.[test]')")
    r = _run(lint_imports, "--config", "pyproject.toml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Contracts: 1 kept, 0 broken" in r.stdout, r.stdout


def test_ruff_lint_src() -> None:
    r = _run(sys.executable, "-m", "ruff", "check", "src", "tools")
    assert r.returncode == 0, r.stdout + r.stderr

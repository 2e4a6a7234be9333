"""The README's examples run as written.

Goal: the examples a new user copies (sync, async, batch) stay correct. Method: pull each
```python block that starts with "# example:" out of README.md and exec it in a fresh temporary
working directory (the examples use relative data directories).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(# example: (\w+)\n.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_three_examples() -> None:
    assert {name for _, name in BLOCKS} >= {"sync", "async", "batch"}


@pytest.mark.parametrize("code, name", BLOCKS, ids=[name for _, name in BLOCKS])
def test_readme_example_runs(code: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md:{name}", "exec"), {"__name__": f"readme_{name}"})
    assert any(p.name.startswith("headwater-data") for p in tmp_path.iterdir())
    # Running it again on the same data directory works too (reopen path).
    exec(compile(code, f"README.md:{name}", "exec"), {"__name__": f"readme_{name}"})
    assert os.getcwd() == str(tmp_path)

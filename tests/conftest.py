"""Shared fixtures: the ``impl`` fixture runs one test body against both codec implementations.

``impl`` is parametrized over ``"native"`` (headwater._native._native, the Cython binding
over csrc/) and ``"pure"`` (headwater._pure, the pure-Python twin). If the extension does not
import, native tests FAIL rather than skip, so a broken build cannot pass silently; set
``HEADWATER_NO_EXTENSIONS=1`` to skip them on purpose (pure-only CI leg).

When headwater is not installed, ``src/`` is put on ``sys.path`` so the suite runs from a
checkout (the extension must then have been built in place).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

_SRC = Path(__file__).resolve().parent.parent / "src"
try:
    import headwater.errors  # noqa: F401
except ImportError:
    sys.path.insert(0, str(_SRC))

NO_EXTENSIONS = os.environ.get("HEADWATER_NO_EXTENSIONS") == "1"
IMPLEMENTATIONS = ["native", "pure"]


def load_impl(name: str) -> ModuleType:
    """Import one implementation of the codec surface by name ("native" or "pure").

    Skips native under HEADWATER_NO_EXTENSIONS=1; otherwise a failed native import fails the
    test.
    """
    if name == "pure":
        return importlib.import_module("headwater._pure")
    if NO_EXTENSIONS:
        pytest.skip("HEADWATER_NO_EXTENSIONS=1: native extension not under test")
    try:
        return importlib.import_module("headwater._native._native")
    except ImportError as exc:
        pytest.fail(
            f"headwater._native._native does not import ({exc}); build it with "
            "`pip install -e . --no-build-isolation` or set HEADWATER_NO_EXTENSIONS=1",
            pytrace=False,
        )


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The codec module under test: headwater._native._native or headwater._pure."""
    return load_impl(request.param)


@pytest.fixture
def pure() -> ModuleType:
    """The pure-Python implementation, as an oracle."""
    return load_impl("pure")


@pytest.fixture
def native() -> ModuleType:
    """The native implementation (skipped under HEADWATER_NO_EXTENSIONS=1)."""
    return load_impl("native")

"""Fixtures for the group-coordinator tests (helpers live in group_driver.py)."""

from __future__ import annotations

import pytest
from group_driver import Driver, make_coordinator

from headwater.coordinator.group import GroupCoordinator


@pytest.fixture
def coord() -> GroupCoordinator:
    return make_coordinator()


@pytest.fixture
def driver(coord: GroupCoordinator) -> Driver:
    return Driver(coord)

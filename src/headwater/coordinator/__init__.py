"""Coordinators: deterministic state machines above the log (DESIGN.md section 3).

Each coordinator takes ``now_ms`` and never touches sockets, clocks, files or threads, so the
embedded broker, the asyncio wire server and the tests all drive the same objects step by step.
``group`` holds the classic consumer-group coordinator and committed offsets.
"""

from headwater.coordinator.group import GroupCoordinator, GroupCoordinatorConfig

__all__ = ["GroupCoordinator", "GroupCoordinatorConfig"]

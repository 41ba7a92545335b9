"""The in-process fan-out (SQLite, one process): a published change goes straight to the hub."""

from __future__ import annotations

from collections.abc import Sequence

from runtrack.service.notifier import Change
from runtrack.service.watch import WatchHub


class LocalNotifier:
    """Delivers changes to this process's watchers; never blocks the writer."""

    def __init__(self, hub: WatchHub) -> None:
        self.hub = hub

    async def publish(self, changes: Sequence[Change]) -> None:
        if changes:
            self.hub.dispatch(changes)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

"""The last state this process read or wrote for an action, so that a single event can skip its read.

An entry is only ever used with the guarded write (``storage/pending.py``): the write happens only
if the run's version is still the one the entry holds, and every change to a run's actions and
attempts bumps that version. A stale entry (another replica wrote, the run was deleted) therefore
costs a failed guard and a fresh read, never a wrong write. Heartbeat times are the one thing that
changes without a version bump; the guarded path does not use them.
"""

from __future__ import annotations

from runtrack.domain.models import RunId
from runtrack.storage.writes import Locked

Key = tuple[RunId, str]


class RecentStates:
    """A bounded map (run id, action name) → :class:`Locked`; the oldest entry goes first."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._states: dict[Key, Locked] = {}

    def get(self, key: Key) -> Locked | None:
        return self._states.get(key)

    def put(self, lk: Locked) -> None:
        key = (lk.run_id, lk.name)
        self._states.pop(key, None)
        self._states[key] = lk
        if len(self._states) > self.size:
            del self._states[next(iter(self._states))]

    def drop(self, key: Key) -> None:
        self._states.pop(key, None)

    def __len__(self) -> int:
        return len(self._states)

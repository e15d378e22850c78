"""Whether the watch's copy of a resource already holds the operator's own last write to it.

A tick decides from the resource's status, and a decision taken on a status that lacks the
operator's own last write would replay the transition it recorded. The watch delivers that write
a moment after the API server answers it, so a tick right after it would read a stale copy; the
safe answer was a GET at the start of every tick that does work, one request in four of a busy
rollout's.

Events of one object come in the order the API server stored them, so once the watch has
delivered the version our last write produced, every copy it delivers after is at least as new,
and the watch's copy can be trusted until we write again. A resource is trusted only from that
point: at start-up, after a shard is gained (another replica wrote last), and while one of our
writes is not yet delivered, the tick reads afresh. Versions are only compared for equality, as
the API conventions ask; if the watch never delivers our version (it re-listed past it, or kopf
merged it into a newer event), the resource stays untrusted, which costs a GET, until our next
write is delivered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Key = tuple[str, str, str]
"""A resource's plural, namespace and name."""


class WatchFreshness:
    """Per resource: the version of our last write, the version the watch last delivered, and whether
    the watch has caught up with the former."""

    def __init__(self) -> None:
        self._written: dict[Key, str] = {}
        self._delivered: dict[Key, str] = {}
        self._trusted: set[Key] = set()
        self._lock = threading.Lock()

    def wrote(self, key: Key, version: str) -> None:
        """The API server answered one of our writes with ``version``."""
        with self._lock:
            self._written[key] = version
            # The watch may deliver the write before its answer is read.
            if self._delivered.get(key) == version:
                self._trusted.add(key)
            else:
                self._trusted.discard(key)

    def delivered(self, key: Key, version: str) -> None:
        """The watch delivered ``version`` of the resource (its copy now is that one)."""
        with self._lock:
            self._delivered[key] = version
            if self._written.get(key) == version:
                self._trusted.add(key)

    def trusted(self, key: Key) -> bool:
        """Whether the watch's copy holds our last write (and so is as new as any copy we know of)."""
        with self._lock:
            return key in self._trusted

    def doubt(self, namespaces: Callable[[str], bool]) -> None:
        """Someone else may have written the resources of these namespaces last (a shard was gained)."""
        with self._lock:
            for key in [key for key in self._trusted if namespaces(key[1])]:
                self._trusted.discard(key)
                self._written.pop(key, None)

    def forget(self, key: Key) -> None:
        """The resource was deleted."""
        with self._lock:
            self._written.pop(key, None)
            self._delivered.pop(key, None)
            self._trusted.discard(key)

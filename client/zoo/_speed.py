"""The speed floor: a response must keep arriving, not merely avoid read timeouts.

A server that sends a little inside every read timeout never times out a read, so a body
could take for ever. Every body the client reads (file downloads and the JSON of metadata
requests) must therefore average ``min_speed`` bytes/s over each ``window`` seconds.
"""

from __future__ import annotations

import time

__all__ = ["SpeedFloor", "TooSlow"]


class TooSlow(Exception):
    """The body arrives, but slower than the configured floor (a trickling server)."""


class SpeedFloor:
    """Counts a body's bytes per window of ``window`` seconds; :meth:`add` raises
    :class:`TooSlow` when a window ends with fewer than ``min_speed`` bytes/s."""

    def __init__(self, min_speed: float, window: float) -> None:
        self.min_speed, self.window = min_speed, window
        self.restart()

    def restart(self) -> None:
        """Start measuring afresh (a new request)."""
        self._start, self._bytes = time.monotonic(), 0

    def add(self, count: int) -> None:
        """Account for ``count`` bytes that just arrived."""
        self._bytes += count
        elapsed = time.monotonic() - self._start
        if elapsed < self.window:
            return
        if self._bytes < self.min_speed * elapsed:
            raise TooSlow(
                f"only {self._bytes} bytes in {elapsed:.0f} s, below the floor of "
                f"{self.min_speed:g} bytes/s (ZooConfig.min_speed)"
            )
        self.restart()

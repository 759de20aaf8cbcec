"""What a protocol machine keeps of earlier reads, shared by the text and binary machines.

Two things outlive a read: an unfinished line or header (kept as bytes and prefixed to the next
read), and the start of a value the machine must see whole (kept as a list of reads, joined once
when enough has arrived, so a 1 MiB value arriving in 64 KiB reads costs one copy instead of a
quadratic series of concatenations).
"""

from __future__ import annotations

from typing import List, Optional


class PendingInput:
    __slots__ = ("holds", "_rest", "_parts", "_have", "_want")

    def __init__(self) -> None:
        # Whether anything is kept: a read with nothing before it is parsed as it came, and
        # the machines test this instead of calling take for every read.
        self.holds = False
        self._rest = b""
        self._parts: List[bytes] = []
        self._have = 0
        self._want = 0

    def take(self, data: bytes) -> Optional[bytes]:
        """The bytes to parse now, kept bytes first; None while an awaited block is incomplete."""
        if self._want:
            if data:
                self._parts.append(data)
                self._have += len(data)
            if self._have < self._want:
                return None
            data = b"".join(self._parts)
            self._parts = []
            self._have = self._want = 0
        elif self._rest:
            data = self._rest + data
            self._rest = b""
        self.holds = False
        return data

    def keep(self, rest: bytes) -> None:
        """Parse ``rest`` again in front of the next read (an unfinished line or header)."""
        self._rest = rest
        self.holds = bool(rest)

    def wait_for(self, rest: bytes, total: int) -> None:
        """Hold ``rest`` and later reads until ``total`` bytes are there to parse at once."""
        self._parts = [rest]
        self._have = len(rest)
        self._want = total
        self.holds = True

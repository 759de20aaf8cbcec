"""The memory file: ``-m`` bytes of a file (on a tmpfs, ideally) mapped shared, cut into pages."""

from __future__ import annotations

import mmap
import os
from typing import List

from pymcd.startup import StartupError


class MemoryFile:
    """One shared mapping of ``path``, grown or cut to ``size`` bytes, as memcached maps it."""

    def __init__(self, path: str, size: int, page_size: int) -> None:
        self.path = path
        self.meta_path = path + ".meta"
        self.size = size
        self.page_size = page_size
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o700)
        except OSError as error:
            raise StartupError("failed to open file for mmap: %s" % error.strerror)
        try:
            os.ftruncate(descriptor, size)
            self._map = mmap.mmap(descriptor, size, mmap.MAP_SHARED)
        except OSError as error:
            raise StartupError("failed to mmap, aborting: %s" % error.strerror)
        finally:
            os.close(descriptor)
        self._view = memoryview(self._map)

    @property
    def mapping(self) -> mmap.mmap:
        """The whole mapping: page n starts at n * page_size."""
        return self._map

    def pages(self) -> List[memoryview]:
        """Every page as a writable view (the store indexes, packs and slices these)."""
        size = self.page_size
        return [self._view[start:start + size] for start in range(0, self.size - size + 1, size)]

    def flush(self) -> None:
        """msync: the file holds every page as it is now."""
        self._map.flush()

"""Slab classes as memcached 1.6.18 computes them, checked against the real ``memcached -vv``."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import List

import pytest

from pymcd.options import parse_arguments
from pymcd.store.slabs import SlabAllocator

FLAG_SETS = [
    [],
    ["-n", "100", "-f", "1.5"],
    ["-I", "4m"],
    ["-f", "2", "-n", "16", "-I", "2m"],
    ["-f", "1.01"],  # more classes than memcached's 63: the table is cut there
    ["-o", "slab_chunk_max=64"],
    ["-o", "slab_chunk_max=131072", "-f", "1.1", "-n", "72"],
]


def memcached_class_lines(flags: List[str], largest: int) -> List[str]:
    """The ``slab class`` lines memcached prints with -vv, up to its ``largest`` chunk."""
    command = [shutil.which("memcached"), "-vv", "-p", "0", "-U", "0", "-l", "127.0.0.1"] + flags
    if os.geteuid() == 0:
        command += ["-u", "nobody"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in process.stderr:
            if not line.startswith("slab class"):
                break
            lines.append(line.rstrip("\n"))
            if int(line.split()[5]) == largest:
                break
    finally:
        process.kill()
        process.wait()
    return lines


@pytest.mark.skipif(shutil.which("memcached") is None, reason="memcached not installed")
@pytest.mark.parametrize("flags", FLAG_SETS, ids=lambda flags: " ".join(flags) or "defaults")
def test_classes_match_memcached_vv(flags: List[str]) -> None:
    settings = parse_arguments(flags).store
    expected = memcached_class_lines(flags, settings.slab_chunk_max)
    assert expected
    assert SlabAllocator(settings).slab_class_lines() == expected


def test_class_lookup_picks_the_smallest_chunk_that_fits() -> None:
    slabs = SlabAllocator(parse_arguments([]).store)
    for cls in slabs.classes[1:-1]:
        assert slabs.class_for(cls.size) == cls.clsid
        assert slabs.class_for(cls.size + 1) == cls.clsid + 1
    assert slabs.class_for(1024 * 1024 + 1) == 0
    assert slabs.class_for(600 * 1024) == slabs.largest
